//! Semantic search, opt-in: a project that configures an embeddings endpoint (any
//! OpenAI-compatible `POST {base_url}/embeddings`, with its own key and model) has its
//! memories embedded as they are written and its searches blended with similarity. Nothing is
//! implied by a chat model key. Every call goes through the egress policy, with a deadline
//! and a cap on the answer; a failure leaves a memory without a vector and a search lexical,
//! never fails the request.

use std::time::Duration;

use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, EntityTrait};
use serde::Deserialize;

use super::Memory;
use crate::cache::Invalidation;
use crate::crypto::SealContext;
use crate::error::{Error, Result};
use crate::ids::ProjectId;
use crate::providers::{endpoint_url, read_capped, send};
use crate::store::{embedding_setting, now};

pub const DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";
pub const DIMENSIONS_MAX: i32 = 4_096;
const MODEL_MAX: usize = 256;
/// An embeddings call made for a request about memory.
pub const EMBED_DEADLINE: Duration = Duration::from_secs(10);
/// An embeddings call made for a run's context, which the run's first token waits for.
pub const RUN_EMBED_DEADLINE: Duration = Duration::from_millis(1500);
/// The largest embeddings answer read: 4,096 floats as JSON text fit many times over.
const ANSWER_MAX: usize = 1024 * 1024;

/// What a project sets. No `Debug`: it carries a secret.
pub struct EmbeddingSettings {
    pub base_url: Option<String>,
    pub api_key: String,
    pub model: String,
    pub dimensions: Option<i32>,
}

/// A text's vector, and the model that made it (vectors of two models never compare).
pub struct Embedding {
    pub model: String,
    pub vector: Vec<f32>,
}

impl Embedding {
    /// Little-endian f32s, as stored.
    pub fn bytes(&self) -> Vec<u8> {
        self.vector.iter().flat_map(|value| value.to_le_bytes()).collect()
    }
}

pub fn vector_of(bytes: &[u8]) -> Vec<f32> {
    bytes.chunks_exact(4).map(|chunk| f32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]])).collect()
}

/// Cosine similarity; 0 for vectors of different lengths or no length.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    if a.len() != b.len() || a.is_empty() {
        return 0.0;
    }
    let (mut dot, mut norm_a, mut norm_b) = (0.0f32, 0.0f32, 0.0f32);
    for (x, y) in a.iter().zip(b) {
        dot += x * y;
        norm_a += x * x;
        norm_b += y * y;
    }
    if norm_a == 0.0 || norm_b == 0.0 { 0.0 } else { dot / (norm_a.sqrt() * norm_b.sqrt()) }
}

fn sealing(project_id: &ProjectId) -> SealContext<'_> {
    SealContext::EmbeddingKey { project_id: project_id.as_str() }
}

#[derive(Deserialize)]
struct EmbeddingsAnswer {
    data: Vec<EmbeddingItem>,
}

#[derive(Deserialize)]
struct EmbeddingItem {
    index: usize,
    embedding: Vec<f32>,
}

impl Memory {
    pub async fn embedding_settings(&self, project_id: &ProjectId) -> Result<Option<embedding_setting::Model>> {
        Ok(embedding_setting::Entity::find_by_id(project_id).one(&self.db).await?)
    }

    /// [`Self::embedding_settings`] through the cache: every search (and a run's context) asks.
    pub(super) async fn cached_embedding_settings(
        &self,
        project_id: &ProjectId,
    ) -> Result<Option<embedding_setting::Model>> {
        let generation = match self.caches.embeddings().get(project_id) {
            Ok(found) => return Ok(found),
            Err(generation) => generation,
        };
        let found = self.embedding_settings(project_id).await?;
        self.caches.embeddings().insert(generation, project_id.clone(), found.clone());
        Ok(found)
    }

