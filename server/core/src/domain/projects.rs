//! Projects: the tenant boundary. Each is born with a default agent.

use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, IntoActiveModel,
    QueryFilter, QueryOrder, TransactionTrait,
};

use crate::cache::{Caches, Invalidation};
use crate::domain::agents;
use crate::error::{Error, Result};
use crate::ids::{OrganizationId, ProjectId};
use crate::store::page::{Page, PageRequest};
use crate::store::{now, project, token};

pub async fn create(db: &DatabaseConnection, organization_id: &OrganizationId, name: &str) -> Result<project::Model> {
    agents::validate::name(name)?;
    let txn = db.begin().await?;
    let project = project::ActiveModel {
        id: Set(ProjectId::generate()),
        organization_id: Set(organization_id.clone()),
        name: Set(name.to_owned()),
        default_agent_id: Set(None),
        created_at: Set(now()),
        deleted_at: Set(None),
    }
    .insert(&txn)
    .await?;
    let agent = agents::create_default(&txn, &project.id).await?;
    let mut project = project.into_active_model();
    project.default_agent_id = Set(Some(agent.id));
    let project = project.update(&txn).await?;
    txn.commit().await?;
    Ok(project)
}

pub async fn get(
    db: &impl ConnectionTrait,
    organization_id: &OrganizationId,
    project_id: &ProjectId,
) -> Result<project::Model> {
    project::Entity::find_by_id(project_id)
        .filter(project::Column::OrganizationId.eq(organization_id))
        .filter(project::Column::DeletedAt.is_null())
        .one(db)
        .await?
        .ok_or_else(|| Error::not_found("project_not_found", "project", project_id))
}

/// A live project by id alone, for callers already scoped to it by their token.
pub async fn get_live(db: &impl ConnectionTrait, project_id: &ProjectId) -> Result<project::Model> {
    project::Entity::find_by_id(project_id)
        .filter(project::Column::DeletedAt.is_null())
        .one(db)
        .await?
        .ok_or_else(|| Error::not_found("project_not_found", "project", project_id))
}

pub async fn list(
    db: &impl ConnectionTrait,
    organization_id: &OrganizationId,
    page: &PageRequest,
) -> Result<Page<project::Model>> {
    let query = project::Entity::find()
        .filter(project::Column::OrganizationId.eq(organization_id))
        .filter(project::Column::DeletedAt.is_null());
    crate::store::fetch_page(db, query, project::Column::Id, |row| row.id.as_str(), page).await
}

/// Soft-deletes the project, revokes all its tokens, erases what its smiths remember and
/// removes its MCP servers (their sealed headers with them), in one transaction.
pub async fn delete(
    db: &DatabaseConnection,
    caches: &Caches,
    organization_id: &OrganizationId,
    project_id: &ProjectId,
) -> Result<()> {
    let txn = db.begin().await?;
    let project = get(&txn, organization_id, project_id).await?;
    let mut project = project.into_active_model();
    project.deleted_at = Set(Some(now()));
    project.update(&txn).await?;
    token::revoke_all(&txn, token::Column::ProjectId, project_id.as_str()).await?;
    crate::domain::memory::erase::project_memory(&txn, project_id).await?;
    crate::store::mcp_server::Entity::delete_many()
        .filter(crate::store::mcp_server::Column::ProjectId.eq(project_id))
        .exec(&txn)
        .await?;
    txn.commit().await?;
    caches.invalidate(db, Invalidation::Project(project_id.clone())).await;
    caches.invalidate(db, Invalidation::Tokens).await;
    Ok(())
}

/// The project a fresh install works in: the oldest live one.
pub async fn first_live(db: &impl ConnectionTrait) -> Result<Option<project::Model>> {
    Ok(project::Entity::find()
        .filter(project::Column::DeletedAt.is_null())
        .order_by_asc(project::Column::Id)
        .one(db)
        .await?)
}
