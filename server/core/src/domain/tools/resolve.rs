//! The server-side tools a run offers its model, resolved from the effective config's
//! `tools`. Hosted and memory tools resolve in-process; an MCP reference resolves once the
//! project's MCP servers are in place (until then it offers nothing).

use serde_json::Value;

use super::catalog;
use super::reference::{ToolRef, model_name};

/// What executes a resolved tool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Runner {
    /// A hosted tool, by name.
    Hosted(String),
    /// A memory tool, by name.
    Memory(String),
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

/// The known references among `references`, each once (by the name its model sees), with
/// what runs them. References that name nothing known (or cannot be read, as config written
/// before references existed) are left out.
fn known(references: &[String]) -> Vec<(ToolRef, Runner, String)> {
    let mut known: Vec<(ToolRef, Runner, String)> = Vec::new();
    for text in references {
        let Ok(reference) = ToolRef::parse("tools", text) else { continue };
        let runner = match &reference {
            ToolRef::Hosted(name) if catalog::HOSTED_NAMES.contains(&name.as_str()) => Runner::Hosted(name.clone()),
            ToolRef::Memory(name) if catalog::MEMORY_NAMES.contains(&name.as_str()) => Runner::Memory(name.clone()),
            _ => continue,
        };
        let name = model_name(&reference);
        if known.iter().all(|(_, _, seen)| *seen != name) {
            known.push((reference, runner, name));
        }
    }
    known
}

/// What [`resolve`] offers, named only (no schemas built): what the effective config lists.
pub fn resolved_names(references: &[String]) -> Vec<ResolvedTool> {
    known(references)
        .into_iter()
        .map(|(reference, _, name)| ResolvedTool { reference: reference.to_string(), name })
        .collect()
}

/// The server-side tools of `references` a run offers its model, each once.
pub fn resolve(references: &[String]) -> Vec<ServerTool> {
    known(references)
        .into_iter()
        .filter_map(|(reference, runner, name)| {
            let definition = match &runner {
                Runner::Hosted(tool) => catalog::find_hosted(tool),
                Runner::Memory(tool) => catalog::find_memory(tool),
            }?;
            let (description, parameters) = (definition.description.to_owned(), definition.input_schema);
            Some(ServerTool { reference, runner, name, description, parameters })
        })
        .collect()
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
