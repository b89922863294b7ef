//! `ingram/offline`: the built-in model. It needs no key and no network, streams word by
//! word, counts tokens honestly (one token per whitespace-separated word), and exercises the
//! tool path: a user message `/tool <name> <json arguments>` calls that client tool. It
//! names the images and files it was sent, with their sizes, so tests see they arrived whole.
//!
//! Memory, so a newcomer sees it work with no keys: when its context carries the smith's
//! memory section it ends its reply with "I remember: …" and what the section holds; and it
//! answers the memory-extraction prompt with a fixed rule (statements such as "my name is …",
//! "I am …", "I'm allergic to …", "I like …" anywhere in what the person wrote).

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use futures::StreamExt;

pub mod memory_rule;

use super::{
    Attachment, AttachmentKind, AttachmentSource, Message, ModelEvent, ModelRequest, ModelStream, Role, StopReason,
    ToolCall, ToolChoice, Usage,
};

pub const MODEL_NAME: &str = "offline";

#[derive(Debug, Clone, Copy, Default)]
pub struct Offline {
    /// Pause between streamed words, so a person watching sees the stream.
    pub token_delay: Duration,
}

fn count_tokens(text: &str) -> u64 {
    text.split_whitespace().count() as u64
}

/// Splits a reply into the word-sized pieces it streams as, spaces kept.
fn pieces(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (i, word) in text.split(' ').enumerate() {
        out.push(if i == 0 { word.to_owned() } else { format!(" {word}") });
    }
    out.retain(|piece| !piece.is_empty());
    out
}

enum Reply {
    Text(String),
    /// Streamed as one piece.
    Whole(String),
    Call(ToolCall),
}

fn reply(request: &ModelRequest) -> Reply {
    if request.system.as_deref().is_some_and(|system| system.starts_with(memory_rule::EXTRACTION_TASK)) {
        let asked = request.messages.last().map_or("", |message| message.content.as_str());
        return Reply::Whole(serde_json::json!(memory_rule::extract(asked)).to_string());
    }
    let Some(last) = request.messages.last() else {
        return Reply::Text("Hello! Send me a message.".into());
    };
    if last.role == Role::Tool {
        let name = request
            .messages
            .iter()
            .flat_map(|message| &message.tool_calls)
            .find(|call| Some(&call.id) == last.tool_call_id.as_ref())
            .map_or("the tool", |call| call.name.as_str());
        return Reply::Text(format!("The tool {name} returned: {}", last.content));
    }
    let text = last.content.trim();
    // A forced tool choice calls that tool (or the first one) with empty arguments.
    let forced = match &request.tool_choice {
        ToolChoice::Auto => None,
        ToolChoice::Required => request.tools.first().map(|tool| tool.name.clone()),
        ToolChoice::Function(name) => Some(name.clone()),
    };
    if let Some(name) = forced.filter(|_| !text.starts_with("/tool ")) {
        let calls_so_far = request.messages.iter().map(|m| m.tool_calls.len()).sum::<usize>();
        return Reply::Call(ToolCall { id: format!("call_{}", calls_so_far + 1), name, arguments: "{}".into() });
    }
    if let Some(command) = text.strip_prefix("/tool ") {
        let (name, arguments) = command.trim().split_once(' ').unwrap_or((command.trim(), "{}"));
        if request.tools.iter().any(|tool| tool.name == name) {
            let calls_so_far = request.messages.iter().map(|m| m.tool_calls.len()).sum::<usize>();
            let arguments = if serde_json::from_str::<serde_json::Value>(arguments).is_ok() { arguments } else { "{}" };
            return Reply::Call(ToolCall {
                id: format!("call_{}", calls_so_far + 1),
                name: name.to_owned(),
                arguments: arguments.to_owned(),
            });
        }
        return Reply::Text(format!("No tool named {name} is available to me."));
    }
    let user_turns: Vec<&Message> = request.messages.iter().filter(|m| m.role == Role::User).collect();
    let mut answer = format!("Hello! I am the built-in offline model. You said: \"{text}\".");
    if !last.attachments.is_empty() {
        let seen: Vec<String> = last.attachments.iter().map(describe).collect();
        answer.push_str(&format!(" I see {}.", seen.join(" and ")));
    }
    if user_turns.len() > 1 {
        answer.push_str(&format!(
            " This is message {} of our conversation; it began with \"{}\".",
            user_turns.len(),
            user_turns[0].content.trim()
        ));
    }
    if let Some(remembered) = request.system.as_deref().and_then(memory_rule::remembered) {
        answer.push_str(&format!(" I remember: {remembered}"));
    }
    Reply::Text(answer)
}

