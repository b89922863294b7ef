use sea_orm::entity::prelude::*;

use crate::ids::ProjectId;
use crate::providers::routing::ProviderKind;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "model_keys")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub project_id: ProjectId,
    #[sea_orm(primary_key, auto_increment = false)]
    pub provider: ProviderKind,
    /// The API key, sealed with the master key (see `crypto`).
    #[sea_orm(column_type = "Text")]
    pub ciphertext: String,
    pub base_url: Option<String>,
    /// The key's last four characters, to recognise it by.
    pub preview: String,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
