//! OpenAI-compatible `/v1/responses`: every call a run of a smith, with history held on the
//! server. `previous_response_id` continues that response's thread, `conversation` names a
//! thread; `instructions` apply to this response only. A client tool call ends the response
//! (the next request sends `function_call_output` items), so these runs never pause.

use std::collections::{BTreeMap, HashMap};

use axum::extract::{DefaultBodyLimit, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::AppState;
use crate::api::openai::{SMITH_MODEL, resolve_smith};
use crate::api::schemas;
use crate::http::ApiResult;
use crate::http::INPUT_BODY_LIMIT;
use crate::http::auth::{Authorized, scopes};
use crate::http::extract::Json;
use ingram_core::auth::Caller;
use ingram_core::domain::runs::{self, ResponseScope};
use ingram_core::domain::smiths;
use ingram_core::domain::turn::TurnInstructions;
use ingram_core::engine::events::{DecodedEvents, Subscription};
use ingram_core::engine::start::{Sampling, Started, Turn};
use ingram_core::error::Error;
use ingram_core::ids::{FileId, RunId, SmithId};
use ingram_core::providers::{Role, StopReason, ToolCall};
use ingram_core::store::run;
use ingram_core::types::{
    ContentPart, FilePart, FunctionDefinition, FunctionTool, FunctionToolType, ImageDetail, ImagePart, InputMessage,
    MessageContent, NamedFunction, NamedToolChoice, RunEventData, RunMode, RunStatus, RunUsage, ToolChoiceMode,
    ToolChoiceOption,
};

#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateResponseRequest {
    /// The model for this response; `default` keeps the smith's.
    #[schema(max_length = 256)]
    pub model: String,
    pub input: ResponseInput,
    /// Added to the smith's instructions for this response only (not carried over).
    #[schema(max_length = 262144)]
    pub instructions: Option<String>,
    #[schema(max_items = 128)]
    pub tools: Option<Vec<ResponseFunctionTool>>,
    pub tool_choice: Option<ResponseToolChoice>,
    /// Continue from this response (its thread); cannot be combined with `conversation`.
    pub previous_response_id: Option<String>,
    /// A thread of the smith to continue, by your own id (a string or `{"id": …}`).
    pub conversation: Option<ConversationRef>,
    /// Whether a later response may continue from this one (default true).
    pub store: Option<bool>,
    #[serde(default)]
    pub stream: bool,
    #[schema(schema_with = crate::api::metadata_schema)]
    pub metadata: Option<BTreeMap<String, String>>,
    pub max_output_tokens: Option<u32>,
    pub temperature: Option<f32>,
    /// With a tenant-admin token: the external_id of the smith.
    #[schema(max_length = 255)]
    pub user: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum ResponseInput {
    #[schema(title = "Text")]
    Text(String),
    #[schema(title = "Items")]
    Items(Vec<ResponseInputItem>),
}

/// A message (`type` may be omitted), a `function_call` echoed back, or a `function_call_output`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ResponseInputItem {
    #[serde(rename = "type")]
    pub kind: Option<ResponseItemType>,
    #[schema(value_type = Option<schemas::Role>)]
    pub role: Option<Role>,
    pub content: Option<ResponseContent>,
    pub call_id: Option<String>,
    pub name: Option<String>,
    pub arguments: Option<String>,
    pub output: Option<String>,
    /// For an `item_reference`: the id of an item of an earlier stored response (`msg_…`, `fc_…`).
    pub id: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ResponseItemType {
    Message,
    FunctionCall,
    FunctionCallOutput,
    ItemReference,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum ResponseContent {
    #[schema(title = "Text")]
    Text(String),
    #[schema(title = "Parts")]
    Parts(Vec<ResponseContentPart>),
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ResponseContentPart {
    InputText {
        text: String,
    },
    OutputText {
        text: String,
    },
    /// An http(s) or data URL in `image_url`, or a stored file's `file_id`.
    InputImage {
        image_url: Option<String>,
        file_id: Option<String>,
        #[schema(value_type = Option<schemas::ImageDetail>)]
        detail: Option<ImageDetail>,
    },
    /// Base64 or data-URL `file_data`, or a stored file's `file_id`.
    InputFile {
        file_id: Option<String>,
        file_data: Option<String>,
        filename: Option<String>,
    },
}

impl From<ResponseContentPart> for ContentPart {
    fn from(part: ResponseContentPart) -> Self {
        match part {
            ResponseContentPart::InputText { text } | ResponseContentPart::OutputText { text } => Self::Text { text },
            ResponseContentPart::InputImage { image_url, file_id, detail } => {
                Self::ImageUrl { image_url: ImagePart { url: image_url, file_id: file_id.map(FileId::from), detail } }
            }
            ResponseContentPart::InputFile { file_id, file_data, filename } => {
                Self::File { file: FilePart { file_id: file_id.map(FileId::from), file_data, filename } }
            }
        }
    }
}

/// A function tool in the Responses shape: flat, unlike Chat Completions'.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ResponseFunctionTool {
    #[serde(rename = "type")]
    #[schema(value_type = schemas::FunctionToolType)]
    pub kind: FunctionToolType,
    pub name: String,
    pub description: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub parameters: Option<Value>,
    pub strict: Option<bool>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum ResponseToolChoice {
    #[schema(value_type = schemas::ToolChoiceMode, title = "Mode")]
    Mode(ToolChoiceMode),
    #[schema(title = "Function")]
    Function(ResponseNamedTool),
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ResponseNamedTool {
    #[serde(rename = "type")]
    #[schema(value_type = schemas::FunctionToolType)]
    pub kind: FunctionToolType,
    pub name: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum ConversationRef {
    #[schema(title = "Id")]
    Id(String),
    #[schema(title = "Object")]
    Object { id: String },
}

/// A response object, as OpenAI's.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ResponseObject {
    pub id: String,
    /// Always `response`.
    pub object: String,
    pub created_at: i64,
    pub status: ResponseStatus,
    pub completed_at: Option<i64>,
    pub error: Option<ResponseError>,
    pub incomplete_details: Option<IncompleteDetails>,
    pub instructions: Option<String>,
    pub model: String,
    #[schema(value_type = Vec<Object>)]
    pub output: Vec<Value>,
    pub parallel_tool_calls: bool,
    pub tool_choice: ResponseToolChoice,
    pub tools: Vec<ResponseFunctionTool>,
    pub temperature: f32,
    pub top_p: f32,
    pub metadata: BTreeMap<String, String>,
    pub previous_response_id: Option<String>,
    pub store: bool,
    #[schema(value_type = Object)]
    pub text: Value,
    pub usage: Option<ResponseUsage>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ResponseStatus {
    InProgress,
    Completed,
    Incomplete,
    Failed,
    Cancelled,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ResponseError {
    pub code: String,
    pub message: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct IncompleteDetails {
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ResponseUsage {
    pub input_tokens: u64,
    #[schema(value_type = Object)]
    pub input_tokens_details: Value,
    pub output_tokens: u64,
    #[schema(value_type = Object)]
    pub output_tokens_details: Value,
    pub total_tokens: u64,
}

impl From<RunUsage> for ResponseUsage {
    fn from(usage: RunUsage) -> Self {
        Self {
            input_tokens: usage.input_tokens,
            input_tokens_details: json!({"cached_tokens": 0}),
            output_tokens: usage.output_tokens,
            output_tokens_details: json!({"reasoning_tokens": 0}),
            total_tokens: usage.total_tokens,
        }
    }
}

/// One `event:`/`data:` frame of a streamed response; `type` names it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ResponseStreamEvent {
    #[serde(rename = "type")]
    pub kind: String,
    pub sequence_number: u64,
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create_response)).layer(DefaultBodyLimit::max(INPUT_BODY_LIMIT))
}

/// Ids of the run's items, derived from the run id: `resp_…`, `msg_…`, `fc_…`.
fn item_id(prefix: &str, run_id: &RunId) -> String {
    let run_id = run_id.as_str();
    format!("{prefix}_{}", run_id.strip_prefix("run_").unwrap_or(run_id))
}

/// What a response echoes from its request.
#[derive(Clone)]
struct Echo {
    id: String,
    run_id: RunId,
    created_at: i64,
    model: String,
    instructions: Option<String>,
    tools: Vec<ResponseFunctionTool>,
    tool_choice: ResponseToolChoice,
    temperature: f32,
    metadata: BTreeMap<String, String>,
    previous_response_id: Option<String>,
    store: bool,
}

impl Echo {
    fn object(&self, status: ResponseStatus, output: Vec<Value>, usage: Option<RunUsage>) -> ResponseObject {
        ResponseObject {
            id: self.id.clone(),
            object: "response".into(),
            created_at: self.created_at,
            status,
            completed_at: matches!(status, ResponseStatus::Completed | ResponseStatus::Incomplete)
                .then(|| chrono::Utc::now().timestamp()),
            error: None,
            incomplete_details: (status == ResponseStatus::Incomplete)
                .then(|| IncompleteDetails { reason: "max_output_tokens".into() }),
            instructions: self.instructions.clone(),
            model: self.model.clone(),
            output,
            parallel_tool_calls: true,
            tool_choice: self.tool_choice.clone(),
            tools: self.tools.clone(),
            temperature: self.temperature,
            top_p: 1.0,
            metadata: self.metadata.clone(),
            previous_response_id: self.previous_response_id.clone(),
            store: self.store,
            text: json!({"format": {"type": "text"}}),
            usage: usage.map(ResponseUsage::from),
        }
    }

    fn message_item(&self, text: &str, status: &str) -> Value {
        let content = if status == "in_progress" { json!([]) } else { json!([output_text(text)]) };
        json!({"type": "message", "id": item_id("msg", &self.run_id), "status": status, "role": "assistant", "content": content})
    }

    fn function_item(&self, index: usize, call: &ToolCall, arguments: &str, status: &str) -> Value {
        json!({
            "type": "function_call",
            "id": format!("{}_{index}", item_id("fc", &self.run_id)),
            "call_id": call.id,
            "name": call.name,
            "arguments": arguments,
            "status": status,
        })
    }

    /// The final output items: the message (when there is text, or nothing else), then calls.
    fn output(&self, text: &str, calls: &[ToolCall]) -> Vec<Value> {
        let mut output = Vec::new();
        if !text.is_empty() || calls.is_empty() {
            output.push(self.message_item(text, "completed"));
        }
        output.extend(
            calls.iter().enumerate().map(|(i, call)| self.function_item(i, call, &call.arguments, "completed")),
        );
        output
    }
}

fn output_text(text: &str) -> Value {
    json!({"type": "output_text", "text": text, "annotations": [], "logprobs": []})
}

#[utoipa::path(post, path = "/v1/responses", tag = "openai", request_body = CreateResponseRequest,
    params(("IC-Smith-Id" = Option<String>, Header, description = "The smith, for a tenant-admin token (instead of `user`).")),
    responses((status = 200, description = "A response; with `stream: true`, `event:`/`data:` frames from `response.created` to `response.completed`.",
        content((ResponseObject = "application/json"), (ResponseStreamEvent = "text/event-stream")))))]
async fn create_response(
    State(state): State<AppState>,
    caller: Authorized<scopes::RunsWrite>,
    headers: HeaderMap,
    Json(request): Json<CreateResponseRequest>,
) -> ApiResult<Response> {
    if request.previous_response_id.is_some() && request.conversation.is_some() {
        return Err(Error::invalid_param("conversation", "Use previous_response_id or conversation, not both.").into());
    }
    let previous = match &request.previous_response_id {
        Some(id) => Some(previous_run(&state, &caller, id).await?),
        None => None,
    };
    let smith = match &previous {
        Some(run) => smiths::get_with_agent(&state.db, &state.caches, &caller, &run.smith_id).await?,
        None => resolve_smith(&state, &caller, &headers, request.user.as_deref()).await?,
    };
    let thread_id = match (&previous, &request.conversation) {
        (Some(run), _) => Some(run.thread_id.clone()),
        (None, Some(ConversationRef::Id(id) | ConversationRef::Object { id })) => Some(id.clone()),
        (None, None) => None,
    };
    let referenced = referenced_items(&state, &request.input, &smith.smith.id).await?;
    let input = input_messages(request.input, &referenced)?;
    let tools = request.tools.unwrap_or_default();
    let store = request.store.unwrap_or(true);
    let turn = Turn {
        thread_id,
        thread_param: "conversation",
        model: (request.model != SMITH_MODEL).then(|| request.model.clone()),
        instructions: TurnInstructions::Append(request.instructions.clone().into_iter().collect()),
        sampling: Sampling {
            max_tokens: request.max_output_tokens,
            temperature: request.temperature,
            tool_choice: request.tool_choice.clone().map(tool_choice),
        },
        store: Some(store),
        client_tools: tools.iter().map(function_tool).collect(),
        metadata: request.metadata.clone(),
        stream: request.stream,
        ..Turn::new(RunMode::Responses, input)
    };
    let Started { run, events } = state.engine.start(&caller, &smith, turn).await?;
    let echo = Echo {
        id: item_id("resp", &run.id),
        run_id: run.id.clone(),
        created_at: run.created_at.timestamp(),
        model: request.model,
        instructions: request.instructions,
        tools,
        tool_choice: request.tool_choice.unwrap_or(ResponseToolChoice::Mode(ToolChoiceMode::Auto)),
        temperature: request.temperature.unwrap_or(1.0),
        metadata: request.metadata.unwrap_or_default(),
        previous_response_id: request.previous_response_id,
        store,
    };
    if let Some(events) = events {
        return stream(events, echo).await;
    }
    let settled = state.engine.wait_settled(&run.id, 0).await?;
    let waits_for_approvals = settled.status == RunStatus::RequiresAction;
    if settled.status != RunStatus::Completed && !waits_for_approvals {
        return Err(runs::failure_of(&settled).into());
    }
    let (mut output, usage) = runs::answer_of(&settled)?;
    if waits_for_approvals {
        // The reply says what waits; no call is the client's yet.
        output.tool_calls.clear();
    }
    let usage = Some(usage);
    let status = if settled.stop_reason == Some(StopReason::MaxTokens) {
        ResponseStatus::Incomplete
    } else {
        ResponseStatus::Completed
    };
    Ok(axum::Json(echo.object(status, echo.output(&output.content, &output.tool_calls), usage)).into_response())
}

/// The run behind `resp_…`, if the caller may continue from it.
async fn previous_run(state: &AppState, caller: &Caller, response_id: &str) -> ingram_core::Result<run::Model> {
    let not_found =
        || Error::not_found("response_not_found", "stored response", response_id).with_param("previous_response_id");
    let run_id =
        response_id.strip_prefix("resp_").map(|suffix| RunId::from(format!("run_{suffix}"))).ok_or_else(not_found)?;
    let run = runs::stored_response(&state.db, ResponseScope::Caller(caller), &run_id).await?.ok_or_else(not_found)?;
    // History is the thread, so only its latest response can be continued without mixing branches.
    if runs::completed_later_on_thread(&state.db, &run).await? {
        return Err(Error::conflict(
            "response_not_latest",
            "Only the latest response of a conversation can be continued; branching is not supported.",
        )
        .with_param("previous_response_id"));
    }
    Ok(run)
}

fn tool_choice(choice: ResponseToolChoice) -> ToolChoiceOption {
    match choice {
        ResponseToolChoice::Mode(mode) => ToolChoiceOption::Mode(mode),
        ResponseToolChoice::Function(named) => ToolChoiceOption::Named(NamedToolChoice {
            kind: FunctionToolType::Function,
            function: NamedFunction { name: named.name },
        }),
    }
}

fn function_tool(tool: &ResponseFunctionTool) -> FunctionTool {
    FunctionTool {
        kind: FunctionToolType::Function,
        function: FunctionDefinition {
            name: tool.name.clone(),
            description: tool.description.clone(),
            parameters: tool.parameters.clone(),
        },
    }
}

/// An output item of an earlier response, as an `item_reference` brings it back.
#[derive(Debug, Clone)]
enum ReferencedItem {
    Message(String),
    FunctionCall(ToolCall),
}

/// The items `item_reference`s name, by id. They must come from stored responses of the
/// same smith; anything else is not found.
async fn referenced_items(
    state: &AppState,
    input: &ResponseInput,
    smith_id: &SmithId,
) -> ingram_core::Result<HashMap<String, ReferencedItem>> {
    let ResponseInput::Items(items) = input else { return Ok(HashMap::new()) };
    let mut found = HashMap::new();
    let references = items.iter().filter(|item| item.kind == Some(ResponseItemType::ItemReference));
    for id in references.filter_map(|item| item.id.as_deref()) {
        let not_found = || Error::not_found("item_not_found", "stored response item", id).with_param("input");
        let (kind, rest) = id.split_once('_').ok_or_else(not_found)?;
        let (suffix, index) = match kind {
            "msg" => (rest, None),
            "fc" => {
                let (suffix, index) = rest.rsplit_once('_').ok_or_else(not_found)?;
                (suffix, Some(index.parse::<usize>().map_err(|_| not_found())?))
            }
            _ => return Err(not_found()),
        };
        let run_id = RunId::from(format!("run_{suffix}"));
        let run =
            runs::stored_response(&state.db, ResponseScope::Smith(smith_id), &run_id).await?.ok_or_else(not_found)?;
        let (output, _) = runs::answer_of(&run)?;
        let item = match index {
            None => ReferencedItem::Message(output.content),
            Some(index) => ReferencedItem::FunctionCall(output.tool_calls.get(index).cloned().ok_or_else(not_found)?),
        };
        found.insert(id.to_owned(), item);
    }
    Ok(found)
}

/// Appends a call to the assistant message of calls just before it, or starts one.
fn push_call(messages: &mut Vec<InputMessage>, call: ToolCall) {
    match messages.last_mut() {
        Some(last) if last.role == Role::Assistant && !last.tool_calls.is_empty() => last.tool_calls.push(call),
        _ => messages.push(InputMessage {
            role: Role::Assistant,
            content: MessageContent::Text(String::new()),
            tool_calls: vec![call],
            tool_call_id: None,
        }),
    }
}

/// Input items as run input: messages, echoed calls (one assistant message per run of
/// calls), their outputs as tool messages, and references to earlier output items.
fn input_messages(
    input: ResponseInput,
    referenced: &HashMap<String, ReferencedItem>,
) -> ingram_core::Result<Vec<InputMessage>> {
    let items = match input {
        ResponseInput::Text(text) => {
            return Ok(vec![InputMessage {
                role: Role::User,
                content: MessageContent::Text(text),
                tool_calls: Vec::new(),
                tool_call_id: None,
            }]);
        }
        ResponseInput::Items(items) => items,
    };
    let invalid = |message: &str| Error::invalid_param("input", message.to_owned());
    let mut messages: Vec<InputMessage> = Vec::new();
    for item in items {
        match item.kind.unwrap_or(ResponseItemType::Message) {
            ResponseItemType::Message => {
                let role = item.role.ok_or_else(|| invalid("A message item needs a role."))?;
                let content = match item.content {
                    None => MessageContent::default(),
                    Some(ResponseContent::Text(text)) => MessageContent::Text(text),
                    Some(ResponseContent::Parts(parts)) => {
                        MessageContent::Parts(parts.into_iter().map(ContentPart::from).collect()).simplified()
                    }
                };
                messages.push(InputMessage { role, content, tool_calls: Vec::new(), tool_call_id: None });
            }
            ResponseItemType::FunctionCall => {
                let call = ToolCall {
                    id: item.call_id.ok_or_else(|| invalid("A function_call item needs call_id."))?,
                    name: item.name.ok_or_else(|| invalid("A function_call item needs name."))?,
                    arguments: item.arguments.unwrap_or_else(|| "{}".into()),
                };
                push_call(&mut messages, call);
            }
            ResponseItemType::ItemReference => {
                let id = item.id.ok_or_else(|| invalid("An item_reference item needs id."))?;
                match referenced.get(&id).cloned() {
                    Some(ReferencedItem::Message(text)) => messages.push(InputMessage {
                        role: Role::Assistant,
                        content: MessageContent::Text(text),
                        tool_calls: Vec::new(),
                        tool_call_id: None,
                    }),
                    Some(ReferencedItem::FunctionCall(call)) => push_call(&mut messages, call),
                    None => return Err(Error::not_found("item_not_found", "stored response item", &id)),
                }
            }
            ResponseItemType::FunctionCallOutput => messages.push(InputMessage {
                role: Role::Tool,
                content: MessageContent::Text(item.output.unwrap_or_default()),
                tool_calls: Vec::new(),
                tool_call_id: Some(item.call_id.ok_or_else(|| invalid("A function_call_output item needs call_id."))?),
            }),
        }
    }
    if messages.is_empty() {
        return Err(invalid("input needs at least one item."));
    }
    Ok(messages)
}

/// The frames of a streamed response, numbered from 0.
struct Frames {
    echo: Echo,
    sequence: u64,
    text: String,
    text_started: bool,
    calls: Vec<ToolCall>,
}

impl Frames {
    fn frame(&mut self, kind: &str, mut fields: Value) -> Event {
        fields["type"] = json!(kind);
        fields["sequence_number"] = json!(self.sequence);
        self.sequence += 1;
        Event::default().event(kind).data(fields.to_string())
    }

    fn response_frame(&mut self, kind: &str, response: ResponseObject) -> Event {
        self.frame(kind, json!({"response": response}))
    }

    fn open_message(&mut self) -> Vec<Event> {
        self.text_started = true;
        let item = self.echo.message_item("", "in_progress");
        let item_id = item["id"].clone();
        vec![
            self.frame("response.output_item.added", json!({"output_index": 0, "item": item})),
            self.frame(
                "response.content_part.added",
                json!({"item_id": item_id, "output_index": 0, "content_index": 0, "part": output_text("")}),
            ),
        ]
    }

    fn on_event(&mut self, event: &RunEventData) -> Vec<Event> {
        let mut out = Vec::new();
        match event {
            RunEventData::MessageDelta(delta) => {
                if !self.text_started {
                    out.extend(self.open_message());
                }
                let delta = delta.delta.as_str();
                self.text.push_str(delta);
                let item_id = item_id("msg", &self.echo.run_id);
                out.push(self.frame(
                    "response.output_text.delta",
                    json!({"item_id": item_id, "output_index": 0, "content_index": 0, "delta": delta, "logprobs": []}),
                ));
            }
            RunEventData::MessageCompleted(completed) => {
                self.calls.clone_from(&completed.tool_calls);
                if !self.text_started && self.calls.is_empty() {
                    out.extend(self.open_message());
                }
                if self.text_started {
                    let item_id = item_id("msg", &self.echo.run_id);
                    let text = self.text.clone();
                    let ids = json!({"item_id": item_id, "output_index": 0, "content_index": 0});
                    let mut done = ids.clone();
                    done["text"] = json!(text);
                    done["logprobs"] = json!([]);
                    out.push(self.frame("response.output_text.done", done));
                    let mut part = ids;
                    part["part"] = output_text(&text);
                    out.push(self.frame("response.content_part.done", part));
                    let item = self.echo.message_item(&text, "completed");
                    out.push(self.frame("response.output_item.done", json!({"output_index": 0, "item": item})));
                }
                let first_index = usize::from(self.text_started);
                for (i, call) in self.calls.clone().iter().enumerate() {
                    let output_index = first_index + i;
                    let added = self.echo.function_item(i, call, "", "in_progress");
                    let item_id = added["id"].clone();
                    out.push(
                        self.frame("response.output_item.added", json!({"output_index": output_index, "item": added})),
                    );
                    out.push(self.frame(
                        "response.function_call_arguments.delta",
                        json!({"item_id": item_id, "output_index": output_index, "delta": call.arguments}),
                    ));
                    out.push(self.frame(
                        "response.function_call_arguments.done",
                        json!({"item_id": item_id, "output_index": output_index, "name": call.name, "arguments": call.arguments}),
                    ));
                    let done = self.echo.function_item(i, call, &call.arguments, "completed");
                    out.push(
                        self.frame("response.output_item.done", json!({"output_index": output_index, "item": done})),
                    );
                }
            }
            // Stopped for approvals: the reply (which says what waits) is the whole answer.
            RunEventData::RequiresAction(_) => {
                let output = self.echo.output(&self.text, &[]);
                let response = self.echo.object(ResponseStatus::Completed, output, None);
                out.push(self.response_frame("response.completed", response));
            }
            RunEventData::Completed(completed) => {
                let usage = Some(completed.usage);
                let (kind, status) = if completed.stop_reason == StopReason::MaxTokens {
                    ("response.incomplete", ResponseStatus::Incomplete)
                } else {
                    ("response.completed", ResponseStatus::Completed)
                };
                let output = self.echo.output(&self.text, &self.calls);
                let response = self.echo.object(status, output, usage);
                out.push(self.response_frame(kind, response));
            }
            RunEventData::Failed(_) | RunEventData::Cancelled(_) => {
                let (code, message) = match event {
                    RunEventData::Failed(failed) => (failed.error.code.clone(), failed.error.message.clone()),
                    _ => ("run_cancelled".to_owned(), "The run was cancelled.".to_owned()),
                };
                let mut response = self.echo.object(ResponseStatus::Failed, Vec::new(), None);
                response.error = Some(ResponseError { code, message });
                out.push(self.response_frame("response.failed", response));
            }
            _ => {}
        }
        out
    }
}

/// Streams the response. A run that fails before anything answers with the HTTP error.
async fn stream(subscription: Subscription, echo: Echo) -> ApiResult<Response> {
    let events = DecodedEvents::open(subscription).await?;
    let mut frames = Frames { echo, sequence: 0, text: String::new(), text_started: false, calls: Vec::new() };
    let created = frames.echo.object(ResponseStatus::InProgress, Vec::new(), None);
    let opening = vec![
        frames.response_frame("response.created", created.clone()),
        frames.response_frame("response.in_progress", created),
    ];
    let events = futures::stream::unfold((events, frames, false), |(mut events, mut frames, done)| async move {
        if done {
            return None;
        }
        let event = events.next().await?;
        let out = frames.on_event(&event);
        let done = event.ends_execution();
        Some((out, (events, frames, done)))
    });
    let frames = futures::stream::iter(opening)
        .chain(events.flat_map(futures::stream::iter))
        .map(Ok::<_, std::convert::Infallible>);
    Ok(Sse::new(frames).keep_alive(KeepAlive::new().interval(std::time::Duration::from_secs(15))).into_response())
}
