use sea_orm::entity::prelude::*;

use crate::ids::{ProjectId, RunId, SmithId};
use crate::providers::StopReason;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "runs")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: RunId,
    pub project_id: ProjectId,
    pub smith_id: SmithId,
    pub thread_id: String,
    pub active_thread_id: Option<String>,
    pub status: crate::types::RunStatus,
    /// The caller's input messages.
    pub input: Json,
    /// The messages the run added to its thread (assistant replies, tool calls and results).
    pub transcript: Json,
    pub output: Option<Json>,
    pub usage: Option<Json>,
    pub error: Option<Json>,
    pub required_action: Option<Json>,
    /// The effective config the run resolved at creation.
    pub config: Json,
    /// Client-side function tools the caller supplied.
    pub client_tools: Json,
    pub metadata: Option<Json>,
    pub stop_reason: Option<StopReason>,
    pub replay_of: Option<RunId>,
    pub cancel_requested: bool,
    /// The replica executing the run, and until when its claim holds without renewal.
    pub lease_owner: Option<String>,
    pub lease_until: Option<DateTimeUtc>,
    /// The sequence number of the run's last persisted event.
    pub last_seq: i32,
    /// Working time of the run's executions so far, pauses not counted (its deadline's budget).
    pub worked_ms: i64,
    pub created_at: DateTimeUtc,
    pub started_at: Option<DateTimeUtc>,
    pub completed_at: Option<DateTimeUtc>,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
