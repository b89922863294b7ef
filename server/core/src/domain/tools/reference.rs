//! Tool references as configs name them, and the function names models see.

use std::fmt;

use crate::error::{Error, Result};

/// The longest function name OpenAI accepts (`^[a-zA-Z0-9_-]{1,64}$`); Anthropic and Gemini
/// accept these names too.
pub const MODEL_NAME_MAX: usize = 64;
/// The longest reference a config may hold.
pub const REFERENCE_MAX: usize = 128;

/// A server-side tool, or every tool of an MCP server.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ToolRef {
    /// `hosted/<tool>`: in-process, no server to run.
    Hosted(String),
    /// `memory/<tool>`: acts on the run's own smith.
    Memory(String),
    /// `mcp/<server>/<tool>`.
    Mcp { server: String, tool: String },
    /// `mcp/<server>/*`: whatever the server lists.
    McpAll { server: String },
}

impl ToolRef {
    /// Reads a reference; anything else is `400 invalid_tool_reference` naming `param`.
    pub fn parse(param: &str, text: &str) -> Result<Self> {
        let invalid = |why: &str| {
            Error::bad_request(
                "invalid_tool_reference",
                format!(
                    "'{}' is not a tool reference ({why}); use hosted/<tool>, memory/<tool>, mcp/<server>/<tool> or mcp/<server>/*.",
                    text.chars().take(REFERENCE_MAX).collect::<String>()
                ),
            )
            .with_param(param)
        };
        if text.len() > REFERENCE_MAX {
            return Err(invalid("too long"));
        }
        let segments: Vec<&str> = text.split('/').collect();
        let name = |segment: &str| -> Result<String> {
            let valid = !segment.is_empty()
                && segment.len() <= REFERENCE_MAX
                && segment.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
            if valid {
                Ok(segment.to_owned())
            } else {
                Err(invalid("a name is empty or holds characters other than a-z, 0-9, _, - and ."))
            }
        };
        match segments.as_slice() {
            ["hosted", tool] => Ok(Self::Hosted(name(tool)?)),
            ["memory", tool] => Ok(Self::Memory(name(tool)?)),
            ["mcp", server, "*"] => Ok(Self::McpAll { server: name(server)? }),
            ["mcp", server, tool] => Ok(Self::Mcp { server: name(server)?, tool: name(tool)? }),
            _ => Err(invalid("unknown kind")),
        }
    }
}

impl fmt::Display for ToolRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Hosted(tool) => write!(f, "hosted/{tool}"),
            Self::Memory(tool) => write!(f, "memory/{tool}"),
            Self::Mcp { server, tool } => write!(f, "mcp/{server}/{tool}"),
            Self::McpAll { server } => write!(f, "mcp/{server}/*"),
        }
    }
}

/// The function name a model sees for a resolved tool: its reference with `/` as `__` and any
/// other character outside `[a-zA-Z0-9_-]` as `_`. When that loses information (a character
/// replaced, a `__` inside a name) or the name would pass 64 characters, it keeps at most its
/// first 55 characters and ends in `_` and 8 hex digits of the reference's SHA-256: the same
/// reference always maps to the same name, and two references never to one.
pub fn model_name(reference: &ToolRef) -> String {
    let full = reference.to_string();
    let mapped: String = full
        .replace('/', "__")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c } else { '_' })
        .collect();
    let lossy = full.split('/').any(|segment| {
        segment.contains("__") || segment.chars().any(|c| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
    }) && !matches!(reference, ToolRef::McpAll { .. });
    if mapped.len() <= MODEL_NAME_MAX && !lossy {
        return mapped;
    }
    let digest = crate::digest::sha256_hex(&[full.as_bytes()]);
    let kept: String = mapped.chars().take(MODEL_NAME_MAX - 9).collect();
    format!("{kept}_{}", &digest[..8])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_parse_and_print_back() {
        for text in ["hosted/calculator", "memory/search", "mcp/weather/forecast", "mcp/weather/*", "mcp/gh/list.repos"]
        {
            assert_eq!(ToolRef::parse("tools", text).unwrap().to_string(), text);
        }
        for bad in ["calculator", "hosted/", "hosted/a/b", "mcp/x", "mcp//y", "mcp/x/y z", "other/x", "hosted/ä"] {
            let err = ToolRef::parse("tools", bad).unwrap_err();
            assert_eq!((err.code.as_ref(), err.param.as_deref()), ("invalid_tool_reference", Some("tools")), "{bad}");
        }
    }

    #[test]
    fn model_names_fit_openai_and_stay_distinct() {
        let valid = |name: &str| {
            !name.is_empty()
                && name.len() <= MODEL_NAME_MAX
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        };
        assert_eq!(model_name(&ToolRef::parse("t", "hosted/calculator").unwrap()), "hosted__calculator");
        assert_eq!(model_name(&ToolRef::parse("t", "mcp/gh/list_repos").unwrap()), "mcp__gh__list_repos");
        let dotted = model_name(&ToolRef::parse("t", "mcp/gh/list.repos").unwrap());
        assert!(dotted.starts_with("mcp__gh__list_repos_") && valid(&dotted), "{dotted}");
        let (a, b) = (ToolRef::parse("t", "mcp/a__b/c").unwrap(), ToolRef::parse("t", "mcp/a/b__c").unwrap());
        assert_ne!(model_name(&a), model_name(&b));
        let long_a = ToolRef::parse("t", &format!("mcp/server/{}a", "x".repeat(80))).unwrap();
        let long_b = ToolRef::parse("t", &format!("mcp/server/{}b", "x".repeat(80))).unwrap();
        let (a, b) = (model_name(&long_a), model_name(&long_b));
        assert!(valid(&a) && valid(&b), "{a} {b}");
        assert_ne!(a, b);
        assert_eq!(a, model_name(&long_a), "deterministic");
    }
}
