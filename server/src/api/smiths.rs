//! `/v1/smiths`: one smith per end-user, and its config revisions.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use ingram_core::domain::config::{EffectiveConfig, SmithConfig, SmithConfigPatch};
use ingram_core::domain::smiths::{self, NewSmith, SmithFilter, SmithPatch, SmithWithAgent, Upserted};
use ingram_core::error::Error;
use ingram_core::ids::{AgentId, SmithId};
use ingram_core::store::smith_revision;

use ingram_core::types::ToolApprovals;

use crate::AppState;
use crate::api::pagination::{PageParams, decode_cursor, encode_cursor, list_type};
use crate::api::{Deleted, double_option, schemas};
use crate::http::ApiResult;
use crate::http::auth::{Authorized, scopes};
use crate::http::extract::{Json, Path, Query};

#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConfigSource {
    /// The smith runs its agent's config unchanged.
    Agent,
    /// The smith carries overrides on top of its agent.
    Override,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Smith {
    #[schema(value_type = schemas::SmithId)]
    pub id: SmithId,
    /// Your own id for the end-user.
    pub external_id: String,
    #[schema(value_type = schemas::AgentId)]
    pub agent_id: AgentId,
    pub customer_id: Option<String>,
    pub display_name: Option<String>,
    pub metadata: Option<BTreeMap<String, String>>,
    pub config_source: ConfigSource,
    #[schema(value_type = schemas::SmithConfig)]
    pub overrides: SmithConfig,
    #[schema(value_type = schemas::EffectiveConfig)]
    pub effective_config: EffectiveConfig,
    /// The number of the current config revision.
    pub revision: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

list_type!(SmithList, Smith);

impl From<SmithWithAgent> for Smith {
    fn from(SmithWithAgent { smith, overrides, effective, metadata, .. }: SmithWithAgent) -> Self {
        Self {
            id: smith.id,
            external_id: smith.external_id,
            agent_id: smith.agent_id,
            customer_id: smith.customer_id,
            display_name: smith.display_name,
            metadata,
            config_source: if overrides.is_empty() { ConfigSource::Agent } else { ConfigSource::Override },
            overrides,
            effective_config: effective,
            revision: smith.revision,
            created_at: smith.created_at,
            updated_at: smith.updated_at,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSmithRequest {
    /// Your own id for the end-user; with the agent it keys the smith.
    #[schema(min_length = 1, max_length = 255)]
    pub external_id: String,
    /// The agent to run; the project's default agent when absent.
    #[schema(value_type = Option<schemas::AgentId>)]
    pub agent_id: Option<AgentId>,
    #[schema(max_length = 256)]
    pub customer_id: Option<String>,
    #[schema(max_length = 256)]
    pub display_name: Option<String>,
    /// Up to 16 string pairs of your own.
    #[schema(schema_with = crate::api::metadata_schema)]
    pub metadata: Option<BTreeMap<String, String>>,
    /// Overrides the agent's instructions for this smith.
    #[schema(max_length = 262144)]
    pub instructions: Option<String>,
    /// Overrides the agent's model for this smith.
    #[schema(max_length = 256)]
    pub model: Option<String>,
    /// Overrides the agent's tools for this smith.
    #[schema(max_items = 128)]
    pub tools: Option<Vec<String>>,
    /// Overrides the agent's auto_memory for this smith.
    pub auto_memory: Option<bool>,
    /// Overrides the agent's allowed_models for this smith.
    #[schema(max_items = 64)]
    pub allowed_models: Option<Vec<String>>,
    /// Overrides the agent's tool_approvals for this smith (docs/approvals.md).
    #[schema(schema_with = crate::api::tool_approvals_schema)]
    pub tool_approvals: Option<ToolApprovals>,
}

impl From<CreateSmithRequest> for NewSmith {
    fn from(request: CreateSmithRequest) -> Self {
        Self {
            external_id: request.external_id,
            agent_id: request.agent_id,
            customer_id: request.customer_id,
            display_name: request.display_name,
            metadata: request.metadata,
            overrides: SmithConfig {
                instructions: request.instructions,
                model: request.model,
                tools: request.tools,
                auto_memory: request.auto_memory,
                allowed_models: request.allowed_models,
                tool_approvals: request.tool_approvals,
            },
        }
    }
}

/// Fields left out stay as they are. For config fields, a value sets this smith's override
/// and `null` removes it, so the agent's value applies again.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateSmithRequest {
    /// Attach the smith to another agent of the project.
    #[schema(value_type = Option<schemas::AgentId>)]
    pub agent_id: Option<AgentId>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(nullable, max_length = 256)]
    pub customer_id: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(nullable, max_length = 256)]
    pub display_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(schema_with = crate::api::metadata_schema)]
    pub metadata: Option<Option<BTreeMap<String, String>>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(nullable, max_length = 262144)]
    pub instructions: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(nullable, max_length = 256)]
    pub model: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(nullable, max_items = 128)]
    pub tools: Option<Option<Vec<String>>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(nullable)]
    pub auto_memory: Option<Option<bool>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(nullable, max_items = 64)]
    pub allowed_models: Option<Option<Vec<String>>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(schema_with = crate::api::tool_approvals_schema)]
    pub tool_approvals: Option<Option<ToolApprovals>>,
}

