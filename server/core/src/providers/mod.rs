//! Model providers behind one trait: the engine speaks [`ModelRequest`] and reads
//! [`ModelEvent`]s; each provider translates to and from its own wire.

pub mod anthropic;
pub mod gemini;
pub mod offline;
pub mod openai;
pub mod pricing;
pub mod routing;
pub mod sse;

use std::pin::Pin;

use futures::Stream;
use serde::{Deserialize, Serialize};

/// One message of the conversation the model sees, in the OpenAI chat shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub role: Role,
    /// Text content; empty for an assistant message that only calls tools.
    #[serde(default)]
    pub content: String,
    /// Images and documents of a user message; providers place them before its text.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<Attachment>,
    /// Tool calls an assistant message made.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    /// For a `tool` message: the call it answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
}

impl Message {
    pub fn text(role: Role, content: impl Into<String>) -> Self {
        Self { role, content: content.into(), attachments: Vec::new(), tool_calls: Vec::new(), tool_call_id: None }
    }

    /// An assistant turn: its text and the tools it called.
    pub fn assistant(content: impl Into<String>, tool_calls: Vec<ToolCall>) -> Self {
        Self { tool_calls, ..Self::text(Role::Assistant, content) }
    }

    /// A tool's answer to the call `call_id`.
    pub fn tool_result(call_id: impl Into<String>, output: impl Into<String>) -> Self {
        Self { tool_call_id: Some(call_id.into()), ..Self::text(Role::Tool, output) }
    }
}

/// An image or document the model sees, by URL or with its bytes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attachment {
    pub kind: AttachmentKind,
    /// Known for stored files; guessed from the path for a URL (may be absent).
    pub media_type: Option<String>,
    pub filename: Option<String>,
    pub source: AttachmentSource,
    /// OpenAI's image `detail`, passed through where the provider has it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttachmentKind {
    Image,
    File,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttachmentSource {
    /// An `http(s)` URL the provider fetches itself.
    Url(String),
    /// The content, base64-encoded.
    Base64(String),
}

impl Attachment {
    /// The media type, or the generic one of its kind.
    pub fn media_type_or_default(&self) -> &str {
        self.media_type.as_deref().unwrap_or(match self.kind {
            AttachmentKind::Image => "image/jpeg",
            AttachmentKind::File => "application/octet-stream",
        })
    }

