//! What a token may do. A token with no scopes listed may do everything its kind allows.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Scope {
    #[serde(rename = "smiths:read")]
    SmithsRead,
    #[serde(rename = "smiths:write")]
    SmithsWrite,
    #[serde(rename = "agents:read")]
    AgentsRead,
    #[serde(rename = "agents:write")]
    AgentsWrite,
    #[serde(rename = "tokens:read")]
    TokensRead,
    #[serde(rename = "tokens:write")]
    TokensWrite,
    #[serde(rename = "model_keys:read")]
    ModelKeysRead,
    #[serde(rename = "model_keys:write")]
    ModelKeysWrite,
    #[serde(rename = "runs:read")]
    RunsRead,
    #[serde(rename = "runs:write")]
    RunsWrite,
    #[serde(rename = "files:read")]
    FilesRead,
    #[serde(rename = "memory:read")]
    MemoryRead,
    #[serde(rename = "memory:write")]
    MemoryWrite,
    #[serde(rename = "tools:read")]
    ToolsRead,
    #[serde(rename = "tools:write")]
    ToolsWrite,
    #[serde(rename = "approvals:read")]
    ApprovalsRead,
    #[serde(rename = "approvals:write")]
    ApprovalsWrite,
}

impl Scope {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::SmithsRead => "smiths:read",
            Self::SmithsWrite => "smiths:write",
            Self::AgentsRead => "agents:read",
            Self::AgentsWrite => "agents:write",
            Self::TokensRead => "tokens:read",
            Self::TokensWrite => "tokens:write",
            Self::ModelKeysRead => "model_keys:read",
            Self::ModelKeysWrite => "model_keys:write",
            Self::RunsRead => "runs:read",
            Self::RunsWrite => "runs:write",
            Self::FilesRead => "files:read",
            Self::MemoryRead => "memory:read",
            Self::MemoryWrite => "memory:write",
            Self::ToolsRead => "tools:read",
            Self::ToolsWrite => "tools:write",
            Self::ApprovalsRead => "approvals:read",
            Self::ApprovalsWrite => "approvals:write",
        }
    }

    /// Smith tokens are browser-safe: they read their own smith and drive its runs, read the
    /// files inlined into its conversations, and read its memory and correct or erase its
    /// memories (the person sees what their assistant remembers), and see and decide the
    /// approvals of its runs (the person approves actions taken on their behalf); they never
    /// change its design, write its blocks, or reach project-wide resources.
    pub const fn allowed_for_smith_tokens(self) -> bool {
        matches!(
            self,
            Self::SmithsRead
                | Self::RunsRead
                | Self::RunsWrite
                | Self::FilesRead
                | Self::MemoryRead
                | Self::MemoryWrite
                | Self::ApprovalsRead
                | Self::ApprovalsWrite
        )
    }
}
