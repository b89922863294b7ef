//! Reading runs: always through the smith the caller may see, or the caller's project.

use sea_orm::sea_query::Query;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};

use crate::auth::Caller;
use crate::error::{Error, Result};
use crate::ids::{RunId, SmithId};
use crate::store::page::{Page, PageRequest};
use crate::store::{fetch_page, run, smith};

/// A run of the caller's project, also once its smith was deleted; a smith token sees only
/// its own smith's.
pub async fn get(db: &impl ConnectionTrait, caller: &Caller, smith_id: &SmithId, run_id: &RunId) -> Result<run::Model> {
    if !caller.sees_smith(smith_id) {
        return Err(Error::not_found("run_not_found", "run", run_id));
    }
    run::Entity::find_by_id(run_id)
        .filter(run::Column::SmithId.eq(smith_id))
        .filter(run::Column::ProjectId.eq(caller.project_id.as_str()))
        .one(db)
        .await?
        .ok_or_else(|| Error::not_found("run_not_found", "run", run_id))
}

#[derive(Debug, Default)]
pub struct RunFilters {
    pub smith_id: Option<SmithId>,
    pub status: Option<String>,
    pub external_id_prefix: Option<String>,
    pub since: Option<chrono::DateTime<chrono::Utc>>,
}

pub async fn list(
    db: &impl ConnectionTrait,
    caller: &Caller,
    filters: &RunFilters,
    page: &PageRequest,
) -> Result<Page<run::Model>> {
    let mut query = run::Entity::find().filter(run::Column::ProjectId.eq(caller.project_id.as_str()));
    if let Some(own) = &caller.smith_id {
        query = query.filter(run::Column::SmithId.eq(own.as_str()));
    }
    if let Some(smith_id) = &filters.smith_id {
        query = query.filter(run::Column::SmithId.eq(smith_id.as_str()));
    }
    if let Some(status) = &filters.status {
        query = query.filter(run::Column::Status.eq(status.as_str()));
    }
    if let Some(since) = filters.since {
        query = query.filter(run::Column::CreatedAt.gte(since));
    }
    if let Some(prefix) = &filters.external_id_prefix {
        let segment = Query::select()
            .column(smith::Column::Id)
            .from(smith::Entity)
            .and_where(smith::Column::ProjectId.eq(caller.project_id.as_str()))
            .and_where(crate::store::starts_with((smith::Entity, smith::Column::ExternalId), prefix))
            .to_owned();
        query = query.filter(run::Column::SmithId.in_subquery(segment));
    }
    fetch_page(db, query, run::Column::Id, |row| row.id.as_str(), page).await
}
