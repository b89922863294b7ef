//! What each built-in server-side tool is, as models and the API see it: its name,
//! description and argument schema. Running them is `hosted` and `memory_tools`; this module
//! depends on neither, so configs can be checked against it from anywhere.

use serde_json::{Value, json};

/// A tool's definition.
#[derive(Debug, Clone)]
pub struct ToolDefinition {
    pub name: &'static str,
    pub description: &'static str,
    pub input_schema: Value,
}

/// The hosted tools' names, as [`hosted`] defines them.
pub const HOSTED_NAMES: &[&str] = &["calculator", "current_time", "think", "http_fetch"];
/// The memory tools' names, as [`memory`] defines them.
pub const MEMORY_NAMES: &[&str] = &["search", "add", "update_block", "append_block"];

/// Results a `memory/search` call returns at most.
pub const MEMORY_SEARCH_LIMIT_MAX: u64 = 10;

/// Every hosted tool (`hosted/<name>`).
pub fn hosted() -> Vec<ToolDefinition> {
    vec![
        ToolDefinition {
            name: "calculator",
            description: "Evaluates arithmetic in double precision: + - * / % ^, parentheses, pi, e, sqrt, abs, floor, ceil, round, ln, log10, sin, cos, tan, min, max.",
            input_schema: json!({
                "type": "object",
                "properties": {"expression": {"type": "string", "maxLength": super::hosted::calculator::EXPRESSION_MAX, "description": "For example (12.5 * 4) / 3"}},
                "required": ["expression"],
            }),
        },
        ToolDefinition {
            name: "current_time",
            description: "The current date and time in a time zone (IANA name such as Europe/Paris; UTC when absent).",
            input_schema: json!({
                "type": "object",
                "properties": {"time_zone": {"type": "string", "maxLength": 64}},
            }),
        },
        ToolDefinition {
            name: "think",
            description: "A scratchpad: write down reasoning or a plan before acting. Nothing is done with it; it is kept in the run's record.",
            input_schema: json!({
                "type": "object",
                "properties": {"thought": {"type": "string", "maxLength": 8000}},
                "required": ["thought"],
            }),
        },
        ToolDefinition {
            name: "http_fetch",
            description: "Fetches a public web page or API over HTTP(S) with GET and returns its text (the start of it, for a long one).",
            input_schema: json!({
                "type": "object",
                "properties": {"url": {"type": "string", "maxLength": 2048}},
                "required": ["url"],
            }),
        },
    ]
}

#[cfg(test)]
#[test]
fn the_name_lists_match_the_definitions() {
    assert_eq!(hosted().iter().map(|tool| tool.name).collect::<Vec<_>>(), HOSTED_NAMES);
    assert_eq!(memory().iter().map(|tool| tool.name).collect::<Vec<_>>(), MEMORY_NAMES);
}

pub fn find_hosted(name: &str) -> Option<ToolDefinition> {
    hosted().into_iter().find(|tool| tool.name == name)
}

/// Every memory tool (`memory/<name>`).
pub fn memory() -> Vec<ToolDefinition> {
    vec![
        ToolDefinition {
            name: "search",
            description: "Searches what you remember about the person (your memories), best match first.",
            input_schema: json!({
                "type": "object",
                "properties": {
                    "query": {"type": "string", "maxLength": 1000},
                    "limit": {"type": "integer", "minimum": 1, "maximum": MEMORY_SEARCH_LIMIT_MAX},
                },
                "required": ["query"],
            }),
        },
        ToolDefinition {
            name: "add",
            description: "Remembers a durable fact about the person, as one short sentence.",
            input_schema: json!({
                "type": "object",
                "properties": {"text": {"type": "string", "maxLength": 2000}},
                "required": ["text"],
            }),
        },
        ToolDefinition {
            name: "update_block",
            description: "Replaces the whole value of one of your memory blocks (such as human). Read-only blocks cannot be written.",
            input_schema: json!({
                "type": "object",
                "properties": {"label": {"type": "string", "maxLength": 64}, "value": {"type": "string", "maxLength": 20000}},
                "required": ["label", "value"],
            }),
        },
        ToolDefinition {
            name: "append_block",
            description: "Adds a line to one of your memory blocks (such as human). Read-only blocks cannot be written.",
            input_schema: json!({
                "type": "object",
                "properties": {"label": {"type": "string", "maxLength": 64}, "text": {"type": "string", "maxLength": 20000}},
                "required": ["label", "text"],
            }),
        },
    ]
}

pub fn find_memory(name: &str) -> Option<ToolDefinition> {
    memory().into_iter().find(|tool| tool.name == name)
}
