//! Blocks: labelled text always in the smith's context, each within a character `limit`.
//! Every smith has `human` and `persona`; its agent may declare more (or redeclare those two);
//! the project may write further smith-level blocks, up to [`SMITH_BLOCKS_MAX`].

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, TransactionTrait};

use super::declarations::{BLOCK_LIMIT_DEFAULT, BlockDeclaration, chars, declared_by, validate_label};
use super::{Memory, bump, require_tenant};
use crate::auth::Caller;
use crate::domain::smiths;
use crate::error::{Error, Result};
use crate::ids::{ProjectId, SmithId};
use crate::store::{memory_block, now, smith};

/// What a write does to a block's value.
pub enum BlockWrite {
    Replace(String),
    /// Adds a line after the current value (its default while unwritten).
    Append(String),
}

/// Blocks a smith may have beyond the standard and declared ones.
pub const SMITH_BLOCKS_MAX: usize = 8;

/// A block as a smith has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    pub label: String,
    pub value: String,
    pub limit: u32,
    pub description: Option<String>,
    pub read_only: bool,
    /// When the smith's value was written; None while it holds its default.
    pub updated_at: Option<DateTime<Utc>>,
}

impl Block {
    fn declared(declaration: &BlockDeclaration) -> Self {
        Self {
            label: declaration.label.clone(),
            value: declaration.value.clone().unwrap_or_default(),
            limit: declaration.limit.unwrap_or(BLOCK_LIMIT_DEFAULT),
            description: declaration.description.clone(),
            read_only: declaration.read_only.unwrap_or(false),
            updated_at: None,
        }
    }
}

/// The smith's blocks: its declared ones with what it wrote over their defaults, then its
/// smith-level ones by label.
pub fn resolve(declared: &[BlockDeclaration], stored: Vec<memory_block::Model>) -> Vec<Block> {
    let mut stored: HashMap<String, memory_block::Model> =
        stored.into_iter().map(|row| (row.label.clone(), row)).collect();
    let mut blocks: Vec<Block> = declared
        .iter()
        .map(|declaration| {
            let mut block = Block::declared(declaration);
            if let Some(row) = stored.remove(&declaration.label) {
                block.value = row.value;
                block.updated_at = Some(row.updated_at);
            }
            block
        })
        .collect();
    let mut own: Vec<memory_block::Model> = stored.into_values().collect();
    own.sort_by(|a, b| a.label.cmp(&b.label));
    blocks.extend(own.into_iter().map(|row| Block {
        label: row.label,
        value: row.value,
        limit: BLOCK_LIMIT_DEFAULT,
        description: None,
        read_only: false,
        updated_at: Some(row.updated_at),
    }));
    blocks
}

/// The values written for a smith.
pub(super) async fn stored(db: &impl sea_orm::ConnectionTrait, smith_id: &SmithId) -> Result<Vec<memory_block::Model>> {
    Ok(memory_block::Entity::find().filter(memory_block::Column::SmithId.eq(smith_id)).all(db).await?)
}

impl Memory {
    /// The smith's blocks, if the caller sees the smith.
    pub async fn blocks(&self, caller: &Caller, smith_id: &SmithId) -> Result<Vec<Block>> {
        let smith = smiths::get_with_agent(&self.db, &self.caches, caller, smith_id).await?;
        let declared = declared_by(&smith.agent)?;
        let stored = if smith.smith.block_count > 0 { stored(&self.db, smith_id).await? } else { Vec::new() };
        Ok(resolve(&declared, stored))
    }

    /// Writes a block's value for the smith; a label nothing declares makes a smith-level block.
    pub async fn write_block(&self, caller: &Caller, smith_id: &SmithId, label: &str, value: String) -> Result<Block> {
        require_tenant(caller, "write memory blocks")?;
        validate_label(label)?;
        let smith = smiths::get_with_agent(&self.db, &self.caches, caller, smith_id).await?;
        let declared = declared_by(&smith.agent)?;
        self.store_block(&caller.project_id, smith_id, &declared, label, BlockWrite::Replace(value)).await
    }

