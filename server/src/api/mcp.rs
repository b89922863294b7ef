//! `/v1/tenant/mcp`: the project's MCP servers, whose tools configs enable as
//! `mcp/<server>/<tool>` or `mcp/<server>/*`.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use ingram_core::domain::tools::mcp::registry::{self, Registered, Registration};
use ingram_core::domain::tools::mcp::{self, McpTool, presets};
use ingram_core::error::Result as CoreResult;
use ingram_core::store::{decode_json, mcp_server};

use crate::AppState;
use crate::api::{Deleted, string_map_schema};
use crate::http::ApiResult;
use crate::http::auth::{Authorized, scopes};
use crate::http::extract::{Json, Path};

/// What a registered header's value is shown as.
const MASK: &str = "********";

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct McpServerTool {
    /// The server's own name for the tool: enable it as `mcp/<server>/<name>`.
    pub name: String,
    pub description: String,
    /// The JSON Schema of its arguments.
    #[schema(value_type = Object)]
    pub input_schema: serde_json::Value,
}

impl From<McpTool> for McpServerTool {
    fn from(tool: McpTool) -> Self {
        Self { name: tool.name, description: tool.description, input_schema: tool.input_schema }
    }
}

/// Why the server could not be used when last asked.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct McpServerError {
    /// `egress_denied`, `mcp_unauthorized`, `mcp_timeout`, `mcp_unreachable`, `mcp_http_error`,
    /// `mcp_answer_too_large` or `mcp_protocol_error`.
    pub code: String,
    pub message: String,
}

/// A registered MCP server. Header values are never shown again.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct McpServer {
    pub name: String,
    pub url: String,
    pub description: Option<String>,
    /// The catalog entry it was registered from.
    pub catalog: Option<String>,
    /// The headers sent with every request, their values masked.
    pub headers: BTreeMap<String, String>,
    /// The tools it listed when last asked (kept when a refresh fails).
    pub tools: Vec<McpServerTool>,
    /// The MCP protocol version agreed when it last listed its tools.
    pub protocol_version: Option<String>,
    /// When it was last asked for its tools.
    pub refreshed_at: Option<DateTime<Utc>>,
    /// `null` when it answered when last asked.
    pub error: Option<McpServerError>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl McpServer {
    fn from_row(row: mcp_server::Model) -> CoreResult<Self> {
        let header_names: Vec<String> = decode_json(&row.name, "header_names", &row.header_names)?;
        let tools: Vec<McpTool> = decode_json(&row.name, "tools", &row.tools)?;
        let error = row.error_code.map(|code| McpServerError { code, message: row.error_message.unwrap_or_default() });
        Ok(Self {
            headers: header_names.into_iter().map(|name| (name, MASK.to_owned())).collect(),
            tools: tools.into_iter().map(Into::into).collect(),
            name: row.name,
            url: row.url,
            description: row.description,
            catalog: row.catalog,
            protocol_version: row.protocol_version,
            refreshed_at: row.refreshed_at,
            error,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct McpServerList {
    /// Every server of the project, by name (at most 32).
    pub data: Vec<McpServer>,
}

/// Registers a server by its URL, or from a catalog entry. No `Debug`: the headers are secrets.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutMcpServerRequest {
    /// The server's Streamable HTTP endpoint. It must reach a public address unless the
    /// operator allows it (INGRAM_EGRESS_ALLOW). Give this or `catalog`.
    #[schema(max_length = 2048)]
    pub url: Option<String>,
    /// A catalog entry's slug (`GET /v1/catalog`), instead of `url`.
    #[schema(max_length = 64)]
    pub catalog: Option<String>,
    /// Values for the catalog entry's URL template: each 1 to 63 letters, digits or `-`.
    #[schema(schema_with = variables_schema)]
    pub variables: Option<BTreeMap<String, String>>,
    /// Headers sent with every request (e.g. `Authorization`), sealed at rest and never shown
    /// again: up to 16, names up to 128 characters, values up to 4,096 visible ASCII characters.
    #[schema(schema_with = headers_schema)]
    pub headers: Option<BTreeMap<String, String>>,
    #[schema(max_length = 1000)]
    pub description: Option<String>,
}

fn variables_schema() -> utoipa::openapi::Object {
    string_map_schema(8, 64, presets::VARIABLE_MAX).build()
}

fn headers_schema() -> utoipa::openapi::Object {
    string_map_schema(registry::HEADERS_MAX, registry::HEADER_NAME_MAX, registry::HEADER_VALUE_MAX).build()
}

/// The path of one server.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct McpServerPath {
    /// The server's name: 1 to 48 of a-z, 0-9, _ and -, starting with a letter or digit.
    #[param(min_length = 1, max_length = 48)]
    pub name: String,
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_mcp_servers))
        .routes(routes!(get_mcp_server, put_mcp_server, delete_mcp_server))
        .routes(routes!(refresh_mcp_server))
}

