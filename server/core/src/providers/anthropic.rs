//! Anthropic Messages API (`POST /v1/messages`, named-event SSE stream).

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use futures::StreamExt;
use serde_json::{Map, Value, json};

use super::sse::{SseEvent, events};
use super::{
    Attachment, AttachmentKind, AttachmentSource, Endpoint, Message, ModelEvent, ModelProvider, ModelRequest,
    ModelStream, ProviderError, ProviderErrorKind, Role, StopReason, ToolCall, ToolChoice, Usage,
};
use super::{append_paragraph, push_turn};

pub const DEFAULT_BASE_URL: &str = "https://api.anthropic.com/v1";

const API_VERSION: &str = "2023-06-01";
const DEFAULT_MAX_TOKENS: u32 = 4096;

pub struct Anthropic;

fn body(request: &ModelRequest) -> Value {
    let mut system = request.system.clone().unwrap_or_default();
    let mut turns: Vec<(&'static str, Vec<Value>)> = Vec::new();
    for message in &request.messages {
        let (role, blocks) = match message.role {
            // Anthropic has no system role inside `messages`; such messages join the system prompt.
            Role::System | Role::Developer => {
                append_paragraph(&mut system, &message.content);
                continue;
            }
            Role::User => ("user", user_blocks(message)),
            Role::Assistant => ("assistant", assistant_blocks(message)),
            Role::Tool => ("user", vec![tool_result(message)]),
        };
        push_turn(&mut turns, role, blocks);
    }
    let messages: Vec<Value> =
        turns.into_iter().map(|(role, content)| json!({"role": role, "content": content})).collect();
    let mut body = json!({
        "model": request.model,
        "max_tokens": request.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS),
        "messages": messages,
        "stream": true,
    });
    if !system.is_empty() {
        body["system"] = json!(system);
    }
    if !request.tools.is_empty() {
        body["tools"] = request
            .tools
            .iter()
            .map(|tool| {
                let mut spec = json!({"name": tool.name, "input_schema": input_schema(&tool.parameters)});
                if let Some(description) = &tool.description {
                    spec["description"] = json!(description);
                }
                spec
            })
            .collect();
        match &request.tool_choice {
            ToolChoice::Auto => {}
            ToolChoice::Required => body["tool_choice"] = json!({"type": "any"}),
            ToolChoice::Function(name) => body["tool_choice"] = json!({"type": "tool", "name": name}),
        }
    }
    if let Some(temperature) = request.temperature {
        body["temperature"] = json!(temperature);
    }
    body
}

/// Anthropic rejects empty text blocks, so empty text yields no block at all.
fn text_blocks(text: &str) -> Vec<Value> {
    if text.is_empty() { Vec::new() } else { vec![json!({"type": "text", "text": text})] }
}

fn user_blocks(message: &Message) -> Vec<Value> {
    let mut blocks: Vec<Value> = message.attachments.iter().map(attachment_block).collect();
    blocks.extend(text_blocks(&message.content));
    blocks
}

/// Images as `image` blocks; documents as `document` blocks (text files as text sources,
/// anything else as base64, which Anthropic accepts for PDFs).
fn attachment_block(attachment: &Attachment) -> Value {
    let media_type = attachment.media_type_or_default();
    let source = match &attachment.source {
        AttachmentSource::Url(url) => json!({"type": "url", "url": url}),
        AttachmentSource::Base64(data)
            if attachment.kind == AttachmentKind::File && media_type.starts_with("text/") =>
        {
            let text =
                BASE64.decode(data).map(|bytes| String::from_utf8_lossy(&bytes).into_owned()).unwrap_or_default();
            json!({"type": "text", "media_type": "text/plain", "data": text})
        }
        AttachmentSource::Base64(data) => json!({"type": "base64", "media_type": media_type, "data": data}),
    };
    match attachment.kind {
        AttachmentKind::Image => json!({"type": "image", "source": source}),
        AttachmentKind::File => {
            let mut block = json!({"type": "document", "source": source});
            if let Some(filename) = &attachment.filename {
                block["title"] = json!(filename);
            }
            block
        }
    }
}

