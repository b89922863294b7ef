//! The vocabulary of runs, shared by the domain, the engine and every surface: a run's input,
//! status, output, usage and pause, and the frames of its event stream (the HTTP layer
//! publishes each frame type as a named schema, in api/schemas.rs).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::StringLen;
use serde::{Deserialize, Serialize};

use crate::error::ErrorBody;
use crate::ids::{AgentId, ApprovalId, FileId, RunId, SmithId};
use crate::providers::{Role, StopReason, ToolCall};

pub const EVENT_VERSION: u8 = 1;

// Stored as its snake_case name; a row with any other value fails to load (an error, never a default).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, sea_orm::EnumIter, sea_orm::DeriveActiveEnum)]
#[serde(rename_all = "snake_case")]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)", rename_all = "snake_case")]
pub enum RunStatus {
    Queued,
    Running,
    RequiresAction,
    Completed,
    Failed,
    Cancelled,
}

impl RunStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::RequiresAction => "requires_action",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    pub const fn is_terminal(self) -> bool {
        matches!(self, Self::Completed | Self::Failed | Self::Cancelled)
    }
}

/// One input message, in the OpenAI chat shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputMessage {
    pub role: Role,
    #[serde(default)]
    pub content: MessageContent,
    /// For an assistant message of earlier context: the tool calls it made.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    /// For a `tool` message of earlier context: the call it answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
}

/// A string, or a list of content parts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum MessageContent {
    Text(String),
    Parts(Vec<ContentPart>),
}

/// A part of a message, in the OpenAI chat shape. Data URLs and base64 `file_data` are
/// stored as the smith's files when the run is created, and the run's input then names them
/// by `file_id` (`GET /v1/files/{fid}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ContentPart {
    Text { text: String },
    ImageUrl { image_url: ImagePart },
    File { file: FilePart },
}

/// An image: an `http(s)` or `data:` URL, or a stored file's id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImagePart {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_id: Option<FileId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<ImageDetail>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImageDetail {
    Auto,
    Low,
    High,
}

impl ImageDetail {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Low => "low",
            Self::High => "high",
        }
    }
}

/// A document: base64 or data-URL `file_data`, or a stored file's id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilePart {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_id: Option<FileId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_data: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
}

impl Default for MessageContent {
    fn default() -> Self {
        Self::Text(String::new())
    }
}

impl MessageContent {
    /// Parts that are all text, as one text; anything else as it is.
    pub fn simplified(self) -> Self {
        match self {
            Self::Parts(parts) if parts.iter().all(|part| matches!(part, ContentPart::Text { .. })) => {
                Self::Text(Self::Parts(parts).text())
            }
            other => other,
        }
    }

    /// The text parts, joined.
    pub fn text(&self) -> String {
        match self {
            Self::Text(text) => text.clone(),
            Self::Parts(parts) => parts
                .iter()
                .filter_map(|part| match part {
                    ContentPart::Text { text } => Some(text.as_str()),
                    _ => None,
                })
                .collect(),
        }
    }

    /// The image and file parts, in order.
    pub fn attachments(&self) -> impl Iterator<Item = &ContentPart> {
        let parts = match self {
            Self::Text(_) => &[][..],
            Self::Parts(parts) => parts.as_slice(),
        };
        parts.iter().filter(|part| !matches!(part, ContentPart::Text { .. }))
    }

    pub fn attachments_mut(&mut self) -> impl Iterator<Item = &mut ContentPart> {
        let parts = match self {
            Self::Text(_) => &mut [][..],
            Self::Parts(parts) => parts.as_mut_slice(),
        };
        parts.iter_mut().filter(|part| !matches!(part, ContentPart::Text { .. }))
    }
}

/// A client-side tool in the OpenAI chat shape: the run pauses when the model calls it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FunctionTool {
    /// Always `function`.
    #[serde(rename = "type")]
    pub kind: FunctionToolType,
    pub function: FunctionDefinition,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FunctionToolType {
    Function,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionDefinition {
    pub name: String,
    pub description: Option<String>,
    /// JSON Schema of the arguments object.
    pub parameters: Option<serde_json::Value>,
}

/// The config a run resolved at creation: agent, then smith overrides, then run overrides.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunConfig {
    pub agent_id: AgentId,
    pub model: String,
    pub instructions: Option<String>,
    pub tools: Vec<String>,
    pub auto_memory: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<ToolChoiceOption>,
    /// Which contract the run follows; absent means `native`.
    #[serde(default, skip_serializing_if = "RunMode::is_native")]
    pub mode: RunMode,
    /// For a Responses run: whether a later response may continue from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<bool>,
    /// Which server-side calls wait for a person's decision (docs/approvals.md).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tool_approvals: ToolApprovals,
}

/// Whether calls of a tool wait for a person's decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalPolicy {
    /// Ask before every call.
    Always,
    /// Never ask.
    Never,
}

