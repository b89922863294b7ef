//! `/v1/approvals`: the gated tool calls runs wait on, and how each was decided. Decisions
//! are given through the run's `/submit` (docs/approvals.md).

use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use ingram_core::domain::approvals::{self, ApprovalFilter};
use ingram_core::ids::{ApprovalId, RunId, SmithId};
use ingram_core::store::approval::{self, ApprovalStatus};

use crate::AppState;
use crate::api::pagination::{PageParams, list_type};
use crate::api::schemas;
use crate::http::ApiResult;
use crate::http::auth::{Authorized, scopes};
use crate::http::extract::{Path, Query};

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Approval {
    #[schema(value_type = schemas::ApprovalId)]
    pub id: ApprovalId,
    #[schema(value_type = schemas::RunId)]
    pub run_id: RunId,
    #[schema(value_type = schemas::SmithId)]
    pub smith_id: SmithId,
    /// The tool's reference, e.g. `mcp/weather/delete_everything`.
    pub tool: String,
    /// The JSON object the model produced.
    #[schema(value_type = Object)]
    pub arguments: serde_json::Value,
    /// The arguments the call was approved with instead, when the decider edited them.
    #[schema(value_type = Option<Object>)]
    pub decided_arguments: Option<serde_json::Value>,
    /// The SHA-256 of `arguments` as the model produced them (hex).
    pub arguments_sha256: String,
    #[schema(value_type = schemas::ApprovalStatus)]
    pub status: ApprovalStatus,
    /// Why it was rejected, as the decider said (the model reads it).
    pub reason: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

list_type!(ApprovalList, Approval);

impl From<approval::Model> for Approval {
    fn from(row: approval::Model) -> Self {
        Self {
            arguments: approvals::arguments_of(&row.arguments),
            decided_arguments: row.decided_arguments.as_deref().map(approvals::arguments_of),
            id: row.id,
            run_id: row.run_id,
            smith_id: row.smith_id,
            tool: row.tool,
            arguments_sha256: row.arguments_sha256,
            status: row.status,
            reason: row.reason,
            decided_at: row.decided_at,
            created_at: row.created_at,
            expires_at: row.expires_at,
        }
    }
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListApprovalsParams {
    /// pending, approved, rejected or expired.
    #[param(value_type = Option<schemas::ApprovalStatus>)]
    pub status: Option<ApprovalStatus>,
    #[param(value_type = Option<schemas::SmithId>)]
    pub smith_id: Option<SmithId>,
    #[param(value_type = Option<schemas::RunId>)]
    pub run_id: Option<RunId>,
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u64>,
    pub cursor: Option<String>,
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_approvals)).routes(routes!(get_approval))
}

#[utoipa::path(get, path = "/v1/approvals", tag = "approvals", params(ListApprovalsParams),
    responses((status = 200, description = "Approvals, newest first. A smith token sees only its smith's.", body = ApprovalList)))]
async fn list_approvals(
    State(state): State<AppState>,
    caller: Authorized<scopes::ApprovalsRead>,
    Query(params): Query<ListApprovalsParams>,
) -> ApiResult<axum::Json<ApprovalList>> {
    let page = PageParams { limit: params.limit, cursor: params.cursor }.validate()?;
    let filter = ApprovalFilter { status: params.status, smith_id: params.smith_id, run_id: params.run_id };
    let page = approvals::list(&state.db, &caller, &filter, &page).await?;
    Ok(axum::Json(page.map(Approval::from).into()))
}

#[utoipa::path(get, path = "/v1/approvals/{id}", tag = "approvals",
    params(("id" = schemas::ApprovalId, Path, description = "The approval's id (apr_…).")),
    responses((status = 200, description = "The approval.", body = Approval)))]
async fn get_approval(
    State(state): State<AppState>,
    caller: Authorized<scopes::ApprovalsRead>,
    Path(id): Path<ApprovalId>,
) -> ApiResult<axum::Json<Approval>> {
    Ok(axum::Json(approvals::get(&state.db, &caller, &id).await?.into()))
}
