//! One test binary for the whole suite (one link, one build): the server over HTTP, the
//! generated client, recorded fixtures, and the spec-derived tenancy matrix.

mod approvals;
mod client;
mod conventions;
mod engine_providers;
mod files;
mod fixtures;
mod harness;
mod idempotency;
mod limits_capacity;
mod mcp;
mod memory;
mod openai_chat;
mod openai_responses;
mod projects_tokens;
mod providers;
mod replicas;
mod run_streams;
mod runs;
mod sdk_wire;
mod security;
mod smiths_agents;
mod spec;
mod tenancy;
mod tools;
