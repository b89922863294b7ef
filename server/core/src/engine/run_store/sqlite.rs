//! The run path's writes on SQLite: one thread owns a connection of its own and commits
//! every write waiting at that moment in one transaction (group commit), each in a savepoint
//! so that one write's failure fails only that write. A second thread checkpoints the WAL on
//! a third connection once enough was written, so no request waits behind a checkpoint.
//!
//! The writer speaks to SQLite directly (rusqlite, the same bundled library sqlx links), with
//! no hand-off per statement; what it writes are the rows `store::run` and `store::run_event`
//! describe, encoded as sqlx encodes them (tested in `tests` below).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::{Connection, ErrorCode, params};
use sea_orm::ActiveEnum;
use tokio::sync::{mpsc, oneshot};

use super::Ending;
use crate::engine::live::{LiveRun, StoredEvent};
use crate::error::{Error, Result};
use crate::ids::RunId;
use crate::store::{now, run};
use crate::types::RunStatus;

/// What a run's INSERT or ending is counted as toward the next checkpoint, in bytes.
const ROW_WRITE_ESTIMATE: usize = 4096;
/// Writes one commit takes at most; more wait for the next.
const MAX_BATCH: usize = 512;
/// Bytes of rows written after which the WAL is checkpointed (an estimate of the WAL's
/// growth: its frames are pages, so it grows somewhat faster).
const CHECKPOINT_AFTER_BYTES: usize = 8 * 1024 * 1024;
/// A WAL written to more slowly is checkpointed at least this often.
const CHECKPOINT_PERIOD: Duration = Duration::from_secs(10);
/// What a connection waits for SQLite's write lock, held by a write outside the run path.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// A WAL that grew past this (a burst outrunning the checkpoints) is cut back to it once it
/// starts over.
const WAL_SIZE_LIMIT: &str = "journal_size_limit = 16777216";

enum Write {
    InsertRun {
        row: Box<run::Model>,
        done: oneshot::Sender<Result<()>>,
    },
    /// Published to `live` once committed; nobody waits for the commit itself.
    Append {
        live: Arc<LiveRun>,
        run_id: RunId,
        events: Vec<Arc<StoredEvent>>,
    },
    Record {
        ending: Box<Ending>,
        done: oneshot::Sender<Result<bool>>,
    },
}

/// What one write did inside the batch's transaction.
enum Applied {
    Inserted,
    Appended,
    Recorded(bool),
}

/// The handle the engine holds; the writer thread ends when the last handle is dropped.
pub struct Writer {
    queue: mpsc::UnboundedSender<Write>,
}

fn writer_gone() -> Error {
    Error::internal("The run store's writer stopped.")
}

impl Writer {
    /// Opens the writer's and the checkpointer's connections on the database file at `path`,
    /// whose schema is already migrated.
    pub fn open(path: &Path) -> Result<Self> {
        let connection = open_connection(path).map_err(storage)?;
        let checkpointer = open_connection(path).map_err(storage)?;
        let (ask, asked) = std::sync::mpsc::sync_channel(1);
        let bulk_copied = Arc::new(AtomicBool::new(false));
        let checkpoint = Checkpoints { ask, bulk_copied: bulk_copied.clone() };
        std::thread::Builder::new()
            .name("wal-checkpoint".into())
            .spawn(move || checkpoint_when_asked(&checkpointer, &asked, &bulk_copied))
            .map_err(|err| Error::internal(format!("Could not start the WAL checkpointer: {err}")))?;
        let (queue, writes) = mpsc::unbounded_channel();
        std::thread::Builder::new()
            .name("run-writer".into())
            .spawn(move || serve(&connection, writes, &checkpoint))
            .map_err(|err| Error::internal(format!("Could not start the run writer: {err}")))?;
        Ok(Self { queue })
    }

    pub async fn insert(&self, row: run::Model) -> Result<()> {
        let (done, answer) = oneshot::channel();
        self.queue.send(Write::InsertRun { row: Box::new(row), done }).map_err(|_| writer_gone())?;
        answer.await.map_err(|_| writer_gone())?
    }

    pub fn append(&self, live: &Arc<LiveRun>, run_id: &RunId, events: Vec<Arc<StoredEvent>>) -> Result<()> {
        let write = Write::Append { live: live.clone(), run_id: run_id.clone(), events };
        self.queue.send(write).map_err(|_| writer_gone())
    }

