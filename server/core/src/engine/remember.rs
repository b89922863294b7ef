//! auto_memory: after a run completes, its turn is handed to the smith's own model with the
//! extraction prompt (`domain::memory::extract`), and the facts it finds are stored with
//! source `auto`. It runs in its own task, after the run's answer is out; its model usage is
//! recorded like a run's (a `usage_records` row). A replica that stops meanwhile loses the
//! extraction, never the run.

use std::time::Duration;

use futures::StreamExt;
use sea_orm::{ActiveModelTrait, ActiveValue::Set};

use super::Engine;
use crate::domain::memory::embeddings::EMBED_DEADLINE;
use crate::domain::memory::{self, extract};
use crate::error::{Error, Result};
use crate::ids::{ProjectId, RunId, SmithId, UsageRecordId};
use crate::providers::routing::{open_stream, resolve};
use crate::providers::{Message, ModelEvent, ModelRequest, Role, ToolChoice, Usage, pricing};
use crate::store::{now, run, usage_record};
use crate::types::InputMessage;

/// An extraction's model call, at most.
const DEADLINE: Duration = Duration::from_secs(60);
const MAX_TOKENS: u32 = 512;
/// Extractions running at once per replica: each holds a model call for up to [`DEADLINE`].
pub(super) const CONCURRENT: usize = 8;
pub const PURPOSE: &str = "memory_extraction";

/// The completed turn an extraction reads.
pub(super) struct CompletedTurn {
    project_id: ProjectId,
    smith_id: SmithId,
    run_id: RunId,
    model: String,
    input: serde_json::Value,
    reply: String,
}

impl CompletedTurn {
    /// The turn of `run` when its config has auto_memory on; read without decoding the config.
    pub(super) fn of(run: &run::Model, reply: &str) -> Option<Self> {
        if run.config.get("auto_memory") != Some(&serde_json::Value::Bool(true)) {
            return None;
        }
        Some(Self {
            project_id: run.project_id.clone(),
            smith_id: run.smith_id.clone(),
            run_id: run.id.clone(),
            model: run.config.get("model")?.as_str()?.to_owned(),
            input: run.input.clone(),
            reply: reply.to_owned(),
        })
    }
}

impl Engine {
    pub(super) fn spawn_extraction(&self, turn: CompletedTurn) {
        let engine = self.clone();
        tokio::spawn(async move {
            let Ok(_permit) = engine.inner.extractions.clone().acquire_owned().await else { return };
            let run_id = turn.run_id.clone();
            match engine.extract(turn).await {
                Ok(stored) if stored > 0 => tracing::debug!(%run_id, stored, "auto_memory stored facts"),
                Ok(_) => {}
                Err(err) => tracing::warn!(%run_id, code = %err.code, "auto_memory could not extract facts"),
            }
        });
    }

    /// Extracts and stores the turn's new facts; how many were stored.
    async fn extract(&self, turn: CompletedTurn) -> Result<usize> {
        let input: Vec<InputMessage> = crate::store::decode_json(&turn.run_id, "input", &turn.input)?;
        let person = memory::person_text(&input);
        if person.trim().is_empty() {
            return Ok(0);
        }
        let memory = self.memory();
        let known: Vec<String> = memory
            .search_smith(&turn.project_id, &turn.smith_id, &person, extract::KNOWN_FACTS_SHOWN as u64, EMBED_DEADLINE)
            .await?
            .into_iter()
            .map(|scored| scored.memory.text)
            .collect();
        let model = resolve(&turn.model);
        let request = ModelRequest {
            model: model.model.clone(),
            system: Some(extract::system_prompt()),
            messages: vec![Message::text(Role::User, extract::turn_message(&known, &person, &turn.reply))],
            tools: Vec::new(),
            max_tokens: Some(MAX_TOKENS),
            temperature: None,
            tool_choice: ToolChoice::Auto,
        };
        let endpoint = self.endpoint(&turn.project_id, model.provider).await?;
        let http = self.client_for(&endpoint).map_err(|err| Error::bad_request("egress_denied", err.message))?;
        let call = async {
            let mut stream = open_stream(model.provider, &self.inner.offline, http, &endpoint, &request)
                .await
                .map_err(|err| Error::internal(err.message))?;
            let mut answer = String::new();
            while let Some(event) = stream.next().await {
                match event.map_err(|err| Error::internal(err.message))? {
                    ModelEvent::TextDelta(delta) => answer.push_str(&delta),
                    ModelEvent::ToolCall(_) => {}
                    ModelEvent::Finished { usage, .. } => return Ok((answer, usage)),
                }
            }
            Err(Error::internal("the model's stream ended early"))
        };
        let (answer, usage): (String, Usage) =
            tokio::time::timeout(DEADLINE, call).await.map_err(|_| Error::internal("the extraction timed out"))??;
        usage_record::ActiveModel {
            id: Set(UsageRecordId::generate()),
            project_id: Set(turn.project_id.clone()),
            smith_id: Set(turn.smith_id.clone()),
            run_id: Set(Some(turn.run_id.clone())),
            purpose: Set(PURPOSE.to_owned()),
            model: Set(turn.model.clone()),
            input_tokens: Set(i64::try_from(usage.input_tokens).unwrap_or(i64::MAX)),
            output_tokens: Set(i64::try_from(usage.output_tokens).unwrap_or(i64::MAX)),
            cost_usd: Set(pricing::cost_usd(&model, usage.input_tokens, usage.output_tokens)),
            created_at: Set(now()),
        }
        .insert(self.db())
        .await?;
        memory.remember(&turn.project_id, &turn.smith_id, extract::parse_facts(&answer)).await
    }
}
