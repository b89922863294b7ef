//! One conversation with an MCP server over Streamable HTTP: rmcp is the client, on the egress
//! policy's HTTP client (so the policy's resolver, timeouts and no-redirect rule hold), with
//! caps on what the server may answer. A conversation probes the current protocol era first
//! (`server/discover`, 2026-07-28, stateless) and falls back to `initialize` (2025-11-25, with
//! a session) when the server answers like an older one; it ends with its one use.

use std::collections::HashMap;
use std::time::Duration;

use reqwest::header::{HeaderName, HeaderValue};
use rmcp::model::{
    CallToolRequestParams, ClientCapabilities, Implementation, InitializeRequestParams, JsonObject,
    PaginatedRequestParams, ProtocolVersion, Tool,
};
use rmcp::service::{ClientInitializeError, RoleClient, RunningService};
use rmcp::transport::DynamicTransportError;
use rmcp::transport::streamable_http_client::{
    StreamableHttpClientTransport, StreamableHttpClientTransportConfig, StreamableHttpError,
};
use rmcp::{ClientLifecycleMode, ClientServiceExt, ServiceError};
use serde_json::Value;

use super::{McpTool, TOOL_NAME_MAX, TOOLS_PER_SERVER_MAX};
use crate::egress::{Egress, denial_in};

/// The most an answer of the server may hold (one JSON body or one SSE event).
const ANSWER_MAX: usize = 4 * 1024 * 1024;
/// Characters of a tool's description kept.
const DESCRIPTION_MAX: usize = 2_000;
/// Bytes of a tool's argument schema kept; a tool with a larger one is left out.
const SCHEMA_MAX: usize = 32 * 1024;
/// How long closing a conversation may take (a legacy session is ended with a DELETE).
const CLOSE_DEADLINE: Duration = Duration::from_secs(2);
/// Characters of an error's detail kept in what the tenant is shown.
const DETAIL_MAX: usize = 300;
/// Pages of `tools/list` read at most.
const PAGES_MAX: usize = 16;

/// Why a server could not be used, with a stable code (docs/tools.md lists them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: &'static str,
    pub message: String,
}

impl Refusal {
    fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }

    pub fn timed_out(deadline: Duration) -> Self {
        Self::new("mcp_timeout", format!("The server did not answer within {} s.", deadline.as_secs()))
    }
}

/// An open conversation.
pub struct Session {
    service: RunningService<RoleClient, InitializeRequestParams>,
}

/// Opens a conversation with the server at `url`, sending `headers` with every request.
pub async fn connect(egress: &Egress, url: &str, headers: &[(String, String)]) -> Result<Session, Refusal> {
    let client = egress.client_for(url).map_err(|denied| Refusal::new("egress_denied", denied.0))?.clone();
    let headers: HashMap<HeaderName, HeaderValue> = headers
        .iter()
        .filter_map(|(name, value)| {
            let mut value = HeaderValue::from_str(value).ok()?;
            // Kept out of any Debug output of the transport's config.
            value.set_sensitive(true);
            Some((HeaderName::from_bytes(name.as_bytes()).ok()?, value))
        })
        .collect();
    let config = StreamableHttpClientTransportConfig::with_uri(url)
        .custom_headers(headers)
        .max_json_response_size(ANSWER_MAX)
        .max_sse_event_size(ANSWER_MAX)
        .reinit_on_expired_session(true);
    let transport = StreamableHttpClientTransport::with_client(client, config);
    let identity = InitializeRequestParams::new(
        ClientCapabilities::default(),
        Implementation::new("ingram", env!("CARGO_PKG_VERSION")),
    );
    let lifecycle = ClientLifecycleMode::Auto {
        preferred_versions: vec![ProtocolVersion::V_2026_07_28],
        legacy_version: Some(ProtocolVersion::V_2025_11_25),
    };
    let service = identity.serve_with_lifecycle(transport, lifecycle).await.map_err(|err| classify(&err))?;
    Ok(Session { service })
}

impl Session {
    /// The protocol version the conversation agreed on.
    pub fn protocol_version(&self) -> Option<String> {
        self.service.peer_info().map(|info| info.protocol_version.to_string())
    }

