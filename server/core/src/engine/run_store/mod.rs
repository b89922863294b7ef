//! Where the run path writes: a run's row when it starts, each event before anyone sees it,
//! and how an execution ended. Everything else about runs goes through sea-orm.
//!
//! - SQLite: one writer thread with group commit ([`sqlite`]).
//! - PostgreSQL: each step is one statement on a pool of its own whose commits do not wait
//!   for the WAL flush (`synchronous_commit = off`, docs/runs.md); a run's events are written
//!   by a task of the run's own, every event waiting at that moment in one statement that also
//!   announces them with a NOTIFY, so streams on other replicas hear of them at once
//!   ([`super::listener`]). Either way the run goes on while its events are written.

mod sqlite;

use std::sync::Arc;

use sea_orm::sqlx::postgres::PgPoolOptions;
use sea_orm::{
    ActiveEnum, ActiveModelTrait, ConnectionTrait, DatabaseBackend, DatabaseConnection, SqlxPostgresConnector,
    Statement, Value,
};
use tokio::sync::{mpsc, oneshot};

use super::live::{LiveRun, StoredEvent};
use crate::domain::is_unique_violation;
use crate::error::{Error, Result};
use crate::ids::{RunId, SmithId};
use crate::store::{now, run};
use crate::types::RunStatus;

/// The PostgreSQL channel run events are announced on.
pub const EVENTS_CHANNEL: &str = "ingram_events";
/// Connections of the PostgreSQL run store's own pool.
const POSTGRES_CONNECTIONS: u32 = 16;

/// How an execution ended: the run's row as it reads once recorded, and its closing event.
pub struct Ending {
    pub settled: run::Model,
    /// The replica that must still hold the run's lease for the ending to count.
    pub owner: String,
    pub closing: Arc<StoredEvent>,
}

#[derive(Clone)]
pub enum RunStore {
    Sqlite(Arc<sqlite::Writer>),
    Postgres(DatabaseConnection),
}

pub(super) fn thread_busy() -> Error {
    Error::conflict("thread_busy", "The thread has an active run; wait for it, or pass on_busy: enqueue or interrupt.")
}

/// What a notification on [`EVENTS_CHANNEL`] says: the run has new events and, when it
/// released its thread, which one (so queued runs on other replicas wake).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announcement {
    pub run_id: RunId,
    pub released: Option<(SmithId, String)>,
}

impl Announcement {
    fn encode(&self) -> String {
        match &self.released {
            None => self.run_id.to_string(),
            // Thread ids have no control characters (start::validate_thread_id).
            Some((smith_id, thread_id)) => format!("{}\t{smith_id}\t{thread_id}", self.run_id),
        }
    }

    pub fn decode(payload: &str) -> Option<Self> {
        let mut parts = payload.splitn(3, '\t');
        let run_id = RunId::from(parts.next().filter(|id| !id.is_empty())?);
        let released = match (parts.next(), parts.next()) {
            (None, _) => None,
            (Some(smith_id), Some(thread_id)) => Some((SmithId::from(smith_id), thread_id.to_owned())),
            (Some(_), None) => return None,
        };
        Some(Self { run_id, released })
    }
}

impl RunStore {
    /// The store for the database `db` is connected to (its schema migrated).
    pub fn open(db: &DatabaseConnection) -> Result<Self> {
        match db.get_database_backend() {
            DatabaseBackend::Sqlite => {
                let options = db.get_sqlite_connection_pool().connect_options();
                Ok(Self::Sqlite(Arc::new(sqlite::Writer::open(options.get_filename())?)))
            }
            DatabaseBackend::Postgres => {
                let options = (*db.get_postgres_connection_pool().connect_options())
                    .clone()
                    .options([("synchronous_commit", "off")]);
                let pool = PgPoolOptions::new()
                    .max_connections(POSTGRES_CONNECTIONS)
                    .test_before_acquire(false)
                    .connect_lazy_with(options);
                Ok(Self::Postgres(SqlxPostgresConnector::from_sqlx_postgres_pool(pool)))
            }
            other => Err(Error::internal(format!("No run store for {other:?}."))),
        }
    }

    /// Writes a new run; `thread_busy` when its thread has an active run.
    pub async fn insert(&self, row: run::Model) -> Result<()> {
        match self {
            Self::Sqlite(writer) => writer.insert(row).await,
            Self::Postgres(db) => insert_run(db, row).await,
        }
    }

