use sea_orm::entity::prelude::*;

use crate::ids::{AgentId, SmithId};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "smith_revisions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub smith_id: SmithId,
    #[sea_orm(primary_key, auto_increment = false)]
    pub number: i32,
    pub agent_id: AgentId,
    pub overrides: Json,
    pub restored_from: Option<i32>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
