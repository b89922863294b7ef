use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

use crate::ids::{MemoryId, ProjectId, SmithId};

/// Who wrote a memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, EnumIter, DeriveActiveEnum)]
#[serde(rename_all = "snake_case")]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)", rename_all = "snake_case")]
pub enum MemorySource {
    /// Through the API.
    Api,
    /// Extracted from a run by auto_memory.
    Auto,
    /// By the smith itself, with a memory tool.
    Tool,
}

/// One fact a smith keeps about its person. The word-search columns (`search_rowid` on
/// SQLite, `search_tsv` on PostgreSQL) are the database's own and not mapped here.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "memories")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: MemoryId,
    pub project_id: ProjectId,
    pub smith_id: SmithId,
    #[sea_orm(column_type = "Text")]
    pub text: String,
    pub metadata: Option<Json>,
    pub source: MemorySource,
    /// The text's words, lowercased, hashed: two memories that say the same thing share it.
    pub fingerprint: String,
    /// Little-endian f32s, from `embedding_model`; NULL until embedded.
    pub embedding: Option<Vec<u8>>,
    pub embedding_model: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