/// Tool references or `*` patterns, and whether their calls wait for a decision.
pub type ToolApprovals = BTreeMap<String, ApprovalPolicy>;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunMode {
    /// The thread's earlier runs are the history; client tool calls pause the run.
    #[default]
    Native,
    /// OpenAI Chat Completions: the input is the whole conversation; tool calls end the run.
    ChatCompletions,
    /// OpenAI Responses: the thread's earlier runs are the history; tool calls end the run.
    Responses,
}

impl RunMode {
    pub fn is_native(&self) -> bool {
        *self == Self::Native
    }

    pub fn includes_history(self) -> bool {
        self != Self::ChatCompletions
    }

    pub fn pauses_for_tools(self) -> bool {
        self == Self::Native
    }
}

/// `none`, `auto`, `required`, or `{"type": "function", "function": {"name": …}}`, as in OpenAI.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ToolChoiceOption {
    Mode(ToolChoiceMode),
    Named(NamedToolChoice),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolChoiceMode {
    None,
    Auto,
    Required,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamedToolChoice {
    #[serde(rename = "type")]
    pub kind: FunctionToolType,
    pub function: NamedFunction,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamedFunction {
    pub name: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunOutput {
    /// The assistant's reply text.
    pub content: String,
    /// Client tool calls of the last model turn, when the run paused for them.
    pub tool_calls: Vec<ToolCall>,
    /// Every call of a server-side tool the run made, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub server_tool_calls: Vec<ServerToolCall>,
}

/// One call of a server-side tool, as a run detail shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerToolCall {
    /// The model's id for the call.
    pub id: String,
    /// The tool's reference (`hosted/calculator`).
    pub tool: String,
    /// The arguments the model sent, as it sent them (a JSON object as a string).
    pub arguments: String,
    /// The tool's output, or its error, cut to [`SERVER_TOOL_OUTPUT_RECORDED`] characters.
    pub output: String,
    pub is_error: bool,
    pub started_at: chrono::DateTime<chrono::Utc>,
    pub duration_ms: u64,
}

/// Characters of a server-side tool's output a run's record keeps.
pub const SERVER_TOOL_OUTPUT_RECORDED: usize = 4_000;
/// Bytes of arguments a server-side call may carry.
pub const SERVER_TOOL_ARGUMENTS_MAX: usize = 64 * 1024;

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct RunUsage {
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub total_tokens: u64,
    /// In US dollars, when the model's price is known.
    pub cost_usd: Option<f64>,
}

/// What a paused run waits for: client tool outputs, or decisions on approvals (asked
/// first when one answer needs both).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequiredAction {
    #[serde(rename = "type")]
    pub kind: RequiredActionType,
    /// The client calls to answer (`submit_tool_outputs`); empty while approvals are asked.
    pub tool_calls: Vec<ToolCall>,
    /// The approvals to decide (`submit_approvals`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvals: Vec<PendingApproval>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequiredActionType {
    SubmitToolOutputs,
    SubmitApprovals,
}

/// A gated call waiting for a decision, as a paused run and `approval.required` show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingApproval {
    pub id: ApprovalId,
    /// The tool's reference (`mcp/weather/delete_everything`).
    pub tool: String,
    /// The JSON object the model produced.
    pub arguments: serde_json::Value,
    pub expires_at: DateTime<Utc>,
}

pub type Metadata = BTreeMap<String, String>;

/// `run.started`
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunStartedEvent {
    pub v: u8,
    pub run_id: RunId,
    pub smith_id: SmithId,
    pub thread_id: String,
    pub model: String,
    pub created_at: DateTime<Utc>,
}

/// `message.delta`: append `delta` to the reply.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MessageDeltaEvent {
    pub v: u8,
    pub run_id: RunId,
    pub delta: String,
}

/// `message.completed`: one model turn's whole message.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MessageCompletedEvent {
    pub v: u8,
    pub run_id: RunId,
    pub content: String,
    pub tool_calls: Vec<ToolCall>,
}

/// `tool.executing` (reserved for server-side tools).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ToolExecutingEvent {
    pub v: u8,
    pub run_id: RunId,
    pub tool_call: ToolCall,
}

/// `tool.completed` (reserved for server-side tools).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ToolCompletedEvent {
    pub v: u8,
    pub run_id: RunId,
    pub tool_call_id: String,
    pub output: String,
}

/// `run.requires_action`: the run paused for client tool results or for decisions on approvals;
/// answer through `/submit`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRequiresActionEvent {
    pub v: u8,
    pub run_id: RunId,
    pub required_action: RequiredAction,
}

/// `approval.required`: a gated call waits for a decision, given through `/submit`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApprovalRequiredEvent {
    pub v: u8,
    pub run_id: RunId,
    pub approval: PendingApproval,
}

