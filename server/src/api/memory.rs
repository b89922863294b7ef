//! `/v1/smiths/{sid}/blocks` and `/v1/smiths/{sid}/memories`: what a smith remembers about
//! its person; and `/v1/tenant/embeddings`, which turns on semantic memory search.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use ingram_core::domain::memory::blocks::Block as CoreBlock;
use ingram_core::domain::memory::embeddings::EmbeddingSettings as CoreEmbeddingSettings;
use ingram_core::domain::memory::memories::{MemoryPatch, NewMemory};
use ingram_core::domain::memory::search::Scored;
use ingram_core::error::{Error, ErrorKind};
use ingram_core::ids::{MemoryId, SmithId};
use ingram_core::store::memory::{self, MemorySource};
use ingram_core::store::{decode_json_opt, embedding_setting};

use crate::AppState;
use crate::api::pagination::{PageParams, list_type};
use crate::api::{Deleted, double_option, schemas};
use crate::http::ApiResult;
use crate::http::auth::{Authorized, scopes};
use crate::http::extract::{Json, Path, Query};

const SID: &str = "The smith's id (smt_…).";
const MID: &str = "The memory's id (mem_…).";

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Block {
    pub label: String,
    pub value: String,
    /// Characters the block holds at most.
    pub limit: u32,
    pub description: Option<String>,
    /// The smith's own memory tools may not write it; the API may.
    pub read_only: bool,
    /// When the smith's value was written; null while it holds its default.
    pub updated_at: Option<DateTime<Utc>>,
}

impl From<CoreBlock> for Block {
    fn from(block: CoreBlock) -> Self {
        Self {
            label: block.label,
            value: block.value,
            limit: block.limit,
            description: block.description,
            read_only: block.read_only,
            updated_at: block.updated_at,
        }
    }
}

list_type!(BlockList, Block);

/// The path of one block.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct BlockPath {
    /// The smith's id (smt_…).
    #[param(value_type = schemas::SmithId)]
    pub sid: SmithId,
    /// The block's label: a-z, 0-9 and _, starting with a letter. A label nothing declares
    /// makes a smith-level block (8 at most).
    #[param(min_length = 1, max_length = 64)]
    pub label: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateBlockRequest {
    /// The block's new value, within its `limit` (400 `block_limit_exceeded` beyond it).
    #[schema(max_length = 20000)]
    pub value: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Memory {
    #[schema(value_type = schemas::MemoryId)]
    pub id: MemoryId,
    pub text: String,
    pub metadata: Option<BTreeMap<String, String>>,
    #[schema(value_type = schemas::MemorySource)]
    pub source: MemorySource,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl TryFrom<memory::Model> for Memory {
    type Error = Error;

    fn try_from(model: memory::Model) -> Result<Self, Error> {
        Ok(Self {
            metadata: decode_json_opt(&model.id, "metadata", model.metadata.as_ref())?,
            id: model.id,
            text: model.text,
            source: model.source,
            created_at: model.created_at,
            updated_at: model.updated_at,
        })
    }
}

list_type!(MemoryList, Memory);

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateMemoryRequest {
    /// The fact, in a sentence.
    #[schema(min_length = 1, max_length = 2000)]
    pub text: String,
    #[schema(schema_with = crate::api::metadata_schema)]
    pub metadata: Option<BTreeMap<String, String>>,
}

/// Fields left out stay as they are; `metadata: null` clears it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateMemoryRequest {
    #[schema(min_length = 1, max_length = 2000)]
    pub text: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(schema_with = crate::api::metadata_schema)]
    pub metadata: Option<Option<BTreeMap<String, String>>>,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListMemoriesParams {
    /// Only memories written this way.
    #[param(value_type = Option<schemas::MemorySource>)]
    pub source: Option<MemorySource>,
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u64>,
    pub cursor: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchMemoriesRequest {
    /// Plain words; any of them may match (stemmed, stop words ignored). Never a syntax error.
    #[schema(max_length = 1000)]
    pub query: String,
    /// Results at most; 10 when absent.
    #[schema(minimum = 1, maximum = 50)]
    pub limit: Option<u64>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ScoredMemory {
    #[serde(flatten)]
    pub memory: Memory,
    /// Orders the results of this answer, higher first; not comparable across answers.
    pub score: f64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MemorySearchResults {
    /// Best first.
    pub data: Vec<ScoredMemory>,
}

impl TryFrom<Scored> for ScoredMemory {
    type Error = Error;

    fn try_from(scored: Scored) -> Result<Self, Error> {
        Ok(Self { memory: scored.memory.try_into()?, score: scored.score })
    }
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_blocks))
        .routes(routes!(update_block))
        .routes(routes!(list_memories, create_memory))
        .routes(routes!(search_memories))
        .routes(routes!(get_memory, update_memory, delete_memory))
        .routes(routes!(get_embeddings, put_embeddings, delete_embeddings))
}

#[utoipa::path(get, path = "/v1/smiths/{sid}/blocks", tag = "memory", params(("sid" = schemas::SmithId, Path, description = SID)),
    responses((status = 200, description = "The smith's blocks: `human`, `persona`, its agent's declared ones, then its own by label. One page.", body = BlockList)))]
