//! The run engine: a run is one turn, executed by a task that outlives the HTTP request.
//!
//! - One active run per thread, enforced by a unique index on `(smith_id, active_thread_id)`.
//! - Events are numbered and persisted as they stream (see [`events`]).
//! - A replica claims the runs it executes with a lease it renews; a run whose lease lapsed
//!   (its replica died) is failed with `run_interrupted` by whichever replica sweeps first.

pub mod capacity;
pub mod events;
mod execute;
pub mod listener;
mod live;
mod remember;
mod run_store;
pub mod start;
mod wakeups;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use std::time::Duration;
use tokio::sync::Notify;

use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, TransactionTrait};
use serde_json::json;

use self::capacity::{Capacity, Slot, SlotKind};
use self::events::{LiveRun, Subscription, append_stored};
use self::run_store::RunStore;
use self::start::Submission;
use self::wakeups::Wakeups;
use crate::cache::Caches;
use crate::domain::approvals;
use crate::domain::memory::Memory;
use crate::domain::memory::context::Remembering;
use crate::domain::tools::mcp::Mcp;
use crate::domain::{files, limits, model_keys};
use crate::egress::Egress;
use crate::error::{Error, ErrorKind, Result};
use crate::ids::{IdKind, ProjectId, RunId, SmithId, new_id};
use crate::providers::offline::Offline;
use crate::providers::routing::{ProviderKind, resolve};
use crate::providers::{Endpoint, ProviderError};
use crate::settings::Settings;
use crate::store::{decode_json_opt, now, run};
use crate::types::{
    EVENT_VERSION, FunctionTool, InputMessage, Metadata, RequiredAction, RequiredActionType, RunCancelledEvent,
    RunConfig, RunEventData, RunFailedEvent, RunMode, RunStatus,
};

/// What to do when the thread already has an active run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnBusy {
    /// Refuse with 409 `thread_busy`.
    #[default]
    Reject,
    /// Wait behind the active run.
    Enqueue,
    /// Cancel the active run, then start.
    Interrupt,
}

/// A fully resolved request for a new run.
struct RunSpec {
    pub project_id: ProjectId,
    pub smith_id: SmithId,
    pub thread_id: Option<String>,
    pub input: Vec<InputMessage>,
    pub config: RunConfig,
    pub client_tools: Vec<FunctionTool>,
    pub metadata: Option<Metadata>,
    pub on_busy: OnBusy,
    pub replay_of: Option<RunId>,
    /// What the smith remembers, as its starter found it (handed on to the run's task).
    pub remembering: Option<Remembering>,
}

impl RunSpec {
    /// The limits of every run's input, whichever surface made it.
    fn check_limits(&self) -> Result<()> {
        let input = match self.config.mode {
            RunMode::ChatCompletions => "messages",
            _ => "input",
        };
        limits::messages(input, &self.input)?;
        limits::client_tools("tools", &self.client_tools)?;
        limits::metadata(self.metadata.as_ref())
    }
}

#[derive(Debug, Clone, serde::Deserialize)]
pub struct ToolOutput {
    pub tool_call_id: String,
    pub output: String,
}

#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    db: DatabaseConnection,
    /// Where runs, their events and their endings are written.
    runs: RunStore,
    caches: Arc<Caches>,
    /// Streams here following runs that execute elsewhere.
    wakeups: Arc<Wakeups>,
    settings: Arc<Settings>,
    /// For operator-set endpoints only.
    http: reqwest::Client,
    /// For every endpoint a tenant chose.
    egress: Egress,
    /// For URLs a model chose (`hosted/http_fetch`): public addresses only, whatever the
    /// operator allowed for endpoints it configured on purpose.
    fetch_egress: Egress,
    offline: Offline,
    memory: Memory,
    mcp: Mcp,
    /// auto_memory extractions running at once on this replica; the others wait their turn.
    extractions: Arc<tokio::sync::Semaphore>,
    /// This replica's name in run leases.
    instance: String,
    live: Mutex<HashMap<RunId, Arc<LiveRun>>>,
    capacity: Arc<Capacity>,
    /// Queued runs waiting here for a thread, woken when a run here releases it.
    thread_releases: Mutex<HashMap<(SmithId, String), Arc<Notify>>>,
}

