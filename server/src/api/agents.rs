//! `/v1/agents`: the designs smiths run.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use ingram_core::domain::agents::{self, AgentPatch, NewAgent};
use ingram_core::domain::config::AgentDesign;
use ingram_core::domain::memory::declarations::BlockDeclaration;
use ingram_core::error::Error;
use ingram_core::ids::AgentId;
use ingram_core::store::{agent, decode_json_opt};

use crate::AppState;
use crate::api::pagination::{PageParams, list_type};
use crate::api::schemas;
use crate::api::{Deleted, double_option, tool_approvals_schema};
use crate::http::ApiResult;
use crate::http::auth::{Authorized, scopes};
use crate::http::extract::{Json, Path, Query};
use ingram_core::types::ToolApprovals;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Agent {
    #[schema(value_type = schemas::AgentId)]
    pub id: AgentId,
    pub name: String,
    pub instructions: Option<String>,
    /// The model the agent thinks with; see docs/models.md for how a name picks a provider.
    pub model: String,
    /// Names of the tools the agent may use.
    pub tools: Vec<String>,
    pub auto_memory: bool,
    /// The models a run may ask for instead of `model`; null: any model the project can reach.
    pub allowed_models: Option<Vec<String>>,
    /// The memory blocks each smith of the agent has beyond `human` and `persona` (or those
    /// two redeclared); null: none.
    #[schema(value_type = Option<Vec<schemas::BlockDeclaration>>)]
    pub memory_blocks: Option<Vec<BlockDeclaration>>,
    /// Which server-side calls wait for a person's decision (docs/approvals.md); null: none.
    #[schema(schema_with = tool_approvals_schema)]
    pub tool_approvals: Option<ToolApprovals>,
    /// The project's default agent, which smiths naming no agent land on.
    pub is_default: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

list_type!(AgentList, Agent);

impl TryFrom<agent::Model> for Agent {
    type Error = Error;

    fn try_from(model: agent::Model) -> Result<Self, Error> {
        let AgentDesign { tools, allowed_models, tool_approvals } = AgentDesign::decode(&model)?;
        let memory_blocks = decode_json_opt(&model.id, "memory_blocks", model.memory_blocks.as_ref())?;
        Ok(Self {
            id: model.id,
            name: model.name,
            instructions: model.instructions,
            model: model.model,
            tools,
            auto_memory: model.auto_memory,
            allowed_models,
            memory_blocks,
            tool_approvals,
            is_default: model.is_default,
            created_at: model.created_at,
            updated_at: model.updated_at,
        })
    }
}

impl From<CreateAgentRequest> for NewAgent {
    fn from(request: CreateAgentRequest) -> Self {
        Self {
            name: request.name,
            instructions: request.instructions,
            model: request.model,
            tools: request.tools,
            auto_memory: request.auto_memory,
            allowed_models: request.allowed_models,
            memory_blocks: request.memory_blocks,
            tool_approvals: request.tool_approvals,
        }
    }
}

impl From<UpdateAgentRequest> for AgentPatch {
    fn from(patch: UpdateAgentRequest) -> Self {
        Self {
            name: patch.name,
            instructions: patch.instructions,
            model: patch.model,
            tools: patch.tools,
            auto_memory: patch.auto_memory,
            allowed_models: patch.allowed_models,
            memory_blocks: patch.memory_blocks,
            tool_approvals: patch.tool_approvals,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAgentRequest {
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    #[schema(max_length = 262144)]
    pub instructions: Option<String>,
    /// Defaults to the built-in offline model `ingram/offline`.
    #[schema(max_length = 256)]
    pub model: Option<String>,
    #[schema(max_items = 128)]
    pub tools: Option<Vec<String>>,
    pub auto_memory: Option<bool>,
    /// Bounds the `model` a run may ask for (every token's); absent: no bound.
    #[schema(max_items = 64)]
    pub allowed_models: Option<Vec<String>>,
    /// Memory blocks for each smith of the agent (docs/memory.md).
    #[schema(value_type = Option<Vec<schemas::BlockDeclaration>>, max_items = 16)]
    pub memory_blocks: Option<Vec<BlockDeclaration>>,
    /// Tool references or `*` patterns (`mcp/weather/*`, `*`) to `always` (ask before every
    /// call) or `never`; a call nothing matches runs without asking (docs/approvals.md).
    #[schema(schema_with = tool_approvals_schema)]
    pub tool_approvals: Option<ToolApprovals>,
}

/// Fields left out stay as they are; `instructions: null` clears them.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateAgentRequest {
    #[schema(max_length = 200)]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(nullable, max_length = 262144)]
    pub instructions: Option<Option<String>>,
    #[schema(max_length = 256)]
    pub model: Option<String>,
    #[schema(max_items = 128)]
    pub tools: Option<Vec<String>>,
    pub auto_memory: Option<bool>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(nullable, max_items = 64)]
    pub allowed_models: Option<Option<Vec<String>>>,
    /// Replaces the agent's declared blocks; `null` removes them. Values smiths wrote stay.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<Vec<schemas::BlockDeclaration>>, nullable, max_items = 16)]
    pub memory_blocks: Option<Option<Vec<BlockDeclaration>>>,
    /// Replaces the agent's `tool_approvals`; `null` removes them.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(schema_with = tool_approvals_schema)]
    pub tool_approvals: Option<Option<ToolApprovals>>,
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create_agent, list_agents)).routes(routes!(
        get_agent,
        update_agent,
        delete_agent
    ))
}

