//! What the server is configured with beyond its database.

use std::time::Duration;

use crate::crypto::MasterKey;
use crate::egress::EgressPolicy;
use crate::providers::Endpoint;
use crate::providers::routing::ProviderKind;

pub const DEFAULT_RUN_DEADLINE: Duration = Duration::from_secs(600);
pub const DEFAULT_IDEMPOTENCY_LEASE: Duration = Duration::from_secs(30);

/// Per-project caps on runs executing at once, runs queued behind busy threads, and open
/// event streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CapacityLimits {
    pub active_runs: u32,
    pub queued_runs: u32,
    pub streams: u32,
}

impl Default for CapacityLimits {
    fn default() -> Self {
        Self { active_runs: 2048, queued_runs: 4096, streams: 4096 }
    }
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub master_key: MasterKey,
    /// Server-wide provider keys (OPENAI_API_KEY, …): the hosted fallback when a project has none.
    pub fallback_keys: Vec<(ProviderKind, Endpoint)>,
    /// Pause between words of the offline model's stream.
    pub offline_token_delay: Duration,
    /// How long a replica's claim on a running run holds without renewal; a run whose claim
    /// lapsed (its replica died) is failed with `run_interrupted`.
    pub run_lease: Duration,
    /// What tenant-chosen URLs may reach beyond the public internet (INGRAM_EGRESS_ALLOW).
    pub egress: EgressPolicy,
    /// The most working time a run may take, paused time not counted; then it fails with
    /// `run_deadline_exceeded`.
    pub run_deadline: Duration,
    /// Per-project caps on runs executing, queued and open streams, on each replica.
    pub capacity: CapacityLimits,
    /// How long a request's claim on an Idempotency-Key holds without renewal; the request
    /// renews it while it runs, so only a request whose server died loses it.
    pub idempotency_lease: Duration,
    /// How long an approval waits for a decision before it expires (read as a rejection).
    pub approval_ttl: Duration,
}

impl Settings {
    /// Fallback keys from the environment: `<PROVIDER>_API_KEY` and optional `<PROVIDER>_BASE_URL`.
    pub fn fallback_keys_from_env() -> Vec<(ProviderKind, Endpoint)> {
        [(ProviderKind::Openai, "OPENAI"), (ProviderKind::Anthropic, "ANTHROPIC"), (ProviderKind::Gemini, "GEMINI")]
            .into_iter()
            .filter_map(|(provider, prefix)| {
                let api_key = std::env::var(format!("{prefix}_API_KEY")).ok().filter(|key| !key.is_empty())?;
                let base_url = std::env::var(format!("{prefix}_BASE_URL"))
                    .ok()
                    .filter(|url| !url.is_empty())
                    .unwrap_or_else(|| provider.default_base_url().to_owned());
                Some((provider, Endpoint { base_url, api_key, trusted: true }))
            })
            .collect()
    }

    /// For tests: a random master key, no fallback keys, no pacing, a short lease, the
    /// strict egress policy.
    pub fn for_tests() -> Self {
        Self {
            master_key: MasterKey::random(),
            fallback_keys: Vec::new(),
            offline_token_delay: Duration::ZERO,
            run_lease: Duration::from_secs(5),
            egress: EgressPolicy::strict(),
            run_deadline: DEFAULT_RUN_DEADLINE,
            capacity: CapacityLimits::default(),
            idempotency_lease: DEFAULT_IDEMPOTENCY_LEASE,
            approval_ttl: crate::domain::approvals::DEFAULT_TTL,
        }
    }
}
