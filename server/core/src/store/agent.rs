use sea_orm::entity::prelude::*;

use crate::ids::{AgentId, ProjectId};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "agents")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: AgentId,
    pub project_id: ProjectId,
    pub name: String,
    #[sea_orm(column_type = "Text", nullable)]
    pub instructions: Option<String>,
    pub model: String,
    /// A JSON array of enabled tool names.
    pub tools: Json,
    pub auto_memory: bool,
    /// A JSON array of model names runs may ask for; NULL: no bound.
    pub allowed_models: Option<Json>,
    /// A JSON array of the memory blocks the agent declares (`BlockDeclaration`); NULL: none.
    pub memory_blocks: Option<Json>,
    /// A JSON object of tool references or patterns to `always` or `never`; NULL: none.
    pub tool_approvals: Option<Json>,
    pub is_default: bool,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub deleted_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
