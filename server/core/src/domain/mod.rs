//! The business rules behind the handlers: every function takes the caller's project and
//! scopes its queries by it.

pub mod agents;
pub mod approvals;
pub mod config;
pub mod files;
pub mod idempotency;
pub mod limits;
pub mod memory;
pub mod model_keys;
pub mod projects;
pub mod runs;
pub mod smiths;
pub mod tokens;
pub mod tools;
pub mod turn;

use sea_orm::{DbErr, SqlErr};

pub fn is_unique_violation(err: &DbErr) -> bool {
    matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_)))
}
