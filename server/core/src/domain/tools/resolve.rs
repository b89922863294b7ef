//! The server-side tools a run offers its model, resolved from the effective config's
//! `tools`: hosted and memory tools in-process, `mcp/…` against what the project's MCP
//! servers listed when last asked (a server or tool that is not there offers nothing).

use serde_json::Value;

use super::catalog;
use super::mcp::{Listing, McpTool};
use super::reference::{ToolRef, model_name};

/// What executes a resolved tool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Runner {
    /// A hosted tool, by name.
    Hosted(String),
    /// A memory tool, by name.
    Memory(String),
    /// A tool of one of the project's MCP servers, by the server's own name for it.
    Mcp { server: String, tool: String },
}

/// A tool the model may call, executed by the server.
#[derive(Debug, Clone)]
pub struct ServerTool {
    pub reference: ToolRef,
    pub runner: Runner,
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

/// Every tool `references` resolve to, each once (by the name its model sees), in the order
/// listed, with what runs it; `mcp/<server>/*` stands for every tool the server listed.
/// References that name nothing known (or cannot be read, as config written before references
/// existed) are left out. No definition is built: an effective config lists names only.
fn known<'a>(references: &[String], mcp: &'a Listing) -> Vec<(ToolRef, Runner, String, Option<&'a McpTool>)> {
    let mut known: Vec<(ToolRef, Runner, String, Option<&McpTool>)> = Vec::new();
    let mut offer = |reference: ToolRef, runner: Runner, listed: Option<&'a McpTool>| {
        let name = model_name(&reference);
        if known.iter().all(|(_, _, seen, _)| *seen != name) {
            known.push((reference, runner, name, listed));
        }
    };
    for text in references {
        let Ok(reference) = ToolRef::parse("tools", text) else { continue };
        match &reference {
            ToolRef::Hosted(name) if catalog::HOSTED_NAMES.contains(&name.as_str()) => {
                offer(reference.clone(), Runner::Hosted(name.clone()), None);
            }
            ToolRef::Memory(name) if catalog::MEMORY_NAMES.contains(&name.as_str()) => {
                offer(reference.clone(), Runner::Memory(name.clone()), None);
            }
            ToolRef::Hosted(_) | ToolRef::Memory(_) => {}
            ToolRef::Mcp { server, tool } => {
                let listed = mcp.tools(server).unwrap_or_default();
                if let Some(found) = listed.iter().find(|listed| listed.name == *tool) {
                    offer(reference.clone(), Runner::Mcp { server: server.clone(), tool: tool.clone() }, Some(found));
                }
            }
            ToolRef::McpAll { server } => {
                for found in mcp.tools(server).unwrap_or_default() {
                    let reference = ToolRef::Mcp { server: server.clone(), tool: found.name.clone() };
                    let runner = Runner::Mcp { server: server.clone(), tool: found.name.clone() };
                    offer(reference, runner, Some(found));
                }
            }
        }
    }
    known
}

/// The server-side tools of `references` a run offers its model, each once.
pub fn resolve(references: &[String], mcp: &Listing) -> Vec<ServerTool> {
    known(references, mcp)
        .into_iter()
        .filter_map(|(reference, runner, name, listed)| {
            let (description, parameters) = match (&runner, listed) {
                (Runner::Mcp { .. }, Some(tool)) => (tool.description.clone(), tool.input_schema.clone()),
                (Runner::Hosted(tool), _) => {
                    let definition = catalog::find_hosted(tool)?;
                    (definition.description.to_owned(), definition.input_schema)
                }
                (Runner::Memory(tool), _) => {
                    let definition = catalog::find_memory(tool)?;
                    (definition.description.to_owned(), definition.input_schema)
                }
                (Runner::Mcp { .. }, None) => return None,
            };
            Some(ServerTool { reference, runner, name, description, parameters })
        })
        .collect()
}

/// What [`resolve`] offers, by reference and model-visible name: what the effective config lists.
pub fn resolved_names(references: &[String], mcp: &Listing) -> Vec<ResolvedTool> {
    known(references, mcp)
        .into_iter()
        .map(|(reference, _, name, _)| ResolvedTool { reference: reference.to_string(), name })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_references_resolve_once_and_others_offer_nothing() {
        let tools = resolve(
            &[
                "hosted/calculator".into(),
                "memory/search".into(),
                "hosted/calculator".into(),
                "hosted/teleporter".into(),
                "calculator".into(),
                "mcp/weather/*".into(),
            ],
            &Listing::default(),
        );
        let names: Vec<&str> = tools.iter().map(|tool| tool.name.as_str()).collect();
        assert_eq!(names, ["hosted__calculator", "memory__search"]);
    }

    #[test]
    fn mcp_references_resolve_against_what_servers_listed() {
        let tool = |name: &str| McpTool {
            name: name.into(),
            description: format!("{name}!"),
            input_schema: serde_json::json!({"type": "object"}),
        };
        let listing = Listing::from_servers(vec![("weather".into(), vec![tool("forecast"), tool("alerts.list")])]);
        let references: Vec<String> =
            ["mcp/weather/forecast", "mcp/weather/*", "mcp/weather/missing", "mcp/gone/*"].map(Into::into).to_vec();
        let tools = resolve(&references, &listing);
        let names: Vec<&str> = tools.iter().map(|tool| tool.name.as_str()).collect();
        assert_eq!(names.len(), 2, "{names:?}");
        assert_eq!(names[0], "mcp__weather__forecast");
        assert!(names[1].starts_with("mcp__weather__alerts_list_"), "a lossy name is hashed: {}", names[1]);
        assert_eq!(tools[1].runner, Runner::Mcp { server: "weather".into(), tool: "alerts.list".into() });
        assert_eq!(tools[1].reference.to_string(), "mcp/weather/alerts.list");
        assert_eq!(tools[0].description, "forecast!");
        let listed = resolved_names(&references, &listing);
        assert_eq!(listed.iter().map(|tool| tool.name.as_str()).collect::<Vec<_>>(), names);
    }
}