async fn list_blocks(
    State(state): State<AppState>,
    caller: Authorized<scopes::MemoryRead>,
    Path(sid): Path<SmithId>,
) -> ApiResult<axum::Json<BlockList>> {
    let blocks = state.engine.memory().blocks(&caller, &sid).await?;
    Ok(axum::Json(BlockList {
        data: blocks.into_iter().map(Block::from).collect(),
        next_cursor: None,
        has_more: false,
    }))
}

#[utoipa::path(patch, path = "/v1/smiths/{sid}/blocks/{label}", tag = "memory", params(BlockPath),
    request_body = UpdateBlockRequest,
    responses((status = 200, description = "The block with its new value.", body = Block)))]
async fn update_block(
    State(state): State<AppState>,
    caller: Authorized<scopes::MemoryWrite>,
    Path(BlockPath { sid, label }): Path<BlockPath>,
    Json(request): Json<UpdateBlockRequest>,
) -> ApiResult<axum::Json<Block>> {
    Ok(axum::Json(state.engine.memory().write_block(&caller, &sid, &label, request.value).await?.into()))
}

#[utoipa::path(get, path = "/v1/smiths/{sid}/memories", tag = "memory", params(("sid" = schemas::SmithId, Path, description = SID), ListMemoriesParams),
    responses((status = 200, description = "The smith's memories, newest first.", body = MemoryList)))]
async fn list_memories(
    State(state): State<AppState>,
    caller: Authorized<scopes::MemoryRead>,
    Path(sid): Path<SmithId>,
    Query(params): Query<ListMemoriesParams>,
) -> ApiResult<axum::Json<MemoryList>> {
    let page = PageParams { limit: params.limit, cursor: params.cursor }.validate()?;
    let page = state.engine.memory().list(&caller, &sid, params.source, &page).await?;
    let page = page.try_map(Memory::try_from)?;
    Ok(axum::Json(page.into()))
}

#[utoipa::path(post, path = "/v1/smiths/{sid}/memories", tag = "memory", params(("sid" = schemas::SmithId, Path, description = SID)),
    request_body = CreateMemoryRequest,
    responses((status = 201, description = "The memory was stored, with source `api`.", body = Memory)))]
async fn create_memory(
    State(state): State<AppState>,
    caller: Authorized<scopes::MemoryWrite>,
    Path(sid): Path<SmithId>,
    Json(request): Json<CreateMemoryRequest>,
) -> ApiResult<(StatusCode, axum::Json<Memory>)> {
    let new = NewMemory { text: request.text, metadata: request.metadata };
    let stored = state.engine.memory().add(&caller, &sid, new).await?;
    Ok((StatusCode::CREATED, axum::Json(stored.try_into()?)))
}

#[utoipa::path(post, path = "/v1/smiths/{sid}/memories/search", tag = "memory", params(("sid" = schemas::SmithId, Path, description = SID)),
    request_body = SearchMemoriesRequest,
    responses((status = 200, description = "The smith's memories that match, best first.", body = MemorySearchResults)))]
async fn search_memories(
    State(state): State<AppState>,
    caller: Authorized<scopes::MemoryRead>,
    Path(sid): Path<SmithId>,
    Json(request): Json<SearchMemoriesRequest>,
) -> ApiResult<axum::Json<MemorySearchResults>> {
    let found = state.engine.memory().search(&caller, &sid, &request.query, request.limit).await?;
    Ok(axum::Json(MemorySearchResults {
        data: found.into_iter().map(ScoredMemory::try_from).collect::<Result<_, _>>()?,
    }))
}

#[utoipa::path(get, path = "/v1/smiths/{sid}/memories/{mid}", tag = "memory",
    params(("sid" = schemas::SmithId, Path, description = SID), ("mid" = schemas::MemoryId, Path, description = MID)),
    responses((status = 200, description = "The memory.", body = Memory)))]
async fn get_memory(
    State(state): State<AppState>,
    caller: Authorized<scopes::MemoryRead>,
    Path((sid, mid)): Path<(SmithId, MemoryId)>,
) -> ApiResult<axum::Json<Memory>> {
    Ok(axum::Json(state.engine.memory().get(&caller, &sid, &mid).await?.try_into()?))
}

#[utoipa::path(patch, path = "/v1/smiths/{sid}/memories/{mid}", tag = "memory",
    params(("sid" = schemas::SmithId, Path, description = SID), ("mid" = schemas::MemoryId, Path, description = MID)),
    request_body = UpdateMemoryRequest,
    responses((status = 200, description = "The corrected memory. A smith token may correct its own smith's.", body = Memory)))]
