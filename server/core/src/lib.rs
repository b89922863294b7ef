//! Ingram's core: what a smith is and does, with no HTTP in it. The HTTP surfaces
//! (`ingram-server`), and later schedules, channels and the MCP server, drive it through the
//! same calls; errors leave it as [`error::Error`], with a kind and a stable code, and become
//! statuses only at the edge.

pub mod auth;
pub mod bootstrap;
pub mod cache;
pub mod crypto;
pub mod db;
pub mod digest;
pub mod domain;
pub mod egress;
pub mod engine;
pub mod error;
pub mod ids;
pub mod providers;
pub mod settings;
pub mod store;
pub mod types;

pub use error::{Error, Result};