    /// Where one run's events go: each is written, then published to the run's subscribers
    /// here once committed, in order.
    pub fn events(&self, run_id: &RunId, live: &Arc<LiveRun>) -> EventSink {
        match self {
            Self::Sqlite(writer) => {
                EventSink::Sqlite { writer: writer.clone(), run_id: run_id.clone(), live: live.clone() }
            }
            Self::Postgres(db) => {
                let (queue, pending) = mpsc::unbounded_channel();
                tokio::spawn(write_events(db.clone(), run_id.clone(), live.clone(), pending));
                EventSink::Postgres(queue)
            }
        }
    }

    /// Tells the other replicas a run has new events written outside this store (a paused run
    /// cancelled, a run failed by the sweeper).
    pub async fn announce(&self, run_id: &RunId, released: Option<(SmithId, String)>) {
        let Self::Postgres(db) = self else { return };
        let announcement = Announcement { run_id: run_id.clone(), released };
        let notify = Statement::from_sql_and_values(
            DatabaseBackend::Postgres,
            "SELECT pg_notify($1, $2)",
            [EVENTS_CHANNEL.into(), announcement.encode().into()],
        );
        if let Err(err) = db.execute_raw(notify).await {
            tracing::warn!(%run_id, %err, "could not announce a run's events; other replicas find them by polling");
        }
    }
}

/// One run's events on their way to the database.
pub enum EventSink {
    /// The writer keeps the order of everything sent to it: the run's ending comes after.
    Sqlite {
        writer: Arc<sqlite::Writer>,
        run_id: RunId,
        live: Arc<LiveRun>,
    },
    Postgres(mpsc::UnboundedSender<Pending>),
}

/// What a run's event task receives: an event to write, or the run's ending, written with
/// the events still waiting.
pub enum Pending {
    Event(Arc<StoredEvent>),
    Ending(Box<Ending>, oneshot::Sender<Result<bool>>),
}

fn events_task_gone() -> Error {
    Error::internal("A run's event writer stopped.")
}

impl EventSink {
    /// Hands the event over; it is published once committed.
    pub fn append(&self, event: Arc<StoredEvent>) -> Result<()> {
        match self {
            Self::Sqlite { writer, run_id, live } => writer.append(live, run_id, vec![event]),
            Self::Postgres(queue) => queue.send(Pending::Event(event)).map_err(|_| events_task_gone()),
        }
    }

    /// Writes how the execution ended, after every event handed over, if this replica still
    /// holds the run (false when its lease lapsed and another replica failed it: that outcome
    /// stands).
    pub async fn finish(&self, ending: Ending) -> Result<bool> {
        match self {
            Self::Sqlite { writer, .. } => writer.record(ending).await,
            Self::Postgres(queue) => {
                let (done, answer) = oneshot::channel();
                queue.send(Pending::Ending(Box::new(ending), done)).map_err(|_| events_task_gone())?;
                answer.await.map_err(|_| events_task_gone())?
            }
        }
    }
}

/// A run's event task on PostgreSQL: writes every event waiting at that moment in one
/// statement, with its NOTIFY, then publishes them; the ending goes in the statement of the
/// events still waiting with it. Ends with the run's sink.
async fn write_events(
    db: DatabaseConnection,
    run_id: RunId,
    live: Arc<LiveRun>,
    mut pending: mpsc::UnboundedReceiver<Pending>,
) {
    let mut failed: Option<Error> = None;
    while let Some(first) = pending.recv().await {
        let mut batch = vec![first];
        while let Ok(next) = pending.try_recv() {
            batch.push(next);
        }
        let mut events = Vec::new();
        let mut ending = None;
        for pending in batch {
            match pending {
                Pending::Event(event) => events.push(event),
                Pending::Ending(written, done) => ending = Some((written, done)),
            }
        }
        if let Some(err) = &failed {
            if let Some((_, done)) = ending {
                let _ = done.send(Err(err.clone()));
            }
            continue;
        }
        match ending {
            Some((ending, done)) => {
                let recorded = record(&db, &events, &ending).await;
                if recorded.is_ok() {
                    live.publish_all(events);
                }
                let _ = done.send(recorded);
            }
            None => match insert_events(&db, &run_id, &events).await {
                Ok(()) => live.publish_all(events),
                Err(err) => {
                    tracing::error!(%run_id, code = %err.code, "could not write a run's events");
                    live.fail_writes();
                    failed = Some(err);
                }
            },
        }
    }
}