    /// A `data:` URL of a base64 attachment, or its own URL.
    pub fn url(&self) -> String {
        match &self.source {
            AttachmentSource::Url(url) => url.clone(),
            AttachmentSource::Base64(data) => format!("data:{};base64,{data}", self.media_type_or_default()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    System,
    Developer,
    User,
    Assistant,
    Tool,
}

/// A call the model made: `arguments` is a JSON object serialized as a string, as in OpenAI.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    pub arguments: String,
}

/// A function the model may call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolSpec {
    pub name: String,
    pub description: Option<String>,
    /// JSON Schema of the arguments object.
    pub parameters: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelRequest {
    /// The provider's own model name (without any `provider/` prefix).
    pub model: String,
    pub system: Option<String>,
    pub messages: Vec<Message>,
    pub tools: Vec<ToolSpec>,
    pub max_tokens: Option<u32>,
    pub temperature: Option<f32>,
    /// How the model must use `tools` (they are left out entirely for "none").
    #[serde(default)]
    pub tool_choice: ToolChoice,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ToolChoice {
    /// The model decides.
    #[default]
    Auto,
    /// The model must call some tool.
    Required,
    /// The model must call this tool.
    Function(String),
}

/// Why the model stopped; stored as its snake_case name in runs.stop_reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, sea_orm::EnumIter, sea_orm::DeriveActiveEnum)]
#[serde(rename_all = "snake_case")]
#[sea_orm(rs_type = "String", db_type = "String(sea_orm::sea_query::StringLen::None)", rename_all = "snake_case")]
pub enum StopReason {
    EndTurn,
    ToolUse,
    MaxTokens,
    ContentFilter,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
}

/// What a provider's stream yields. Tool calls arrive whole (providers accumulate fragments).
#[derive(Debug, Clone, PartialEq)]
pub enum ModelEvent {
    TextDelta(String),
    ToolCall(ToolCall),
    /// Always the last event of a successful stream.
    Finished {
        stop_reason: StopReason,
        usage: Usage,
    },
}

/// A provider failure, classified so the engine can map and retry it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{kind:?}: {message}")]
pub struct ProviderError {
    pub kind: ProviderErrorKind,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderErrorKind {
    /// 401/403 from the provider: the key is wrong or lacks access.
    InvalidKey,
    /// 429.
    RateLimited,
    /// 5xx, 529, or a stream that broke off.
    Upstream,
    /// The provider could not be reached or timed out.
    Unreachable,
    /// The provider refused the request as malformed (400, 404, 422).
    BadRequest,
    /// The egress policy refused the provider's URL.
    EgressDenied,
}

/// The longest provider error message passed on to a tenant, in characters.
pub const ERROR_MESSAGE_MAX: usize = 500;
/// The most of a provider's error body that is read.
pub const ERROR_BODY_MAX: usize = 64 * 1024;

/// The longest arguments of one tool call a provider may stream, in bytes.
pub const TOOL_ARGUMENTS_MAX: usize = 1024 * 1024;

/// Appends a streamed fragment of tool-call arguments, refusing to grow past the cap.
pub(crate) fn push_arguments(arguments: &mut String, fragment: &str) -> Result<(), ProviderError> {
    if arguments.len() + fragment.len() > TOOL_ARGUMENTS_MAX {
        return Err(ProviderError::new(
            ProviderErrorKind::Upstream,
            format!("the model's tool-call arguments exceed {} KiB", TOOL_ARGUMENTS_MAX >> 10),
        ));
    }
    arguments.push_str(fragment);
    Ok(())
}

pub(crate) fn capped_message(message: &str) -> String {
    let mut capped: String =
        message.chars().filter(|c| !c.is_control() || *c == '\n').take(ERROR_MESSAGE_MAX).collect();
    if message.chars().count() > ERROR_MESSAGE_MAX {
        capped.push('…');
    }
    capped
}

impl ProviderError {
    pub fn new(kind: ProviderErrorKind, message: impl Into<String>) -> Self {
        Self { kind, message: message.into() }
    }

    /// Maps an HTTP status from a provider to an error kind. The tenant sees the message of
    /// the provider's own error envelope (`{"error": {"message": …}}`, the shape OpenAI,
    /// Anthropic and Gemini share), capped; never the raw bytes of whatever answered.
    pub fn from_status(status: u16, body: &[u8]) -> Self {
        let kind = match status {
            401 | 403 => ProviderErrorKind::InvalidKey,
            429 => ProviderErrorKind::RateLimited,
            500..=599 => ProviderErrorKind::Upstream,
            _ => ProviderErrorKind::BadRequest,
        };
        let message = serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .and_then(|envelope| envelope["error"]["message"].as_str().map(capped_message));
        match message {
            Some(message) => Self::new(kind, format!("provider answered {status}: {message}")),
            None => Self::new(kind, format!("provider answered {status}")),
        }
    }

    /// An error object inside a provider's stream, by its `message` only.
    pub fn in_stream(kind: ProviderErrorKind, error: &serde_json::Value) -> Self {
        match error["message"].as_str() {
            Some(message) => Self::new(kind, format!("provider stream error: {}", capped_message(message))),
            None => Self::new(kind, "provider stream error"),
        }
    }

    /// The egress policy refused the provider's URL, before or while connecting.
    pub fn egress_denied(denied: &crate::egress::EgressDenied) -> Self {
        Self::new(ProviderErrorKind::EgressDenied, format!("the provider's URL is not allowed: {denied}"))
    }

    pub fn from_transport(err: &reqwest::Error) -> Self {
        if let Some(denied) = crate::egress::denial_in(err) {
            return Self::egress_denied(denied);
        }
        if err.is_connect() || err.is_timeout() {
            Self::new(ProviderErrorKind::Unreachable, format!("provider unreachable: {err}"))
        } else {
            Self::new(ProviderErrorKind::Upstream, format!("provider stream failed: {err}"))
        }
    }

    /// Whether retrying the same request may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(
            self.kind,
            ProviderErrorKind::RateLimited | ProviderErrorKind::Upstream | ProviderErrorKind::Unreachable
        )
    }
}

/// Sends a provider request; a non-2xx answer becomes the matching [`ProviderError`].
pub(crate) async fn send(request: reqwest::RequestBuilder) -> Result<reqwest::Response, ProviderError> {
    let response = request.send().await.map_err(|err| ProviderError::from_transport(&err))?;
    if response.status().is_success() {
        return Ok(response);
    }
    let status = response.status().as_u16();
    Err(ProviderError::from_status(status, &read_capped(response, ERROR_BODY_MAX).await))
}

/// Reads at most `max` bytes of a body; the rest is never read.
pub(crate) async fn read_capped(response: reqwest::Response, max: usize) -> Vec<u8> {
    use futures::StreamExt;
    let mut body = Vec::new();
    let mut chunks = response.bytes_stream();
    while let Some(Ok(chunk)) = chunks.next().await {
        let room = max - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() == max {
            break;
        }
    }
    body
}

/// `base_url` with `segments` appended, each percent-encoded as one path segment, so
/// nothing from input changes the path or query the provider sees.
pub(crate) fn endpoint_url<'a>(
    base_url: &str,
    segments: impl IntoIterator<Item = &'a str>,
) -> Result<reqwest::Url, ProviderError> {
    let mut url = reqwest::Url::parse(base_url)
        .map_err(|_| ProviderError::new(ProviderErrorKind::BadRequest, "the provider's base URL is not a valid URL"))?;
    url.path_segments_mut()
        .map_err(|()| ProviderError::new(ProviderErrorKind::BadRequest, "the provider's base URL cannot take a path"))?
        .pop_if_empty()
        .extend(segments);
    Ok(url)
}

/// Joins system texts (instructions, then inline system or developer messages) with blank lines.
pub(crate) fn append_paragraph(text: &mut String, paragraph: &str) {
    if paragraph.is_empty() {
        return;
    }
    if !text.is_empty() {
        text.push_str("\n\n");
    }
    text.push_str(paragraph);
}

/// Appends a turn, merging it into the previous one when the role repeats: Anthropic and
/// Gemini want alternating roles, and consecutive tool results answer one model turn together.
pub(crate) fn push_turn(
    turns: &mut Vec<(&'static str, Vec<serde_json::Value>)>,
    role: &'static str,
    parts: Vec<serde_json::Value>,
) {
    if parts.is_empty() {
        return;
    }
    match turns.last_mut() {
        Some((last_role, last_parts)) if *last_role == role => last_parts.extend(parts),
        _ => turns.push((role, parts)),
    }
}

pub type ModelStream = Pin<Box<dyn Stream<Item = Result<ModelEvent, ProviderError>> + Send>>;

/// Where and how to reach a provider: the key and base URL come from the project's BYOK
/// key or the server-wide fallback.
#[derive(Clone)]
pub struct Endpoint {
    pub base_url: String,
    pub api_key: String,
    /// Set by the operator (a server-wide fallback): reached without the egress policy.
    /// A project's key is the tenant's choice and always goes through it.
    pub trusted: bool,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("base_url", &self.base_url)
            .field("api_key", &"…")
            .field("trusted", &self.trusted)
            .finish()
    }
}

/// One model provider. `stream` returns once the provider accepted the request (so errors
/// before any output surface as `Err` and may be retried); the stream then yields the reply.
pub trait ModelProvider: Send + Sync {
    fn stream(
        &self,
        http: &reqwest::Client,
        endpoint: &Endpoint,
        request: &ModelRequest,
    ) -> impl Future<Output = Result<ModelStream, ProviderError>> + Send;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_shows_a_key() {
        let endpoint = Endpoint { base_url: "https://x".into(), api_key: "sk-live-secret".into(), trusted: false };
        let settings = crate::settings::Settings {
            fallback_keys: vec![(routing::ProviderKind::Openai, endpoint.clone())],
            ..crate::settings::Settings::for_tests()
        };
        for shown in [format!("{endpoint:?}"), format!("{settings:?}")] {
            assert!(!shown.contains("sk-live-secret"), "{shown}");
        }
    }

    #[test]
    fn provider_errors_pass_on_only_their_envelope_message_capped() {
        let page = ProviderError::from_status(500, b"<html>internal admin page</html>");
        assert_eq!(page.message, "provider answered 500");
        let envelope = ProviderError::from_status(401, br#"{"error": {"message": "bad key", "type": "x"}}"#);
        assert_eq!(
            (envelope.kind, envelope.message.as_str()),
            (ProviderErrorKind::InvalidKey, "provider answered 401: bad key")
        );
        let long = format!(r#"{{"error": {{"message": "{}"}}}}"#, "x".repeat(10_000));
        assert!(ProviderError::from_status(400, long.as_bytes()).message.chars().count() < ERROR_MESSAGE_MAX + 40);
    }

    #[test]
    fn path_segments_from_input_are_percent_encoded() {
        let url = endpoint_url("https://host/v1beta/", ["models", "a?b#c%d", "x:stream"]).unwrap();
        assert_eq!(url.as_str(), "https://host/v1beta/models/a%3Fb%23c%25d/x:stream");
        let url = endpoint_url("https://host/v1", ["..", "admin"]).unwrap();
        assert!(!url.path().starts_with("/admin"), "{url}");
    }
}