/// What the offline model "sees" of an attachment: enough for a test to tell it arrived whole.
fn describe(attachment: &Attachment) -> String {
    let what = match (attachment.kind, &attachment.filename) {
        (AttachmentKind::Image, _) => "an image".to_owned(),
        (AttachmentKind::File, Some(name)) => format!("a file {name}"),
        (AttachmentKind::File, None) => "a file".to_owned(),
    };
    match &attachment.source {
        AttachmentSource::Url(url) => format!("{what} at {url}"),
        AttachmentSource::Base64(data) => {
            let bytes = BASE64.decode(data).map_or(0, |bytes| bytes.len());
            format!("{what} ({}, {bytes} bytes)", attachment.media_type_or_default())
        }
    }
}

impl Offline {
    pub fn stream(&self, request: &ModelRequest) -> ModelStream {
        let input_tokens = request.system.as_deref().map_or(0, count_tokens)
            + request
                .messages
                .iter()
                .map(|m| {
                    count_tokens(&m.content) + m.tool_calls.iter().map(|c| count_tokens(&c.arguments) + 1).sum::<u64>()
                })
                .sum::<u64>();
        let (events, stop_reason, output_tokens) = match reply(request) {
            Reply::Text(text) => {
                let tokens = count_tokens(&text);
                (pieces(&text).into_iter().map(ModelEvent::TextDelta).collect::<Vec<_>>(), StopReason::EndTurn, tokens)
            }
            Reply::Whole(text) => {
                let tokens = count_tokens(&text);
                (vec![ModelEvent::TextDelta(text)], StopReason::EndTurn, tokens)
            }
            Reply::Call(call) => {
                let tokens = count_tokens(&call.arguments) + 1;
                (vec![ModelEvent::ToolCall(call)], StopReason::ToolUse, tokens)
            }
        };
        let usage = Usage { input_tokens, output_tokens };
        let delay = self.token_delay;
        let stream = futures::stream::iter(events)
            .then(move |event| async move {
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                Ok(event)
            })
            .chain(futures::stream::once(async move { Ok(ModelEvent::Finished { stop_reason, usage }) }));
        Box::pin(stream)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::ToolSpec;

    fn request(messages: Vec<Message>, tools: Vec<ToolSpec>) -> ModelRequest {
        ModelRequest {
            model: MODEL_NAME.into(),
            system: None,
            messages,
            tools,
            max_tokens: None,
            temperature: None,
            tool_choice: ToolChoice::Auto,
        }
    }

    async fn collect(request: &ModelRequest) -> Vec<ModelEvent> {
        Offline::default().stream(request).map(|event| event.unwrap()).collect().await
    }

    #[tokio::test]
    async fn streams_words_and_counts_them() {
        let events = collect(&request(vec![Message::text(Role::User, "Say hello")], vec![])).await;
        let text: String = events
            .iter()
            .filter_map(|e| if let ModelEvent::TextDelta(t) = e { Some(t.as_str()) } else { None })
            .collect();
        assert_eq!(text, "Hello! I am the built-in offline model. You said: \"Say hello\".");
        let deltas = events.len() - 1;
        assert_eq!(
            events.last(),
            Some(&ModelEvent::Finished {
                stop_reason: StopReason::EndTurn,
                usage: Usage { input_tokens: 2, output_tokens: deltas as u64 }
            })
        );
    }

    #[tokio::test]
    async fn calls_a_tool_on_request_and_reads_its_result() {
        let weather = ToolSpec { name: "weather".into(), description: None, parameters: serde_json::json!({}) };
        let first =
            request(vec![Message::text(Role::User, r#"/tool weather {"city":"Paris"}"#)], vec![weather.clone()]);
        let events = collect(&first).await;
        let call = ToolCall { id: "call_1".into(), name: "weather".into(), arguments: r#"{"city":"Paris"}"#.into() };
        assert_eq!(events[0], ModelEvent::ToolCall(call.clone()));
        assert!(matches!(events[1], ModelEvent::Finished { stop_reason: StopReason::ToolUse, .. }));

        let mut messages = first.messages.clone();
        messages.push(Message::assistant("", vec![call]));
        messages.push(Message::tool_result("call_1", "21C"));
        let events = collect(&request(messages, vec![weather])).await;
        let text: String = events
            .iter()
            .filter_map(|e| if let ModelEvent::TextDelta(t) = e { Some(t.as_str()) } else { None })
            .collect();
        assert_eq!(text, "The tool weather returned: 21C");
    }
}
