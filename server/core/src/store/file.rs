use sea_orm::entity::prelude::*;

use crate::ids::{FileId, ProjectId, SmithId};

/// A file inlined into a smith's conversation; run inputs refer to it by id.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "files")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: FileId,
    pub project_id: ProjectId,
    pub smith_id: SmithId,
    pub filename: String,
    pub media_type: String,
    pub bytes: i64,
    /// A hash of the content (`digest::sha256_hex`), so the same content sent again is stored once.
    pub sha256: String,
    pub data: Vec<u8>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// A file without its content, for answers that describe it.
#[derive(Clone, Debug, PartialEq, Eq, DerivePartialModel)]
#[sea_orm(entity = "Entity")]
pub struct Info {
    pub id: FileId,
    pub smith_id: SmithId,
    pub filename: String,
    pub media_type: String,
    pub bytes: i64,
    pub created_at: DateTimeUtc,
}
