//! `/v1/tenant/model_keys` (BYOK provider keys, never returned) and `/v1/tenant/models`.

use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::AppState;
use crate::api::Deleted;
use crate::api::schemas;
use crate::http::ApiResult;
use crate::http::auth::{Authorized, scopes};
use crate::http::extract::{Json, Path};
use ingram_core::domain::model_keys::{self, KeySource};
use ingram_core::error::Error;
use ingram_core::providers::routing::{ProviderKind, offline_model_name};
use ingram_core::store::model_key;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ModelKey {
    #[schema(value_type = schemas::ProviderKind)]
    pub provider: ProviderKind,
    /// The key's last four characters; the key itself is never returned.
    pub preview: String,
    /// Where runs reach the provider; null means its public API.
    pub base_url: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<model_key::Model> for ModelKey {
    fn from(model: model_key::Model) -> Self {
        Self {
            provider: model.provider,
            preview: model.preview,
            base_url: model.base_url,
            created_at: model.created_at,
            updated_at: model.updated_at,
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ModelKeyList {
    pub data: Vec<ModelKey>,
}

/// No `Debug`: it carries a secret.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutModelKeyRequest {
    #[schema(min_length = 1, max_length = 4096)]
    pub api_key: String,
    /// Any OpenAI-compatible server (vLLM, llama.cpp, Ollama) for `openai`, or a proxy. It must
    /// reach a public address unless the operator allows it (INGRAM_EGRESS_ALLOW).
    #[schema(max_length = 2048)]
    pub base_url: Option<String>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ModelKeySource {
    /// Needs no key.
    Builtin,
    /// The project's own key (BYOK).
    Project,
    /// The server's hosted fallback key.
    Server,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ModelInfo {
    /// The name to put in `model`.
    pub id: String,
    #[schema(value_type = schemas::ProviderKind)]
    pub provider: ProviderKind,
    pub key_source: ModelKeySource,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ModelList {
    pub data: Vec<ModelInfo>,
}

/// Well-known models per provider. Any other name of a provider with a key works too.
const CATALOGUE: &[(ProviderKind, &[&str])] = &[
    (ProviderKind::Openai, &["gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini", "o3-mini"]),
    (ProviderKind::Anthropic, &["claude-sonnet-4-6", "claude-opus-4-1", "claude-haiku-4-5"]),
    (ProviderKind::Gemini, &["gemini-2.5-pro", "gemini-2.5-flash"]),
];

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_model_keys))
        .routes(routes!(put_model_key, delete_model_key))
        .routes(routes!(list_models))
}

fn provider_with_key(provider: &str) -> ingram_core::Result<ProviderKind> {
    ProviderKind::parse(provider)
        .filter(|kind| kind.needs_key())
        .ok_or_else(|| Error::invalid_param("provider", "provider must be one of openai, anthropic, gemini."))
}

#[utoipa::path(get, path = "/v1/tenant/model_keys", tag = "models",
    responses((status = 200, description = "The project's provider keys, masked.", body = ModelKeyList)))]
async fn list_model_keys(
    State(state): State<AppState>,
    caller: Authorized<scopes::ModelKeysRead>,
) -> ApiResult<axum::Json<ModelKeyList>> {
    let keys = model_keys::list(&state.db, &caller.project_id).await?;
    Ok(axum::Json(ModelKeyList { data: keys.into_iter().map(ModelKey::from).collect() }))
}

const BASE_URL_MAX: usize = 2048;

#[utoipa::path(put, path = "/v1/tenant/model_keys/{provider}", tag = "models",
    params(("provider" = String, Path, description = "`openai`, `anthropic` or `gemini`.")), request_body = PutModelKeyRequest,
    responses((status = 200, description = "The key, stored encrypted; only its preview comes back.", body = ModelKey)))]
async fn put_model_key(
    State(state): State<AppState>,
    caller: Authorized<scopes::ModelKeysWrite>,
    Path(provider): Path<String>,
    Json(request): Json<PutModelKeyRequest>,
) -> ApiResult<axum::Json<ModelKey>> {
    let provider = provider_with_key(&provider)?;
    if request.api_key.trim().is_empty() || request.api_key.len() > 4096 {
        return Err(Error::invalid_param("api_key", "api_key must be 1 to 4096 characters.").into());
    }
    if let Some(base_url) = &request.base_url {
        if base_url.len() > BASE_URL_MAX || !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
            return Err(Error::invalid_param(
                "base_url",
                format!("base_url must be an http(s) URL of at most {BASE_URL_MAX} characters."),
            )
            .into());
        }
        // Checked again on every request, when the host is resolved.
        ingram_core::egress::check_saved_url(&state.settings.egress, base_url).map_err(|denied| {
            Error::bad_request("egress_denied", format!("base_url is not allowed: {denied}.")).with_param("base_url")
        })?;
    }
    let stored = model_keys::put(
        &state.db,
        &state.caches,
        &state.settings,
        &caller.project_id,
        provider,
        request.api_key.trim(),
        request.base_url,
    )
    .await?;
    Ok(axum::Json(stored.into()))
}

#[utoipa::path(delete, path = "/v1/tenant/model_keys/{provider}", tag = "models",
    params(("provider" = String, Path, description = "`openai`, `anthropic` or `gemini`.")),
    responses((status = 200, description = "The key was deleted; runs fall back to the server's key, if any.", body = Deleted)))]
async fn delete_model_key(
    State(state): State<AppState>,
    caller: Authorized<scopes::ModelKeysWrite>,
    Path(provider): Path<String>,
) -> ApiResult<axum::Json<Deleted>> {
    let kind = provider_with_key(&provider)?;
    model_keys::delete(&state.db, &state.caches, &caller.project_id, kind).await?;
    Ok(axum::Json(Deleted::new(provider)))
}

#[utoipa::path(get, path = "/v1/tenant/models", tag = "models",
    responses((status = 200, description = "Models this project can run, and through which key.", body = ModelList)))]
async fn list_models(
    State(state): State<AppState>,
    caller: Authorized<scopes::ModelKeysRead>,
) -> ApiResult<axum::Json<ModelList>> {
    let mut data = vec![ModelInfo {
        id: offline_model_name(),
        provider: ProviderKind::Ingram,
        key_source: ModelKeySource::Builtin,
    }];
    for (provider, models) in CATALOGUE {
        let Some((_, source)) = model_keys::endpoint(&state.db, &state.settings, &caller.project_id, *provider).await?
        else {
            continue;
        };
        let key_source = match source {
            KeySource::Project => ModelKeySource::Project,
            KeySource::Server => ModelKeySource::Server,
        };
        data.extend(models.iter().map(|model| ModelInfo { id: (*model).to_owned(), provider: *provider, key_source }));
    }
    Ok(axum::Json(ModelList { data }))
}