/// What the code starting a run already found out, so that its task does not read it again.
#[derive(Default)]
struct Known {
    /// The provider endpoint, key included.
    endpoint: Option<Endpoint>,
    /// The run opened its thread: there is no history to read.
    new_thread: bool,
    /// What the smith remembers; read again when absent.
    remembering: Option<Remembering>,
    /// The run resumes after its approvals were decided: the calls of its last answer run first.
    approvals_decided: bool,
}

/// A run's place in this replica's registry, released when its task ends however it ends.
struct Registered {
    engine: Engine,
    run_id: RunId,
    live: Arc<LiveRun>,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.engine.unregister(&self.run_id);
        self.live.close();
    }
}

const INTERRUPT_WAIT: Duration = Duration::from_secs(10);

impl Engine {
    /// The engine over `db` (its schema migrated), opening the run store beside it.
    pub fn new(db: DatabaseConnection, settings: Arc<Settings>, caches: Arc<Caches>) -> Result<Self> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(Duration::from_secs(300))
            .build()
            .expect("an HTTP client with default TLS");
        let offline = Offline { token_delay: settings.offline_token_delay };
        let egress = Egress::new(settings.egress.clone());
        let capacity = Capacity::new(settings.capacity);
        let runs = RunStore::open(&db)?;
        let memory = Memory::new(db.clone(), caches.clone(), settings.clone(), egress.clone());
        let mcp = Mcp::new(db.clone(), caches.clone(), settings.clone(), egress.clone());
        Ok(Self {
            inner: Arc::new(Inner {
                db,
                runs,
                caches,
                wakeups: Arc::default(),
                settings,
                http,
                egress,
                fetch_egress: Egress::new(crate::egress::EgressPolicy::strict()),
                offline,
                memory,
                mcp,
                extractions: Arc::new(tokio::sync::Semaphore::new(remember::CONCURRENT)),
                instance: format!("replica_{}", ulid::Ulid::new().to_string().to_lowercase()),
                live: Mutex::new(HashMap::new()),
                capacity,
                thread_releases: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// The memory service, with this engine's egress policy.
    pub fn memory(&self) -> &Memory {
        &self.inner.memory
    }

    /// The project MCP servers' registry, and the calls runs make to them.
    pub fn mcp(&self) -> &Mcp {
        &self.inner.mcp
    }

    fn live(&self, run_id: &RunId) -> Option<Arc<LiveRun>> {
        self.inner.live.lock().unwrap_or_else(|p| p.into_inner()).get(run_id).cloned()
    }

    fn register(&self, run_id: &RunId, first_seq: i32) -> Arc<LiveRun> {
        let live = LiveRun::new(first_seq);
        self.inner.live.lock().unwrap_or_else(|p| p.into_inner()).insert(run_id.to_owned(), live.clone());
        live
    }

    fn unregister(&self, run_id: &RunId) {
        self.inner.live.lock().unwrap_or_else(|p| p.into_inner()).remove(run_id);
    }

    /// What a queued run waits on for its thread to be released on this replica.
    fn thread_release(&self, smith_id: &SmithId, thread_id: &str) -> Arc<Notify> {
        let mut waiting = self.inner.thread_releases.lock().unwrap_or_else(|p| p.into_inner());
        waiting.entry((smith_id.to_owned(), thread_id.to_owned())).or_default().clone()
    }

    /// Wakes the runs queued here behind this thread.
    fn thread_released(&self, smith_id: &SmithId, thread_id: &str) {
        let key = (smith_id.to_owned(), thread_id.to_owned());
        let released = self.inner.thread_releases.lock().unwrap_or_else(|p| p.into_inner()).remove(&key);
        if let Some(released) = released {
            released.notify_waiters();
        }
    }

    fn lease_until(&self) -> chrono::DateTime<chrono::Utc> {
        now() + chrono::Duration::from_std(self.inner.settings.run_lease).unwrap_or_default()
    }

    /// Records and starts a run whose limits were checked ([`start`] is the way in).
    /// Refuses before anything streams when the model's provider has no key.
    async fn create(&self, mut spec: RunSpec) -> Result<run::Model> {
        let db = &self.inner.db;
        // The name reaches provider URLs: refused before any upstream call, whatever set it.
        crate::domain::agents::validate::model(&spec.config.model)?;
        let kind = if spec.on_busy == OnBusy::Enqueue { SlotKind::QueuedRun } else { SlotKind::ActiveRun };
        let slot = self.inner.capacity.acquire(&spec.project_id, kind)?;
        let endpoint = self.endpoint(&spec.project_id, resolve(&spec.config.model).provider).await?;
        let new_thread = spec.thread_id.is_none();
        let remembering = spec.remembering.take();
        let thread_id = spec.thread_id.clone().unwrap_or_else(|| new_id(IdKind::Thread));
        if spec.on_busy == OnBusy::Interrupt && !new_thread {
            self.interrupt_thread(&spec.smith_id, &thread_id).await?;
        }
        // Inlined files and the run that names them are written together, or not at all.
        let run = if files::has_attachments(&spec.input) {
            let txn = db.begin().await?;
            files::store_inline(&txn, &spec.project_id, &spec.smith_id, &mut spec.input).await?;
            let run = self.new_row(spec, thread_id);
            run_store::insert_run(&txn, run.clone()).await?;
            txn.commit().await?;
            run
        } else {
            let run = self.new_row(spec, thread_id);
            self.inner.runs.insert(run.clone()).await?;
            run
        };
        self.spawn_task(
            run.clone(),
            1,
            Known { endpoint: Some(endpoint), new_thread, remembering, approvals_decided: false },
            slot,
        );
        Ok(run)
    }

    /// Where the provider is reached, with which key: the project's own, else the server's
    /// fallback. Refused with `model_key_missing` when there is neither.
    async fn endpoint(&self, project_id: &ProjectId, provider: ProviderKind) -> Result<Endpoint> {
        if !provider.needs_key() {
            return Ok(Endpoint { base_url: String::new(), api_key: String::new(), trusted: true });
        }
        let found =
            model_keys::cached_endpoint(&self.inner.db, &self.inner.caches, &self.inner.settings, project_id, provider)
                .await?;
        let (endpoint, _) = found.ok_or_else(|| {
            Error::bad_request(
                "model_key_missing",
                format!(
                    "No {} key is configured for this project; add one with PUT /v1/tenant/model_keys/{}.",
                    provider.as_str(),
                    provider.as_str()
                ),
            )
            .with_param("model")
        })?;
        Ok(endpoint)
    }

    /// The client that reaches `endpoint`: operator-set ones directly, a tenant's through
    /// the egress policy.
    fn client_for(&self, endpoint: &Endpoint) -> Result<&reqwest::Client, ProviderError> {
        if endpoint.trusted {
            return Ok(&self.inner.http);
        }
        self.inner.egress.client_for(&endpoint.base_url).map_err(|denied| ProviderError::egress_denied(&denied))
    }

    fn new_row(&self, spec: RunSpec, thread_id: String) -> run::Model {
        let at = now();
        run::Model {
            id: RunId::generate(),
            project_id: spec.project_id,
            smith_id: spec.smith_id,
            thread_id: thread_id.clone(),
            // An enqueued run claims its thread when the active one releases it.
            active_thread_id: (spec.on_busy != OnBusy::Enqueue).then_some(thread_id),
            // A run that has its thread starts at once; an enqueued one waits, queued.
            status: if spec.on_busy == OnBusy::Enqueue { RunStatus::Queued } else { RunStatus::Running },
            input: json!(spec.input),
            transcript: json!([]),
            output: None,
            usage: None,
            error: None,
            required_action: None,
            config: json!(spec.config),
            client_tools: json!(spec.client_tools),
            metadata: spec.metadata.map(|metadata| json!(metadata)),
            stop_reason: None,
            replay_of: spec.replay_of,
            cancel_requested: false,
            lease_owner: Some(self.inner.instance.clone()),
            lease_until: Some(self.lease_until()),
            last_seq: 0,
            worked_ms: 0,
            created_at: at,
            started_at: (spec.on_busy != OnBusy::Enqueue).then_some(at),
            completed_at: None,
            updated_at: at,
        }
    }

    /// Executes the run, as its row now stands, in its own task; its events are numbered from
    /// `first_seq`.
    fn spawn_task(&self, run: run::Model, first_seq: i32, known: Known, slot: Slot) {
        let live = self.register(&run.id, first_seq);
        let engine = self.clone();
        tokio::spawn(async move {
            // Unregistering on drop covers a panicking task too, so subscribers never wait on
            // a log nobody writes, and the lease stops being renewed.
            let _registered = Registered { engine: engine.clone(), run_id: run.id.clone(), live: live.clone() };
            execute::run(&engine, run, known, &live, slot).await;
        });
    }

    /// Cancels the thread's active run and waits until it released the thread.
    async fn interrupt_thread(&self, smith_id: &SmithId, thread_id: &str) -> Result<()> {
        let active = run::Entity::find()
            .filter(run::Column::SmithId.eq(smith_id))
            .filter(run::Column::ActiveThreadId.eq(thread_id))
            .one(&self.inner.db)
            .await?;
        let Some(active) = active else { return Ok(()) };
        match self.cancel(&active).await {
            Ok(_) => Ok(()),
            Err(err) if err.code == "run_not_active" => Ok(()),
            Err(err) => Err(err),
        }
    }

    /// Stops a queued, running or paused run; answers once it is cancelled.
    pub async fn cancel(&self, current: &run::Model) -> Result<run::Model> {
        let status = current.status;
        if status.is_terminal() {
            return Err(Error::conflict("run_not_active", format!("The run is already {}.", status.as_str())));
        }
        if status == RunStatus::RequiresAction {
            if self.cancel_paused(current).await? {
                return self.reload(&current.id).await;
            }
            let fresh = self.reload(&current.id).await?;
            return Box::pin(self.cancel(&fresh)).await;
        }
        self.request_cancel(&current.id).await?;
        // Another replica notices the request on its next heartbeat.
        let settled = tokio::time::timeout(INTERRUPT_WAIT, self.wait_settled(&current.id, current.last_seq)).await;
        match settled {
            // It paused before the cancel reached it: cancel the pause.
            Ok(Ok(run)) if run.status == RunStatus::RequiresAction => Box::pin(self.cancel(&run)).await,
            Ok(result) => result,
            Err(_) => Err(Error::new(
                ErrorKind::Timeout,
                "cancel_pending",
                "The cancellation was requested but the run has not stopped yet; poll the run.",
            )),
        }
    }

    /// Answers what a paused run waits for; resumes it once nothing is left to answer. True
    /// while approvals of its pause are still undecided.
    async fn submit(&self, current: &run::Model, submission: Submission) -> Result<bool> {
        let not_waiting =
            || Error::conflict("run_not_waiting", "The run is not waiting for tool outputs or approvals.");
        if current.status != RunStatus::RequiresAction {
            // A decision on an approval the run no longer waits on says why.
            if let Submission::Approvals(decisions) = &submission {
                approvals::check_decidable(&self.inner.db, current, decisions).await?;
            }
            return Err(not_waiting());
        }
        let action: RequiredAction = decode_json_opt(&current.id, "required_action", current.required_action.as_ref())?
            .ok_or_else(|| Error::internal("A paused run has no required action."))?;
        match (action.kind, submission) {
            (RequiredActionType::SubmitToolOutputs, Submission::ToolOutputs(outputs)) => {
                let transcript = answered_transcript(current, &action, &outputs)?;
                let slot = self.inner.capacity.acquire(&current.project_id, SlotKind::ActiveRun)?;
                if !self.reopen(current, Some(transcript), Known::default(), slot).await? {
                    // Another submit or a cancel got there first.
                    return Err(not_waiting());
                }
                Ok(false)
            }
            (RequiredActionType::SubmitApprovals, Submission::Approvals(decisions)) => {
                if approvals::decide(&self.inner.db, current, &decisions).await? > 0 {
                    return Ok(true);
                }
                // The decisions are made: the run resumes whatever this replica's load (the
                // sweeper finds it otherwise). Whichever decision came last resumes it.
                let slot = self.inner.capacity.take(&current.project_id, SlotKind::ActiveRun);
                let known = Known { approvals_decided: true, ..Known::default() };
                self.reopen(current, None, known, slot).await?;
                Ok(false)
            }
            (RequiredActionType::SubmitApprovals, Submission::ToolOutputs(_)) => Err(Error::bad_request(
                "approvals_required",
                "The run waits for decisions on its approvals (they come before any client tool outputs); submit `approvals`.",
            )
            .with_param("approvals")),
            (RequiredActionType::SubmitToolOutputs, Submission::Approvals(_)) => Err(Error::bad_request(
                "tool_outputs_required",
                "The run waits for client tool outputs, not approvals; submit `tool_outputs`.",
            )
            .with_param("tool_outputs")),
        }
    }

    /// Sets a paused run running again (with `transcript` when the pause added to it) and
    /// executes it; false when it was no longer paused (another submit or a cancel won).
    async fn reopen(
        &self,
        current: &run::Model,
        transcript: Option<Vec<crate::providers::Message>>,
        known: Known,
        slot: Slot,
    ) -> Result<bool> {
        let resumed = run::Model {
            status: RunStatus::Running,
            required_action: None,
            transcript: transcript.map_or_else(|| current.transcript.clone(), |transcript| json!(transcript)),
            lease_owner: Some(self.inner.instance.clone()),
            lease_until: Some(self.lease_until()),
            cancel_requested: false,
            updated_at: now(),
            ..current.clone()
        };
        let written = run::Entity::update_many()
            .col_expr(run::Column::Status, Expr::value(resumed.status.as_str()))
            .col_expr(run::Column::RequiredAction, Expr::value(Option::<serde_json::Value>::None))
            .col_expr(run::Column::Transcript, Expr::value(resumed.transcript.clone()))
            .col_expr(run::Column::LeaseOwner, Expr::value(resumed.lease_owner.clone()))
            .col_expr(run::Column::LeaseUntil, Expr::value(resumed.lease_until))
            .col_expr(run::Column::CancelRequested, Expr::value(false))
            .col_expr(run::Column::UpdatedAt, Expr::value(resumed.updated_at))
            .filter(run::Column::Id.eq(current.id.as_str()))
            .filter(run::Column::Status.eq(RunStatus::RequiresAction.as_str()))
            .filter(run::Column::LastSeq.eq(current.last_seq))
            .exec(&self.inner.db)
            .await?;
        if written.rows_affected == 0 {
            return Ok(false);
        }
        self.spawn_task(resumed, current.last_seq + 1, known, slot);
        Ok(true)
    }

    /// Expires the approvals whose time is up and resumes the runs left with none pending
    /// (an expired approval reads as a rejection). Every replica sweeps; each approval expires
    /// once and each run resumes once, by conditional updates.
    pub async fn expire_approvals(&self) -> Result<()> {
        let mut runs = approvals::expire_due(&self.inner.db).await?;
        runs.extend(approvals::recently_settled_runs(&self.inner.db).await?);
        runs.sort();
        runs.dedup();
        for run_id in runs {
            if let Err(err) = self.resume_if_decided(&run_id).await {
                tracing::warn!(%run_id, code = %err.code, "could not resume a run whose approvals are decided");
            }
        }
        Ok(())
    }

    /// Resumes a run paused for approvals none of which is pending any more.
    async fn resume_if_decided(&self, run_id: &RunId) -> Result<()> {
        let current = self.reload(run_id).await?;
        if current.status != RunStatus::RequiresAction || approvals::pending_count(&self.inner.db, run_id).await? > 0 {
            return Ok(());
        }
        let action: Option<RequiredAction> =
            decode_json_opt(&current.id, "required_action", current.required_action.as_ref())?;
        if action.is_some_and(|action| action.kind == RequiredActionType::SubmitApprovals) {
            let slot = self.inner.capacity.take(&current.project_id, SlotKind::ActiveRun);
            let known = Known { approvals_decided: true, ..Known::default() };
            self.reopen(&current, None, known, slot).await?;
        }
        Ok(())
    }

    /// A place for one open event stream of the project, taken before the run it follows is
    /// started, so a refused stream starts nothing.
    fn stream_slot(&self, project_id: &ProjectId) -> Result<Slot> {
        self.inner.capacity.acquire(project_id, SlotKind::Stream)
    }

    async fn subscribe(&self, run_id: &RunId, after: i32) -> Result<Subscription> {
        let engine = self.clone();
        let id = run_id.to_owned();
        let (db, wakeups) = (self.inner.db.clone(), self.inner.wakeups.clone());
        Subscription::new(db, wakeups, run_id.to_owned(), after, Box::new(move || engine.live(&id))).await
    }

    /// Waits until the run, past event `after`, finished or paused, and returns it.
    pub async fn wait_settled(&self, run_id: &RunId, after: i32) -> Result<run::Model> {
        let live = self.live(run_id);
        let mut subscription = self.subscribe(run_id, after).await?;
        while subscription.next().await?.is_some() {}
        match live.and_then(|live| live.settled()) {
            Some(settled) => Ok(settled),
            None => self.reload(run_id).await,
        }
    }

    async fn reload(&self, run_id: &RunId) -> Result<run::Model> {
        run::Entity::find_by_id(run_id)
            .one(&self.inner.db)
            .await?
            .ok_or_else(|| Error::not_found("run_not_found", "run", run_id))
    }

    /// Renews this replica's leases, forwards cancellations requested elsewhere, and fails
    /// runs whose replica died. Runs until the process ends.
    pub fn spawn_upkeep(&self) -> tokio::task::JoinHandle<()> {
        let engine = self.clone();
        tokio::spawn(async move {
            let period = engine.inner.settings.run_lease / 3;
            loop {
                if let Err(err) = engine.upkeep().await {
                    tracing::warn!(code = %err.code, "run upkeep failed");
                }
                tokio::time::sleep(period).await;
            }
        })
    }

    pub async fn upkeep(&self) -> Result<()> {
        let db = &self.inner.db;
        let active = [RunStatus::Queued.as_str(), RunStatus::Running.as_str()];
        // Only runs a task here still executes: a run whose task is gone lets its lease lapse
        // and is swept.
        let executing: Vec<RunId> = self.inner.live.lock().unwrap_or_else(|p| p.into_inner()).keys().cloned().collect();
        if !executing.is_empty() {
            run::Entity::update_many()
                .col_expr(run::Column::LeaseUntil, Expr::value(Some(self.lease_until())))
                .filter(run::Column::Id.is_in(executing))
                .filter(run::Column::LeaseOwner.eq(self.inner.instance.as_str()))
                .filter(run::Column::Status.is_in(active))
                .exec(db)
                .await?;
        }
        let cancelled = run::Entity::find()
            .filter(run::Column::LeaseOwner.eq(self.inner.instance.as_str()))
            .filter(run::Column::Status.is_in(active))
            .filter(run::Column::CancelRequested.eq(true))
            .all(db)
            .await?;
        for run in cancelled {
            if let Some(live) = self.live(&run.id) {
                live.cancel.send_replace(true);
            }
        }
        let lapsed = run::Entity::find()
            .filter(run::Column::Status.is_in(active))
            .filter(run::Column::LeaseUntil.lt(now()))
            .all(db)
            .await?;
        for run in lapsed {
            if self.fail_interrupted(&run).await? {
                self.thread_released(&run.smith_id, &run.thread_id);
            }
        }
        self.expire_approvals().await
    }

    /// True when this call failed the run (and so released its thread).
    async fn fail_interrupted(&self, lapsed: &run::Model) -> Result<bool> {
        let run_id = &lapsed.id;
        let error = Error::new(
            ErrorKind::Internal,
            "run_interrupted",
            "The server executing this run stopped before it finished.",
        )
        .envelope()
        .error;
        let txn = self.inner.db.begin().await?;
        let failed = run::Entity::update_many()
            .col_expr(run::Column::Status, Expr::value(RunStatus::Failed.as_str()))
            .col_expr(run::Column::Error, Expr::value(Some(json!(error))))
            .col_expr(run::Column::ActiveThreadId, Expr::value(Option::<String>::None))
            .col_expr(run::Column::LeaseOwner, Expr::value(Option::<String>::None))
            .col_expr(run::Column::CompletedAt, Expr::value(Some(now())))
            .col_expr(run::Column::UpdatedAt, Expr::value(now()))
            .filter(run::Column::Id.eq(run_id))
            .filter(run::Column::Status.is_in([RunStatus::Queued.as_str(), RunStatus::Running.as_str()]))
            .filter(run::Column::LeaseUntil.lt(now()))
            .exec(&txn)
            .await?;
        let released = failed.rows_affected == 1;
        if released {
            let event = RunEventData::Failed(RunFailedEvent { v: EVENT_VERSION, run_id: run_id.to_owned(), error });
            let seq = append_stored(&txn, run_id, lapsed.last_seq, &event).await?;
            run::Entity::update_many()
                .col_expr(run::Column::LastSeq, Expr::value(seq))
                .filter(run::Column::Id.eq(run_id))
                .exec(&txn)
                .await?;
            tracing::warn!(%run_id, "failed a run whose replica stopped");
        }
        txn.commit().await?;
        if released {
            let thread = (lapsed.smith_id.clone(), lapsed.thread_id.clone());
            self.inner.runs.announce(run_id, Some(thread)).await;
        }
        Ok(released)
    }

    /// Cancels a paused run, which no task holds; false when something resumed or ended it
    /// meanwhile.
    async fn cancel_paused(&self, current: &run::Model) -> Result<bool> {
        let txn = self.inner.db.begin().await?;
        let cancelled = run::Entity::update_many()
            .col_expr(run::Column::Status, Expr::value(RunStatus::Cancelled.as_str()))
            .col_expr(run::Column::ActiveThreadId, Expr::value(Option::<String>::None))
            .col_expr(run::Column::RequiredAction, Expr::value(Option::<serde_json::Value>::None))
            .col_expr(run::Column::CompletedAt, Expr::value(Some(now())))
            .col_expr(run::Column::UpdatedAt, Expr::value(now()))
            .filter(run::Column::Id.eq(current.id.as_str()))
            .filter(run::Column::Status.eq(RunStatus::RequiresAction.as_str()))
            .exec(&txn)
            .await?;
        if cancelled.rows_affected == 0 {
            return Ok(false);
        }
        approvals::expire_for_run(&txn, &current.id).await?;
        let event = RunEventData::Cancelled(RunCancelledEvent { v: EVENT_VERSION, run_id: current.id.clone() });
        let seq = append_stored(&txn, &current.id, current.last_seq, &event).await?;
        run::Entity::update_many()
            .col_expr(run::Column::LastSeq, Expr::value(seq))
            .filter(run::Column::Id.eq(current.id.as_str()))
            .exec(&txn)
            .await?;
        txn.commit().await?;
        self.thread_released(&current.smith_id, &current.thread_id);
        let released = Some((current.smith_id.clone(), current.thread_id.clone()));
        self.inner.runs.announce(&current.id, released).await;
        Ok(true)
    }

    /// Asks the task executing (or queueing) a run to stop: at once on this replica, at the
    /// next heartbeat on another.
    async fn request_cancel(&self, run_id: &RunId) -> Result<()> {
        run::Entity::update_many()
            .col_expr(run::Column::CancelRequested, Expr::value(true))
            .filter(run::Column::Id.eq(run_id))
            .exec(&self.inner.db)
            .await?;
        if let Some(live) = self.live(run_id) {
            live.cancel.send_replace(true);
        }
        Ok(())
    }

    /// Stops every run of a smith being deleted: queued, paused and running ones. Nothing
    /// waits for a running run to stop, and one run's failure does not spare the others.
    pub async fn cancel_smith_runs(&self, smith_id: &SmithId) -> Result<()> {
        let active = run::Entity::find()
            .filter(run::Column::SmithId.eq(smith_id))
            .filter(run::Column::Status.is_in([
                RunStatus::Queued.as_str(),
                RunStatus::Running.as_str(),
                RunStatus::RequiresAction.as_str(),
            ]))
            .all(&self.inner.db)
            .await?;
        for run in active {
            let paused = run.status == RunStatus::RequiresAction;
            // A paused run resumed meanwhile is running: ask its task instead.
            let stopped = if paused { self.cancel_paused(&run).await } else { Ok(false) };
            let stopped = match stopped {
                Ok(true) => Ok(()),
                Ok(false) => self.request_cancel(&run.id).await,
                Err(err) => Err(err),
            };
            if let Err(err) = stopped {
                tracing::warn!(run_id = %run.id, code = %err.code, "could not cancel a run of a deleted smith");
            }
        }
        Ok(())
    }

    pub fn db(&self) -> &DatabaseConnection {
        &self.inner.db
    }

    pub fn caches(&self) -> &Arc<Caches> {
        &self.inner.caches
    }
}

/// The transcript of a run paused for client tools, with their outputs answered: every call
/// the run asked for, once, in the order the model made them.
fn answered_transcript(
    current: &run::Model,
    action: &RequiredAction,
    outputs: &[ToolOutput],
) -> Result<Vec<crate::providers::Message>> {
    let mut answered = std::collections::HashSet::new();
    for output in outputs {
        if !action.tool_calls.iter().any(|call| call.id == output.tool_call_id) {
            return Err(Error::bad_request(
                "unknown_tool_call",
                format!("The run did not ask for tool call '{}'.", output.tool_call_id),
            )
            .with_param("tool_outputs"));
        }
        if !answered.insert(output.tool_call_id.as_str()) {
            return Err(Error::bad_request(
                "duplicate_tool_output",
                format!("Tool call '{}' is answered twice.", output.tool_call_id),
            )
            .with_param("tool_outputs"));
        }
    }
    if let Some(missing) = action.tool_calls.iter().find(|call| !answered.contains(call.id.as_str())) {
        return Err(Error::bad_request(
            "tool_outputs_incomplete",
            format!("Tool call '{}' has no output.", missing.id),
        )
        .with_param("tool_outputs"));
    }
    let mut transcript: Vec<crate::providers::Message> =
        crate::store::decode_json(&current.id, "transcript", &current.transcript)?;
    // Answers go in the order the model made the calls, whatever order they came in.
    for call in &action.tool_calls {
        let output = outputs.iter().find(|output| output.tool_call_id == call.id).expect("checked above");
        transcript.push(crate::providers::Message::tool_result(&call.id, &output.output));
    }
    Ok(transcript)
}
