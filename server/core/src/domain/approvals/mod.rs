//! Human approvals: a gated server-side call stops its run before it executes, as an approval
//! bound to the exact call (run, tool, arguments and their SHA-256). A person approves (the
//! call runs exactly once, with edited arguments if given), rejects (the model reads the
//! refusal and the reason) or lets it expire (read as a rejection). Approvals belong to a run
//! of one smith: a smith token sees and decides only its own smith's.

pub mod policy;

use std::collections::HashSet;
use std::time::Duration;

use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter,
    TransactionTrait,
};
use serde_json::Value;

use crate::auth::Caller;
use crate::error::{Error, Result};
use crate::ids::{ApprovalId, ProjectId, RunId, SmithId};
use crate::store::approval::{self, ApprovalStatus};
use crate::store::page::{Page, PageRequest};
use crate::store::{now, run};
use crate::types::{PendingApproval, SERVER_TOOL_ARGUMENTS_MAX};

/// How long an approval waits for a decision unless the operator sets another time
/// (`INGRAM_APPROVAL_TTL_SECS`).
pub const DEFAULT_TTL: Duration = Duration::from_secs(24 * 60 * 60);
/// Characters of a decision's reason.
pub const REASON_MAX: usize = 1_000;
/// Decisions one submit may carry (an answer gates at most this many calls).
pub const DECISIONS_MAX: usize = 16;

/// A gated call, as the run asks for it.
pub struct Gated {
    pub tool_call_id: String,
    pub tool: String,
    /// The arguments as the model produced them: a JSON object.
    pub arguments: String,
}

/// What a person decided about one approval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Approve,
    Reject,
}

/// One decision of a submit.
#[derive(Debug, Clone)]
pub struct Decision {
    pub approval_id: ApprovalId,
    pub verdict: Verdict,
    /// Replaces the model's arguments (approve only).
    pub arguments: Option<Value>,
    pub reason: Option<String>,
}

/// Which approvals a listing returns.
#[derive(Debug, Clone, Default)]
pub struct ApprovalFilter {
    pub status: Option<ApprovalStatus>,
    pub smith_id: Option<SmithId>,
    pub run_id: Option<RunId>,
}

pub fn arguments_sha256(arguments: &str) -> String {
    crate::digest::sha256_hex(&[arguments.as_bytes()])
}

/// Stores a pending approval for each gated call of `current`, expiring after `ttl`.
pub async fn create(
    db: &impl ConnectionTrait,
    current: &run::Model,
    gated: Vec<Gated>,
    ttl: Duration,
) -> Result<Vec<approval::Model>> {
    let created_at = now();
    let expires_at = chrono::Duration::from_std(ttl)
        .ok()
        .and_then(|ttl| created_at.checked_add_signed(ttl))
        .unwrap_or(chrono::DateTime::<chrono::Utc>::MAX_UTC);
    let rows: Vec<approval::Model> = gated
        .into_iter()
        .map(|call| approval::Model {
            id: ApprovalId::generate(),
            project_id: current.project_id.clone(),
            smith_id: current.smith_id.clone(),
            run_id: current.id.clone(),
            tool_call_id: call.tool_call_id,
            tool: call.tool,
            arguments_sha256: arguments_sha256(&call.arguments),
            arguments: call.arguments,
            status: ApprovalStatus::Pending,
            reason: None,
            decided_arguments: None,
            decided_at: None,
            created_at,
            expires_at,
        })
        .collect();
    let active: Vec<approval::ActiveModel> = rows.iter().cloned().map(Into::into).collect();
    approval::Entity::insert_many(active).exec(db).await?;
    Ok(rows)
}

/// The approvals a caller may see: its project's, and of a smith token only its smith's.
fn visible(caller: &Caller) -> sea_orm::Select<approval::Entity> {
    let mut query = approval::Entity::find().filter(approval::Column::ProjectId.eq(&caller.project_id));
    if let Some(own) = &caller.smith_id {
        query = query.filter(approval::Column::SmithId.eq(own));
    }
    query
}

pub async fn get(db: &impl ConnectionTrait, caller: &Caller, id: &ApprovalId) -> Result<approval::Model> {
    visible(caller).filter(approval::Column::Id.eq(id)).one(db).await?.ok_or_else(|| not_found(id))
}

