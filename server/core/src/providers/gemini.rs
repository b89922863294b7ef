//! Google Gemini API (`models/{model}:streamGenerateContent?alt=sse`).

use std::collections::HashMap;

use futures::StreamExt;
use serde_json::{Map, Value, json};

use super::sse::{SseEvent, events};
use super::{
    Attachment, AttachmentSource, Endpoint, Message, ModelEvent, ModelProvider, ModelRequest, ModelStream,
    ProviderError, ProviderErrorKind, Role, StopReason, ToolCall, ToolChoice, Usage,
};
use super::{append_paragraph, push_turn};

pub const DEFAULT_BASE_URL: &str = "https://generativelanguage.googleapis.com/v1beta";

/// Gemini 3 answers 400 when a replayed functionCall lacks its thought signature. `ToolCall`
/// does not carry the real one, so history gets the documented placeholder that skips the check.
const PLACEHOLDER_SIGNATURE: &str = "skip_thought_signature_validator";

pub struct Gemini;

fn body(request: &ModelRequest) -> Value {
    let mut system = request.system.clone().unwrap_or_default();
    let mut contents: Vec<(&'static str, Vec<Value>)> = Vec::new();
    // functionResponse needs the function's name, which tool messages don't carry.
    let mut call_names: HashMap<&str, &str> = HashMap::new();
    for message in &request.messages {
        let (role, parts) = match message.role {
            Role::System | Role::Developer => {
                append_paragraph(&mut system, &message.content);
                continue;
            }
            Role::User => ("user", user_parts(message)),
            Role::Assistant => {
                for call in &message.tool_calls {
                    call_names.insert(&call.id, &call.name);
                }
                ("model", model_parts(message))
            }
            Role::Tool => ("user", vec![function_response(message, &call_names)]),
        };
        push_turn(&mut contents, role, parts);
    }
    let contents: Vec<Value> =
        contents.into_iter().map(|(role, parts)| json!({"role": role, "parts": parts})).collect();
    let mut body = json!({"contents": contents});
    if !system.is_empty() {
        body["systemInstruction"] = json!({"parts": [{"text": system}]});
    }
    if !request.tools.is_empty() {
        let declarations: Vec<Value> = request
            .tools
            .iter()
            .map(|tool| {
                let mut declaration = json!({"name": tool.name});
                if let Some(description) = &tool.description {
                    declaration["description"] = json!(description);
                }
                if !tool.parameters.is_null() {
                    declaration["parametersJsonSchema"] = tool.parameters.clone();
                }
                declaration
            })
            .collect();
        body["tools"] = json!([{"functionDeclarations": declarations}]);
        match &request.tool_choice {
            ToolChoice::Auto => {}
            ToolChoice::Required => body["toolConfig"] = json!({"functionCallingConfig": {"mode": "ANY"}}),
            ToolChoice::Function(name) => {
                body["toolConfig"] = json!({"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": [name]}});
            }
        }
    }
    let mut config = Map::new();
    if let Some(max_tokens) = request.max_tokens {
        config.insert("maxOutputTokens".into(), json!(max_tokens));
    }
    if let Some(temperature) = request.temperature {
        config.insert("temperature".into(), json!(temperature));
    }
    if !config.is_empty() {
        body["generationConfig"] = Value::Object(config);
    }
    body
}

fn text_parts(text: &str) -> Vec<Value> {
    if text.is_empty() { Vec::new() } else { vec![json!({"text": text})] }
}

fn user_parts(message: &Message) -> Vec<Value> {
    let mut parts: Vec<Value> = message.attachments.iter().map(attachment_part).collect();
    parts.extend(text_parts(&message.content));
    parts
}

fn attachment_part(attachment: &Attachment) -> Value {
    let mime_type = attachment.media_type_or_default();
    match &attachment.source {
        AttachmentSource::Url(url) => json!({"fileData": {"mimeType": mime_type, "fileUri": url}}),
        AttachmentSource::Base64(data) => json!({"inlineData": {"mimeType": mime_type, "data": data}}),
    }
}

fn model_parts(message: &Message) -> Vec<Value> {
    let mut parts = text_parts(&message.content);
    for (i, call) in message.tool_calls.iter().enumerate() {
        let mut part =
            json!({"functionCall": {"id": call.id, "name": call.name, "args": arguments_object(&call.arguments)}});
        // Only the first call of a step carries a signature (parallel calls share it).
        if i == 0 {
            part["thoughtSignature"] = json!(PLACEHOLDER_SIGNATURE);
        }
        parts.push(part);
    }
    parts
}

fn function_response(message: &Message, call_names: &HashMap<&str, &str>) -> Value {
    let id = message.tool_call_id.as_deref().unwrap_or_default();
    let name = call_names.get(id).copied().unwrap_or(id);
    json!({"functionResponse": {"id": id, "name": name, "response": {"output": message.content}}})
}

/// `args` must be an object; unparsable (or non-object) arguments become `{}`.
fn arguments_object(arguments: &str) -> Value {
    match serde_json::from_str::<Value>(arguments) {
        Ok(value @ Value::Object(_)) => value,
        _ => Value::Object(Map::new()),
    }
}

fn finish_reason(reason: &str) -> StopReason {
    match reason {
        "MAX_TOKENS" => StopReason::MaxTokens,
        "SAFETY"
        | "RECITATION"
        | "BLOCKLIST"
        | "PROHIBITED_CONTENT"
        | "SPII"
        | "IMAGE_SAFETY"
        | "IMAGE_PROHIBITED_CONTENT" => StopReason::ContentFilter,
        _ => StopReason::EndTurn,
    }
}