/// `run.completed`
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunCompletedEvent {
    pub v: u8,
    pub run_id: RunId,
    pub stop_reason: StopReason,
    pub usage: RunUsage,
}

/// `run.failed`
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunFailedEvent {
    pub v: u8,
    pub run_id: RunId,
    pub error: ErrorBody,
}

/// `run.cancelled`
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunCancelledEvent {
    pub v: u8,
    pub run_id: RunId,
}

/// `run.duplicate`: a retried Idempotency-Key met a streaming create; follow `run_id`'s events.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunDuplicateEvent {
    pub v: u8,
    pub run_id: RunId,
}

/// The `data` of one SSE frame; the frame's `event:` line names which.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RunEventData {
    Started(RunStartedEvent),
    MessageDelta(MessageDeltaEvent),
    MessageCompleted(MessageCompletedEvent),
    ToolExecuting(ToolExecutingEvent),
    ToolCompleted(ToolCompletedEvent),
    RequiresAction(RunRequiresActionEvent),
    ApprovalRequired(ApprovalRequiredEvent),
    Completed(RunCompletedEvent),
    Failed(RunFailedEvent),
    Cancelled(RunCancelledEvent),
    Duplicate(RunDuplicateEvent),
}

macro_rules! event_kinds {
    ($($variant:ident => $name:literal,)*) => {
        /// The name of a run event: the SSE `event:` field and the stored `kind` column (a row
        /// with any other value fails to load, never turning into a default).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, sea_orm::EnumIter, sea_orm::DeriveActiveEnum)]
        #[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
        pub enum EventKind {
            $(#[sea_orm(string_value = $name)] $variant,)*
        }

        impl EventKind {
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $name,)*
                }
            }
        }
    };
}

event_kinds! {
    Started => "run.started",
    MessageDelta => "message.delta",
    MessageCompleted => "message.completed",
    ToolExecuting => "tool.executing",
    ToolCompleted => "tool.completed",
    RequiresAction => "run.requires_action",
    ApprovalRequired => "approval.required",
    Completed => "run.completed",
    Failed => "run.failed",
    Cancelled => "run.cancelled",
    Duplicate => "run.duplicate",
}

impl EventKind {
    /// A run's stream closes after this event: the run ended, or paused for the caller.
    pub const fn ends_stream(self) -> bool {
        matches!(self, Self::Completed | Self::Failed | Self::Cancelled | Self::RequiresAction)
    }
}

impl RunEventData {
    /// Reads a stored event back as the variant its kind names; the data is the JSON the
    /// event was stored with.
    pub fn decode(kind: EventKind, data: &str) -> Result<Self, String> {
        fn parse<T: serde::de::DeserializeOwned>(data: &str) -> Result<T, String> {
            serde_json::from_str(data).map_err(|err| err.to_string())
        }
        Ok(match kind {
            EventKind::Started => Self::Started(parse(data)?),
            EventKind::MessageDelta => Self::MessageDelta(parse(data)?),
            EventKind::MessageCompleted => Self::MessageCompleted(parse(data)?),
            EventKind::ToolExecuting => Self::ToolExecuting(parse(data)?),
            EventKind::ToolCompleted => Self::ToolCompleted(parse(data)?),
            EventKind::RequiresAction => Self::RequiresAction(parse(data)?),
            EventKind::ApprovalRequired => Self::ApprovalRequired(parse(data)?),
            EventKind::Completed => Self::Completed(parse(data)?),
            EventKind::Failed => Self::Failed(parse(data)?),
            EventKind::Cancelled => Self::Cancelled(parse(data)?),
            EventKind::Duplicate => Self::Duplicate(parse(data)?),
        })
    }

    /// The run ended: completed, failed or cancelled.
    pub const fn is_terminal(&self) -> bool {
        matches!(self, Self::Completed(_) | Self::Failed(_) | Self::Cancelled(_))
    }

    /// Whether an execution ends with this event: the run ended, or paused (on the OpenAI
    /// surfaces only approvals pause a run, and their answer ends there).
    pub const fn ends_execution(&self) -> bool {
        self.is_terminal() || matches!(self, Self::RequiresAction(_))
    }

    pub const fn kind(&self) -> EventKind {
        match self {
            Self::Started(_) => EventKind::Started,
            Self::MessageDelta(_) => EventKind::MessageDelta,
            Self::MessageCompleted(_) => EventKind::MessageCompleted,
            Self::ToolExecuting(_) => EventKind::ToolExecuting,
            Self::ToolCompleted(_) => EventKind::ToolCompleted,
            Self::RequiresAction(_) => EventKind::RequiresAction,
            Self::ApprovalRequired(_) => EventKind::ApprovalRequired,
            Self::Completed(_) => EventKind::Completed,
            Self::Failed(_) => EventKind::Failed,
            Self::Cancelled(_) => EventKind::Cancelled,
            Self::Duplicate(_) => EventKind::Duplicate,
        }
    }
}
