//! OpenAI Chat Completions (and any OpenAI-compatible server: vLLM, llama.cpp, Ollama).

use std::collections::BTreeMap;

use futures::StreamExt;
use serde_json::{Value, json};

use super::sse::events;
use super::{
    Attachment, AttachmentKind, Endpoint, Message, ModelEvent, ModelProvider, ModelRequest, ModelStream, ProviderError,
    ProviderErrorKind, Role, StopReason, ToolCall, ToolChoice, Usage,
};

pub const DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";

pub struct OpenAi;

fn body(request: &ModelRequest) -> Value {
    let mut messages = Vec::new();
    if let Some(system) = &request.system {
        messages.push(json!({"role": "system", "content": system}));
    }
    messages.extend(request.messages.iter().map(message));
    let mut body = json!({
        "model": request.model,
        "messages": messages,
        "stream": true,
        "stream_options": {"include_usage": true},
    });
    if !request.tools.is_empty() {
        body["tools"] = request
            .tools
            .iter()
            .map(|tool| {
                json!({"type": "function", "function": {
                    "name": tool.name, "description": tool.description, "parameters": tool.parameters}})
            })
            .collect();
        match &request.tool_choice {
            ToolChoice::Auto => {}
            ToolChoice::Required => body["tool_choice"] = json!("required"),
            ToolChoice::Function(name) => body["tool_choice"] = json!({"type": "function", "function": {"name": name}}),
        }
    }
    if let Some(max_tokens) = request.max_tokens {
        body["max_completion_tokens"] = json!(max_tokens);
    }
    if let Some(temperature) = request.temperature {
        body["temperature"] = json!(temperature);
    }
    body
}

fn message(message: &Message) -> Value {
    match message.role {
        Role::Tool => json!({"role": "tool", "tool_call_id": message.tool_call_id, "content": message.content}),
        Role::Assistant if !message.tool_calls.is_empty() => json!({
            "role": "assistant",
            "content": if message.content.is_empty() { Value::Null } else { json!(message.content) },
            "tool_calls": message.tool_calls.iter().map(|call| json!({
                "id": call.id, "type": "function",
                "function": {"name": call.name, "arguments": call.arguments}})).collect::<Vec<_>>(),
        }),
        Role::User if !message.attachments.is_empty() => {
            let mut parts: Vec<Value> = message.attachments.iter().map(attachment_part).collect();
            if !message.content.is_empty() {
                parts.push(json!({"type": "text", "text": message.content}));
            }
            json!({"role": "user", "content": parts})
        }
        role => json!({"role": role, "content": message.content}),
    }
}

fn attachment_part(attachment: &Attachment) -> Value {
    match attachment.kind {
        AttachmentKind::Image => {
            let mut image_url = json!({"url": attachment.url()});
            if let Some(detail) = &attachment.detail {
                image_url["detail"] = json!(detail);
            }
            json!({"type": "image_url", "image_url": image_url})
        }
        AttachmentKind::File => {
            let mut file = json!({"file_data": attachment.url()});
            if let Some(filename) = &attachment.filename {
                file["filename"] = json!(filename);
            }
            json!({"type": "file", "file": file})
        }
    }
}

/// Tool-call fragments, gathered by `index` until the stream finishes.
#[derive(Default)]
struct PartialCall {
    id: String,
    name: String,
    arguments: String,
}

impl ModelProvider for OpenAi {
    async fn stream(
        &self,
        http: &reqwest::Client,
        endpoint: &Endpoint,
        request: &ModelRequest,
    ) -> Result<ModelStream, ProviderError> {
        let url = super::endpoint_url(&endpoint.base_url, ["chat", "completions"])?;
        let response = super::send(http.post(url).bearer_auth(&endpoint.api_key).json(&body(request))).await?;
        let mut calls: BTreeMap<u64, PartialCall> = BTreeMap::new();
        let mut usage = Usage::default();
        let mut stop_reason = None;
        let stream = events(response).flat_map(move |event| {
            let mut out: Vec<Result<ModelEvent, ProviderError>> = Vec::new();
            match event {
                Err(err) => out.push(Err(err)),
                Ok(event) if event.data == "[DONE]" => {
                    out.extend(std::mem::take(&mut calls).into_values().map(|call| {
                        Ok(ModelEvent::ToolCall(ToolCall { id: call.id, name: call.name, arguments: call.arguments }))
                    }));
                    out.push(Ok(ModelEvent::Finished {
                        stop_reason: stop_reason.unwrap_or(StopReason::EndTurn),
                        usage,
                    }));
                }
                Ok(event) => match serde_json::from_str::<Value>(&event.data) {
                    Err(err) => {
                        out.push(Err(ProviderError::new(ProviderErrorKind::Upstream, format!("bad chunk: {err}"))))
                    }
                    Ok(chunk) if chunk.get("error").is_some() => {
                        out.push(Err(ProviderError::in_stream(ProviderErrorKind::Upstream, &chunk["error"])));
                    }
                    Ok(chunk) => {
                        if let Some(u) = chunk.get("usage").filter(|u| u.is_object()) {
                            usage.input_tokens = u["prompt_tokens"].as_u64().unwrap_or(0);
                            usage.output_tokens = u["completion_tokens"].as_u64().unwrap_or(0);
                        }
                        for choice in chunk["choices"].as_array().into_iter().flatten() {
                            let delta = &choice["delta"];
                            if let Some(text) = delta["content"].as_str().filter(|t| !t.is_empty()) {
                                out.push(Ok(ModelEvent::TextDelta(text.to_owned())));
                            }
                            for fragment in delta["tool_calls"].as_array().into_iter().flatten() {
                                let call = calls.entry(fragment["index"].as_u64().unwrap_or(0)).or_default();
                                if let Some(id) = fragment["id"].as_str() {
                                    call.id = id.to_owned();
                                }
                                if let Some(name) = fragment["function"]["name"].as_str() {
                                    call.name.push_str(name);
                                }
                                if let Some(arguments) = fragment["function"]["arguments"].as_str()
                                    && let Err(err) = super::push_arguments(&mut call.arguments, arguments)
                                {
                                    out.push(Err(err));
                                }
                            }
                            if let Some(reason) = choice["finish_reason"].as_str() {
                                stop_reason = Some(match reason {
                                    "tool_calls" | "function_call" => StopReason::ToolUse,
                                    "length" => StopReason::MaxTokens,
                                    "content_filter" => StopReason::ContentFilter,
                                    _ => StopReason::EndTurn,
                                });
                            }
                        }
                    }
                },
            }
            futures::stream::iter(out)
        });
        Ok(Box::pin(stream))
    }
}
