//! Memories: facts a smith keeps about its person, written through the API, by auto_memory
//! after a run, or (later) by the smith's own tools.

use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, IntoActiveModel, QueryFilter, QuerySelect,
    TransactionTrait,
};

use super::embeddings::EMBED_DEADLINE;
use super::{MEMORIES_PER_SMITH_MAX, MEMORY_TEXT_MAX, Memory, bump, require_tenant};
use crate::auth::Caller;
use crate::domain::{limits, smiths};
use crate::error::{Error, Result};
use crate::ids::{MemoryId, ProjectId, SmithId};
use crate::store::memory::{self, MemorySource};
use crate::store::page::{Page, PageRequest};
use crate::store::{now, smith};
use crate::types::Metadata;

/// What became of a memory to store.
pub enum Inserted {
    Stored(Box<memory::Model>),
    /// The smith keeps as many memories as it may.
    Full,
    /// An `auto` fact the smith already keeps.
    Known,
    /// The smith was deleted meanwhile.
    SmithGone,
}

pub struct NewMemory {
    pub text: String,
    pub metadata: Option<Metadata>,
}

/// Absent fields stay; `Some(None)` clears the metadata.
#[derive(Default)]
pub struct MemoryPatch {
    pub text: Option<String>,
    pub metadata: Option<Option<Metadata>>,
}

/// The text's words, lowercased: two memories with the same words say the same thing.
pub fn fingerprint(text: &str) -> String {
    let words: Vec<String> =
        text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_lowercase).collect();
    crate::digest::sha256_hex(&[words.join(" ").as_bytes()])
}

fn validate_text(text: &str) -> Result<()> {
    if text.trim().is_empty() {
        return Err(Error::invalid_param("text", "text must not be empty."));
    }
    limits::text("text", Some(text), MEMORY_TEXT_MAX)
}

fn memory_not_found(memory_id: &MemoryId) -> Error {
    Error::not_found("memory_not_found", "memory", memory_id)
}

fn full() -> Error {
    Error::bad_request(
        "memory_limit_reached",
        format!("A smith keeps at most {MEMORIES_PER_SMITH_MAX} memories; delete some first."),
    )
}

impl Memory {
    /// Adds a fact to the smith's memory through the API.
    pub async fn add(&self, caller: &Caller, smith_id: &SmithId, new: NewMemory) -> Result<memory::Model> {
        require_tenant(caller, "add memories")?;
        self.validate_new(&new)?;
        smiths::get_with_agent(&self.db, &self.caches, caller, smith_id).await?;
        match self.insert(&caller.project_id, smith_id, new, MemorySource::Api).await? {
            Inserted::Stored(stored) => Ok(*stored),
            Inserted::Full => Err(full()),
            Inserted::Known | Inserted::SmithGone => Err(Error::not_found("smith_not_found", "smith", smith_id)),
        }
    }

    /// A new memory's text and metadata within their limits.
    pub(crate) fn validate_new(&self, new: &NewMemory) -> Result<()> {
        validate_text(&new.text)?;
        limits::metadata(new.metadata.as_ref())
    }

    /// Stores a memory of a smith found in the project. An `auto` memory whose words the smith
    /// already keeps is not stored again (checked under the smith's row lock, so two
    /// extractions at once store it once).
    pub(crate) async fn insert(
        &self,
        project_id: &ProjectId,
        smith_id: &SmithId,
        new: NewMemory,
        source: MemorySource,
    ) -> Result<Inserted> {
        let embedding = self.embed_text(project_id, &new.text, EMBED_DEADLINE).await;
        let words = fingerprint(&new.text);
        let at = now();
        let row = memory::ActiveModel {
            id: Set(MemoryId::generate()),
            project_id: Set(project_id.clone()),
            smith_id: Set(smith_id.clone()),
            fingerprint: Set(words.clone()),
            text: Set(new.text),
            metadata: Set(new.metadata.map(|metadata| serde_json::json!(metadata))),
            source: Set(source),
            embedding: Set(embedding.as_ref().map(|e| e.bytes())),
            embedding_model: Set(embedding.map(|e| e.model)),
            created_at: Set(at),
            updated_at: Set(at),
        };
        let txn = self.db.begin().await?;
        if !bump(&txn, smith_id, smith::Column::MemoryCount, 1, Some(MEMORIES_PER_SMITH_MAX)).await? {
            let live = smith::Entity::find_by_id(smith_id)
                .filter(smith::Column::DeletedAt.is_null())
                .one(&txn)
                .await?
                .is_some();
            return Ok(if live { Inserted::Full } else { Inserted::SmithGone });
        }
        if source == MemorySource::Auto {
            let known = memory::Entity::find()
                .filter(memory::Column::SmithId.eq(smith_id.as_str()))
                .filter(memory::Column::Fingerprint.eq(words))
                .one(&txn)
                .await?;
            if known.is_some() {
                return Ok(Inserted::Known);
            }
        }
        let stored = row.insert(&txn).await?;
        txn.commit().await?;
        self.counts_changed(project_id, smith_id).await;
        Ok(Inserted::Stored(Box::new(stored)))
    }

