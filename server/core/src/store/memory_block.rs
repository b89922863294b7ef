use sea_orm::entity::prelude::*;

use crate::ids::{ProjectId, SmithId};

/// A block's value as written for one smith; a block never written has no row and shows its
/// declared default.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "memory_blocks")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub smith_id: SmithId,
    #[sea_orm(primary_key, auto_increment = false)]
    pub label: String,
    pub project_id: ProjectId,
    #[sea_orm(column_type = "Text")]
    pub value: String,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
