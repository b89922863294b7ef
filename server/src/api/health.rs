//! `GET /healthz`: 200 when the database answers.

use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::AppState;
use crate::http::ApiResult;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Health {
    pub status: String,
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(healthz))
}

#[utoipa::path(get, path = "/healthz", tag = "health",
    responses((status = 200, description = "The server and its database answer.", body = Health)))]
async fn healthz(State(state): State<AppState>) -> ApiResult<axum::Json<Health>> {
    ingram_core::db::ping(&state.db).await?;
    Ok(axum::Json(Health { status: "ok".into() }))
}
