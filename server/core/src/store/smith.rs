use sea_orm::entity::prelude::*;

use crate::ids::{AgentId, ProjectId, SmithId};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "smiths")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: SmithId,
    pub project_id: ProjectId,
    pub agent_id: AgentId,
    pub external_id: String,
    /// Equal to `external_id` while live, NULL once deleted (see the unique index).
    pub live_external_id: Option<String>,
    pub customer_id: Option<String>,
    pub display_name: Option<String>,
    pub metadata: Option<Json>,
    /// The smith's config overrides (`SmithConfig` as JSON).
    pub overrides: Json,
    /// The current config revision number.
    pub revision: i32,
    /// How many memories the smith keeps, and how many blocks it has written: a run of a
    /// smith with neither (and no declared default) skips memory altogether.
    pub memory_count: i32,
    pub block_count: i32,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub deleted_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(belongs_to = "super::agent::Entity", from = "Column::AgentId", to = "super::agent::Column::Id")]
    Agent,
}

impl Related<super::agent::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Agent.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