    /// The smith's memories, newest first, of one source or all.
    pub async fn list(
        &self,
        caller: &Caller,
        smith_id: &SmithId,
        source: Option<MemorySource>,
        page: &PageRequest,
    ) -> Result<Page<memory::Model>> {
        smiths::get(&self.db, caller, smith_id).await?;
        let mut query = memory::Entity::find()
            .filter(memory::Column::ProjectId.eq(caller.project_id.as_str()))
            .filter(memory::Column::SmithId.eq(smith_id.as_str()));
        if let Some(source) = source {
            query = query.filter(memory::Column::Source.eq(source));
        }
        crate::store::fetch_page(&self.db, query, memory::Column::Id, |row| row.id.as_str(), page).await
    }

    pub async fn get(&self, caller: &Caller, smith_id: &SmithId, memory_id: &MemoryId) -> Result<memory::Model> {
        smiths::get(&self.db, caller, smith_id).await?;
        self.find(&self.db, caller, smith_id, memory_id).await
    }

    async fn find(
        &self,
        db: &impl sea_orm::ConnectionTrait,
        caller: &Caller,
        smith_id: &SmithId,
        memory_id: &MemoryId,
    ) -> Result<memory::Model> {
        memory::Entity::find_by_id(memory_id)
            .filter(memory::Column::ProjectId.eq(caller.project_id.as_str()))
            .filter(memory::Column::SmithId.eq(smith_id.as_str()))
            .one(db)
            .await?
            .ok_or_else(|| memory_not_found(memory_id))
    }

    /// Corrects a memory; a smith token may correct its own smith's.
    pub async fn update(
        &self,
        caller: &Caller,
        smith_id: &SmithId,
        memory_id: &MemoryId,
        patch: MemoryPatch,
    ) -> Result<memory::Model> {
        if let Some(text) = &patch.text {
            validate_text(text)?;
        }
        limits::metadata(patch.metadata.as_ref().and_then(Option::as_ref))?;
        smiths::get(&self.db, caller, smith_id).await?;
        let current = self.find(&self.db, caller, smith_id, memory_id).await?;
        let mut row = current.into_active_model();
        if let Some(text) = patch.text {
            let embedding = self.embed_text(&caller.project_id, &text, EMBED_DEADLINE).await;
            row.fingerprint = Set(fingerprint(&text));
            row.embedding = Set(embedding.as_ref().map(|e| e.bytes()));
            row.embedding_model = Set(embedding.map(|e| e.model));
            row.text = Set(text);
        }
        if let Some(metadata) = patch.metadata {
            row.metadata = Set(metadata.map(|metadata| serde_json::json!(metadata)));
        }
        row.updated_at = Set(now());
        match row.update(&self.db).await {
            Ok(updated) => Ok(updated),
            Err(sea_orm::DbErr::RecordNotUpdated) => Err(memory_not_found(memory_id)),
            Err(err) => Err(err.into()),
        }
    }

    /// Erases a memory for good; a smith token may erase its own smith's.
    pub async fn delete(&self, caller: &Caller, smith_id: &SmithId, memory_id: &MemoryId) -> Result<()> {
        smiths::get(&self.db, caller, smith_id).await?;
        let txn = self.db.begin().await?;
        let deleted = memory::Entity::delete_many()
            .filter(memory::Column::Id.eq(memory_id.as_str()))
            .filter(memory::Column::ProjectId.eq(caller.project_id.as_str()))
            .filter(memory::Column::SmithId.eq(smith_id.as_str()))
            .exec(&txn)
            .await?;
        if deleted.rows_affected == 0 {
            return Err(memory_not_found(memory_id));
        }
        bump(&txn, smith_id, smith::Column::MemoryCount, -1, None).await?;
        txn.commit().await?;
        self.counts_changed(&caller.project_id, smith_id).await;
        Ok(())
    }
}

impl Memory {
    /// Stores facts auto_memory found, skipping those the smith already keeps (same words);
    /// how many were stored. Stops when the smith's memory is full.
    pub(crate) async fn remember(
        &self,
        project_id: &ProjectId,
        smith_id: &SmithId,
        facts: Vec<String>,
    ) -> Result<usize> {
        let fingerprints: Vec<String> = facts.iter().map(|fact| fingerprint(fact)).collect();
        let known: Vec<String> = memory::Entity::find()
            .select_only()
            .column(memory::Column::Fingerprint)
            .filter(memory::Column::SmithId.eq(smith_id.as_str()))
            .filter(memory::Column::Fingerprint.is_in(fingerprints.clone()))
            .into_tuple()
            .all(&self.db)
            .await?;
        let mut seen: std::collections::HashSet<String> = known.into_iter().collect();
        let mut stored = 0;
        for (text, fingerprint) in facts.into_iter().zip(fingerprints) {
            if !seen.insert(fingerprint) {
                continue;
            }
            let new = NewMemory { text, metadata: None };
            match self.insert(project_id, smith_id, new, MemorySource::Auto).await? {
                Inserted::Stored(_) => stored += 1,
                Inserted::Known => {}
                Inserted::Full | Inserted::SmithGone => break,
            }
        }
        Ok(stored)
    }
}
