//! The in-memory side of a run executing on this replica: its log of committed events, which
//! the streams here read by index, and its cancel switch.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use crate::error::{Error, Result};
use crate::store::{run, run_event};
use crate::types::{EventKind, RunEventData};

#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    pub seq: i32,
    pub kind: EventKind,
    /// The frame's JSON data, serialized once.
    pub data: String,
}

impl StoredEvent {
    /// The event as its typed variant; a stored event that does not decode is an error
    /// naming it, never a default.
    pub fn decode(&self) -> Result<RunEventData> {
        RunEventData::decode(self.kind, &self.data).map_err(|why| {
            Error::internal(format!("Stored event {} ({}) is corrupt: {why}", self.seq, self.kind.as_str()))
        })
    }
}

impl From<run_event::Model> for StoredEvent {
    fn from(model: run_event::Model) -> Self {
        Self { seq: model.seq, kind: model.kind, data: model.data }
    }
}

/// The in-memory side of a run executing on this replica.
pub struct LiveRun {
    log: Mutex<Vec<Arc<StoredEvent>>>,
    /// The sequence number of the first event in `log`; earlier ones are in the database.
    pub(super) first_seq: i32,
    /// Bumped on every append and when the run's task ends.
    pub(super) version: watch::Sender<u64>,
    closed: AtomicBool,
    /// An event could not be written: the run fails at its next event rather than go on with
    /// a gap in its stream.
    writes_failed: AtomicBool,
    /// The run's row as this execution recorded it, once it finished or paused.
    pub(super) settled: std::sync::OnceLock<run::Model>,
    pub cancel: watch::Sender<bool>,
}

impl LiveRun {
    pub fn new(first_seq: i32) -> Arc<Self> {
        Arc::new(Self {
            log: Mutex::new(Vec::new()),
            first_seq,
            version: watch::channel(0).0,
            closed: false.into(),
            writes_failed: false.into(),
            settled: std::sync::OnceLock::new(),
            cancel: watch::channel(false).0,
        })
    }

    /// Publishes committed events to the run's subscribers here.
    pub fn publish_all(&self, events: Vec<Arc<StoredEvent>>) {
        self.log.lock().unwrap_or_else(|p| p.into_inner()).extend(events);
        self.version.send_modify(|v| *v += 1);
    }

    pub(super) fn fail_writes(&self) {
        self.writes_failed.store(true, Ordering::SeqCst);
    }

    pub(super) fn writes_failed(&self) -> bool {
        self.writes_failed.load(Ordering::SeqCst)
    }

    pub fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.version.send_modify(|v| *v += 1);
    }

    /// The run as this execution left it, after its closing event was published.
    pub fn settled(&self) -> Option<run::Model> {
        self.settled.get().cloned()
    }

    pub(super) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    pub(crate) fn events_after(&self, seq: i32) -> Vec<Arc<StoredEvent>> {
        let log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        let start = usize::try_from(seq + 1 - self.first_seq).unwrap_or(0).min(log.len());
        log[start..].to_vec()
    }
}
