use sea_orm::entity::prelude::*;

use crate::ids::RunId;
use crate::types::EventKind;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "run_events")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub run_id: RunId,
    #[sea_orm(primary_key, auto_increment = false)]
    pub seq: i32,
    /// The event type, e.g. `message.delta`.
    pub kind: EventKind,
    /// The frame's data exactly as streamed, `{"v":1,"run_id":…,…}`, so a replay is
    /// byte-identical to the live stream.
    #[sea_orm(column_type = "Text")]
    pub data: String,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