impl From<UpdateSmithRequest> for SmithPatch {
    fn from(patch: UpdateSmithRequest) -> Self {
        Self {
            agent_id: patch.agent_id,
            customer_id: patch.customer_id,
            display_name: patch.display_name,
            metadata: patch.metadata,
            config: SmithConfigPatch {
                instructions: patch.instructions,
                model: patch.model,
                tools: patch.tools,
                auto_memory: patch.auto_memory,
                allowed_models: patch.allowed_models,
                tool_approvals: patch.tool_approvals,
            },
        }
    }
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListSmithsParams {
    /// Only the smith(s) with exactly this external_id.
    pub external_id: Option<String>,
    /// Only smiths whose external_id starts with this (one namespace, e.g. `anon:`).
    pub external_id_prefix: Option<String>,
    pub customer_id: Option<String>,
    #[param(value_type = Option<schemas::AgentId>)]
    pub agent_id: Option<AgentId>,
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u64>,
    pub cursor: Option<String>,
}

impl ListSmithsParams {
    fn filter(&self) -> SmithFilter {
        SmithFilter {
            external_id: self.external_id.clone(),
            external_id_prefix: self.external_id_prefix.clone(),
            customer_id: self.customer_id.clone(),
            agent_id: self.agent_id.clone(),
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SmithRevision {
    pub number: i32,
    #[schema(value_type = schemas::AgentId)]
    pub agent_id: AgentId,
    #[schema(value_type = schemas::SmithConfig)]
    pub overrides: SmithConfig,
    /// Set when this revision was made by restoring an earlier one.
    pub restored_from: Option<i32>,
    pub created_at: DateTime<Utc>,
}

list_type!(SmithRevisionList, SmithRevision);

impl TryFrom<smith_revision::Model> for SmithRevision {
    type Error = Error;

    fn try_from(model: smith_revision::Model) -> Result<Self, Error> {
        let owner = format!("{} revision {}", model.smith_id, model.number);
        Ok(Self {
            overrides: SmithConfig::decode(&owner, &model.overrides)?,
            number: model.number,
            agent_id: model.agent_id,
            restored_from: model.restored_from,
            created_at: model.created_at,
        })
    }
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_smith, list_smiths))
        .routes(routes!(get_smith, update_smith, delete_smith))
        .routes(routes!(list_revisions))
        .routes(routes!(restore_revision))
}

const SID: &str = "The smith's id (smt_…).";

#[utoipa::path(post, path = "/v1/smiths", tag = "smiths", request_body = CreateSmithRequest,
    responses(
        (status = 201, description = "A new smith.", body = Smith),
        (status = 200, description = "The live smith that already has this external_id on this agent, unchanged.", body = Smith),
    ))]
async fn create_smith(
    State(state): State<AppState>,
    caller: Authorized<scopes::SmithsWrite>,
    Json(request): Json<CreateSmithRequest>,
) -> ApiResult<(StatusCode, axum::Json<Smith>)> {
    Ok(match smiths::upsert(&state.db, &state.caches, &caller, request.into()).await? {
        Upserted::Created(smith) => (StatusCode::CREATED, axum::Json(smith.into())),
        Upserted::Existing(smith) => (StatusCode::OK, axum::Json(smith.into())),
    })
}

#[utoipa::path(get, path = "/v1/smiths", tag = "smiths", params(ListSmithsParams),
    responses((status = 200, description = "Smiths, newest first. A smith token sees only its own.", body = SmithList)))]
async fn list_smiths(
    State(state): State<AppState>,
    caller: Authorized<scopes::SmithsRead>,
    Query(params): Query<ListSmithsParams>,
) -> ApiResult<axum::Json<SmithList>> {
    let page = PageParams { limit: params.limit, cursor: params.cursor.clone() }.validate()?;
    let page = smiths::list(&state.db, &state.caches, &caller, &params.filter(), &page).await?;
    Ok(axum::Json(page.map(Smith::from).into()))
}

