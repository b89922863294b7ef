//! The wire schemas of the core's types. The core knows nothing of OpenAPI, so this layer
//! declares how its types look on the wire: each type here has the name, fields and serde
//! shape of the core type it describes, is never built, and is named by the wire types'
//! fields (`#[schema(value_type = …)]`) wherever they carry the core type itself. The
//! conformance suite decodes every answer through the client generated from these schemas,
//! which is what catches a schema that drifted from its type.

#![allow(dead_code)]

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

macro_rules! id_schemas {
    ($($(#[$doc:meta])* $name:ident;)*) => {$(
        $(#[$doc])*
        #[derive(Serialize, ToSchema)]
        pub struct $name(String);
    )*};
}

// The core's typed ids, strings on the wire, each named so the client types them too.
id_schemas! {
    /// A project's id (`prj_…`).
    ProjectId;
    /// An API token's id (`tok_…`).
    TokenId;
    /// An agent's id (`agt_…`).
    AgentId;
    /// A smith's id (`smt_…`).
    SmithId;
    /// A run's id (`run_…`).
    RunId;
    /// A file's id (`file_…`).
    FileId;
    /// A memory's id (`mem_…`).
    MemoryId;
    /// An approval's id (`apr_…`).
    ApprovalId;
}

/// `{"error": {...}}`, the OpenAI error envelope, so OpenAI SDKs parse our failures unchanged.
#[derive(Serialize, ToSchema)]
pub struct ErrorEnvelope {
    pub error: ErrorBody,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    /// Human-readable; show it to people, never match on it.
    pub message: String,
    /// The OpenAI category of the error.
    #[serde(rename = "type")]
    pub kind: ErrorType,
    /// The request field the error is about, when there is one.
    pub param: Option<String>,
    /// Stable slug to match on (see docs/errors.md).
    pub code: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorType {
    InvalidRequestError,
    AuthenticationError,
    PermissionError,
    RateLimitError,
    ApiError,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TokenKind {
    /// Manages the organization's projects.
    Org,
    /// Server-side key for one project.
    TenantAdmin,
    /// Browser-safe key for one smith.
    Smith,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProviderKind {
    Openai,
    Anthropic,
    Gemini,
    /// The built-in offline model.
    Ingram,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    System,
    Developer,
    User,
    Assistant,
    Tool,
}

/// A call the model made: `arguments` is a JSON object serialized as a string, as in OpenAI.
#[derive(Serialize, ToSchema)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    pub arguments: String,
}

/// Why the model stopped.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    EndTurn,
    ToolUse,
    MaxTokens,
    ContentFilter,
}

/// What to do when the thread already has an active run.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnBusy {
    /// Refuse with 409 `thread_busy`.
    Reject,
    /// Wait behind the active run.
    Enqueue,
    /// Cancel the active run, then start.
    Interrupt,
}

#[derive(Serialize, ToSchema)]
pub struct ToolOutput {
    pub tool_call_id: String,
    pub output: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Queued,
    Running,
    RequiresAction,
    Completed,
    Failed,
    Cancelled,
}

/// One input message, in the OpenAI chat shape.
#[derive(Serialize, ToSchema)]
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
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum MessageContent {
    #[schema(title = "Text")]
    Text(String),
    #[schema(title = "Parts")]
    Parts(Vec<ContentPart>),
}

/// A part of a message, in the OpenAI chat shape. Data URLs and base64 `file_data` are
/// stored as the smith's files when the run is created, and the run's input then names them
/// by `file_id` (`GET /v1/files/{fid}`).
#[derive(Serialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ContentPart {
    Text { text: String },
    ImageUrl { image_url: ImagePart },
    File { file: FilePart },
}

/// An image: an `http(s)` or `data:` URL, or a stored file's id.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImagePart {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_id: Option<FileId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<ImageDetail>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ImageDetail {
    Auto,
    Low,
    High,
}

/// A document: base64 or data-URL `file_data`, or a stored file's id.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FilePart {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_id: Option<FileId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_data: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
}

/// A client-side tool in the OpenAI chat shape: the run pauses when the model calls it.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FunctionTool {
    /// Always `function`.
    #[serde(rename = "type")]
    pub kind: FunctionToolType,
    pub function: FunctionDefinition,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FunctionToolType {
    Function,
}

#[derive(Serialize, ToSchema)]
pub struct FunctionDefinition {
    #[schema(min_length = 1, max_length = 64)]
    pub name: String,
    #[schema(max_length = 4096)]
    pub description: Option<String>,
    /// JSON Schema of the arguments object.
    #[schema(value_type = Option<Object>)]
    pub parameters: Option<serde_json::Value>,
}

