//! The server-side tools a run offers its model, resolved from the effective config's
//! `tools`. Hosted and memory tools resolve in-process; an MCP reference resolves once the
//! project's MCP servers are in place (until then it offers nothing).

use serde_json::Value;

use super::catalog;
use super::reference::{ToolRef, model_name};

/// A tool the model may call, executed by the server.
#[derive(Debug, Clone)]
pub struct ServerTool {
    pub reference: ToolRef,
    /// The function name the model sees.
    pub name: String,
    pub description: String,
    pub parameters: Value,
}

/// A reference a run resolves, and the function name its model sees.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ResolvedTool {
    pub reference: String,
    pub name: String,
}

/// What [`resolve`] offers, named only (no schemas built): what the effective config lists.
pub fn resolved_names(references: &[String]) -> Vec<ResolvedTool> {
    let mut resolved: Vec<ResolvedTool> = Vec::new();
    for text in references {
        let Ok(reference) = ToolRef::parse("tools", text) else { continue };
        let known = match &reference {
            ToolRef::Hosted(name) => catalog::HOSTED_NAMES.contains(&name.as_str()),
            ToolRef::Memory(name) => catalog::MEMORY_NAMES.contains(&name.as_str()),
            ToolRef::Mcp { .. } | ToolRef::McpAll { .. } => false,
        };
        let name = model_name(&reference);
        if known && resolved.iter().all(|tool| tool.name != name) {
            resolved.push(ResolvedTool { reference: reference.to_string(), name });
        }
    }
    resolved
}

/// The server-side tools of `references`, each once; references that name nothing known
/// (or cannot be read, as config written before references existed) offer nothing.
pub fn resolve(references: &[String]) -> Vec<ServerTool> {
    let mut tools: Vec<ServerTool> = Vec::new();
    for text in references {
        let Ok(reference) = ToolRef::parse("tools", text) else { continue };
        let found = match &reference {
            ToolRef::Hosted(name) => {
                catalog::find_hosted(name).map(|tool| (tool.description.to_owned(), tool.input_schema))
            }
            ToolRef::Memory(name) => {
                catalog::find_memory(name).map(|tool| (tool.description.to_owned(), tool.input_schema))
            }
            ToolRef::Mcp { .. } | ToolRef::McpAll { .. } => None,
        };
        let Some((description, parameters)) = found else { continue };
        let name = model_name(&reference);
        if tools.iter().all(|tool| tool.name != name) {
            tools.push(ServerTool { reference, name, description, parameters });
        }
    }
    tools
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_references_resolve_once_and_others_offer_nothing() {
        let tools = resolve(&[
            "hosted/calculator".into(),
            "memory/search".into(),
            "hosted/calculator".into(),
            "hosted/teleporter".into(),
            "calculator".into(),
            "mcp/weather/*".into(),
        ]);
        let names: Vec<&str> = tools.iter().map(|tool| tool.name.as_str()).collect();
        assert_eq!(names, ["hosted__calculator", "memory__search"]);
        let listed = resolved_names(&[
            "hosted/calculator".into(),
            "memory/search".into(),
            "hosted/calculator".into(),
            "calculator".into(),
        ]);
        let listed: Vec<&str> = listed.iter().map(|tool| tool.name.as_str()).collect();
        assert_eq!(listed, names, "the effective config lists what a run offers");
    }
}