#[utoipa::path(post, path = "/v1/agents", tag = "agents", request_body = CreateAgentRequest,
    responses((status = 201, description = "The agent was created.", body = Agent)))]
async fn create_agent(
    State(state): State<AppState>,
    caller: Authorized<scopes::AgentsWrite>,
    Json(request): Json<CreateAgentRequest>,
) -> ApiResult<(StatusCode, axum::Json<Agent>)> {
    let agent = agents::create(&state.db, &caller.project_id, request.into()).await?;
    Ok((StatusCode::CREATED, axum::Json(agent.try_into()?)))
}

#[utoipa::path(get, path = "/v1/agents", tag = "agents", params(PageParams),
    responses((status = 200, description = "The project's agents, newest first.", body = AgentList)))]
async fn list_agents(
    State(state): State<AppState>,
    caller: Authorized<scopes::AgentsRead>,
    Query(params): Query<PageParams>,
) -> ApiResult<axum::Json<AgentList>> {
    let page = agents::list(&state.db, &caller.project_id, &params.validate()?).await?;
    Ok(axum::Json(page.try_map(Agent::try_from)?.into()))
}

#[utoipa::path(get, path = "/v1/agents/{aid}", tag = "agents", params(("aid" = schemas::AgentId, Path, description = "The agent's id (agt_…).")),
    responses((status = 200, description = "The agent.", body = Agent)))]
async fn get_agent(
    State(state): State<AppState>,
    caller: Authorized<scopes::AgentsRead>,
    Path(aid): Path<AgentId>,
) -> ApiResult<axum::Json<Agent>> {
    Ok(axum::Json(agents::get(&state.db, &caller.project_id, &aid).await?.try_into()?))
}

#[utoipa::path(patch, path = "/v1/agents/{aid}", tag = "agents", params(("aid" = schemas::AgentId, Path, description = "The agent's id (agt_…).")),
    request_body = UpdateAgentRequest, responses((status = 200, description = "The updated agent.", body = Agent)))]
async fn update_agent(
    State(state): State<AppState>,
    caller: Authorized<scopes::AgentsWrite>,
    Path(aid): Path<AgentId>,
    Json(patch): Json<UpdateAgentRequest>,
) -> ApiResult<axum::Json<Agent>> {
    Ok(axum::Json(agents::update(&state.db, &state.caches, &caller.project_id, &aid, patch.into()).await?.try_into()?))
}

#[utoipa::path(delete, path = "/v1/agents/{aid}", tag = "agents", params(("aid" = schemas::AgentId, Path, description = "The agent's id (agt_…).")),
    responses((status = 200, description = "The agent was deleted. Refused with 409 `agent_in_use` while live smiths run on it, and `agent_is_default` for the default agent.", body = Deleted)))]
async fn delete_agent(
    State(state): State<AppState>,
    caller: Authorized<scopes::AgentsWrite>,
    Path(aid): Path<AgentId>,
) -> ApiResult<axum::Json<Deleted>> {
    agents::delete(&state.db, &state.caches, &caller.project_id, &aid).await?;
    Ok(axum::Json(Deleted::new(aid)))
}