async fn insert_events(db: &DatabaseConnection, run_id: &RunId, events: &[Arc<StoredEvent>]) -> Result<()> {
    let announcement = Announcement { run_id: run_id.clone(), released: None };
    let mut values: Vec<Value> =
        vec![EVENTS_CHANNEL.into(), announcement.encode().into(), run_id.as_str().into(), now().into()];
    let rows = event_rows(&mut values, events, "$3", "$4");
    let sql = format!(
        "WITH written AS (INSERT INTO run_events (run_id, seq, kind, data, created_at) VALUES {rows}) \
         SELECT pg_notify($1, $2)"
    );
    db.execute_raw(Statement::from_sql_and_values(DatabaseBackend::Postgres, sql, values)).await?;
    Ok(())
}

/// The VALUES rows of `events` for `run_events`, their fields bound after `values`; the run id
/// and the creation time are the parameters `run_id` and `created_at`, bound already.
fn event_rows(values: &mut Vec<Value>, events: &[Arc<StoredEvent>], run_id: &str, created_at: &str) -> String {
    let mut rows = Vec::with_capacity(events.len());
    for event in events {
        let at = values.len();
        rows.push(format!("({run_id}, ${}, ${}, ${}, {created_at})", at + 1, at + 2, at + 3));
        values.extend([event.seq.into(), event.kind.as_str().into(), event.data.as_str().into()]);
    }
    rows.join(", ")
}

/// Inserts a run through sea-orm; `thread_busy` when its thread has an active run.
pub(super) async fn insert_run(db: &impl ConnectionTrait, row: run::Model) -> Result<()> {
    match run::ActiveModel::from(row).reset_all().insert(db).await {
        Ok(_) => Ok(()),
        Err(err) if is_unique_violation(&err) => Err(thread_busy()),
        Err(err) => Err(err.into()),
    }
}

/// The events still waiting, the row and its closing event, in one statement that announces
/// them too.
async fn record(db: &DatabaseConnection, events: &[Arc<StoredEvent>], ending: &Ending) -> Result<bool> {
    let row = &ending.settled;
    let released = (row.status.is_terminal()).then(|| (row.smith_id.clone(), row.thread_id.clone()));
    let announcement = Announcement { run_id: row.id.clone(), released };
    let mut values: Vec<Value> = vec![
        row.status.as_str().into(),
        row.transcript.clone().into(),
        row.output.clone().into(),
        row.usage.clone().into(),
        row.error.clone().into(),
        row.required_action.clone().into(),
        row.stop_reason.map(|reason| reason.to_value()).into(),
        row.last_seq.into(),
        row.worked_ms.into(),
        row.lease_owner.clone().into(),
        row.lease_until.into(),
        row.active_thread_id.clone().into(),
        row.started_at.into(),
        row.completed_at.into(),
        row.updated_at.into(),
        row.id.as_str().into(),
        ending.owner.as_str().into(),
        RunStatus::Queued.as_str().into(),
        RunStatus::Running.as_str().into(),
        ending.closing.seq.into(),
        ending.closing.kind.as_str().into(),
        ending.closing.data.as_str().into(),
        EVENTS_CHANNEL.into(),
        announcement.encode().into(),
    ];
    // The waiting events are written whatever becomes of the ending: they were emitted.
    let mut waiting = String::new();
    if !events.is_empty() {
        let rows = event_rows(&mut values, events, "$16", "$15");
        waiting = format!("waiting AS (INSERT INTO run_events (run_id, seq, kind, data, created_at) VALUES {rows}), ");
    }
    let statement = Statement::from_sql_and_values(
        DatabaseBackend::Postgres,
        format!(
            "WITH {waiting}updated AS (UPDATE runs SET status = $1, transcript = $2, output = $3, usage = $4, error = $5, \
         required_action = $6, stop_reason = $7, last_seq = $8, worked_ms = $9, lease_owner = $10, \
         lease_until = $11, active_thread_id = $12, started_at = $13, completed_at = $14, updated_at = $15 \
         WHERE id = $16 AND lease_owner = $17 AND status IN ($18, $19) RETURNING id, updated_at), \
         written AS (INSERT INTO run_events (run_id, seq, kind, data, created_at) \
         SELECT id, $20, $21, $22, updated_at FROM updated) \
         SELECT pg_notify($23, $24) FROM updated"
        ),
        values,
    );
    Ok(!db.query_all_raw(statement).await?.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_announcement_travels_as_text_and_back() {
        for announcement in [
            Announcement { run_id: RunId::from("run_1"), released: None },
            Announcement {
                run_id: RunId::from("run_1"),
                released: Some((SmithId::from("smith_1"), "a thread with spaces".to_owned())),
            },
        ] {
            assert_eq!(Announcement::decode(&announcement.encode()), Some(announcement));
        }
        assert_eq!(Announcement::decode(""), None);
        assert_eq!(Announcement::decode("run_1\tsmith_1"), None);
    }
}
