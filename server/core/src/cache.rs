//! What every request would otherwise read from the database: the token behind a secret,
//! a smith with its agent, a project's model key.
//!
//! An entry lives at most [`TTL`]. Every change to what an entry holds invalidates it at once
//! on the replica that made the change and, on PostgreSQL, on every other replica through a
//! NOTIFY on [`CHANNEL`] (docs/performance.md); the TTL bounds how long a replica that missed
//! a notification (its listener reconnecting) can keep a stale entry. A load that raced an
//! invalidation is not cached: each cache counts its invalidations, and an entry read before
//! one is dropped rather than stored.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sea_orm::{ConnectionTrait, DatabaseBackend, DatabaseConnection, Statement};

use crate::ids::{AgentId, ProjectId, SmithId};
use crate::providers::routing::ProviderKind;
use crate::store::{agent, embedding_setting, mcp_server, model_key, smith, token};

/// How long an entry is trusted without a notification: the bound on a change reaching a
/// replica whose listener missed it.
pub const TTL: Duration = Duration::from_millis(500);
/// Entries a cache holds at most; past that it starts over (a cache, not a store).
const CAPACITY: usize = 20_000;
/// The PostgreSQL channel invalidations travel on.
pub const CHANNEL: &str = "ingram_cache";

/// What changed, and so which entries no replica may keep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invalidation {
    /// A token was revoked (rare: every cached token is dropped).
    Tokens,
    /// A smith or an agent of the project changed, its embeddings endpoint, its MCP servers,
    /// or the project was deleted.
    Project(ProjectId),
    /// The project's key for the provider was replaced or removed.
    ModelKey(ProjectId, ProviderKind),
    /// One smith's row changed in what only it carries (its memory counts).
    Smith(ProjectId, SmithId),
}

impl Invalidation {
    /// The NOTIFY payload.
    fn encode(&self) -> String {
        match self {
            Self::Tokens => "tokens".to_owned(),
            Self::Project(project_id) => format!("project {project_id}"),
            Self::ModelKey(project_id, provider) => format!("model_key {project_id} {}", provider.as_str()),
            Self::Smith(project_id, smith_id) => format!("smith {project_id} {smith_id}"),
        }
    }

    /// A payload another replica sent; `None` for one this version does not know.
    pub fn decode(payload: &str) -> Option<Self> {
        let mut parts = payload.split(' ');
        let invalidation = match (parts.next()?, parts.next(), parts.next()) {
            ("tokens", None, None) => Self::Tokens,
            ("project", Some(project_id), None) => Self::Project(ProjectId::from(project_id)),
            ("model_key", Some(project_id), Some(provider)) => {
                Self::ModelKey(ProjectId::from(project_id), ProviderKind::parse(provider)?)
            }
            ("smith", Some(project_id), Some(smith_id)) => {
                Self::Smith(ProjectId::from(project_id), SmithId::from(smith_id.to_owned()))
            }
            _ => return None,
        };
        parts.next().is_none().then_some(invalidation)
    }
}

/// How a smith was looked up: by id, or as "the smith of this external user" on an agent
/// (the default agent when `None`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SmithKey {
    Id(ProjectId, SmithId),
    External(ProjectId, String, Option<AgentId>),
}

impl SmithKey {
    fn project_id(&self) -> &ProjectId {
        match self {
            Self::Id(project_id, _) | Self::External(project_id, _, _) => project_id,
        }
    }
}

/// The rows are cached, not what the domain makes of them, so this module depends on the
/// store alone.
pub struct Caches {
    /// By the SHA-256 of the secret.
    tokens: Ttl<String, token::Model>,
    smiths: Ttl<SmithKey, (smith::Model, agent::Model)>,
    /// `None`: the project has no key of its own for the provider.
    model_keys: Ttl<(ProjectId, ProviderKind), Option<model_key::Model>>,
    /// A project's embeddings endpoint (or none), which every memory search asks for.
    embeddings: Ttl<ProjectId, Option<embedding_setting::Model>>,
    /// A project's MCP servers, which runs and smiths naming `mcp/…` tools resolve against.
    mcp_servers: Ttl<ProjectId, Arc<Vec<mcp_server::Model>>>,
}

impl Default for Caches {
    fn default() -> Self {
        Self::new()
    }
}

impl Caches {
    pub fn new() -> Self {
        Self {
            tokens: Ttl::new(),
            smiths: Ttl::new(),
            model_keys: Ttl::new(),
            embeddings: Ttl::new(),
            mcp_servers: Ttl::new(),
        }
    }

    pub fn tokens(&self) -> &Ttl<String, token::Model> {
        &self.tokens
    }

    pub fn smiths(&self) -> &Ttl<SmithKey, (smith::Model, agent::Model)> {
        &self.smiths
    }

    pub fn model_keys(&self) -> &Ttl<(ProjectId, ProviderKind), Option<model_key::Model>> {
        &self.model_keys
    }

    pub fn embeddings(&self) -> &Ttl<ProjectId, Option<embedding_setting::Model>> {
        &self.embeddings
    }