/// The config a run resolved at creation: agent, then smith overrides, then run overrides.
#[derive(Serialize, ToSchema)]
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
    #[serde(default)]
    pub mode: RunMode,
    /// For a Responses run: whether a later response may continue from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<bool>,
    /// The approvals policy the run started with; absent when none.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    #[schema(schema_with = crate::api::tool_approvals_map_schema)]
    pub tool_approvals: std::collections::BTreeMap<String, String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunMode {
    /// The thread's earlier runs are the history; client tool calls pause the run.
    Native,
    /// OpenAI Chat Completions: the input is the whole conversation; tool calls end the run.
    ChatCompletions,
    /// OpenAI Responses: the thread's earlier runs are the history; tool calls end the run.
    Responses,
}

/// `none`, `auto`, `required`, or `{"type": "function", "function": {"name": …}}`, as in OpenAI.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum ToolChoiceOption {
    #[schema(title = "Mode")]
    Mode(ToolChoiceMode),
    #[schema(title = "Named")]
    Named(NamedToolChoice),
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ToolChoiceMode {
    None,
    Auto,
    Required,
}

#[derive(Serialize, ToSchema)]
pub struct NamedToolChoice {
    #[serde(rename = "type")]
    pub kind: FunctionToolType,
    pub function: NamedFunction,
}

#[derive(Serialize, ToSchema)]
pub struct NamedFunction {
    pub name: String,
}

#[derive(Serialize, ToSchema)]
pub struct RunOutput {
    /// The assistant's reply text.
    pub content: String,
    /// Client tool calls of the last model turn, when the run paused for them.
    pub tool_calls: Vec<ToolCall>,
    /// Every call of a server-side tool the run made, in order; absent when none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub server_tool_calls: Vec<ServerToolCall>,
}

/// One call of a server-side tool, as a run detail shows it.
#[derive(Serialize, ToSchema)]
pub struct ServerToolCall {
    /// The model's id for the call.
    pub id: String,
    /// The tool's reference (`hosted/calculator`).
    pub tool: String,
    /// The arguments the model sent (a JSON object as a string).
    pub arguments: String,
    /// The tool's output, or its error, cut to 4,000 characters.
    pub output: String,
    pub is_error: bool,
    pub started_at: DateTime<Utc>,
    pub duration_ms: u64,
}

#[derive(Serialize, ToSchema)]
pub struct RunUsage {
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub total_tokens: u64,
    /// In US dollars, when the model's price is known.
    pub cost_usd: Option<f64>,
}

/// What a paused run waits for: `submit_tool_outputs` (the client calls in `tool_calls`) or
/// `submit_approvals` (the calls in `approvals`, decided before any client call is asked).
#[derive(Serialize, ToSchema)]
pub struct RequiredAction {
    #[serde(rename = "type")]
    pub kind: RequiredActionType,
    /// The client calls to answer; empty while approvals are asked.
    pub tool_calls: Vec<ToolCall>,
    /// With `submit_approvals`: the calls waiting for a decision.
    #[serde(default)]
    pub approvals: Vec<PendingApproval>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RequiredActionType {
    SubmitToolOutputs,
    SubmitApprovals,
}

/// Where an approval stands.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalStatus {
    Pending,
    Approved,
    Rejected,
    Expired,
}

/// A gated call waiting for a decision.
#[derive(Serialize, ToSchema)]
pub struct PendingApproval {
    pub id: ApprovalId,
    /// The tool's reference, e.g. `mcp/weather/delete_everything`.
    pub tool: String,
    /// The JSON object the model produced.
    #[schema(value_type = Object)]
    pub arguments: serde_json::Value,
    pub expires_at: DateTime<Utc>,
}

/// `run.started`
#[derive(Serialize, ToSchema)]
pub struct RunStartedEvent {
    pub v: u8,
    pub run_id: RunId,
    pub smith_id: SmithId,
    pub thread_id: String,
    pub model: String,
    pub created_at: DateTime<Utc>,
}

/// `message.delta`: append `delta` to the reply.
#[derive(Serialize, ToSchema)]
pub struct MessageDeltaEvent {
    pub v: u8,
    pub run_id: RunId,
    pub delta: String,
}

/// `message.completed`: one model turn's whole message.
#[derive(Serialize, ToSchema)]
pub struct MessageCompletedEvent {
    pub v: u8,
    pub run_id: RunId,
    pub content: String,
    pub tool_calls: Vec<ToolCall>,
}

/// `tool.executing` (reserved for server-side tools).
#[derive(Serialize, ToSchema)]
pub struct ToolExecutingEvent {
    pub v: u8,
    pub run_id: RunId,
    pub tool_call: ToolCall,
}

/// `tool.completed` (reserved for server-side tools).
#[derive(Serialize, ToSchema)]
pub struct ToolCompletedEvent {
    pub v: u8,
    pub run_id: RunId,
    pub tool_call_id: String,
    pub output: String,
}

