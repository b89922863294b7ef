//! OpenAI-compatible `/v1/chat/completions`: every call is a real run of a smith, driven by
//! the same engine, framed as OpenAI frames it. Chat Completions is stateless: `messages` is
//! the whole conversation, and a client tool call ends the call (the next one carries the
//! results), so these runs never pause.

use std::collections::BTreeMap;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::AppState;
use crate::api::schemas;
use crate::http::ApiResult;
use crate::http::INPUT_BODY_LIMIT;
use crate::http::auth::{Authorized, scopes};
use crate::http::extract::Json;
use ingram_core::auth::Caller;
use ingram_core::domain::runs;
use ingram_core::domain::smiths::{self, NewSmith, SmithWithAgent, Upserted};
use ingram_core::domain::turn::TurnInstructions;
use ingram_core::engine::events::{DecodedEvents, Subscription};
use ingram_core::engine::start::{Sampling, Started, Turn, validate_thread_id};
use ingram_core::error::Error;
use ingram_core::ids::SmithId;
use ingram_core::providers::{Role, StopReason, ToolCall};
use ingram_core::types::{
    FunctionTool, FunctionToolType, InputMessage, MessageContent, RunEventData, RunMode, RunStatus, RunUsage,
    ToolChoiceOption,
};

/// How errors name the thread header.
const THREAD_PARAM: &str = "IC-Thread-Id";
/// The `model` value that keeps the smith's own configured model.
pub const SMITH_MODEL: &str = "default";