fn chunk_error(error: &Value) -> ProviderError {
    match error["code"].as_u64().and_then(|code| u16::try_from(code).ok()) {
        Some(code) => ProviderError::from_status(code, serde_json::json!({ "error": error }).to_string().as_bytes()),
        None => ProviderError::in_stream(ProviderErrorKind::Upstream, error),
    }
}

type Out = Vec<Result<ModelEvent, ProviderError>>;

/// Turns the stream of `GenerateContentResponse` chunks into [`ModelEvent`]s.
#[derive(Default)]
struct Decoder {
    usage: Usage,
    finish: Option<StopReason>,
    saw_call: bool,
    /// Gemini may omit call ids; generated ones count on from the calls already in the
    /// conversation so they stay unique within it.
    next_call: usize,
    /// Set once the stream finished or failed; later events are ignored.
    done: bool,
}

impl Decoder {
    /// `None` marks the end of the SSE body: Gemini has no end-of-stream event.
    fn on_event(&mut self, event: Option<Result<SseEvent, ProviderError>>) -> Out {
        if self.done {
            return Vec::new();
        }
        let out = match event {
            None => vec![self.finished()],
            Some(Err(err)) => vec![Err(err)],
            Some(Ok(event)) => self.on_chunk(&event.data),
        };
        if out.iter().any(|item| matches!(item, Err(_) | Ok(ModelEvent::Finished { .. }))) {
            self.done = true;
        }
        out
    }

    fn finished(&self) -> Result<ModelEvent, ProviderError> {
        let stop_reason = match self.finish {
            None => return Err(ProviderError::new(ProviderErrorKind::Upstream, "provider stream ended early")),
            // Gemini reports STOP after function calls; there is no tool-calls reason.
            Some(StopReason::EndTurn) if self.saw_call => StopReason::ToolUse,
            Some(reason) => reason,
        };
        Ok(ModelEvent::Finished { stop_reason, usage: self.usage })
    }

    fn on_chunk(&mut self, data: &str) -> Out {
        if data.trim().is_empty() {
            return Vec::new();
        }
        let chunk: Value = match serde_json::from_str(data) {
            Ok(chunk) => chunk,
            Err(err) => return vec![Err(ProviderError::new(ProviderErrorKind::Upstream, format!("bad chunk: {err}")))],
        };
        if let Some(error) = chunk.get("error") {
            return vec![Err(chunk_error(error))];
        }
        if let Some(usage) = chunk.get("usageMetadata").filter(|u| u.is_object()) {
            let count = |key: &str| usage[key].as_u64().unwrap_or(0);
            self.usage = Usage {
                input_tokens: count("promptTokenCount"),
                output_tokens: count("candidatesTokenCount") + count("thoughtsTokenCount"),
            };
        }
        // A blocked prompt gets no candidates, only the feedback.
        if chunk["promptFeedback"]["blockReason"].is_string() {
            self.finish = Some(StopReason::ContentFilter);
        }
        let candidate = &chunk["candidates"][0];
        let mut out = Vec::new();
        for part in candidate["content"]["parts"].as_array().into_iter().flatten() {
            if part["thought"].as_bool() == Some(true) {
                continue;
            }
            if let Some(call) = part.get("functionCall").filter(|c| c.is_object()) {
                out.push(Ok(ModelEvent::ToolCall(self.tool_call(call))));
            } else if let Some(text) = part["text"].as_str().filter(|t| !t.is_empty()) {
                out.push(Ok(ModelEvent::TextDelta(text.to_owned())));
            }
        }
        if let Some(reason) = candidate["finishReason"].as_str() {
            self.finish = Some(finish_reason(reason));
        }
        out
    }

    fn tool_call(&mut self, call: &Value) -> ToolCall {
        self.saw_call = true;
        let id = match call["id"].as_str().filter(|id| !id.is_empty()) {
            Some(id) => id.to_owned(),
            None => {
                let id = format!("call_{}", self.next_call);
                self.next_call += 1;
                id
            }
        };
        let arguments = if call["args"].is_object() { call["args"].to_string() } else { "{}".to_owned() };
        ToolCall { id, name: call["name"].as_str().unwrap_or_default().to_owned(), arguments }
    }
}

impl ModelProvider for Gemini {
    async fn stream(
        &self,
        http: &reqwest::Client,
        endpoint: &Endpoint,
        request: &ModelRequest,
    ) -> Result<ModelStream, ProviderError> {
        let model = request.model.strip_prefix("models/").unwrap_or(&request.model);
        let method = format!("{}:streamGenerateContent", model.rsplit('/').next().unwrap_or(model));
        let prefix = model.rsplit_once('/').map(|(prefix, _)| prefix);
        let segments =
            std::iter::once("models").chain(prefix.into_iter().flat_map(|p| p.split('/'))).chain([method.as_str()]);
        let mut url = super::endpoint_url(&endpoint.base_url, segments)?;
        url.query_pairs_mut().append_pair("alt", "sse");
        let response =
            super::send(http.post(url).header("x-goog-api-key", &endpoint.api_key).json(&body(request))).await?;
        let mut decoder = Decoder {
            next_call: request.messages.iter().map(|message| message.tool_calls.len()).sum(),
            ..Decoder::default()
        };
        let stream = events(response)
            .map(Some)
            .chain(futures::stream::once(async { None }))
            .flat_map(move |event| futures::stream::iter(decoder.on_event(event)));
        Ok(Box::pin(stream))
    }
}
