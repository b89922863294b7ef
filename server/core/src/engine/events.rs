//! A run's events: numbered, persisted, and fanned out to subscribers.
//!
//! The run's task owns an [`Emitter`]. Every event is committed to the `run_events` table
//! ([`super::run_store`]) before it enters the run's in-memory log, where subscribers on this
//! replica read it (by index: they can never lag); so whatever a client saw, a replay after a
//! crash has too. The closing event is committed with the run's outcome. Subscribers on
//! another replica read the table, woken by the run's notifications ([`super::wakeups`]).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use tokio::sync::watch;

pub use super::live::{LiveRun, StoredEvent};
use super::run_store::{EventSink, RunStore};
use super::wakeups::Wakeups;
use crate::error::{Error, Result};
use crate::ids::RunId;
use crate::store::{now, run, run_event};
use crate::types::{RunEventData, RunStatus};

/// How long a subscriber without a local log waits for a notification before it reads the
/// table anyway (the backstop for a lost one; on SQLite, the only way to hear of a run
/// executing in another process).
const POLL_BACKSTOP: Duration = Duration::from_secs(1);

/// Numbers, writes and publishes one run's events.
pub struct Emitter {
    live: Arc<LiveRun>,
    sink: EventSink,
    seq: i32,
}

impl Emitter {
    pub fn new(run_id: &RunId, live: Arc<LiveRun>, store: &RunStore) -> Self {
        let seq = live.first_seq - 1;
        let sink = store.events(run_id, &live);
        Self { live, sink, seq }
    }

    pub fn last_seq(&self) -> i32 {
        self.seq
    }

    /// Hands the event to the run store; it is published once committed.
    pub fn emit(&mut self, data: RunEventData) -> Result<()> {
        if self.live.writes_failed() {
            return Err(Error::internal("The run's events could not be written."));
        }
        let event = self.stage(data);
        self.sink.append(event)
    }

    /// Writes how the execution ended, after every event emitted (see [`EventSink::finish`]).
    pub async fn finish(&self, ending: super::run_store::Ending) -> Result<bool> {
        self.sink.finish(ending).await
    }

    /// Numbers an event without writing it: a closing event, written with the run's outcome
    /// and published once that committed, so nobody sees it before the run's row says so.
    pub fn stage(&mut self, data: RunEventData) -> Arc<StoredEvent> {
        self.seq += 1;
        let kind = data.kind();
        let data = serde_json::to_string(&data).expect("events serialize");
        Arc::new(StoredEvent { seq: self.seq, kind, data })
    }

    /// Publishes the closing event of an execution together with the row it committed, so
    /// a waiter that sees the one has the other without reading it back.
    pub fn settle(&self, row: run::Model, closing: Arc<StoredEvent>) {
        let _ = self.live.settled.set(row);
        self.live.publish_all(vec![closing]);
    }
}

/// Appends one event to a run that no task is executing (a paused run cancelled, a run
/// failed by the sweeper), numbered after the last stored one and after `reserved`.
pub async fn append_stored(
    db: &impl ConnectionTrait,
    run_id: &RunId,
    reserved: i32,
    data: &RunEventData,
) -> Result<i32> {
    let last: Option<i32> = run_event::Entity::find()
        .select_only()
        .column_as(run_event::Column::Seq.max(), "max")
        .filter(run_event::Column::RunId.eq(run_id))
        .into_tuple()
        .one(db)
        .await?
        .flatten();
    let seq = last.unwrap_or(0).max(reserved) + 1;
    run_event::Entity::insert(run_event::ActiveModel {
        run_id: Set(run_id.clone()),
        seq: Set(seq),
        kind: Set(data.kind()),
        data: Set(serde_json::to_string(data).expect("events serialize")),
        created_at: Set(now()),
    })
    .exec_without_returning(db)
    .await?;
    Ok(seq)
}

pub async fn stored_after(
    db: &DatabaseConnection,
    run_id: &RunId,
    after: i32,
    before: Option<i32>,
) -> Result<Vec<Arc<StoredEvent>>> {
    let mut query =
        run_event::Entity::find().filter(run_event::Column::RunId.eq(run_id)).filter(run_event::Column::Seq.gt(after));
    if let Some(before) = before {
        query = query.filter(run_event::Column::Seq.lt(before));
    }
    let rows = query.order_by_asc(run_event::Column::Seq).limit(1000).all(db).await?;
    Ok(rows.into_iter().map(|row| Arc::new(StoredEvent::from(row))).collect())
}

/// A run's events decoded, for surfaces that answer in their own wire: opened only once the
/// run has answered (a run that failed first is its error instead), then read to the end.
pub struct DecodedEvents {
    opening: std::vec::IntoIter<RunEventData>,
    subscription: Subscription,
}