/// Newest first.
pub async fn list(
    db: &impl ConnectionTrait,
    caller: &Caller,
    filter: &ApprovalFilter,
    page: &PageRequest,
) -> Result<Page<approval::Model>> {
    let mut query = visible(caller);
    if let Some(status) = filter.status {
        query = query.filter(approval::Column::Status.eq(status));
    }
    if let Some(smith_id) = &filter.smith_id {
        query = query.filter(approval::Column::SmithId.eq(smith_id));
    }
    if let Some(run_id) = &filter.run_id {
        query = query.filter(approval::Column::RunId.eq(run_id));
    }
    crate::store::fetch_page(db, query, approval::Column::Id, |row| row.id.as_str(), page).await
}

/// A run's approvals (every status), in the order they were made.
pub async fn of_run(db: &impl ConnectionTrait, run_id: &RunId) -> Result<Vec<approval::Model>> {
    let mut rows = approval::Entity::find().filter(approval::Column::RunId.eq(run_id)).all(db).await?;
    rows.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(rows)
}

/// The approvals of the run's latest pause (one pause's are made together, at one instant):
/// the decisions its resumed execution applies. Earlier pauses' never apply to later calls.
pub async fn of_latest_pause(db: &impl ConnectionTrait, run_id: &RunId) -> Result<Vec<approval::Model>> {
    let rows = of_run(db, run_id).await?;
    let latest = rows.iter().map(|row| row.created_at).max();
    Ok(rows.into_iter().filter(|row| Some(row.created_at) == latest).collect())
}

/// The decision on the call `tool_call_id` of `tool` with `arguments`, among a pause's
/// approvals: `Ok(None)` when it was not gated; an error text (for the model) when its
/// approval does not bind exactly this call, or two calls share its id.
pub fn decision_for<'a>(
    pause: &'a [approval::Model],
    tool_call_id: &str,
    tool: &str,
    arguments: &str,
) -> std::result::Result<Option<&'a approval::Model>, String> {
    let mut matching = pause.iter().filter(|approval| approval.tool_call_id == tool_call_id);
    let Some(found) = matching.next() else { return Ok(None) };
    if matching.next().is_some() {
        return Err("not run: the model gave two calls the same id, so no approval can name one of them".into());
    }
    if found.tool != tool || found.arguments_sha256 != arguments_sha256(arguments) {
        return Err("not run: its approval was given for another call".into());
    }
    Ok(Some(found))
}

/// Takes the run's row lock (an update that changes nothing), so that deciding and expiring
/// the approvals of one run happen one after the other on every database; false when the
/// run is not paused at `last_seq` any more.
async fn lock_paused_run(db: &impl ConnectionTrait, run_id: &RunId, last_seq: Option<i32>) -> Result<bool> {
    let mut lock = run::Entity::update_many()
        .col_expr(run::Column::UpdatedAt, Expr::col(run::Column::UpdatedAt))
        .filter(run::Column::Id.eq(run_id))
        .filter(run::Column::Status.eq(crate::types::RunStatus::RequiresAction.as_str()));
    if let Some(last_seq) = last_seq {
        lock = lock.filter(run::Column::LastSeq.eq(last_seq));
    }
    Ok(lock.exec(db).await?.rows_affected == 1)
}

/// Applies `decisions` to approvals of `current` (a run waiting for them), all or none;
/// answers how many of the run's approvals are still pending. Each decision must name a
/// pending, unexpired approval of this run, once; a decision is applied only to the approval
/// it names.
pub async fn decide(db: &DatabaseConnection, current: &run::Model, decisions: &[Decision]) -> Result<u64> {
    if decisions.is_empty() {
        return Err(Error::invalid_param("approvals", "approvals must decide at least one approval."));
    }
    if decisions.len() > DECISIONS_MAX {
        return Err(Error::limit_exceeded("approvals", format!("At most {DECISIONS_MAX} decisions at once.")));
    }
    let mut seen = HashSet::new();
    for decision in decisions {
        if !seen.insert(&decision.approval_id) {
            return Err(Error::bad_request(
                "duplicate_approval",
                format!("Approval '{}' is decided twice.", decision.approval_id),
            )
            .with_param("approvals"));
        }
        validate_decision(decision)?;
    }
    let txn = db.begin().await?;
    if !lock_paused_run(&txn, &current.id, Some(current.last_seq)).await? {
        return Err(Error::conflict("run_not_waiting", "The run is not waiting for approvals any more."));
    }
    let at = now();
    for decision in decisions {
        let found = decidable(&txn, current, &decision.approval_id, at).await?;
        let status = match decision.verdict {
            Verdict::Approve => ApprovalStatus::Approved,
            Verdict::Reject => ApprovalStatus::Rejected,
        };
        let edited = decision.arguments.as_ref().map(Value::to_string);
        // Only if it is still pending and unexpired: a concurrent decision or the sweeper
        // that got there first wins, and this submit changes nothing.
        let updated = approval::Entity::update_many()
            .col_expr(approval::Column::Status, Expr::value(status.as_str()))
            .col_expr(approval::Column::DecidedAt, Expr::value(Some(at)))
            .col_expr(approval::Column::Reason, Expr::value(decision.reason.clone()))
            .col_expr(approval::Column::DecidedArguments, Expr::value(edited))
            .filter(approval::Column::Id.eq(&found.id))
            .filter(approval::Column::Status.eq(ApprovalStatus::Pending.as_str()))
            .filter(approval::Column::ExpiresAt.gt(at))
            .exec(&txn)
            .await?;
        if updated.rows_affected == 0 {
            // Decided or expired meanwhile: say which.
            return Err(match decidable(&txn, current, &found.id, at).await {
                Err(why) => why,
                Ok(_) => {
                    Error::conflict("approval_already_decided", format!("Approval '{}' changed meanwhile.", found.id))
                }
            });
        }
    }
    let pending = pending_count(&txn, &current.id).await?;
    txn.commit().await?;
    Ok(pending)
}

