//! Hosted tools: in-process, no server to run.

pub mod calculator;