impl DecodedEvents {
    /// Reads until the first event after `run.started`: a run that failed before answering
    /// is its recorded error, so the surface can answer with an HTTP error instead of a stream.
    pub async fn open(mut subscription: Subscription) -> Result<Self> {
        let mut opening = Vec::new();
        while let Some(event) = subscription.next().await? {
            let event = event.decode()?;
            if let RunEventData::Failed(failed) = event {
                return Err(Error::from_recorded(failed.error));
            }
            let started = matches!(event, RunEventData::Started(_));
            opening.push(event);
            if !started {
                break;
            }
        }
        Ok(Self { opening: opening.into_iter(), subscription })
    }

    /// The next event; `None` once the stream ended, or when it breaks off or an event does
    /// not decode (the response is already streaming: it can only end).
    pub async fn next(&mut self) -> Option<RunEventData> {
        if let Some(event) = self.opening.next() {
            return Some(event);
        }
        let read = match self.subscription.next().await {
            Ok(event) => event.map(|event| event.decode()).transpose(),
            Err(err) => Err(err),
        };
        read.unwrap_or_else(|err| {
            tracing::error!(run_id = %self.subscription.run_id, code = %err.code, "a run's stream ended early");
            None
        })
    }
}

/// Follows a run's events after `after` until its stream ends (the run finished or paused).
pub struct Subscription {
    db: DatabaseConnection,
    wakeups: Arc<Wakeups>,
    run_id: RunId,
    last: i32,
    buffer: VecDeque<Arc<StoredEvent>>,
    live: Option<(Arc<LiveRun>, watch::Receiver<u64>)>,
    lookup_live: Box<dyn Fn() -> Option<Arc<LiveRun>> + Send>,
    done: bool,
    /// The client stream's place in its project's capacity, if it is one.
    _slot: Option<super::capacity::Slot>,
}

impl Subscription {
    /// Holds `slot` for as long as the subscription lives.
    pub fn holding(mut self, slot: super::capacity::Slot) -> Self {
        self._slot = Some(slot);
        self
    }

    pub async fn new(
        db: DatabaseConnection,
        wakeups: Arc<Wakeups>,
        run_id: RunId,
        after: i32,
        lookup_live: Box<dyn Fn() -> Option<Arc<LiveRun>> + Send>,
    ) -> Result<Self> {
        let mut subscription = Self {
            db,
            wakeups,
            run_id,
            last: after,
            buffer: VecDeque::new(),
            live: None,
            lookup_live,
            done: false,
            _slot: None,
        };
        if let Some(live) = (subscription.lookup_live)() {
            // What came before this execution of the run is in the database already.
            let mut cursor = after;
            while cursor + 1 < live.first_seq {
                let earlier =
                    stored_after(&subscription.db, &subscription.run_id, cursor, Some(live.first_seq)).await?;
                let Some(last) = earlier.last() else { break };
                cursor = last.seq;
                subscription.buffer.extend(earlier);
            }
            let version = live.version.subscribe();
            subscription.live = Some((live, version));
        }
        Ok(subscription)
    }

    pub async fn next(&mut self) -> Result<Option<Arc<StoredEvent>>> {
        loop {
            if let Some(event) = self.buffer.pop_front() {
                if event.seq <= self.last {
                    continue;
                }
                self.last = event.seq;
                if event.kind.ends_stream() {
                    self.done = true;
                    self.buffer.clear();
                }
                return Ok(Some(event));
            }
            if self.done {
                return Ok(None);
            }
            if let Some((live, version)) = &mut self.live {
                let fresh = live.events_after(self.last);
                if !fresh.is_empty() {
                    self.buffer.extend(fresh);
                    continue;
                }
                if live.is_closed() {
                    // The task ended: whatever it emitted is in the log or the database.
                    self.live = None;
                    continue;
                }
                let _ = version.changed().await;
                continue;
            }
            // Watched before reading, so news in between wakes the wait below; the status is
            // read before the rows, so a run that ended in between has its closing event read.
            let mut news = self.wakeups.watch(&self.run_id);
            let status = run::Entity::find_by_id(self.run_id.as_str()).one(&self.db).await?.map(|run| run.status);
            let rows = stored_after(&self.db, &self.run_id, self.last, None).await?;
            if !rows.is_empty() {
                self.buffer.extend(rows);
                continue;
            }
            if let Some(live) = (self.lookup_live)() {
                let version = live.version.subscribe();
                self.live = Some((live, version));
                continue;
            }
            if status.is_none_or(|status| status.is_terminal() || status == RunStatus::RequiresAction) {
                // Nothing more will come (a stream whose end was already read, or a run that
                // paused or ended before `after`).
                return Ok(None);
            }
            let _ = tokio::time::timeout(POLL_BACKSTOP, news.changed()).await;
        }
    }
}