    /// Every tool the server lists (every page), as runs offer them: at most
    /// [`TOOLS_PER_SERVER_MAX`], descriptions clipped, tools with unusable names or oversized
    /// schemas left out.
    pub async fn list_tools(&self) -> Result<Vec<McpTool>, Refusal> {
        let mut tools = Vec::new();
        let mut cursor = None;
        // Page by page, and no further than what is kept: a server cannot make us read forever.
        for _ in 0..PAGES_MAX {
            let params = PaginatedRequestParams::default().with_cursor(cursor);
            let page = self.service.list_tools(Some(params)).await.map_err(|err| classify_service(&err))?;
            tools.extend(page.tools.into_iter().filter_map(usable));
            cursor = page.next_cursor;
            if cursor.is_none() || tools.len() >= TOOLS_PER_SERVER_MAX {
                break;
            }
        }
        tools.truncate(TOOLS_PER_SERVER_MAX);
        Ok(tools)
    }

    /// Calls `tool` with `arguments`: its content as text for the model, or an error text the
    /// model reads (the server's own `isError` results included).
    pub async fn call(&self, tool: &str, arguments: JsonObject) -> Result<String, String> {
        let params = CallToolRequestParams::new(tool.to_owned()).with_arguments(arguments);
        let result = self.service.call_tool(params).await.map_err(|err| match err {
            ServiceError::McpError(error) => format!("the MCP server refused the call: {}", error.message),
            other => classify_service(&other).message,
        })?;
        let mut text = content_text(&serde_json::to_value(&result.content).unwrap_or(Value::Null));
        if text.is_empty()
            && let Some(structured) = &result.structured_content
        {
            text = structured.to_string();
        }
        if result.is_error == Some(true) { Err(text) } else { Ok(text) }
    }

    /// Ends the conversation (a legacy session is closed at the server).
    pub async fn close(self) {
        let mut service = self.service;
        let _ = tokio::time::timeout(CLOSE_DEADLINE, service.close()).await;
    }
}

/// A listed tool as runs offer it: `None` for a name that is empty, too long or holds control
/// characters, or an argument schema over [`SCHEMA_MAX`]; the description clipped.
fn usable(tool: Tool) -> Option<McpTool> {
    let name = tool.name.to_string();
    let named = !name.is_empty() && name.len() <= TOOL_NAME_MAX && !name.chars().any(char::is_control);
    let input_schema = Value::Object((*tool.input_schema).clone());
    let fits = serde_json::to_string(&input_schema).is_ok_and(|text| text.len() <= SCHEMA_MAX);
    (named && fits).then(|| McpTool {
        name,
        description: tool.description.map(|text| clip(&text, DESCRIPTION_MAX)).unwrap_or_default(),
        input_schema,
    })
}

/// What a tool's content blocks say, as text: text blocks as they are, others described.
fn content_text(content: &Value) -> String {
    let blocks = content.as_array().map(Vec::as_slice).unwrap_or_default();
    let parts: Vec<String> = blocks
        .iter()
        .map(|block| match block.get("type").and_then(Value::as_str) {
            Some("text") => block.get("text").and_then(Value::as_str).unwrap_or_default().to_owned(),
            Some("resource") => match block.pointer("/resource/text").and_then(Value::as_str) {
                Some(text) => text.to_owned(),
                None => format!("[resource {}]", block.pointer("/resource/uri").and_then(Value::as_str).unwrap_or("")),
            },
            Some("resource_link") => {
                format!("[link {}]", block.get("uri").and_then(Value::as_str).unwrap_or_default())
            }
            Some(kind) => format!("[{kind} {}]", block.get("mimeType").and_then(Value::as_str).unwrap_or("content")),
            None => String::new(),
        })
        .collect();
    parts.join("\n")
}