    pub async fn record(&self, ending: Ending) -> Result<bool> {
        let (done, answer) = oneshot::channel();
        self.queue.send(Write::Record { ending: Box::new(ending), done }).map_err(|_| writer_gone())?;
        answer.await.map_err(|_| writer_gone())?
    }
}

fn open_connection(path: &Path) -> rusqlite::Result<Connection> {
    let connection = Connection::open(path)?;
    connection.busy_timeout(BUSY_TIMEOUT)?;
    // The same settings as the pool's connections (db.rs), except that nothing here
    // checkpoints on commit: the checkpointer does, past CHECKPOINT_AFTER_BYTES.
    let settings =
        ["journal_mode = WAL", "synchronous = NORMAL", "foreign_keys = ON", "wal_autocheckpoint = 0", WAL_SIZE_LIMIT];
    for setting in settings {
        pragma(&connection, setting)?;
    }
    connection.set_prepared_statement_cache_capacity(32);
    Ok(connection)
}

/// Runs a PRAGMA, reading whatever it answers.
fn pragma(connection: &Connection, pragma: &str) -> rusqlite::Result<()> {
    let mut statement = connection.prepare(&format!("PRAGMA {pragma}"))?;
    let mut rows = statement.query([])?;
    while rows.next()?.is_some() {}
    Ok(())
}

/// The writer thread: takes what is waiting, commits it as one transaction, answers, again.
fn serve(connection: &Connection, mut writes: mpsc::UnboundedReceiver<Write>, checkpoint: &Checkpoints) {
    let mut batch = Vec::new();
    let mut written = 0usize;
    while let Some(first) = writes.blocking_recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match writes.try_recv() {
                Ok(write) => batch.push(write),
                Err(_) => break,
            }
        }
        written += batch.iter().map(Write::size).sum::<usize>();
        commit(connection, std::mem::take(&mut batch));
        if written >= CHECKPOINT_AFTER_BYTES {
            written = 0;
            checkpoint.ask();
        }
        checkpoint.finish_here(connection);
    }
}

/// Runs one of the statements that open, mark and close transactions, prepared once.
fn control(connection: &Connection, sql: &str) -> rusqlite::Result<()> {
    connection.prepare_cached(sql)?.execute([]).map(|_| ())
}

fn commit(connection: &Connection, batch: Vec<Write>) {
    if let Err(err) = control(connection, "BEGIN IMMEDIATE") {
        let err = storage(err);
        return answer(batch.into_iter().map(|write| (write, Err(err.clone()))));
    }
    let mut results = Vec::with_capacity(batch.len());
    for write in &batch {
        results.push(in_savepoint(connection, |connection| apply(connection, write)));
    }
    if let Err(err) = control(connection, "COMMIT") {
        let _ = control(connection, "ROLLBACK");
        let err = storage(err);
        return answer(batch.into_iter().map(|write| (write, Err(err.clone()))));
    }
    answer(batch.into_iter().zip(results));
}

fn in_savepoint(connection: &Connection, write: impl FnOnce(&Connection) -> Result<Applied>) -> Result<Applied> {
    control(connection, "SAVEPOINT write").map_err(storage)?;
    let result = write(connection);
    if result.is_err() {
        control(connection, "ROLLBACK TO write").map_err(storage)?;
    }
    control(connection, "RELEASE write").map_err(storage)?;
    result
}

fn answer(outcomes: impl Iterator<Item = (Write, Result<Applied>)>) {
    for (write, result) in outcomes {
        match write {
            Write::InsertRun { done, .. } => {
                let _ = done.send(result.map(|_| ()));
            }
            Write::Append { live, run_id, events } => match result {
                Ok(_) => live.publish_all(events),
                Err(err) => {
                    tracing::error!(%run_id, code = %err.code, "could not write a run's events");
                    live.fail_writes();
                }
            },
            Write::Record { done, .. } => {
                let _ = done.send(result.map(|applied| matches!(applied, Applied::Recorded(true))));
            }
        }
    }
}

impl Write {
    /// About what the write adds to the WAL: a run's row touches a page of its table and of
    /// each index; an event is mostly its data.
    fn size(&self) -> usize {
        match self {
            Self::InsertRun { .. } | Self::Record { .. } => ROW_WRITE_ESTIMATE,
            Self::Append { events, .. } => events.iter().map(|event| 64 + event.data.len()).sum(),
        }
    }
}