async fn update_memory(
    State(state): State<AppState>,
    caller: Authorized<scopes::MemoryWrite>,
    Path((sid, mid)): Path<(SmithId, MemoryId)>,
    Json(request): Json<UpdateMemoryRequest>,
) -> ApiResult<axum::Json<Memory>> {
    let patch = MemoryPatch { text: request.text, metadata: request.metadata };
    Ok(axum::Json(state.engine.memory().update(&caller, &sid, &mid, patch).await?.try_into()?))
}

#[utoipa::path(delete, path = "/v1/smiths/{sid}/memories/{mid}", tag = "memory",
    params(("sid" = schemas::SmithId, Path, description = SID), ("mid" = schemas::MemoryId, Path, description = MID)),
    responses((status = 200, description = "The memory is erased for good. A smith token may erase its own smith's.", body = Deleted)))]
async fn delete_memory(
    State(state): State<AppState>,
    caller: Authorized<scopes::MemoryWrite>,
    Path((sid, mid)): Path<(SmithId, MemoryId)>,
) -> ApiResult<axum::Json<Deleted>> {
    state.engine.memory().delete(&caller, &sid, &mid).await?;
    Ok(axum::Json(Deleted::new(mid)))
}

/// A project's embeddings endpoint; the key is never returned.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EmbeddingSettings {
    pub base_url: String,
    pub model: String,
    pub dimensions: Option<i32>,
    /// The key's last four characters.
    pub preview: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<embedding_setting::Model> for EmbeddingSettings {
    fn from(model: embedding_setting::Model) -> Self {
        Self {
            base_url: model.base_url,
            model: model.model,
            dimensions: model.dimensions,
            preview: model.preview,
            created_at: model.created_at,
            updated_at: model.updated_at,
        }
    }
}

/// No `Debug`: it carries a secret.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutEmbeddingSettingsRequest {
    /// An OpenAI-compatible API root (`{base_url}/embeddings` is called); OpenAI's when absent.
    /// It must reach a public address unless the operator allows it (INGRAM_EGRESS_ALLOW).
    #[schema(max_length = 2048)]
    pub base_url: Option<String>,
    #[schema(min_length = 1, max_length = 4096)]
    pub api_key: String,
    /// The embedding model, e.g. `text-embedding-3-small`.
    #[schema(min_length = 1, max_length = 256)]
    pub model: String,
    /// Asks the model for vectors of this size (models that support it).
    #[schema(minimum = 1, maximum = 4096)]
    pub dimensions: Option<i32>,
}

#[utoipa::path(get, path = "/v1/tenant/embeddings", tag = "memory",
    responses((status = 200, description = "The project's embeddings endpoint.", body = EmbeddingSettings)))]
async fn get_embeddings(
    State(state): State<AppState>,
    caller: Authorized<scopes::ModelKeysRead>,
) -> ApiResult<axum::Json<EmbeddingSettings>> {
    let settings = state.engine.memory().embedding_settings(&caller.project_id).await?.ok_or_else(not_configured)?;
    Ok(axum::Json(settings.into()))
}

#[utoipa::path(put, path = "/v1/tenant/embeddings", tag = "memory", request_body = PutEmbeddingSettingsRequest,
    responses((status = 200, description = "Semantic memory search is on for the project, with this endpoint.", body = EmbeddingSettings)))]
async fn put_embeddings(
    State(state): State<AppState>,
    caller: Authorized<scopes::ModelKeysWrite>,
    Json(request): Json<PutEmbeddingSettingsRequest>,
) -> ApiResult<axum::Json<EmbeddingSettings>> {
    let settings = CoreEmbeddingSettings {
        base_url: request.base_url,
        api_key: request.api_key,
        model: request.model,
        dimensions: request.dimensions,
    };
    Ok(axum::Json(state.engine.memory().put_embedding_settings(&caller.project_id, settings).await?.into()))
}

#[utoipa::path(delete, path = "/v1/tenant/embeddings", tag = "memory",
    responses((status = 200, description = "Semantic memory search is off; stored vectors are kept but unused.", body = Deleted)))]
async fn delete_embeddings(
    State(state): State<AppState>,
    caller: Authorized<scopes::ModelKeysWrite>,
) -> ApiResult<axum::Json<Deleted>> {
    if !state.engine.memory().delete_embedding_settings(&caller.project_id).await? {
        return Err(not_configured().into());
    }
    Ok(axum::Json(Deleted::new("embeddings")))
}

fn not_configured() -> Error {
    Error::new(
        ErrorKind::NotFound,
        "embeddings_not_configured",
        "No embeddings endpoint is configured for this project.",
    )
}
