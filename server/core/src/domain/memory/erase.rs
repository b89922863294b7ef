//! Erasure: what a smith remembers is personal data, deleted (not hidden) with the smith or
//! its project, inside the transaction that deletes them.

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use crate::error::Result;
use crate::ids::{ProjectId, SmithId};
use crate::store::{memory, memory_block};

/// Erases everything a smith remembers, with the smith's deletion (personal data goes, not
/// only out of sight).
pub async fn smith_memory(db: &impl sea_orm::ConnectionTrait, smith_id: &SmithId) -> Result<()> {
    memory::Entity::delete_many().filter(memory::Column::SmithId.eq(smith_id.as_str())).exec(db).await?;
    memory_block::Entity::delete_many().filter(memory_block::Column::SmithId.eq(smith_id.as_str())).exec(db).await?;
    Ok(())
}

/// Erases what every smith of a deleted project remembers.
pub async fn project_memory(db: &impl sea_orm::ConnectionTrait, project_id: &ProjectId) -> Result<()> {
    memory::Entity::delete_many().filter(memory::Column::ProjectId.eq(project_id.as_str())).exec(db).await?;
    memory_block::Entity::delete_many()
        .filter(memory_block::Column::ProjectId.eq(project_id.as_str()))
        .exec(db)
        .await?;
    Ok(())
}