fn apply(connection: &Connection, write: &Write) -> Result<Applied> {
    match write {
        Write::InsertRun { row, .. } => insert_run(connection, row).map(|()| Applied::Inserted),
        Write::Append { run_id, events, .. } => {
            insert_events(connection, run_id, events)?;
            Ok(Applied::Appended)
        }
        Write::Record { ending, .. } => record(connection, ending).map(Applied::Recorded),
    }
}

fn insert_run(connection: &Connection, row: &run::Model) -> Result<()> {
    let mut insert = connection
        .prepare_cached(
            "INSERT INTO runs (id, project_id, smith_id, thread_id, active_thread_id, status, input, transcript, \
             output, usage, error, required_action, config, client_tools, metadata, stop_reason, replay_of, \
             cancel_requested, lease_owner, lease_until, last_seq, worked_ms, created_at, started_at, completed_at, \
             updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, \
             ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26)",
        )
        .map_err(storage)?;
    let inserted = insert.execute(params![
        row.id.as_str(),
        row.project_id.as_str(),
        row.smith_id.as_str(),
        row.thread_id,
        row.active_thread_id,
        row.status.as_str(),
        row.input.to_string(),
        row.transcript.to_string(),
        json_opt(row.output.as_ref()),
        json_opt(row.usage.as_ref()),
        json_opt(row.error.as_ref()),
        json_opt(row.required_action.as_ref()),
        row.config.to_string(),
        row.client_tools.to_string(),
        json_opt(row.metadata.as_ref()),
        row.stop_reason.map(|reason| reason.to_value()),
        row.replay_of.as_ref().map(|id| id.as_str()),
        row.cancel_requested,
        row.lease_owner,
        row.lease_until.map(timestamp),
        row.last_seq,
        row.worked_ms,
        timestamp(row.created_at),
        row.started_at.map(timestamp),
        row.completed_at.map(timestamp),
        timestamp(row.updated_at),
    ]);
    match inserted {
        Ok(_) => Ok(()),
        Err(err) if err.sqlite_error_code() == Some(ErrorCode::ConstraintViolation) => Err(super::thread_busy()),
        Err(err) => Err(storage(err)),
    }
}

fn insert_events(connection: &Connection, run_id: &RunId, events: &[Arc<StoredEvent>]) -> Result<()> {
    let mut insert = connection
        .prepare_cached("INSERT INTO run_events (run_id, seq, kind, data, created_at) VALUES (?1, ?2, ?3, ?4, ?5)")
        .map_err(storage)?;
    let at = timestamp(now());
    for event in events {
        insert.execute(params![run_id.as_str(), event.seq, event.kind.as_str(), event.data, at]).map_err(storage)?;
    }
    Ok(())
}

/// The ending's row and closing event, if this replica still holds the run.
fn record(connection: &Connection, ending: &Ending) -> Result<bool> {
    let row = &ending.settled;
    let mut update = connection
        .prepare_cached(
            "UPDATE runs SET status = ?1, transcript = ?2, output = ?3, usage = ?4, error = ?5, \
             required_action = ?6, stop_reason = ?7, last_seq = ?8, worked_ms = ?9, lease_owner = ?10, \
             lease_until = ?11, active_thread_id = ?12, started_at = ?13, completed_at = ?14, updated_at = ?15 \
             WHERE id = ?16 AND lease_owner = ?17 AND status IN (?18, ?19)",
        )
        .map_err(storage)?;
    let updated = update
        .execute(params![
            row.status.as_str(),
            row.transcript.to_string(),
            json_opt(row.output.as_ref()),
            json_opt(row.usage.as_ref()),
            json_opt(row.error.as_ref()),
            json_opt(row.required_action.as_ref()),
            row.stop_reason.map(|reason| reason.to_value()),
            row.last_seq,
            row.worked_ms,
            row.lease_owner,
            row.lease_until.map(timestamp),
            row.active_thread_id,
            row.started_at.map(timestamp),
            row.completed_at.map(timestamp),
            timestamp(row.updated_at),
            row.id.as_str(),
            ending.owner,
            RunStatus::Queued.as_str(),
            RunStatus::Running.as_str(),
        ])
        .map_err(storage)?;
    if updated == 0 {
        return Ok(false);
    }
    insert_events(connection, &row.id, std::slice::from_ref(&ending.closing))?;
    Ok(true)
}