    pub fn mcp_servers(&self) -> &Ttl<ProjectId, Arc<Vec<mcp_server::Model>>> {
        &self.mcp_servers
    }

    /// Drops what `what` makes stale here, then tells the other replicas. Called after the
    /// change committed; a notification that cannot be sent is logged, and the TTL covers it.
    pub async fn invalidate(&self, db: &DatabaseConnection, what: Invalidation) {
        self.apply(&what);
        if db.get_database_backend() != DatabaseBackend::Postgres {
            return;
        }
        let notify = Statement::from_sql_and_values(
            DatabaseBackend::Postgres,
            "SELECT pg_notify($1, $2)",
            [CHANNEL.into(), what.encode().into()],
        );
        if let Err(err) = db.execute_raw(notify).await {
            tracing::warn!(%err, "could not notify the other replicas of a change; their caches expire it");
        }
    }

    /// Drops what `what` makes stale on this replica.
    pub fn apply(&self, what: &Invalidation) {
        match what {
            Invalidation::Tokens => self.tokens.retain(|_, _| false),
            Invalidation::Project(project_id) => {
                self.smiths.retain(|key, _| key.project_id() != project_id);
                self.model_keys.retain(|(project, _), _| project != project_id);
                self.embeddings.retain(|project, _| project != project_id);
                self.mcp_servers.retain(|project, _| project != project_id);
            }
            Invalidation::ModelKey(project_id, provider) => {
                self.model_keys.retain(|(project, kind), _| !(project == project_id && kind == provider));
            }
            // Under both of its keys (by id and by external id).
            Invalidation::Smith(project_id, smith_id) => {
                self.smiths.retain(|key, (smith, _)| !(key.project_id() == project_id && smith.id == *smith_id));
            }
        }
    }

    /// Forgets everything: after this replica may have missed notifications.
    pub fn clear(&self) {
        self.tokens.retain(|_, _| false);
        self.smiths.retain(|_, _| false);
        self.model_keys.retain(|_, _| false);
        self.embeddings.retain(|_, _| false);
        self.mcp_servers.retain(|_, _| false);
    }
}

/// A map whose entries expire after [`TTL`].
pub struct Ttl<K, V> {
    entries: Mutex<HashMap<K, (Instant, V)>>,
    /// Bumped by every invalidation, so a load that began before one is not cached.
    generation: AtomicU64,
}

/// Where a load stands relative to invalidations; handed back to [`Ttl::insert`].
#[derive(Debug, Clone, Copy)]
pub struct Generation(u64);

impl<K: Eq + Hash, V: Clone> Ttl<K, V> {
    fn new() -> Self {
        Self { entries: Mutex::new(HashMap::new()), generation: AtomicU64::new(0) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, (Instant, V)>> {
        self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The entry, if it is younger than the TTL; and the generation to load it under otherwise.
    pub fn get(&self, key: &K) -> Result<V, Generation> {
        let generation = Generation(self.generation.load(Ordering::Acquire));
        match self.lock().get(key) {
            Some((at, value)) if at.elapsed() < TTL => Ok(value.clone()),
            _ => Err(generation),
        }
    }

    /// Caches what was loaded under `generation`, unless something was invalidated since.
    pub fn insert(&self, generation: Generation, key: K, value: V) {
        let mut entries = self.lock();
        if self.generation.load(Ordering::Acquire) != generation.0 {
            return;
        }
        if entries.len() >= CAPACITY {
            entries.clear();
        }
        entries.insert(key, (Instant::now(), value));
    }

    fn retain(&self, keep: impl Fn(&K, &V) -> bool) {
        let mut entries = self.lock();
        self.generation.fetch_add(1, Ordering::AcqRel);
        entries.retain(|key, (_, value)| keep(key, value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_invalidation_travels_as_text_and_back() {
        for what in [
            Invalidation::Tokens,
            Invalidation::Project(ProjectId::from("proj_1")),
            Invalidation::ModelKey(ProjectId::from("proj_1"), ProviderKind::Anthropic),
            Invalidation::Smith(ProjectId::from("proj_1"), SmithId::from("smt_1".to_owned())),
        ] {
            assert_eq!(Invalidation::decode(&what.encode()), Some(what));
        }
        assert_eq!(Invalidation::decode("project"), None);
        assert_eq!(Invalidation::decode("tokens extra"), None);
        assert_eq!(Invalidation::decode("model_key proj_1 nobody"), None);
    }

    #[test]
    fn a_load_that_raced_an_invalidation_is_not_cached() {
        let cache: Ttl<&str, u32> = Ttl::new();
        let Err(generation) = cache.get(&"a") else { panic!("empty") };
        cache.retain(|_, _| false);
        cache.insert(generation, "a", 1);
        let Err(generation) = cache.get(&"a") else { panic!("the stale load was cached") };
        cache.insert(generation, "a", 2);
        assert_eq!(cache.get(&"a").ok(), Some(2));
    }
}
