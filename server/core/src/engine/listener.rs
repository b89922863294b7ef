//! On PostgreSQL each replica keeps one connection LISTENing for what the others announce:
//! a run's new events (streams here that follow it read them; runs queued here behind its
//! thread try again when it released the thread) and changes that make cached entries stale
//! ([`crate::cache`]). After any reconnection everything is read again, since what was
//! announced meanwhile is lost: caches are emptied, and every waiting stream and queued run
//! looks at the tables.

use std::time::Duration;

use sea_orm::DatabaseBackend;
use sea_orm::sqlx::postgres::PgListener;

use super::Engine;
use super::run_store::{Announcement, EVENTS_CHANNEL};
use crate::cache::{self, Invalidation};

/// How long to wait before connecting again after the listener's connection failed.
const RECONNECT_DELAY: Duration = Duration::from_millis(500);

impl Engine {
    /// Listens until the process ends; nothing to do (and `None`) on SQLite, which serves a
    /// single replica.
    pub fn spawn_listener(&self) -> Option<tokio::task::JoinHandle<()>> {
        if self.inner.db.get_database_backend() != DatabaseBackend::Postgres {
            return None;
        }
        let engine = self.clone();
        Some(tokio::spawn(async move {
            loop {
                if let Err(err) = engine.listen().await {
                    tracing::warn!(%err, "the notification listener lost its connection; catching up after reconnecting");
                }
                tokio::time::sleep(RECONNECT_DELAY).await;
            }
        }))
    }

    async fn listen(&self) -> Result<(), sea_orm::sqlx::Error> {
        let mut listener = PgListener::connect_with(self.inner.db.get_postgres_connection_pool()).await?;
        listener.listen_all([EVENTS_CHANNEL, cache::CHANNEL]).await?;
        self.catch_up();
        loop {
            match listener.try_recv().await? {
                Some(notification) => self.heard(notification.channel(), notification.payload()),
                // The connection dropped; the next call reconnects and listens again.
                None => self.catch_up(),
            }
        }
    }

    fn heard(&self, channel: &str, payload: &str) {
        if channel == EVENTS_CHANNEL {
            let Some(announcement) = Announcement::decode(payload) else {
                return tracing::warn!(payload, "an unknown run announcement");
            };
            self.inner.wakeups.wake(&announcement.run_id);
            if let Some((smith_id, thread_id)) = announcement.released {
                self.thread_released(&smith_id, &thread_id);
            }
        } else if channel == cache::CHANNEL {
            match Invalidation::decode(payload) {
                Some(invalidation) => self.inner.caches.apply(&invalidation),
                // From a newer replica: forgetting everything is always safe.
                None => self.inner.caches.clear(),
            }
        }
    }

    fn catch_up(&self) {
        self.inner.caches.clear();
        self.inner.wakeups.wake_all();
        let queued: Vec<_> = {
            let mut waiting = self.inner.thread_releases.lock().unwrap_or_else(|p| p.into_inner());
            waiting.drain().map(|(_, released)| released).collect()
        };
        for released in queued {
            released.notify_waiters();
        }
    }
}