/// A timestamp as sqlx writes one to SQLite, so both read and compare the same text.
fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::AutoSi, false)
}

fn json_opt(value: Option<&serde_json::Value>) -> Option<String> {
    value.map(serde_json::Value::to_string)
}

fn storage(err: rusqlite::Error) -> Error {
    if err.sqlite_error_code() == Some(ErrorCode::DatabaseBusy) {
        tracing::warn!(error = %err, "the run store waited too long for SQLite's write lock");
        return Error::new(
            crate::error::ErrorKind::Unavailable,
            "database_unavailable",
            "The database did not answer; retry the request.",
        );
    }
    tracing::error!(error = %err, "run store error");
    Error::internal("The server hit an unexpected database error; the request id identifies it in our logs.")
}

/// How the writer and the checkpointer share the WAL's upkeep. SQLite starts the WAL over
/// (instead of growing it) only at a write that finds every frame copied into the database
/// file; under steady writes a checkpoint beside the writer never quite catches up. So the
/// checkpointer copies the bulk beside the writer (PASSIVE blocks neither the writer nor
/// readers), then the writer, between two commits, copies the few frames written meanwhile,
/// and its next commit starts the WAL over.
struct Checkpoints {
    ask: SyncSender<()>,
    /// Set by the checkpointer once it copied what the writer asked for.
    bulk_copied: Arc<AtomicBool>,
}

impl Checkpoints {
    fn ask(&self) {
        match self.ask.try_send(()) {
            Ok(()) | Err(TrySendError::Full(())) => {}
            Err(TrySendError::Disconnected(())) => tracing::error!("the WAL checkpointer stopped"),
        }
    }

    fn finish_here(&self, connection: &Connection) {
        if self.bulk_copied.swap(false, Ordering::AcqRel) {
            checkpoint(connection);
        }
    }
}

fn checkpoint(connection: &Connection) {
    if let Err(err) = pragma(connection, "wal_checkpoint(PASSIVE)") {
        tracing::warn!(error = %err, "could not checkpoint the SQLite WAL");
    }
}

