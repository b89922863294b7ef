use sea_orm::entity::prelude::*;

use crate::ids::{ProjectId, RunId, SmithId, UsageRecordId};

/// Model usage outside a run's own turn (extracting memories after it), counted like a run's.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "usage_records")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: UsageRecordId,
    pub project_id: ProjectId,
    pub smith_id: SmithId,
    /// The run the work followed.
    pub run_id: Option<RunId>,
    /// What the model was called for: `memory_extraction`.
    pub purpose: String,
    pub model: String,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cost_usd: Option<f64>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
