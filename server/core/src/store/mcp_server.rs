use sea_orm::entity::prelude::*;

use crate::ids::ProjectId;

/// An MCP server a project registered under a name of its choosing.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "mcp_servers")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub project_id: ProjectId,
    #[sea_orm(primary_key, auto_increment = false)]
    pub name: String,
    pub url: String,
    #[sea_orm(column_type = "Text", nullable)]
    pub description: Option<String>,
    /// The catalog preset it was registered from.
    pub catalog: Option<String>,
    /// The names of the headers sent with every request, in the order given.
    pub header_names: Json,
    /// The headers (a JSON object of name to value), sealed with the master key.
    #[sea_orm(column_type = "Text", nullable)]
    pub headers_ciphertext: Option<String>,
    /// The tools it listed when last asked: a JSON array of `{name, description, input_schema}`.
    pub tools: Json,
    /// The protocol version agreed when last asked.
    pub protocol_version: Option<String>,
    /// Why it could not be reached when last asked; `None` when healthy.
    pub error_code: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub error_message: Option<String>,
    pub refreshed_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
