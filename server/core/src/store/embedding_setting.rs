use sea_orm::entity::prelude::*;

use crate::ids::ProjectId;

/// A project's embeddings endpoint (OpenAI-compatible `/v1/embeddings`), which turns on
/// semantic memory search for it.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "embedding_settings")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub project_id: ProjectId,
    pub base_url: String,
    pub model: String,
    pub dimensions: Option<i32>,
    /// The API key, sealed with the master key (see `crypto`).
    #[sea_orm(column_type = "Text")]
    pub ciphertext: String,
    pub preview: String,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
