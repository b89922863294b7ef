use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

use crate::ids::{ApprovalId, ProjectId, RunId, SmithId};

/// Where an approval stands. Stored as its snake_case name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, EnumIter, DeriveActiveEnum)]
#[serde(rename_all = "snake_case")]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)", rename_all = "snake_case")]
pub enum ApprovalStatus {
    Pending,
    Approved,
    Rejected,
    Expired,
}

impl ApprovalStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Rejected => "rejected",
            Self::Expired => "expired",
        }
    }
}

/// One gated call a run waits on, bound to the exact call: its run, the model's call id, the
/// tool's reference and the arguments (with their SHA-256).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "approvals")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: ApprovalId,
    pub project_id: ProjectId,
    pub smith_id: SmithId,
    pub run_id: RunId,
    pub tool_call_id: String,
    /// The tool's reference (`mcp/weather/delete_everything`).
    pub tool: String,
    /// The JSON object the model produced, as text.
    #[sea_orm(column_type = "Text")]
    pub arguments: String,
    pub arguments_sha256: String,
    pub status: ApprovalStatus,
    #[sea_orm(column_type = "Text", nullable)]
    pub reason: Option<String>,
    /// The arguments the decider approved instead of the model's (an edit).
    #[sea_orm(column_type = "Text", nullable)]
    pub decided_arguments: Option<String>,
    pub decided_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub expires_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
