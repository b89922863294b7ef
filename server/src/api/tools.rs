//! `/v1/tenant/hosted_tools`: the tools the server runs itself, for configs to enable as
//! `hosted/<name>`.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use ingram_core::domain::tools::catalog;

use crate::AppState;
use crate::http::ApiResult;
use crate::http::auth::{Authorized, scopes};

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct HostedTool {
    /// Enable it as `hosted/<name>`; the model sees it as `hosted__<name>`.
    pub name: String,
    pub description: String,
    /// The JSON Schema of its arguments.
    #[schema(value_type = Object)]
    pub input_schema: serde_json::Value,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct HostedToolList {
    pub data: Vec<HostedTool>,
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_hosted_tools))
}

#[utoipa::path(get, path = "/v1/tenant/hosted_tools", tag = "tools",
    responses((status = 200, description = "Every hosted tool.", body = HostedToolList)))]
async fn list_hosted_tools(_caller: Authorized<scopes::ToolsRead>) -> ApiResult<axum::Json<HostedToolList>> {
    let data = catalog::hosted()
        .into_iter()
        .map(|tool| HostedTool {
            name: tool.name.to_owned(),
            description: tool.description.to_owned(),
            input_schema: tool.input_schema,
        })
        .collect();
    Ok(axum::Json(HostedToolList { data }))
}