fn assistant_blocks(message: &Message) -> Vec<Value> {
    let mut blocks = text_blocks(&message.content);
    blocks.extend(message.tool_calls.iter().map(|call| {
        json!({"type": "tool_use", "id": call.id, "name": call.name, "input": arguments_object(&call.arguments)})
    }));
    blocks
}

fn tool_result(message: &Message) -> Value {
    json!({
        "type": "tool_result",
        "tool_use_id": message.tool_call_id.as_deref().unwrap_or_default(),
        "content": message.content,
    })
}

/// `input` must be an object; arguments the model produced unparsable (or non-object) become `{}`.
fn arguments_object(arguments: &str) -> Value {
    match serde_json::from_str::<Value>(arguments) {
        Ok(value @ Value::Object(_)) => value,
        _ => Value::Object(Map::new()),
    }
}

fn input_schema(parameters: &Value) -> Value {
    if parameters.is_object() { parameters.clone() } else { json!({"type": "object", "properties": {}}) }
}

fn stop_reason(reason: &str) -> StopReason {
    match reason {
        "tool_use" => StopReason::ToolUse,
        "max_tokens" => StopReason::MaxTokens,
        "refusal" => StopReason::ContentFilter,
        _ => StopReason::EndTurn,
    }
}

fn stream_error(error: &Value) -> ProviderError {
    let kind = match error["type"].as_str().unwrap_or_default() {
        "rate_limit_error" => ProviderErrorKind::RateLimited,
        "authentication_error" | "permission_error" => ProviderErrorKind::InvalidKey,
        "invalid_request_error" | "not_found_error" | "request_too_large" => ProviderErrorKind::BadRequest,
        _ => ProviderErrorKind::Upstream,
    };
    ProviderError::in_stream(kind, error)
}

/// A content block being streamed, keyed by its `index`.
enum Block {
    Text,
    ToolUse { id: String, name: String, json: String, initial: String },
    Other,
}

type Out = Vec<Result<ModelEvent, ProviderError>>;

/// Reassembles the named-event stream into [`ModelEvent`]s.
#[derive(Default)]
struct Decoder {
    blocks: BTreeMap<u64, Block>,
    usage: Usage,
    stop_reason: Option<StopReason>,
    /// Set once the stream finished or failed; later events are ignored.
    done: bool,
}

impl Decoder {
    /// `None` marks the end of the SSE body.
    fn on_event(&mut self, event: Option<Result<SseEvent, ProviderError>>) -> Out {
        if self.done {
            return Vec::new();
        }
        let out = match event {
            None => vec![Err(ProviderError::new(ProviderErrorKind::Upstream, "provider stream ended early"))],
            Some(Err(err)) => vec![Err(err)],
            Some(Ok(event)) => self.on_sse(event),
        };
        if out.iter().any(|item| matches!(item, Err(_) | Ok(ModelEvent::Finished { .. }))) {
            self.done = true;
        }
        out
    }

    fn on_sse(&mut self, event: SseEvent) -> Out {
        if event.data.is_empty() {
            return Vec::new();
        }
        let data: Value = match serde_json::from_str(&event.data) {
            Ok(data) => data,
            Err(err) => return vec![Err(ProviderError::new(ProviderErrorKind::Upstream, format!("bad event: {err}")))],
        };
        let name = event.event.as_deref().or_else(|| data["type"].as_str()).unwrap_or_default().to_owned();
        match name.as_str() {
            "message_start" => {
                self.read_usage(&data["message"]["usage"]);
                Vec::new()
            }
            "content_block_start" => self.block_start(&data),
            "content_block_delta" => self.block_delta(&data),
            "content_block_stop" => self.block_stop(&data),
            "message_delta" => {
                if let Some(reason) = data["delta"]["stop_reason"].as_str() {
                    self.stop_reason = Some(stop_reason(reason));
                }
                self.read_usage(&data["usage"]);
                Vec::new()
            }
            "message_stop" => vec![Ok(ModelEvent::Finished {
                stop_reason: self.stop_reason.unwrap_or(StopReason::EndTurn),
                usage: self.usage,
            })],
            "error" => vec![Err(stream_error(&data["error"]))],
            _ => Vec::new(),
        }
    }

