//! `tool_approvals`: which server-side tool calls wait for a person's decision before they run.
//! Keys are tool references (`mcp/weather/delete_everything`) or `*` patterns (`mcp/weather/*`,
//! `mcp/*`, `hosted/*`, `memory/*`, `*`); values `always` or `never`. The most specific key
//! that matches a call decides; a call nothing matches runs without asking.

use crate::domain::tools::reference::{REFERENCE_MAX, ToolRef};
use crate::error::{Error, Result};
pub use crate::types::{ApprovalPolicy, ToolApprovals};

/// Entries one `tool_approvals` may hold.
pub const ENTRIES_MAX: usize = 64;

/// Each key reads as a reference or a pattern, and there are at most [`ENTRIES_MAX`].
pub fn validate(approvals: &ToolApprovals) -> Result<()> {
    if approvals.len() > ENTRIES_MAX {
        return Err(Error::limit_exceeded(
            "tool_approvals",
            format!("tool_approvals holds at most {ENTRIES_MAX} entries."),
        ));
    }
    for key in approvals.keys() {
        let pattern = matches!(key.as_str(), "*" | "hosted/*" | "memory/*" | "mcp/*");
        if !pattern && key.len() <= REFERENCE_MAX {
            ToolRef::parse("tool_approvals", key)?;
        } else if !pattern {
            return Err(Error::bad_request(
                "invalid_tool_reference",
                format!("A tool_approvals key is at most {REFERENCE_MAX} characters."),
            )
            .with_param("tool_approvals"));
        }
    }
    Ok(())
}

/// Whether a call of `tool` waits for a decision: the most specific matching key decides
/// (the reference itself, then its server's `mcp/<server>/*`, then its kind's `<kind>/*`,
/// then `*`).
pub fn requires_approval(approvals: &ToolApprovals, tool: &ToolRef) -> bool {
    if approvals.is_empty() {
        return false;
    }
    let kind = match tool {
        ToolRef::Hosted(_) => "hosted/*",
        ToolRef::Memory(_) => "memory/*",
        ToolRef::Mcp { .. } | ToolRef::McpAll { .. } => "mcp/*",
    };
    let server = match tool {
        ToolRef::Mcp { server, .. } | ToolRef::McpAll { server } => Some(format!("mcp/{server}/*")),
        _ => None,
    };
    let keys = [Some(tool.to_string()), server, Some(kind.to_owned()), Some("*".to_owned())];
    keys.into_iter()
        .flatten()
        .find_map(|key| approvals.get(&key))
        .is_some_and(|policy| *policy == ApprovalPolicy::Always)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tool(text: &str) -> ToolRef {
        ToolRef::parse("t", text).unwrap()
    }

    #[test]
    fn the_most_specific_key_decides() {
        let approvals: ToolApprovals = [
            ("mcp/weather/*".to_owned(), ApprovalPolicy::Always),
            ("mcp/weather/forecast".to_owned(), ApprovalPolicy::Never),
            ("hosted/*".to_owned(), ApprovalPolicy::Never),
            ("*".to_owned(), ApprovalPolicy::Always),
        ]
        .into_iter()
        .collect();
        assert!(!requires_approval(&approvals, &tool("mcp/weather/forecast")));
        assert!(requires_approval(&approvals, &tool("mcp/weather/delete_everything")));
        assert!(!requires_approval(&approvals, &tool("hosted/calculator")));
        assert!(requires_approval(&approvals, &tool("memory/add")));
        assert!(!requires_approval(&ToolApprovals::new(), &tool("memory/add")), "unlisted: never");
    }

    #[test]
    fn keys_are_references_or_patterns() {
        let one = |key: &str| [(key.to_owned(), ApprovalPolicy::Always)].into_iter().collect::<ToolApprovals>();
        for good in ["*", "mcp/*", "hosted/*", "memory/*", "mcp/gh/*", "mcp/gh/delete_repo", "hosted/http_fetch"] {
            assert!(validate(&one(good)).is_ok(), "{good}");
        }
        for bad in ["", "delete", "mcp/*/x", "other/*", "mcp/gh/a b"] {
            assert!(validate(&one(bad)).is_err(), "{bad}");
        }
        let many: ToolApprovals = (0..=ENTRIES_MAX).map(|i| (format!("hosted/t{i}"), ApprovalPolicy::Never)).collect();
        assert_eq!(validate(&many).unwrap_err().code.as_ref(), "limit_exceeded");
    }
}