#[derive(Debug, Deserialize, ToSchema)]
pub struct ChatCompletionRequest {
    /// The model for this call (the smith's inference model is overridden); `default` keeps the smith's.
    #[schema(max_length = 256)]
    pub model: String,
    #[schema(max_items = 2048)]
    pub messages: Vec<ChatMessage>,
    #[serde(default)]
    pub stream: bool,
    pub stream_options: Option<StreamOptions>,
    /// Deprecated in OpenAI but still sent by many clients; the same cap as `max_completion_tokens`.
    pub max_tokens: Option<u32>,
    pub max_completion_tokens: Option<u32>,
    pub temperature: Option<f32>,
    #[schema(value_type = Option<Vec<schemas::FunctionTool>>, max_items = 128)]
    pub tools: Option<Vec<FunctionTool>>,
    #[schema(value_type = Option<schemas::ToolChoiceOption>)]
    pub tool_choice: Option<ToolChoiceOption>,
    /// With a tenant-admin token: the external_id of the smith (on the project's default agent).
    #[schema(max_length = 255)]
    pub user: Option<String>,
    #[schema(schema_with = crate::api::metadata_schema)]
    pub metadata: Option<BTreeMap<String, String>>,
    /// Only 1 is supported.
    pub n: Option<u32>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct StreamOptions {
    #[serde(default)]
    pub include_usage: bool,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct ChatMessage {
    #[schema(value_type = schemas::Role)]
    pub role: Role,
    /// Text, or parts: `text`, `image_url` (an http(s) or data URL) and `file` (base64 `file_data`, or a `file_id`).
    #[serde(default)]
    #[schema(value_type = Option<schemas::MessageContent>)]
    pub content: Option<MessageContent>,
    #[serde(default)]
    pub tool_calls: Vec<ChatToolCall>,
    pub tool_call_id: Option<String>,
    pub name: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ChatToolCall {
    pub id: String,
    #[serde(rename = "type")]
    #[schema(value_type = schemas::FunctionToolType)]
    pub kind: FunctionToolType,
    pub function: ChatFunctionCall,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ChatFunctionCall {
    pub name: String,
    /// A JSON object, serialized.
    pub arguments: String,
}

impl From<&ToolCall> for ChatToolCall {
    fn from(call: &ToolCall) -> Self {
        Self {
            id: call.id.clone(),
            kind: FunctionToolType::Function,
            function: ChatFunctionCall { name: call.name.clone(), arguments: call.arguments.clone() },
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ChatCompletion {
    pub id: String,
    /// Always `chat.completion`.
    pub object: String,
    /// Unix seconds.
    pub created: i64,
    pub model: String,
    pub choices: Vec<ChatChoice>,
    pub usage: ChatUsage,
    pub service_tier: String,
    pub system_fingerprint: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ChatChoice {
    pub index: u32,
    pub message: ChatResponseMessage,
    #[schema(value_type = Option<Object>)]
    pub logprobs: Option<Value>,
    pub finish_reason: FinishReason,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ChatResponseMessage {
    /// Always `assistant`.
    #[schema(value_type = schemas::Role)]
    pub role: Role,
    pub content: Option<String>,
    pub refusal: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ChatToolCall>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    Stop,
    Length,
    ToolCalls,
    ContentFilter,
}

impl FinishReason {
    fn of(stop_reason: Option<StopReason>, has_tool_calls: bool) -> Self {
        match stop_reason {
            _ if has_tool_calls => Self::ToolCalls,
            Some(StopReason::MaxTokens) => Self::Length,
            Some(StopReason::ContentFilter) => Self::ContentFilter,
            _ => Self::Stop,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ChatUsage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub total_tokens: u64,
    pub prompt_tokens_details: PromptTokensDetails,
    pub completion_tokens_details: CompletionTokensDetails,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PromptTokensDetails {
    pub cached_tokens: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CompletionTokensDetails {
    pub reasoning_tokens: u64,
}

impl From<RunUsage> for ChatUsage {
    fn from(usage: RunUsage) -> Self {
        Self {
            prompt_tokens: usage.input_tokens,
            completion_tokens: usage.output_tokens,
            total_tokens: usage.total_tokens,
            prompt_tokens_details: PromptTokensDetails { cached_tokens: 0 },
            completion_tokens_details: CompletionTokensDetails { reasoning_tokens: 0 },
        }
    }
}

/// One `data:` chunk of a streamed chat completion.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ChatCompletionChunk {
    pub id: String,
    /// Always `chat.completion.chunk`.
    pub object: String,
    pub created: i64,
    pub model: String,
    pub choices: Vec<ChatChunkChoice>,
    /// Null on every chunk but the last when `stream_options.include_usage` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Option<ChatUsage>>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ChatChunkChoice {
    pub index: u32,
    pub delta: ChatDelta,
    #[schema(value_type = Option<Object>)]
    pub logprobs: Option<Value>,
    pub finish_reason: Option<FinishReason>,
}

#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct ChatDelta {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<schemas::Role>)]
    pub role: Option<Role>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ChatToolCallDelta>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ChatToolCallDelta {
    pub index: u32,
    pub id: String,
    #[serde(rename = "type")]
    #[schema(value_type = schemas::FunctionToolType)]
    pub kind: FunctionToolType,
    pub function: ChatFunctionCall,
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create_chat_completion)).layer(DefaultBodyLimit::max(INPUT_BODY_LIMIT))
}

#[utoipa::path(post, path = "/v1/chat/completions", tag = "openai", request_body = ChatCompletionRequest,
    params(("IC-Smith-Id" = Option<String>, Header, description = "The smith, for a tenant-admin token (instead of `user`)."),
        ("IC-Thread-Id" = Option<String>, Header, description = "Records the run on this thread of the smith (default: a new thread). The model still sees only `messages`.")),
    responses((status = 200, description = "A chat completion; with `stream: true`, `data:` chunks ending with `data: [DONE]`.",
        content((ChatCompletion = "application/json"), (ChatCompletionChunk = "text/event-stream")))))]
async fn create_chat_completion(
    State(state): State<AppState>,
    caller: Authorized<scopes::RunsWrite>,
    headers: HeaderMap,
    Json(request): Json<ChatCompletionRequest>,
) -> ApiResult<Response> {
    if request.n.is_some_and(|n| n != 1) {
        return Err(Error::invalid_param("n", "Only n = 1 is supported.").into());
    }
    if request.messages.is_empty() {
        return Err(Error::invalid_param("messages", "messages needs at least one message.").into());
    }
    let thread_id = match headers.get(crate::http::headers::THREAD) {
        None => None,
        Some(value) => {
            let thread_id =
                value.to_str().map_err(|_| Error::invalid_param(THREAD_PARAM, "IC-Thread-Id must be text."))?;
            // Checked before the smith is resolved, which `user` may create.
            validate_thread_id(THREAD_PARAM, thread_id)?;
            Some(thread_id.to_owned())
        }
    };
    let smith = resolve_smith(&state, &caller, &headers, request.user.as_deref()).await?;
    let (instructions, input) = split_messages(request.messages)?;
    let model_requested = request.model.clone();
    let turn = Turn {
        thread_id,
        thread_param: THREAD_PARAM,
        model: (request.model != SMITH_MODEL).then_some(request.model),
        instructions: TurnInstructions::Append(instructions),
        sampling: Sampling {
            max_tokens: request.max_completion_tokens.or(request.max_tokens),
            temperature: request.temperature,
            tool_choice: request.tool_choice,
        },
        client_tools: request.tools.unwrap_or_default(),
        metadata: request.metadata,
        stream: request.stream,
        ..Turn::new(RunMode::ChatCompletions, input)
    };
    let Started { run, events } = state.engine.start(&caller, &smith, turn).await?;
    let id = format!("chatcmpl-{}", run.id);
    let created = run.created_at.timestamp();
    if let Some(events) = events {
        let include_usage = request.stream_options.is_some_and(|options| options.include_usage);
        return stream(events, Framing { id, created, model: model_requested, include_usage }).await;
    }
    let settled = state.engine.wait_settled(&run.id, 0).await?;
    let waits_for_approvals = settled.status == RunStatus::RequiresAction;
    if settled.status != RunStatus::Completed && !waits_for_approvals {
        return Err(runs::failure_of(&settled).into());
    }
    let (mut output, usage) = runs::answer_of(&settled)?;
    // Stopped for approvals: the reply says what waits; no call is the client's yet.
    let stop_reason = if waits_for_approvals { Some(StopReason::EndTurn) } else { settled.stop_reason };
    if waits_for_approvals {
        output.tool_calls.clear();
    }
    let has_tool_calls = !output.tool_calls.is_empty();
    let completion = ChatCompletion {
        id,
        object: "chat.completion".into(),
        created,
        model: model_requested,
        choices: vec![ChatChoice {
            index: 0,
            message: ChatResponseMessage {
                role: Role::Assistant,
                content: (!(output.content.is_empty() && has_tool_calls)).then_some(output.content),
                refusal: None,
                tool_calls: output.tool_calls.iter().map(ChatToolCall::from).collect(),
            },
            logprobs: None,
            finish_reason: FinishReason::of(stop_reason, has_tool_calls),
        }],
        usage: usage.into(),
        service_tier: "default".into(),
        system_fingerprint: None,
    };
    Ok(axum::Json(completion).into_response())
}

/// A smith token is the smith; a tenant-admin token names it with `IC-Smith-Id` or `user`.
pub(crate) async fn resolve_smith(
    state: &AppState,
    caller: &Caller,
    headers: &HeaderMap,
    user: Option<&str>,
) -> ingram_core::Result<SmithWithAgent> {
    if let Some(own) = &caller.smith_id {
        return smiths::get_with_agent(&state.db, &state.caches, caller, own).await;
    }
    if let Some(smith_id) = headers.get(crate::http::headers::SMITH).and_then(|value| value.to_str().ok()) {
        return smiths::get_with_agent(&state.db, &state.caches, caller, &SmithId::from(smith_id)).await;
    }
    let Some(external_id) = user else {
        return Err(Error::bad_request(
            "smith_required",
            "Name the smith: use a smith token, the IC-Smith-Id header, or `user` (its external_id).",
        )
        .with_param("user"));
    };
    let ensure = NewSmith { external_id: external_id.to_owned(), ..NewSmith::default() };
    match smiths::upsert(&state.db, &state.caches, caller, ensure).await? {
        Upserted::Created(smith) | Upserted::Existing(smith) => Ok(smith),
    }
}

/// System and developer messages become this call's added instructions; the rest is input.
fn split_messages(messages: Vec<ChatMessage>) -> ingram_core::Result<(Vec<String>, Vec<InputMessage>)> {
    let mut instructions = Vec::new();
    let mut input = Vec::new();
    for message in messages {
        let content = message.content.unwrap_or_default().simplified();
        match message.role {
            Role::System | Role::Developer => {
                if content.attachments().next().is_some() {
                    return Err(Error::bad_request(
                        "invalid_content",
                        "System and developer messages take text only; send images and files in user messages.",
                    )
                    .with_param("messages"));
                }
                instructions.push(content.text());
            }
            role => input.push(InputMessage {
                role,
                content,
                tool_calls: message
                    .tool_calls
                    .into_iter()
                    .map(|call| ToolCall { id: call.id, name: call.function.name, arguments: call.function.arguments })
                    .collect(),
                tool_call_id: message.tool_call_id,
            }),
        }
    }
    if input.is_empty() {
        return Err(Error::invalid_param("messages", "messages needs a user message."));
    }
    Ok((instructions, input))
}

struct Framing {
    id: String,
    created: i64,
    model: String,
    include_usage: bool,
}

impl Framing {
    fn chunk(&self, delta: ChatDelta, finish_reason: Option<FinishReason>) -> Event {
        let chunk = ChatCompletionChunk {
            id: self.id.clone(),
            object: "chat.completion.chunk".into(),
            created: self.created,
            model: self.model.clone(),
            choices: vec![ChatChunkChoice { index: 0, delta, logprobs: None, finish_reason }],
            usage: self.include_usage.then_some(None),
        };
        Event::default().data(serde_json::to_string(&chunk).expect("chunks serialize"))
    }

    fn usage(&self, usage: ChatUsage) -> Event {
        let chunk = ChatCompletionChunk {
            id: self.id.clone(),
            object: "chat.completion.chunk".into(),
            created: self.created,
            model: self.model.clone(),
            choices: Vec::new(),
            usage: Some(Some(usage)),
        };
        Event::default().data(serde_json::to_string(&chunk).expect("chunks serialize"))
    }
}

/// Streams the run as OpenAI chunks. A run that fails before its first word answers with the
/// HTTP error instead, so SDKs raise the matching exception.
async fn stream(subscription: Subscription, framing: Framing) -> ApiResult<Response> {
    let events = DecodedEvents::open(subscription).await?;
    let frames = futures::stream::unfold(
        (events, framing, true, false),
        |(mut events, framing, mut opening, mut done)| async move {
            loop {
                if done {
                    return None;
                }
                let Some(event) = events.next().await else {
                    done = true;
                    return Some((vec![Event::default().data("[DONE]")], (events, framing, opening, done)));
                };
                let mut out = Vec::new();
                if opening && !matches!(event, RunEventData::Started(_)) {
                    opening = false;
                    let delta =
                        ChatDelta { role: Some(Role::Assistant), content: Some(String::new()), ..ChatDelta::default() };
                    out.push(framing.chunk(delta, None));
                }
                out.extend(frames_for(&framing, &event));
                if event.ends_execution() {
                    out.push(Event::default().data("[DONE]"));
                    done = true;
                }
                if !out.is_empty() {
                    return Some((out, (events, framing, opening, done)));
                }
            }
        },
    );
    use futures::StreamExt;
    let frames =
        frames.flat_map(|events| futures::stream::iter(events.into_iter().map(Ok::<_, std::convert::Infallible>)));
    Ok(Sse::new(frames).keep_alive(KeepAlive::new().interval(std::time::Duration::from_secs(15))).into_response())
}

fn frames_for(framing: &Framing, event: &RunEventData) -> Vec<Event> {
    match event {
        RunEventData::MessageDelta(delta) => {
            let delta = ChatDelta { content: Some(delta.delta.clone()), ..ChatDelta::default() };
            vec![framing.chunk(delta, None)]
        }
        RunEventData::MessageCompleted(completed) => completed
            .tool_calls
            .iter()
            .enumerate()
            .map(|(index, call)| {
                let delta = ChatDelta {
                    tool_calls: vec![ChatToolCallDelta {
                        index: index as u32,
                        id: call.id.clone(),
                        kind: FunctionToolType::Function,
                        function: ChatFunctionCall { name: call.name.clone(), arguments: call.arguments.clone() },
                    }],
                    ..ChatDelta::default()
                };
                framing.chunk(delta, None)
            })
            .collect(),
        RunEventData::Completed(completed) => {
            let stop_reason = Some(completed.stop_reason);
            let finish = FinishReason::of(stop_reason, completed.stop_reason == StopReason::ToolUse);
            let mut out = vec![framing.chunk(ChatDelta::default(), Some(finish))];
            if framing.include_usage {
                out.push(framing.usage(completed.usage.into()));
            }
            out
        }
        // Stopped for approvals: the reply (which says what waits) is the whole answer.
        RunEventData::RequiresAction(_) => vec![framing.chunk(ChatDelta::default(), Some(FinishReason::Stop))],
        RunEventData::Failed(failed) => {
            // Mid-stream failures: the SDKs raise on a chunk carrying `error`.
            vec![Event::default().data(json!({"error": failed.error}).to_string())]
        }
        _ => Vec::new(),
    }
}
