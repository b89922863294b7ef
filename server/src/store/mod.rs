//! Entities and the queries shared across the domain layer.

pub mod agent;
pub mod idempotency_key;
pub mod organization;
pub mod project;
pub mod smith;
pub mod smith_revision;
pub mod token;

use chrono::{DateTime, SubsecRound, Utc};

/// Now, truncated to microseconds so SQLite and PostgreSQL store and compare the same value.
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}