    /// Counts are cumulative, so each one present overwrites. Cached prompt tokens are
    /// reported apart from `input_tokens` but were still read by the model.
    fn read_usage(&mut self, usage: &Value) {
        if !usage.is_object() {
            return;
        }
        let input = ["input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens"];
        if input.iter().any(|key| usage[key].is_u64()) {
            self.usage.input_tokens = input.iter().filter_map(|key| usage[key].as_u64()).sum();
        }
        if let Some(output) = usage["output_tokens"].as_u64() {
            self.usage.output_tokens = output;
        }
    }

    fn block_start(&mut self, data: &Value) -> Out {
        let index = data["index"].as_u64().unwrap_or(0);
        let block = &data["content_block"];
        let mut out = Vec::new();
        let state = match block["type"].as_str() {
            Some("text") => {
                if let Some(text) = block["text"].as_str().filter(|t| !t.is_empty()) {
                    out.push(Ok(ModelEvent::TextDelta(text.to_owned())));
                }
                Block::Text
            }
            Some("tool_use") => Block::ToolUse {
                id: block["id"].as_str().unwrap_or_default().to_owned(),
                name: block["name"].as_str().unwrap_or_default().to_owned(),
                json: String::new(),
                initial: match &block["input"] {
                    Value::Object(input) if !input.is_empty() => block["input"].to_string(),
                    _ => "{}".to_owned(),
                },
            },
            _ => Block::Other,
        };
        self.blocks.insert(index, state);
        out
    }

    fn block_delta(&mut self, data: &Value) -> Out {
        let index = data["index"].as_u64().unwrap_or(0);
        let delta = &data["delta"];
        match (delta["type"].as_str(), self.blocks.get_mut(&index)) {
            (Some("text_delta"), _) => match delta["text"].as_str().filter(|t| !t.is_empty()) {
                Some(text) => vec![Ok(ModelEvent::TextDelta(text.to_owned()))],
                None => Vec::new(),
            },
            (Some("input_json_delta"), Some(Block::ToolUse { json, .. })) => {
                match super::push_arguments(json, delta["partial_json"].as_str().unwrap_or_default()) {
                    Ok(()) => Vec::new(),
                    Err(err) => vec![Err(err)],
                }
            }
            _ => Vec::new(),
        }
    }

    fn block_stop(&mut self, data: &Value) -> Out {
        let index = data["index"].as_u64().unwrap_or(0);
        match self.blocks.remove(&index) {
            Some(Block::ToolUse { id, name, json, initial }) => {
                let arguments = if json.trim().is_empty() { initial } else { json };
                vec![Ok(ModelEvent::ToolCall(ToolCall { id, name, arguments }))]
            }
            _ => Vec::new(),
        }
    }
}

impl ModelProvider for Anthropic {
    async fn stream(
        &self,
        http: &reqwest::Client,
        endpoint: &Endpoint,
        request: &ModelRequest,
    ) -> Result<ModelStream, ProviderError> {
        let url = super::endpoint_url(&endpoint.base_url, ["messages"])?;
        let response = super::send(
            http.post(url)
                .header("x-api-key", &endpoint.api_key)
                .header("anthropic-version", API_VERSION)
                .json(&body(request)),
        )
        .await?;
        let mut decoder = Decoder::default();
        let stream = events(response)
            .map(Some)
            .chain(futures::stream::once(async { None }))
            .flat_map(move |event| futures::stream::iter(decoder.on_event(event)));
        Ok(Box::pin(stream))
    }
}