/// The checkpointer thread: copies the WAL into the database file when the writer asks, and
/// at least every [`CHECKPOINT_PERIOD`].
fn checkpoint_when_asked(connection: &Connection, asked: &Receiver<()>, bulk_copied: &AtomicBool) {
    loop {
        match asked.recv_timeout(CHECKPOINT_PERIOD) {
            Ok(()) | Err(RecvTimeoutError::Timeout) => {
                checkpoint(connection);
                bulk_copied.store(true, Ordering::Release);
            }
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use sea_orm::{EntityTrait, QueryOrder};
    use serde_json::json;

    use super::*;
    use crate::engine::run_store::insert_run;
    use crate::ids::{ProjectId, SmithId};
    use crate::providers::StopReason;
    use crate::store::run_event;
    use crate::types::EventKind;

    fn sample(id: &str, thread: &str) -> run::Model {
        let at = now();
        run::Model {
            id: RunId::from(id),
            project_id: ProjectId::from("proj_1"),
            smith_id: SmithId::from("smith_1"),
            thread_id: thread.to_owned(),
            active_thread_id: Some(thread.to_owned()),
            status: RunStatus::Running,
            input: json!([{"role": "user", "content": "héllo \"quoted\""}]),
            transcript: json!([]),
            output: None,
            usage: None,
            error: None,
            required_action: None,
            config: json!({"model": "ingram/echo", "n": 1.5}),
            client_tools: json!([]),
            metadata: Some(json!({"k": "v"})),
            stop_reason: None,
            replay_of: Some(RunId::from("run_0")),
            cancel_requested: false,
            lease_owner: Some("replica_a".to_owned()),
            lease_until: Some(at + chrono::Duration::seconds(30)),
            last_seq: 0,
            worked_ms: 0,
            created_at: at,
            started_at: Some(at),
            completed_at: None,
            updated_at: at,
        }
    }

    async fn database() -> (tempfile::TempDir, sea_orm::DatabaseConnection, std::path::PathBuf) {
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = dir.path().join("runs.db");
        let db = crate::db::connect(&format!("sqlite://{}?mode=rwc", path.display())).await.expect("it opens");
        (dir, db, path)
    }

    fn raw_row(path: &Path, id: &str) -> Vec<rusqlite::types::Value> {
        let connection = Connection::open(path).expect("it opens");
        let mut statement = connection.prepare("SELECT * FROM runs WHERE id = ?1").expect("it prepares");
        let columns = statement.column_count();
        statement.query_row([id], |row| (0..columns).map(|index| row.get(index)).collect()).expect("the row is there")
    }

    #[tokio::test]
    async fn the_writer_writes_the_rows_sea_orm_writes_and_reads() {
        let (_dir, db, path) = database().await;
        let writer = Writer::open(&path).expect("the writer opens");
        let by_sea_orm = sample("run_a", "thread_a");
        let by_writer = run::Model {
            id: RunId::from("run_b"),
            thread_id: "thread_b".into(),
            active_thread_id: Some("thread_b".into()),
            ..by_sea_orm.clone()
        };
        insert_run(&db, by_sea_orm.clone()).await.expect("sea-orm inserts");
        writer.insert(by_writer.clone()).await.expect("the writer inserts");
        let (mut a, mut b) = (raw_row(&path, "run_a"), raw_row(&path, "run_b"));
        // Every column but the id and the thread is the same value, stored the same way.
        for row in [&mut a, &mut b] {
            row.drain(0..1);
        }
        let differing: Vec<usize> = (0..a.len()).filter(|&index| a[index] != b[index]).collect();
        assert_eq!(differing, vec![2, 3], "only thread_id and active_thread_id differ: {a:?} vs {b:?}");
        assert_eq!(run::Entity::find_by_id("run_b").one(&db).await.unwrap(), Some(by_writer.clone()));

        let live = LiveRun::new(1);
        let event = |seq: i32, kind: EventKind| Arc::new(StoredEvent { seq, kind, data: format!("{{\"seq\":{seq}}}") });
        writer.append(&live, &by_writer.id, vec![event(1, EventKind::Started)]).expect("queued");
        let settled = run::Model {
            status: RunStatus::Completed,
            transcript: json!([{"role": "assistant", "content": "hi"}]),
            output: Some(json!({"content": "hi", "tool_calls": []})),
            usage: Some(json!({"input_tokens": 1})),
            stop_reason: Some(StopReason::EndTurn),
            last_seq: 2,
            worked_ms: 7,
            lease_owner: None,
            lease_until: None,
            active_thread_id: None,
            completed_at: Some(now()),
            updated_at: now(),
            ..by_writer.clone()
        };
        let ending = |owner: &str| Ending {
            settled: settled.clone(),
            owner: owner.to_owned(),
            closing: event(2, EventKind::Completed),
        };
        assert!(!writer.record(ending("replica_b")).await.unwrap(), "another replica's ending does not count");
        assert!(writer.record(ending("replica_a")).await.unwrap());
        assert_eq!(run::Entity::find_by_id("run_b").one(&db).await.unwrap(), Some(settled));
        let events = run_event::Entity::find().order_by_asc(run_event::Column::Seq).all(&db).await.unwrap();
        let read: Vec<(i32, EventKind, String)> = events.into_iter().map(|e| (e.seq, e.kind, e.data)).collect();
        assert_eq!(
            read,
            vec![(1, EventKind::Started, "{\"seq\":1}".into()), (2, EventKind::Completed, "{\"seq\":2}".into())]
        );
        assert_eq!(live.events_after(0).len(), 1, "the appended event was published once committed");
    }

    #[tokio::test]
    async fn one_failing_write_fails_alone_in_its_commit() {
        let (_dir, _db, path) = database().await;
        let writer = Arc::new(Writer::open(&path).expect("the writer opens"));
        let inserts = (0..40).map(|n| {
            let writer = writer.clone();
            // Runs 0 and 1 want the same active thread: exactly one of them gets it.
            let thread = if n < 2 { "shared".to_owned() } else { format!("thread_{n}") };
            tokio::spawn(async move { writer.insert(sample(&format!("run_{n:02}"), &thread)).await })
        });
        let results: Vec<Result<()>> =
            futures::future::join_all(inserts).await.into_iter().map(|r| r.unwrap()).collect();
        let busy: Vec<&str> = results.iter().filter_map(|r| r.as_ref().err()).map(|err| err.code.as_ref()).collect();
        assert_eq!(busy, vec!["thread_busy"]);
        let connection = Connection::open(&path).unwrap();
        let count: i64 = connection.query_row("SELECT count(*) FROM runs", [], |row| row.get(0)).unwrap();
        assert_eq!(count, 39);
    }
}