/// The approval `id`, if a decision on it may be applied to `current` now; else why not.
async fn decidable(
    db: &impl ConnectionTrait,
    current: &run::Model,
    id: &ApprovalId,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<approval::Model> {
    // Only the run's own smith's: another smith's approval is not found, whoever asks.
    let found = approval::Entity::find_by_id(id)
        .filter(approval::Column::ProjectId.eq(&current.project_id))
        .filter(approval::Column::SmithId.eq(&current.smith_id))
        .one(db)
        .await?
        .ok_or_else(|| not_found(id))?;
    if found.run_id != current.id {
        return Err(Error::bad_request(
            "approval_of_another_run",
            format!("Approval '{}' belongs to another run.", found.id),
        )
        .with_param("approvals"));
    }
    match found.status {
        ApprovalStatus::Pending if found.expires_at > at => Ok(found),
        ApprovalStatus::Pending | ApprovalStatus::Expired => Err(expired(&found.id)),
        ApprovalStatus::Approved | ApprovalStatus::Rejected => Err(Error::conflict(
            "approval_already_decided",
            format!("Approval '{}' was already {}.", found.id, found.status.as_str()),
        )),
    }
}

/// For a run no longer waiting: the first decision that could not be applied, and why (an
/// approval already decided or expired); `Ok` when each names one still pending.
pub async fn check_decidable(db: &impl ConnectionTrait, current: &run::Model, decisions: &[Decision]) -> Result<()> {
    let at = now();
    for decision in decisions.iter().take(DECISIONS_MAX) {
        decidable(db, current, &decision.approval_id, at).await?;
    }
    Ok(())
}

fn validate_decision(decision: &Decision) -> Result<()> {
    crate::domain::limits::text("reason", decision.reason.as_deref(), REASON_MAX)
        .map_err(|err| err.with_param("approvals"))?;
    if let Some(arguments) = &decision.arguments {
        if decision.verdict == Verdict::Reject {
            return Err(Error::invalid_param("approvals", "arguments edit an approved call; a rejection has none."));
        }
        if !arguments.is_object() || arguments.to_string().len() > SERVER_TOOL_ARGUMENTS_MAX {
            return Err(Error::invalid_param(
                "approvals",
                format!("arguments must be a JSON object of at most {SERVER_TOOL_ARGUMENTS_MAX} bytes."),
            ));
        }
    }
    Ok(())
}

pub async fn pending_count(db: &impl ConnectionTrait, run_id: &RunId) -> Result<u64> {
    Ok(approval::Entity::find()
        .filter(approval::Column::RunId.eq(run_id))
        .filter(approval::Column::Status.eq(ApprovalStatus::Pending.as_str()))
        .count(db)
        .await?)
}

/// Expires the pending approvals whose time is up, each run's under its row lock (so a
/// concurrent decision and this expiry count what is left one after the other), and answers
/// the runs left with nothing pending by this sweep. An approval expires once whichever
/// replica sweeps: the update is conditional.
pub async fn expire_due(db: &DatabaseConnection) -> Result<Vec<RunId>> {
    let at = now();
    let due = approval::Entity::find()
        .filter(approval::Column::Status.eq(ApprovalStatus::Pending.as_str()))
        .filter(approval::Column::ExpiresAt.lte(at))
        .all(db)
        .await?;
    let mut runs: Vec<RunId> = due.into_iter().map(|row| row.run_id).collect();
    runs.sort();
    runs.dedup();
    let mut left_waiting_for_nothing = Vec::new();
    for run_id in runs {
        let txn = db.begin().await?;
        lock_paused_run(&txn, &run_id, None).await?;
        let expired = approval::Entity::update_many()
            .col_expr(approval::Column::Status, Expr::value(ApprovalStatus::Expired.as_str()))
            .col_expr(approval::Column::DecidedAt, Expr::value(Some(at)))
            .filter(approval::Column::RunId.eq(&run_id))
            .filter(approval::Column::Status.eq(ApprovalStatus::Pending.as_str()))
            .filter(approval::Column::ExpiresAt.lte(at))
            .exec(&txn)
            .await?;
        let pending = pending_count(&txn, &run_id).await?;
        txn.commit().await?;
        if expired.rows_affected > 0 && pending == 0 {
            left_waiting_for_nothing.push(run_id);
        }
    }
    Ok(left_waiting_for_nothing)
}

/// Runs whose approvals were all decided in the last ten minutes: the sweeper makes sure each
/// was resumed (one whose resumer died between a decision and the resume would wait forever).
pub async fn recently_settled_runs(db: &impl ConnectionTrait) -> Result<Vec<RunId>> {
    let since = now() - chrono::Duration::minutes(10);
    let decided = approval::Entity::find()
        .filter(approval::Column::Status.ne(ApprovalStatus::Pending.as_str()))
        .filter(approval::Column::DecidedAt.gt(since))
        .all(db)
        .await?;
    let mut runs: Vec<RunId> = decided.into_iter().map(|row| row.run_id).collect();
    runs.sort();
    runs.dedup();
    let mut settled = Vec::new();
    for run_id in runs {
        if pending_count(db, &run_id).await? == 0 {
            settled.push(run_id);
        }
    }
    Ok(settled)
}

/// Expires what `run_id` still waits on (the run was cancelled).
pub async fn expire_for_run(db: &impl ConnectionTrait, run_id: &RunId) -> Result<()> {
    expire_where(db, Condition::all().add(approval::Column::RunId.eq(run_id))).await
}

/// Expires what the smith's runs still wait on (the smith was deleted).
pub async fn expire_for_smith(db: &impl ConnectionTrait, project_id: &ProjectId, smith_id: &SmithId) -> Result<()> {
    let smiths =
        Condition::all().add(approval::Column::ProjectId.eq(project_id)).add(approval::Column::SmithId.eq(smith_id));
    expire_where(db, smiths).await
}

async fn expire_where(db: &impl ConnectionTrait, condition: Condition) -> Result<()> {
    approval::Entity::update_many()
        .col_expr(approval::Column::Status, Expr::value(ApprovalStatus::Expired.as_str()))
        .col_expr(approval::Column::DecidedAt, Expr::value(Some(now())))
        .filter(condition)
        .filter(approval::Column::Status.eq(ApprovalStatus::Pending.as_str()))
        .exec(db)
        .await?;
    Ok(())
}

/// Stored arguments as the JSON object they are (they were checked to be one when stored).
pub fn arguments_of(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(Value::Null)
}

/// An approval as a paused run and `approval.required` show it.
pub fn pending(row: &approval::Model) -> PendingApproval {
    PendingApproval {
        id: row.id.clone(),
        tool: row.tool.clone(),
        arguments: arguments_of(&row.arguments),
        expires_at: row.expires_at,
    }
}

/// What the OpenAI surfaces answer when a run stops for approvals (docs/approvals.md): one
/// line per approval.
pub fn notice(pending: &[PendingApproval]) -> String {
    pending
        .iter()
        .map(|approval| format!("Waiting for approval: {} (approval {}).", approval.tool, approval.id))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Why a decided call does not run, for the model to read; `None` when it was approved.
pub fn refusal(row: &approval::Model) -> Option<String> {
    match row.status {
        ApprovalStatus::Approved => None,
        ApprovalStatus::Rejected => Some(match &row.reason {
            Some(reason) => format!("not run: a person rejected this call: {reason}"),
            None => "not run: a person rejected this call".to_owned(),
        }),
        ApprovalStatus::Expired => Some("not run: nobody approved this call in time".to_owned()),
        ApprovalStatus::Pending => Some("not run: the approval was not decided".to_owned()),
    }
}

fn not_found(id: &ApprovalId) -> Error {
    Error::not_found("approval_not_found", "approval", id)
}

fn expired(id: &ApprovalId) -> Error {
    Error::conflict("approval_expired", format!("Approval '{id}' expired; the run went on without the call."))
}