fn clip(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

/// The stable reason a conversation could not start or a request failed.
fn classify(err: &(dyn std::error::Error + 'static)) -> Refusal {
    if let Some(denied) = denial_in(err) {
        return Refusal::new("egress_denied", denied.0.clone());
    }
    let mut source = Some(err);
    while let Some(err) = source {
        if let Some(http) = err.downcast_ref::<StreamableHttpError<reqwest::Error>>() {
            return classify_http(http);
        }
        if let Some(http) = err.downcast_ref::<reqwest::Error>() {
            return classify_reqwest(http);
        }
        // rmcp keeps the transport's error in fields it does not expose as sources.
        match err.downcast_ref::<ClientInitializeError>() {
            Some(ClientInitializeError::LegacyFallbackFailed { fallback, .. }) => return classify(fallback.as_ref()),
            Some(ClientInitializeError::TransportError { error, .. }) => return classify(error.error.as_ref()),
            _ => {}
        }
        if let Some(transport) = err.downcast_ref::<DynamicTransportError>() {
            return classify(transport.error.as_ref());
        }
        source = err.source();
    }
    Refusal::new("mcp_protocol_error", format!("The server did not speak MCP: {}", clip(&err.to_string(), DETAIL_MAX)))
}

fn classify_service(err: &ServiceError) -> Refusal {
    match err {
        ServiceError::McpError(error) => Refusal::new(
            "mcp_protocol_error",
            format!("The server answered an error: {}", clip(&error.message, DETAIL_MAX)),
        ),
        other => classify(other),
    }
}

fn classify_http(err: &StreamableHttpError<reqwest::Error>) -> Refusal {
    match err {
        StreamableHttpError::AuthRequired(_) | StreamableHttpError::InsufficientScope(_) => unauthorized(),
        StreamableHttpError::Client(err) => classify_reqwest(err),
        StreamableHttpError::HttpStatus(status) => {
            Refusal::new("mcp_http_error", format!("The server answered HTTP {}.", status.status))
        }
        StreamableHttpError::UnexpectedServerResponse(text)
            if text.starts_with("HTTP 401") || text.starts_with("HTTP 403") =>
        {
            unauthorized()
        }
        StreamableHttpError::UnexpectedServerResponse(text) if text.starts_with("HTTP ") => {
            let status: String = text.chars().skip(5).take_while(char::is_ascii_digit).collect();
            Refusal::new("mcp_http_error", format!("The server answered HTTP {status}."))
        }
        StreamableHttpError::ResponseBodyTooLarge { max_size } => {
            Refusal::new("mcp_answer_too_large", format!("The server's answer is larger than {max_size} bytes."))
        }
        other => Refusal::new(
            "mcp_protocol_error",
            format!("The server did not speak MCP: {}", clip(&other.to_string(), DETAIL_MAX)),
        ),
    }
}

fn classify_reqwest(err: &reqwest::Error) -> Refusal {
    if let Some(denied) = denial_in(err) {
        return Refusal::new("egress_denied", denied.0.clone());
    }
    if err.is_timeout() {
        return Refusal::new("mcp_timeout", "The server did not answer in time.");
    }
    Refusal::new("mcp_unreachable", "The server could not be reached.")
}

fn unauthorized() -> Refusal {
    Refusal::new("mcp_unauthorized", "The server refused the credentials (HTTP 401 or 403); check the headers.")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn content_reads_as_text() {
        let content = json!([
            {"type": "text", "text": "Sunny"},
            {"type": "image", "data": "AAAA", "mimeType": "image/png"},
            {"type": "resource", "resource": {"uri": "file:///a", "text": "inline"}},
            {"type": "resource_link", "uri": "https://example.com/x", "name": "x"},
        ]);
        assert_eq!(content_text(&content), "Sunny\n[image image/png]\ninline\n[link https://example.com/x]");
        assert_eq!(content_text(&json!(null)), "");
    }

    #[tokio::test]
    async fn a_refused_address_is_egress_denied() {
        let egress = Egress::new(crate::egress::EgressPolicy::strict());
        let refused = connect(&egress, "http://127.0.0.1:9/mcp", &[]).await.err().expect("refused");
        assert_eq!(refused.code, "egress_denied");
        let refused = connect(&egress, "http://localhost:9/mcp", &[]).await.err().expect("refused");
        assert_eq!(refused.code, "egress_denied", "{refused:?}");
    }
}
