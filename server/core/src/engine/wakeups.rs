//! Streams that follow a run executing on another replica read its events from the table;
//! they sleep until the listener ([`super::listener`]) hears the run has new ones.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::watch;

use crate::ids::RunId;

/// Past this many runs watched, entries nobody waits on any more are dropped.
const TIDY_ABOVE: usize = 1024;

#[derive(Default)]
pub struct Wakeups {
    runs: Mutex<HashMap<RunId, watch::Sender<u64>>>,
}

impl Wakeups {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<RunId, watch::Sender<u64>>> {
        self.runs.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Changes when the run has news; take it before reading, so news in between is not missed.
    pub fn watch(&self, run_id: &RunId) -> watch::Receiver<u64> {
        let mut runs = self.lock();
        if runs.len() > TIDY_ABOVE {
            runs.retain(|_, sender| sender.receiver_count() > 0);
        }
        runs.entry(run_id.clone()).or_insert_with(|| watch::channel(0).0).subscribe()
    }

    pub fn wake(&self, run_id: &RunId) {
        let mut runs = self.lock();
        if let Some(sender) = runs.get(run_id) {
            if sender.receiver_count() == 0 {
                runs.remove(run_id);
            } else {
                sender.send_modify(|news| *news += 1);
            }
        }
    }

    /// After this replica may have missed notifications: everyone reads again.
    pub fn wake_all(&self) {
        let mut runs = self.lock();
        runs.retain(|_, sender| sender.receiver_count() > 0);
        for sender in runs.values() {
            sender.send_modify(|news| *news += 1);
        }
    }
}