/// `run.requires_action`: the run paused for client tool results or for decisions on approvals;
/// answer through `/submit`.
#[derive(Serialize, ToSchema)]
pub struct RunRequiresActionEvent {
    pub v: u8,
    pub run_id: RunId,
    pub required_action: RequiredAction,
}

/// `approval.required`: a gated call waits for a decision, given through `/submit`.
#[derive(Serialize, ToSchema)]
pub struct ApprovalRequiredEvent {
    pub v: u8,
    pub run_id: RunId,
    pub approval: PendingApproval,
}

/// `run.completed`
#[derive(Serialize, ToSchema)]
pub struct RunCompletedEvent {
    pub v: u8,
    pub run_id: RunId,
    pub stop_reason: StopReason,
    pub usage: RunUsage,
}

/// `run.failed`
#[derive(Serialize, ToSchema)]
pub struct RunFailedEvent {
    pub v: u8,
    pub run_id: RunId,
    pub error: ErrorBody,
}

/// `run.cancelled`
#[derive(Serialize, ToSchema)]
pub struct RunCancelledEvent {
    pub v: u8,
    pub run_id: RunId,
}

/// `run.duplicate`: a retried Idempotency-Key met a streaming create; follow `run_id`'s events.
#[derive(Serialize, ToSchema)]
pub struct RunDuplicateEvent {
    pub v: u8,
    pub run_id: RunId,
}

/// The `data` of one SSE frame; the frame's `event:` line names which.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum RunEventData {
    #[schema(title = "run.started")]
    Started(RunStartedEvent),
    #[schema(title = "message.delta")]
    MessageDelta(MessageDeltaEvent),
    #[schema(title = "message.completed")]
    MessageCompleted(MessageCompletedEvent),
    #[schema(title = "tool.executing")]
    ToolExecuting(ToolExecutingEvent),
    #[schema(title = "tool.completed")]
    ToolCompleted(ToolCompletedEvent),
    #[schema(title = "run.requires_action")]
    RequiresAction(RunRequiresActionEvent),
    #[schema(title = "approval.required")]
    ApprovalRequired(ApprovalRequiredEvent),
    #[schema(title = "run.completed")]
    Completed(RunCompletedEvent),
    #[schema(title = "run.failed")]
    Failed(RunFailedEvent),
    #[schema(title = "run.cancelled")]
    Cancelled(RunCancelledEvent),
    #[schema(title = "run.duplicate")]
    Duplicate(RunDuplicateEvent),
}

#[derive(Serialize, ToSchema)]
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

/// Who wrote a memory.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MemorySource {
    /// Through the API.
    Api,
    /// Extracted from a run by auto_memory.
    Auto,
    /// By the smith itself, with a memory tool.
    Tool,
}

/// A memory block an agent declares for each of its smiths (or `human` and `persona`
/// redeclared).
#[derive(Serialize, ToSchema)]
pub struct BlockDeclaration {
    /// a-z, 0-9 and _, starting with a letter.
    #[schema(min_length = 1, max_length = 64)]
    pub label: String,
    /// What belongs in the block.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 512)]
    pub description: Option<String>,
    /// Characters the block holds; 5000 when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 20000)]
    pub limit: Option<u32>,
    /// The value each smith starts with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 20000)]
    pub value: Option<String>,
    /// The smith's own memory tools may not write it (the API may). Default false; `persona`
    /// is read-only unless redeclared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
}

/// A smith's own config: each field set here overrides its agent's.
#[derive(Serialize, ToSchema)]
pub struct SmithConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instructions: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_memory: Option<bool>,
    /// Bounds the `model` any run of this smith may ask for; replaces the agent's list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_items = 64)]
    pub allowed_models: Option<Vec<String>>,
    /// Replaces the agent's tool_approvals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = crate::api::tool_approvals_schema)]
    pub tool_approvals: Option<std::collections::BTreeMap<String, String>>,
}

/// The config a smith runs with: its agent's, with the smith's overrides on top.
#[derive(Serialize, ToSchema)]
pub struct EffectiveConfig {
    pub instructions: Option<String>,
    pub model: String,
    pub tools: Vec<String>,
    pub auto_memory: bool,
    /// The models a run may ask for instead of `model`; null: any model the project can reach.
    pub allowed_models: Option<Vec<String>>,
    /// The server-side tools of `tools` a run offers, with the names its model sees (docs/tools.md).
    pub resolved_tools: Vec<ResolvedTool>,
    /// Which server-side calls wait for a person's decision; empty: none (docs/approvals.md).
    #[schema(schema_with = crate::api::tool_approvals_map_schema)]
    pub tool_approvals: std::collections::BTreeMap<String, String>,
}

/// A tool reference a run resolves.
#[derive(Serialize, ToSchema)]
pub struct ResolvedTool {
    /// As `tools` names it (`hosted/calculator`).
    pub reference: String,
    /// The function name the model sees (`hosted__calculator`).
    pub name: String,
}
