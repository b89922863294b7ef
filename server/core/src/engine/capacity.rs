//! Per-project caps on what a project holds on this replica at once: runs executing, runs
//! queued behind their thread, and open event streams. Over a cap, the request is refused
//! as `rate_limited` (with a retry delay) before anything is written.
//!
//! The counts live in memory: they bound each replica (so N replicas allow N times the cap)
//! and cost nothing on the run path. docs/security.md says so.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::error::Error;
use crate::ids::ProjectId;
use crate::settings::CapacityLimits;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotKind {
    ActiveRun,
    QueuedRun,
    Stream,
}

impl SlotKind {
    fn what(self) -> &'static str {
        match self {
            Self::ActiveRun => "runs executing at once",
            Self::QueuedRun => "runs queued at once",
            Self::Stream => "open event streams",
        }
    }
}

#[derive(Default)]
struct Counts {
    active_runs: u32,
    queued_runs: u32,
    streams: u32,
}

impl Counts {
    fn of(&mut self, kind: SlotKind) -> &mut u32 {
        match kind {
            SlotKind::ActiveRun => &mut self.active_runs,
            SlotKind::QueuedRun => &mut self.queued_runs,
            SlotKind::Stream => &mut self.streams,
        }
    }
}

/// How long a refused caller is told to wait.
const RETRY_AFTER: Duration = Duration::from_secs(1);

pub struct Capacity {
    limits: CapacityLimits,
    counts: Mutex<HashMap<ProjectId, Counts>>,
}

/// One unit of a project's capacity, given back when dropped.
pub struct Slot {
    capacity: Arc<Capacity>,
    project_id: ProjectId,
    kind: SlotKind,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = self.capacity.counts.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(project) = counts.get_mut(&self.project_id) {
            let count = project.of(self.kind);
            *count = count.saturating_sub(1);
            if project.active_runs == 0 && project.queued_runs == 0 && project.streams == 0 {
                counts.remove(&self.project_id);
            }
        }
    }
}

impl Capacity {
    pub fn new(limits: CapacityLimits) -> Arc<Self> {
        Arc::new(Self { limits, counts: Mutex::new(HashMap::new()) })
    }

    fn limit(&self, kind: SlotKind) -> u32 {
        match kind {
            SlotKind::ActiveRun => self.limits.active_runs,
            SlotKind::QueuedRun => self.limits.queued_runs,
            SlotKind::Stream => self.limits.streams,
        }
    }

    /// Takes a slot, or refuses with 429 when the project holds its cap of this kind.
    pub fn acquire(self: &Arc<Self>, project_id: &ProjectId, kind: SlotKind) -> Result<Slot, Error> {
        let limit = self.limit(kind);
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let count = counts.entry(project_id.to_owned()).or_default().of(kind);
        if *count >= limit {
            return Err(Error::rate_limited(
                format!("This project has reached its limit of {limit} {}; retry shortly.", kind.what()),
                RETRY_AFTER,
            ));
        }
        *count += 1;
        Ok(Slot { capacity: self.clone(), project_id: project_id.to_owned(), kind })
    }

    /// Takes a slot whatever the cap: for work admitted already, which must not be left
    /// waiting (a run whose last approval expired resumes even on a busy replica).
    pub fn take(self: &Arc<Self>, project_id: &ProjectId, kind: SlotKind) -> Slot {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        *counts.entry(project_id.to_owned()).or_default().of(kind) += 1;
        Slot { capacity: self.clone(), project_id: project_id.to_owned(), kind }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_counted_per_project_and_given_back() {
        let capacity = Capacity::new(CapacityLimits { active_runs: 2, queued_runs: 0, streams: 1 });
        let (p1, p2) = (ProjectId::from("prj_1"), ProjectId::from("prj_2"));
        let a = capacity.acquire(&p1, SlotKind::ActiveRun).unwrap();
        let _b = capacity.acquire(&p1, SlotKind::ActiveRun).unwrap();
        assert_eq!(capacity.acquire(&p1, SlotKind::ActiveRun).err().unwrap().code, "rate_limited");
        let _other = capacity.acquire(&p2, SlotKind::ActiveRun).unwrap();
        assert!(capacity.acquire(&p1, SlotKind::QueuedRun).is_err());
        drop(a);
        let _c = capacity.acquire(&p1, SlotKind::ActiveRun).unwrap();
        let _stream = capacity.acquire(&p1, SlotKind::Stream).unwrap();
        assert!(capacity.acquire(&p1, SlotKind::Stream).is_err());
    }
}
