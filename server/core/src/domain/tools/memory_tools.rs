//! `memory/<tool>`: the smith's own memory, for the smith itself. Every call acts on the run's
//! smith only; a block its agent marks read-only (`persona` by default) cannot be written.

use serde_json::{Value, json};

use super::catalog;
use crate::domain::memory::Memory;
use crate::domain::memory::blocks::BlockWrite;
use crate::domain::memory::embeddings::EMBED_DEADLINE;
use crate::domain::memory::memories::{Inserted, NewMemory};
use crate::ids::{ProjectId, SmithId};
use crate::store::memory::MemorySource;

/// Runs memory tool `name` for the run's smith; an error text for the model when it fails.
pub async fn call(
    memory: &Memory,
    project_id: &ProjectId,
    smith_id: &SmithId,
    name: &str,
    arguments: &Value,
) -> Result<String, String> {
    let text = |field: &str| -> Result<String, String> {
        arguments
            .get(field)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| format!("'{field}' (a string) is required"))
    };
    let failed = |err: crate::error::Error| err.message;
    match name {
        "search" => {
            let limit =
                arguments.get("limit").and_then(Value::as_u64).unwrap_or(5).clamp(1, catalog::MEMORY_SEARCH_LIMIT_MAX);
            let query = text("query")?;
            crate::domain::limits::text("query", Some(&query), crate::domain::memory::QUERY_MAX).map_err(failed)?;
            let found =
                memory.search_smith(project_id, smith_id, &query, limit, EMBED_DEADLINE).await.map_err(failed)?;
            Ok(json!(found.into_iter().map(|scored| scored.memory.text).collect::<Vec<_>>()).to_string())
        }
        "add" => {
            let new = NewMemory { text: text("text")?, metadata: None };
            memory.validate_new(&new).map_err(failed)?;
            match memory.insert(project_id, smith_id, new, MemorySource::Tool).await.map_err(failed)? {
                Inserted::Stored(stored) => Ok(format!("Remembered ({}).", stored.id)),
                Inserted::Full => Err("your memory is full; nothing was stored".into()),
                Inserted::Known => Ok("Already remembered.".into()),
                Inserted::SmithGone => Err("this smith no longer exists".into()),
            }
        }
        "update_block" | "append_block" => {
            let write = match name {
                "update_block" => BlockWrite::Replace(text("value")?),
                _ => BlockWrite::Append(text("text")?),
            };
            let block =
                memory.write_block_as_smith(project_id, smith_id, &text("label")?, write).await.map_err(failed)?;
            Ok(format!(
                "The block {} now holds {}/{} characters.",
                block.label,
                block.value.chars().count(),
                block.limit
            ))
        }
        other => Err(format!("no memory tool is named {other}")),
    }
}