#[utoipa::path(get, path = "/v1/tenant/mcp", tag = "tools",
    responses((status = 200, description = "The project's MCP servers, by name.", body = McpServerList)))]
async fn list_mcp_servers(
    State(state): State<AppState>,
    caller: Authorized<scopes::ToolsRead>,
) -> ApiResult<axum::Json<McpServerList>> {
    let rows = state.engine.mcp().list(&caller.project_id).await?;
    let data = rows.into_iter().map(McpServer::from_row).collect::<CoreResult<_>>()?;
    Ok(axum::Json(McpServerList { data }))
}

#[utoipa::path(get, path = "/v1/tenant/mcp/{name}", tag = "tools", params(McpServerPath),
    responses((status = 200, description = "The server, with the tools it listed when last asked.", body = McpServer)))]
async fn get_mcp_server(
    State(state): State<AppState>,
    caller: Authorized<scopes::ToolsRead>,
    Path(McpServerPath { name }): Path<McpServerPath>,
) -> ApiResult<axum::Json<McpServer>> {
    Ok(axum::Json(McpServer::from_row(state.engine.mcp().get(&caller.project_id, &name).await?)?))
}

#[utoipa::path(put, path = "/v1/tenant/mcp/{name}", tag = "tools", params(McpServerPath), request_body = PutMcpServerRequest,
    responses(
        (status = 201, description = "Registered. The server was asked for its tools before this answer; `error` says why when it refused.", body = McpServer),
        (status = 200, description = "Replaced (headers included), and asked for its tools again.", body = McpServer),
    ))]
async fn put_mcp_server(
    State(state): State<AppState>,
    caller: Authorized<scopes::ToolsWrite>,
    Path(McpServerPath { name }): Path<McpServerPath>,
    Json(request): Json<PutMcpServerRequest>,
) -> ApiResult<(StatusCode, axum::Json<McpServer>)> {
    let registration = Registration {
        url: request.url,
        catalog: request.catalog,
        variables: request.variables.unwrap_or_default(),
        headers: request.headers.unwrap_or_default().into_iter().collect(),
        description: request.description,
    };
    Ok(match state.engine.mcp().register(&caller.project_id, &name, registration).await? {
        Registered::Created(row) => (StatusCode::CREATED, axum::Json(McpServer::from_row(row)?)),
        Registered::Replaced(row) => (StatusCode::OK, axum::Json(McpServer::from_row(row)?)),
    })
}

#[utoipa::path(post, path = "/v1/tenant/mcp/{name}/refresh", tag = "tools", params(McpServerPath),
    responses((status = 200, description = "Asked for its tools again; `error` says why when it refused.", body = McpServer)))]
async fn refresh_mcp_server(
    State(state): State<AppState>,
    caller: Authorized<scopes::ToolsWrite>,
    Path(McpServerPath { name }): Path<McpServerPath>,
) -> ApiResult<axum::Json<McpServer>> {
    Ok(axum::Json(McpServer::from_row(state.engine.mcp().refresh(&caller.project_id, &name).await?)?))
}

#[utoipa::path(delete, path = "/v1/tenant/mcp/{name}", tag = "tools", params(McpServerPath),
    responses((status = 200, description = "Removed: runs no longer offer its tools.", body = Deleted)))]
async fn delete_mcp_server(
    State(state): State<AppState>,
    caller: Authorized<scopes::ToolsWrite>,
    Path(McpServerPath { name }): Path<McpServerPath>,
) -> ApiResult<axum::Json<Deleted>> {
    state.engine.mcp().delete(&caller.project_id, &name).await?;
    Ok(axum::Json(Deleted::new(name)))
}

// The limits the documentation above states are the registry's own.
const _: () = assert!(registry::NAME_MAX == 48 && registry::HEADERS_MAX == 16 && mcp::SERVERS_PER_PROJECT_MAX == 32);
