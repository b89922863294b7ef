//! Tools the smith calls itself (server-side), named in an agent's or smith's `tools` by
//! reference: `hosted/<tool>` (in-process), `memory/<tool>` (the run's own smith's memory),
//! `mcp/<server>/<tool>` and `mcp/<server>/*` (a project's MCP servers). The model sees each
//! as a function whose name fits OpenAI's `^[a-zA-Z0-9_-]{1,64}$` ([`reference::model_name`]).

pub mod catalog;
pub mod hosted;
pub mod mcp;
pub mod memory_tools;
pub mod reference;
pub mod resolve;