#[utoipa::path(get, path = "/v1/smiths/{sid}", tag = "smiths", params(("sid" = schemas::SmithId, Path, description = SID)),
    responses((status = 200, description = "The smith.", body = Smith)))]
async fn get_smith(
    State(state): State<AppState>,
    caller: Authorized<scopes::SmithsRead>,
    Path(sid): Path<SmithId>,
) -> ApiResult<axum::Json<Smith>> {
    Ok(axum::Json(smiths::get_with_agent(&state.db, &state.caches, &caller, &sid).await?.into()))
}

#[utoipa::path(patch, path = "/v1/smiths/{sid}", tag = "smiths", params(("sid" = schemas::SmithId, Path, description = SID)),
    request_body = UpdateSmithRequest,
    responses((status = 200, description = "The updated smith; a config change made a new revision.", body = Smith)))]
async fn update_smith(
    State(state): State<AppState>,
    caller: Authorized<scopes::SmithsWrite>,
    Path(sid): Path<SmithId>,
    Json(patch): Json<UpdateSmithRequest>,
) -> ApiResult<axum::Json<Smith>> {
    Ok(axum::Json(smiths::update(&state.db, &state.caches, &caller, &sid, patch.into()).await?.into()))
}

#[utoipa::path(delete, path = "/v1/smiths/{sid}", tag = "smiths", params(("sid" = schemas::SmithId, Path, description = SID)),
    responses((status = 200, description = "The smith was deleted; its external_id is free again and its smith tokens are revoked.", body = Deleted)))]
async fn delete_smith(
    State(state): State<AppState>,
    caller: Authorized<scopes::SmithsWrite>,
    Path(sid): Path<SmithId>,
) -> ApiResult<axum::Json<Deleted>> {
    smiths::delete(&state.db, &state.caches, &caller, &sid).await?;
    // Its runs stop, and stay readable by the project (GET /v1/runs?smith_id=…).
    state.engine.cancel_smith_runs(&sid).await?;
    Ok(axum::Json(Deleted::new(sid)))
}

const REVISION_CURSOR_PREFIX: &str = "rev_";

#[utoipa::path(get, path = "/v1/smiths/{sid}/revisions", tag = "smiths", params(("sid" = schemas::SmithId, Path, description = SID), PageParams),
    responses((status = 200, description = "The smith's config revisions, newest first.", body = SmithRevisionList)))]
async fn list_revisions(
    State(state): State<AppState>,
    caller: Authorized<scopes::SmithsRead>,
    Path(sid): Path<SmithId>,
    Query(params): Query<PageParams>,
) -> ApiResult<axum::Json<SmithRevisionList>> {
    let page = PageParams { limit: params.limit, cursor: None }.validate()?;
    let before = match params.cursor.as_deref() {
        None | Some("") => None,
        Some(cursor) => Some(
            decode_cursor(cursor)?
                .strip_prefix(REVISION_CURSOR_PREFIX)
                .and_then(|number| number.parse::<i32>().ok())
                .ok_or_else(|| {
                Error::bad_request("invalid_cursor", "The cursor is not one this API issued.").with_param("cursor")
            })?,
        ),
    };
    let (rows, has_more) = smiths::revisions(&state.db, &caller, &sid, page.limit, before).await?;
    let next_cursor = if has_more {
        rows.last().map(|row| encode_cursor(&format!("{REVISION_CURSOR_PREFIX}{}", row.number)))
    } else {
        None
    };
    Ok(axum::Json(SmithRevisionList {
        data: rows.into_iter().map(SmithRevision::try_from).collect::<Result<_, _>>()?,
        next_cursor,
        has_more,
    }))
}

#[utoipa::path(post, path = "/v1/smiths/{sid}/revisions/{n}/restore", tag = "smiths",
    params(("sid" = schemas::SmithId, Path, description = SID), ("n" = i32, Path, description = "The revision number to restore.")),
    responses((status = 200, description = "The smith, with revision n's config current again as a new revision.", body = Smith)))]
async fn restore_revision(
    State(state): State<AppState>,
    caller: Authorized<scopes::SmithsWrite>,
    Path((sid, n)): Path<(SmithId, i32)>,
) -> ApiResult<axum::Json<Smith>> {
    Ok(axum::Json(smiths::restore(&state.db, &state.caches, &caller, &sid, n).await?.into()))
}
