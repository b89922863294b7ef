//! The effective-config rule: what a smith runs with is its agent's design with the smith's
//! own overrides on top, field by field. Every surface and every run resolves it here.

use serde::{Deserialize, Serialize};

use crate::domain::agents::validate;
use crate::domain::tools::mcp::Listing;
use crate::domain::tools::resolve::{ResolvedTool, resolved_names};
use crate::error::Result;
use crate::store::{agent, decode_json as decode};
use crate::types::ToolApprovals;

/// A smith's own config: each field set here overrides its agent's.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SmithConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instructions: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_memory: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_models: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_approvals: Option<ToolApprovals>,
}

impl SmithConfig {
    pub fn validated(self) -> Result<Self> {
        validate::design(
            self.instructions.as_deref(),
            self.model.as_deref(),
            self.tools.as_deref(),
            self.allowed_models.as_deref(),
            self.tool_approvals.as_ref(),
        )?;
        Ok(self)
    }

    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// Reads stored overrides; data that does not decode is an error naming its owner.
    pub fn decode(owner: &str, value: &serde_json::Value) -> Result<Self> {
        decode(owner, "overrides", value)
    }
}

/// A change to a smith's overrides: for each field, absent leaves it, `Some(None)` removes
/// the override (the agent's value applies again), `Some(Some(v))` sets it.
#[derive(Debug, Clone, Default)]
pub struct SmithConfigPatch {
    pub instructions: Option<Option<String>>,
    pub model: Option<Option<String>>,
    pub tools: Option<Option<Vec<String>>>,
    pub auto_memory: Option<Option<bool>>,
    pub allowed_models: Option<Option<Vec<String>>>,
    pub tool_approvals: Option<Option<ToolApprovals>>,
}

impl SmithConfigPatch {
    pub fn apply_to(&self, overrides: &mut SmithConfig) {
        fn apply<T: Clone>(field: &mut Option<T>, patch: &Option<Option<T>>) {
            if let Some(value) = patch {
                field.clone_from(value);
            }
        }
        apply(&mut overrides.instructions, &self.instructions);
        apply(&mut overrides.model, &self.model);
        apply(&mut overrides.tools, &self.tools);
        apply(&mut overrides.auto_memory, &self.auto_memory);
        apply(&mut overrides.allowed_models, &self.allowed_models);
        apply(&mut overrides.tool_approvals, &self.tool_approvals);
    }
}

/// The config a smith runs with: its agent's, with the smith's overrides on top.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EffectiveConfig {
    pub instructions: Option<String>,
    pub model: String,
    pub tools: Vec<String>,
    pub auto_memory: bool,
    /// The models a run may ask for instead of `model`; `None`: any model the project can reach.
    pub allowed_models: Option<Vec<String>>,
    /// The server-side tools of `tools` a run offers, with the names its model sees.
    pub resolved_tools: Vec<ResolvedTool>,
    /// Which server-side calls wait for a person's decision (none when empty).
    pub tool_approvals: ToolApprovals,
}

impl EffectiveConfig {
    /// `design` is `agent`'s, decoded; `mcp` holds what the project's MCP servers listed, when
    /// the tools in force name any.
    pub fn resolve(agent: &agent::Model, design: AgentDesign, overrides: &SmithConfig, mcp: &Listing) -> Self {
        let tools = overrides.tools.clone().unwrap_or(design.tools);
        Self {
            instructions: overrides.instructions.clone().or_else(|| agent.instructions.clone()),
            model: overrides.model.clone().unwrap_or_else(|| agent.model.clone()),
            resolved_tools: resolved_names(&tools, mcp),
            tools,
            auto_memory: overrides.auto_memory.unwrap_or(agent.auto_memory),
            allowed_models: overrides.allowed_models.clone().or(design.allowed_models),
            tool_approvals: overrides.tool_approvals.clone().or(design.tool_approvals).unwrap_or_default(),
        }
    }
}

/// An agent's JSON columns, decoded.
pub struct AgentDesign {
    pub tools: Vec<String>,
    pub allowed_models: Option<Vec<String>>,
    pub tool_approvals: Option<ToolApprovals>,
}

impl AgentDesign {
    pub fn decode(agent: &agent::Model) -> Result<Self> {
        Ok(Self {
            tools: decode(&agent.id, "tools", &agent.tools)?,
            allowed_models: agent
                .allowed_models
                .as_ref()
                .map(|models| decode(&agent.id, "allowed_models", models))
                .transpose()?,
            tool_approvals: agent
                .tool_approvals
                .as_ref()
                .map(|approvals| decode(&agent.id, "tool_approvals", approvals))
                .transpose()?,
        })
    }
}
