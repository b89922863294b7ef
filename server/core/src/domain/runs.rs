//! Reading runs: always through the smith the caller may see, or the caller's project.

use sea_orm::sea_query::Query;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter};

use crate::auth::Caller;
use crate::error::{Error, Result};
use crate::ids::{RunId, SmithId};
use crate::store::page::{Page, PageRequest};
use crate::store::{decode_json, decode_json_opt, fetch_page, run, smith};
use crate::types::{RunConfig, RunMode, RunOutput, RunStatus, RunUsage};

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
    pub status: Option<RunStatus>,
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
        query = query.filter(run::Column::Status.eq(*status));
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

/// Where a stored response is looked for: the caller's project (as far as the caller sees
/// its smiths), or one smith.
#[derive(Clone, Copy)]
pub enum ResponseScope<'a> {
    Caller(&'a Caller),
    Smith(&'a SmithId),
}

/// A stored response: a completed run of the Responses surface that was not made with
/// `store: false`. `None` when there is none in `scope`.
pub async fn stored_response(
    db: &impl ConnectionTrait,
    scope: ResponseScope<'_>,
    run_id: &RunId,
) -> Result<Option<run::Model>> {
    let query = run::Entity::find_by_id(run_id).filter(run::Column::Status.eq(RunStatus::Completed));
    let query = match scope {
        ResponseScope::Caller(caller) => query.filter(run::Column::ProjectId.eq(&caller.project_id)),
        ResponseScope::Smith(smith_id) => query.filter(run::Column::SmithId.eq(smith_id)),
    };
    let Some(run) = query.one(db).await? else { return Ok(None) };
    if let ResponseScope::Caller(caller) = scope
        && !caller.sees_smith(&run.smith_id)
    {
        return Ok(None);
    }
    let config: RunConfig = decode_json(&run.id, "config", &run.config)?;
    Ok((config.mode == RunMode::Responses && config.store != Some(false)).then_some(run))
}

/// Whether another run completed on this run's thread after it.
pub async fn completed_later_on_thread(db: &impl ConnectionTrait, run: &run::Model) -> Result<bool> {
    let later = run::Entity::find()
        .filter(run::Column::SmithId.eq(&run.smith_id))
        .filter(run::Column::ThreadId.eq(run.thread_id.as_str()))
        .filter(run::Column::Status.eq(RunStatus::Completed))
        .filter(run::Column::Id.gt(&run.id))
        .count(db)
        .await?;
    Ok(later > 0)
}

/// What a completed run answered: its output and usage, which a completed run always has
/// (missing, the run is corrupt: an error naming it, never an empty answer).
pub fn answer_of(run: &run::Model) -> Result<(RunOutput, RunUsage)> {
    let missing = |column: &str| Error::internal(format!("Run {} completed without its {column}.", run.id));
    let output = decode_json_opt(&run.id, "output", run.output.as_ref())?.ok_or_else(|| missing("output"))?;
    let usage = decode_json_opt(&run.id, "usage", run.usage.as_ref())?.ok_or_else(|| missing("usage"))?;
    Ok((output, usage))
}

/// Why a settled run gave no answer, as the error its caller gets: a cancelled run is a 409
/// (not a retryable failure that would run it again), a failed one its recorded error.
pub fn failure_of(run: &run::Model) -> Error {
    if run.status == RunStatus::Cancelled {
        return Error::conflict("run_cancelled", "The run behind this request was cancelled.");
    }
    match decode_json_opt(&run.id, "error", run.error.as_ref()) {
        Ok(Some(body)) => Error::from_recorded(body),
        Ok(None) => Error::internal("The run ended without an answer."),
        Err(corrupt) => corrupt,
    }
}
