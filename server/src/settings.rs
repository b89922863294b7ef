//! What the server is configured with beyond its database.

use std::time::Duration;

use crate::crypto::MasterKey;
use crate::providers::Endpoint;
use crate::providers::routing::ProviderKind;

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
                Some((provider, Endpoint { base_url, api_key }))
            })
            .collect()
    }

    /// For tests: a random master key, no fallback keys, no pacing, a short lease.
    pub fn for_tests() -> Self {
        Self {
            master_key: MasterKey::random(),
            fallback_keys: Vec::new(),
            offline_token_delay: Duration::ZERO,
            run_lease: Duration::from_secs(5),
        }
    }
}