    /// Sets (or replaces) the project's embeddings endpoint. Memories embedded with another
    /// model are not compared with the new one's vectors until written again.
    pub async fn put_embedding_settings(
        &self,
        project_id: &ProjectId,
        settings: EmbeddingSettings,
    ) -> Result<embedding_setting::Model> {
        let base_url = settings.base_url.unwrap_or_else(|| DEFAULT_BASE_URL.to_owned());
        crate::domain::limits::text("base_url", Some(&base_url), 2048)?;
        crate::egress::check_saved_url(&self.settings.egress, &base_url).map_err(|denied| {
            Error::bad_request("egress_denied", format!("base_url is not allowed: {denied}")).with_param("base_url")
        })?;
        if settings.api_key.is_empty() {
            return Err(Error::invalid_param("api_key", "api_key must not be empty."));
        }
        crate::domain::limits::text("api_key", Some(&settings.api_key), 4096)?;
        if settings.model.trim().is_empty() {
            return Err(Error::invalid_param("model", "model must not be empty."));
        }
        crate::domain::limits::text("model", Some(&settings.model), MODEL_MAX)?;
        if settings.dimensions.is_some_and(|d| !(1..=DIMENSIONS_MAX).contains(&d)) {
            return Err(Error::invalid_param("dimensions", format!("dimensions must be 1 to {DIMENSIONS_MAX}.")));
        }
        let preview = crate::crypto::preview(&settings.api_key);
        let at = now();
        embedding_setting::Entity::insert(embedding_setting::ActiveModel {
            project_id: Set(project_id.clone()),
            base_url: Set(base_url),
            model: Set(settings.model),
            dimensions: Set(settings.dimensions),
            ciphertext: Set(self.settings.master_key.seal(&settings.api_key, sealing(project_id))),
            preview: Set(preview),
            created_at: Set(at),
            updated_at: Set(at),
        })
        .on_conflict(
            OnConflict::column(embedding_setting::Column::ProjectId)
                .update_columns([
                    embedding_setting::Column::BaseUrl,
                    embedding_setting::Column::Model,
                    embedding_setting::Column::Dimensions,
                    embedding_setting::Column::Ciphertext,
                    embedding_setting::Column::Preview,
                    embedding_setting::Column::UpdatedAt,
                ])
                .to_owned(),
        )
        .exec_without_returning(&self.db)
        .await?;
        self.caches.invalidate(&self.db, Invalidation::Project(project_id.clone())).await;
        self.embedding_settings(project_id).await?.ok_or_else(|| Error::internal("Stored embedding settings vanished."))
    }

    /// Turns semantic search off for the project; false when it was not on.
    pub async fn delete_embedding_settings(&self, project_id: &ProjectId) -> Result<bool> {
        let deleted = embedding_setting::Entity::delete_by_id(project_id).exec(&self.db).await?;
        self.caches.invalidate(&self.db, Invalidation::Project(project_id.clone())).await;
        Ok(deleted.rows_affected == 1)
    }

    /// The text's vector when the project embeds; None when it does not, the text is blank,
    /// or the call failed or missed `deadline` (logged: the memory is kept without a vector
    /// and found by its words).
    pub(super) async fn embed_text(&self, project_id: &ProjectId, text: &str, deadline: Duration) -> Option<Embedding> {
        if text.trim().is_empty() {
            return None;
        }
        let settings = match self.cached_embedding_settings(project_id).await {
            Ok(Some(settings)) => settings,
            Ok(None) => return None,
            Err(err) => {
                tracing::warn!(code = %err.code, "could not read the embedding settings");
                return None;
            }
        };
        match self.embed(project_id, &settings, text, deadline).await {
            Ok(embedding) => Some(embedding),
            Err(why) => {
                tracing::warn!(%project_id, why, "embeddings call failed; falling back to word search");
                None
            }
        }
    }

    async fn embed(
        &self,
        project_id: &ProjectId,
        settings: &embedding_setting::Model,
        text: &str,
        deadline: Duration,
    ) -> std::result::Result<Embedding, String> {
        let api_key = self
            .settings
            .master_key
            .open(&settings.ciphertext, sealing(project_id))
            .ok_or("the stored key does not open with this server's master key")?;
        let client = self.egress.client_for(&settings.base_url).map_err(|denied| denied.to_string())?;
        let url = endpoint_url(&settings.base_url, ["embeddings"]).map_err(|err| err.message)?;
        let mut body = serde_json::json!({"model": settings.model, "input": [text], "encoding_format": "float"});
        if let Some(dimensions) = settings.dimensions {
            body["dimensions"] = serde_json::json!(dimensions);
        }
        let call = async {
            let response = send(client.post(url).bearer_auth(api_key).json(&body)).await.map_err(|err| err.message)?;
            let answer = read_capped(response, ANSWER_MAX).await;
            let mut answer: EmbeddingsAnswer = serde_json::from_slice(&answer)
                .map_err(|err| format!("the answer is not an embeddings list: {err}"))?;
            answer.data.sort_by_key(|item| item.index);
            let vector =
                answer.data.into_iter().next().map(|item| item.embedding).ok_or("the answer has no embedding")?;
            if vector.is_empty() || vector.len() > DIMENSIONS_MAX as usize {
                return Err(format!("the embedding has {} dimensions", vector.len()));
            }
            Ok(Embedding { model: settings.model.clone(), vector })
        };
        tokio::time::timeout(deadline, call).await.map_err(|_| "the embeddings endpoint timed out".to_owned())?
    }
}
