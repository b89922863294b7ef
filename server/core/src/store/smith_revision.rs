use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "smith_revisions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub smith_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub number: i32,
    pub agent_id: String,
    pub overrides: Json,
    pub restored_from: Option<i32>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