    /// Writes a block as the smith itself (its memory tools): a read-only block is refused.
    pub(crate) async fn write_block_as_smith(
        &self,
        project_id: &ProjectId,
        smith_id: &SmithId,
        label: &str,
        write: BlockWrite,
    ) -> Result<Block> {
        validate_label(label)?;
        let (_, agent) = smiths::with_agent_in_project(&self.db, project_id, smith_id).await?;
        let declared = declared_by(&agent)?;
        if declared.iter().any(|declaration| declaration.label == label && declaration.read_only == Some(true)) {
            return Err(Error::forbidden(
                "block_read_only",
                format!("The block '{label}' is read-only for the smith."),
            ));
        }
        self.store_block(project_id, smith_id, &declared, label, write).await
    }

    async fn store_block(
        &self,
        project_id: &ProjectId,
        smith_id: &SmithId,
        declared: &[BlockDeclaration],
        label: &str,
        write: BlockWrite,
    ) -> Result<Block> {
        let declaration = declared.iter().find(|declaration| declaration.label == label);
        let limit = declaration.and_then(|declaration| declaration.limit).unwrap_or(BLOCK_LIMIT_DEFAULT);
        let txn = self.db.begin().await?;
        // The smith's row is locked first, so concurrent writers count blocks (and append to
        // them) one at a time.
        if !bump(&txn, smith_id, smith::Column::BlockCount, 0, None).await? {
            return Err(Error::not_found("smith_not_found", "smith", smith_id));
        }
        let rows = stored(&txn, smith_id).await?;
        let value = match write {
            BlockWrite::Replace(value) => value,
            BlockWrite::Append(text) => {
                let current = rows
                    .iter()
                    .find(|row| row.label == label)
                    .map(|row| row.value.clone())
                    .or_else(|| declaration.and_then(|declaration| declaration.value.clone()))
                    .unwrap_or_default();
                if current.is_empty() { text } else { format!("{current}\n{text}") }
            }
        };
        if chars(&value) > limit as usize {
            return Err(Error::bad_request(
                "block_limit_exceeded",
                format!("The block '{label}' holds at most {limit} characters; the value has {}.", chars(&value)),
            )
            .with_param("value"));
        }
        let is_new = rows.iter().all(|row| row.label != label);
        if is_new && declaration.is_none() {
            let smith_level = rows.iter().filter(|row| declared.iter().all(|d| d.label != row.label)).count();
            if smith_level >= SMITH_BLOCKS_MAX {
                return Err(Error::bad_request(
                    "memory_blocks_limit",
                    format!("A smith has at most {SMITH_BLOCKS_MAX} blocks of its own beyond its agent's."),
                )
                .with_param("label"));
            }
        }
        let updated_at = now();
        memory_block::Entity::insert(memory_block::ActiveModel {
            smith_id: Set(smith_id.clone()),
            label: Set(label.to_owned()),
            project_id: Set(project_id.clone()),
            value: Set(value),
            updated_at: Set(updated_at),
        })
        .on_conflict(
            OnConflict::columns([memory_block::Column::SmithId, memory_block::Column::Label])
                .update_columns([memory_block::Column::Value, memory_block::Column::UpdatedAt])
                .to_owned(),
        )
        .exec_without_returning(&txn)
        .await?;
        if is_new {
            bump(&txn, smith_id, smith::Column::BlockCount, 1, None).await?;
        }
        txn.commit().await?;
        if is_new {
            self.counts_changed(project_id, smith_id).await;
        }
        let rows = stored(&self.db, smith_id).await?;
        resolve(declared, rows)
            .into_iter()
            .find(|block| block.label == label)
            .ok_or_else(|| Error::internal("A written block vanished."))
    }
}
