//! The model providers against recorded wire served by wiremock: text streams, a tool-call
//! round trip (checking the provider-specific request shape), and HTTP error mapping.

use futures::TryStreamExt;
use ingram_core::providers::anthropic::Anthropic;
use ingram_core::providers::gemini::Gemini;
use ingram_core::providers::openai::OpenAi;
use ingram_core::providers::{
    Attachment, AttachmentKind, AttachmentSource, Endpoint, Message, ModelEvent, ModelProvider, ModelRequest,
    ProviderError, ProviderErrorKind, Role, StopReason, ToolCall, ToolSpec, Usage,
};
use serde_json::{Value, json};
use wiremock::matchers::{body_partial_json, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

pub const OPENAI_TEXT: &str = r#"data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}],"usage":null}

data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"Hel"},"logprobs":null,"finish_reason":null}],"usage":null}

data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"lo"},"logprobs":null,"finish_reason":null}],"usage":null}

data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"usage":null}

data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[],"usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}}

data: [DONE]

"#;

pub const OPENAI_TOOL_CALL: &str = r#"data: {"id":"c2","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"get_weather","arguments":""}}]},"logprobs":null,"finish_reason":null}],"usage":null}

data: {"id":"c2","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"city\":"}}]},"logprobs":null,"finish_reason":null}],"usage":null}

data: {"id":"c2","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":" \"Paris\"}"}}]},"logprobs":null,"finish_reason":null}],"usage":null}

data: {"id":"c2","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"tool_calls"}],"usage":null}

data: {"id":"c2","object":"chat.completion.chunk","created":1,"model":"m","choices":[],"usage":{"prompt_tokens":40,"completion_tokens":9,"total_tokens":49}}

data: [DONE]

"#;

pub const OPENAI_FINAL: &str = r#"data: {"id":"c3","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":"It is 21°C."},"logprobs":null,"finish_reason":null}],"usage":null}

data: {"id":"c3","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"usage":null}

data: {"id":"c3","object":"chat.completion.chunk","created":1,"model":"m","choices":[],"usage":{"prompt_tokens":60,"completion_tokens":6,"total_tokens":66}}

data: [DONE]

"#;

pub const ANTHROPIC_TEXT: &str = r#"event: message_start
data: {"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"claude-x","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":12,"output_tokens":1}}}

event: content_block_start
data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}

event: ping
data: {"type": "ping"}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hel"}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"lo"}}

event: content_block_stop
data: {"type":"content_block_stop","index":0}

event: message_delta
data: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":6}}

event: message_stop
data: {"type":"message_stop"}

"#;

pub const ANTHROPIC_TOOL_CALL: &str = r#"event: message_start
data: {"type":"message_start","message":{"id":"msg_2","type":"message","role":"assistant","model":"claude-x","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":40,"output_tokens":1}}}

event: content_block_start
data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Checking."}}

event: content_block_stop
data: {"type":"content_block_stop","index":0}

event: content_block_start
data: {"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_1","name":"get_weather","input":{}}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":""}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"city\": "}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"\"Paris\"}"}}

event: content_block_stop
data: {"type":"content_block_stop","index":1}

event: message_delta
data: {"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":65}}

event: message_stop
data: {"type":"message_stop"}

"#;

pub const ANTHROPIC_FINAL: &str = r#"event: message_start
data: {"type":"message_start","message":{"id":"msg_3","type":"message","role":"assistant","model":"claude-x","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":120,"output_tokens":1}}}

event: content_block_start
data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"It is 21°C."}}

event: content_block_stop
data: {"type":"content_block_stop","index":0}

event: message_delta
data: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":8}}

event: message_stop
data: {"type":"message_stop"}

"#;

pub const ANTHROPIC_OVERLOADED_MID_STREAM: &str = r#"event: message_start
data: {"type":"message_start","message":{"id":"msg_4","type":"message","role":"assistant","model":"claude-x","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":12,"output_tokens":1}}}

event: error
data: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}

"#;

pub const GEMINI_TEXT: &str = r#"data: {"candidates":[{"content":{"role":"model","parts":[{"text":"Let me think.","thought":true},{"text":"Hel"}]},"index":0}],"usageMetadata":{"promptTokenCount":12,"totalTokenCount":12},"modelVersion":"gemini-x","responseId":"r1"}

data: {"candidates":[{"content":{"role":"model","parts":[{"text":"lo"}]},"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":12,"candidatesTokenCount":4,"totalTokenCount":20,"thoughtsTokenCount":4},"modelVersion":"gemini-x","responseId":"r1"}

"#;

pub const GEMINI_TOOL_CALL: &str = r#"data: {"candidates":[{"content":{"role":"model","parts":[{"functionCall":{"name":"get_weather","args":{"city":"Paris"}},"thoughtSignature":"c2lnbmF0dXJl"}]},"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":40,"candidatesTokenCount":5,"totalTokenCount":45},"modelVersion":"gemini-x","responseId":"r2"}

"#;

pub const GEMINI_FINAL: &str = r#"data: {"candidates":[{"content":{"role":"model","parts":[{"text":"It is 21°C."}]},"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":60,"candidatesTokenCount":6,"totalTokenCount":66},"modelVersion":"gemini-x","responseId":"r3"}

"#;

pub const GEMINI_CUT_OFF: &str = r#"data: {"candidates":[{"content":{"role":"model","parts":[{"text":"Hel"}]},"index":0}],"modelVersion":"gemini-x","responseId":"r4"}

"#;

pub const GEMINI_PATH: &str = "/v1beta/models/gemini-x:streamGenerateContent";

fn sse(body: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_raw(body, "text/event-stream")
}

fn weather_tool() -> ToolSpec {
    ToolSpec {
        name: "get_weather".into(),
        description: Some("Current weather in a city".into()),
        parameters: json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}),
    }
}

fn request(model: &str, messages: Vec<Message>) -> ModelRequest {
    ModelRequest {
        model: model.into(),
        system: Some("Be brief.".into()),
        messages,
        tools: vec![weather_tool()],
        max_tokens: Some(256),
        temperature: None,
        tool_choice: Default::default(),
    }
}

fn question() -> Vec<Message> {
    vec![Message::text(Role::User, "Weather in Paris?")]
}

/// The conversation after the model called `call` and the tool answered.
fn answered(text: &str, call: &ToolCall) -> Vec<Message> {
    vec![
        Message::text(Role::User, "Weather in Paris?"),
        Message::assistant(text, vec![call.clone()]),
        Message::tool_result(&call.id, "21°C"),
    ]
}

async fn run<P: ModelProvider>(
    provider: &P,
    base_url: String,
    request: &ModelRequest,
) -> Result<Vec<ModelEvent>, ProviderError> {
    let endpoint = Endpoint { base_url, api_key: "k".into(), trusted: true };
    let stream = provider.stream(&reqwest::Client::new(), &endpoint, request).await?;
    stream.try_collect().await
}

fn text(events: &[ModelEvent]) -> String {
    events
        .iter()
        .filter_map(|event| match event {
            ModelEvent::TextDelta(text) => Some(text.as_str()),
            _ => None,
        })
        .collect()
}

fn tool_calls(events: &[ModelEvent]) -> Vec<ToolCall> {
    events
        .iter()
        .filter_map(|event| match event {
            ModelEvent::ToolCall(call) => Some(call.clone()),
            _ => None,
        })
        .collect()
}

/// The stop reason and usage of the `Finished` event, which must come last and only once.
fn finished(events: &[ModelEvent]) -> (StopReason, Usage) {
    let count = events.iter().filter(|event| matches!(event, ModelEvent::Finished { .. })).count();
    assert_eq!(count, 1, "exactly one Finished event: {events:?}");
    match events.last() {
        Some(ModelEvent::Finished { stop_reason, usage }) => (*stop_reason, *usage),
        other => panic!("the stream must end with Finished, got {other:?}"),
    }
}

fn usage(input_tokens: u64, output_tokens: u64) -> Usage {
    Usage { input_tokens, output_tokens }
}

fn arguments(call: &ToolCall) -> Value {
    serde_json::from_str(&call.arguments)
        .unwrap_or_else(|err| panic!("arguments are not JSON ({err}): {}", call.arguments))
}

/// Serves one error answer to a request carrying the expected auth header and returns the
/// error kind the provider made of it.
async fn error_kind<P: ModelProvider>(
    provider: &P,
    prefix: &str,
    api_path: &str,
    auth: (&str, &str),
    status: u16,
    body: Value,
) -> ProviderErrorKind {
    let mock = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(api_path))
        .and(header(auth.0, auth.1))
        .respond_with(ResponseTemplate::new(status).set_body_json(body))
        .expect(1)
        .mount(&mock)
        .await;
    let result = run(provider, format!("{}{prefix}", mock.uri()), &request("gemini-x", question())).await;
    result.expect_err(&format!("status {status} must fail")).kind
}

// --- OpenAI -----------------------------------------------------------------------------

#[tokio::test]
async fn openai_streams_text_and_usage() {
    let mock = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .and(header("authorization", "Bearer k"))
        .and(body_partial_json(json!({
            "model": "gpt-x",
            "stream": true,
            "stream_options": {"include_usage": true},
            "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Weather in Paris?"}],
            "tools": [{"type": "function", "function": {"name": "get_weather"}}],
        })))
        .respond_with(sse(OPENAI_TEXT))
        .expect(1)
        .mount(&mock)
        .await;
    let events = run(&OpenAi, format!("{}/v1", mock.uri()), &request("gpt-x", question())).await.unwrap();
    assert_eq!(text(&events), "Hello");
    assert_eq!(finished(&events), (StopReason::EndTurn, usage(5, 2)));
}

#[tokio::test]
async fn openai_tool_call_round_trip_sends_a_tool_message() {
    let mock = MockServer::start().await;
    // Mounted first so it wins once the tool result is in the request.
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .and(body_partial_json(json!({"messages": [
            {"role": "system"},
            {"role": "user"},
            {"role": "assistant", "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "21°C"},
        ]})))
        .respond_with(sse(OPENAI_FINAL))
        .expect(1)
        .mount(&mock)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(sse(OPENAI_TOOL_CALL))
        .up_to_n_times(1)
        .expect(1)
        .mount(&mock)
        .await;
    let base_url = format!("{}/v1", mock.uri());

    let events = run(&OpenAi, base_url.clone(), &request("gpt-x", question())).await.unwrap();
    let calls = tool_calls(&events);
    assert_eq!(calls.len(), 1, "{events:?}");
    assert_eq!((calls[0].id.as_str(), calls[0].name.as_str()), ("call_1", "get_weather"));
    assert_eq!(arguments(&calls[0]), json!({"city": "Paris"}));
    assert_eq!(finished(&events), (StopReason::ToolUse, usage(40, 9)));

    let events = run(&OpenAi, base_url, &request("gpt-x", answered("", &calls[0]))).await.unwrap();
    assert_eq!(text(&events), "It is 21°C.");
    assert!(tool_calls(&events).is_empty());
    assert_eq!(finished(&events), (StopReason::EndTurn, usage(60, 6)));
}

#[tokio::test]
async fn openai_http_errors_map_to_kinds() {
    let auth = ("authorization", "Bearer k");
    let body = |kind: &str| json!({"error": {"message": "nope", "type": kind, "param": null, "code": null}});
    let cases = [
        (401, ProviderErrorKind::InvalidKey),
        (429, ProviderErrorKind::RateLimited),
        (500, ProviderErrorKind::Upstream),
    ];
    for (status, kind) in cases {
        let got = error_kind(&OpenAi, "/v1", "/v1/chat/completions", auth, status, body("error")).await;
        assert_eq!(got, kind, "status {status}");
    }
}

// --- Anthropic --------------------------------------------------------------------------

#[tokio::test]
async fn anthropic_streams_text_and_usage() {
    let mock = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .and(header("x-api-key", "k"))
        .and(header("anthropic-version", "2023-06-01"))
        .and(body_partial_json(json!({
            "model": "claude-x",
            "max_tokens": 256,
            "stream": true,
            "system": "Be brief.",
            "messages": [{"role": "user", "content": [{"type": "text", "text": "Weather in Paris?"}]}],
            "tools": [{"name": "get_weather", "description": "Current weather in a city",
                "input_schema": {"type": "object", "required": ["city"]}}],
        })))
        .respond_with(sse(ANTHROPIC_TEXT))
        .expect(1)
        .mount(&mock)
        .await;
    let events = run(&Anthropic, format!("{}/v1", mock.uri()), &request("claude-x", question())).await.unwrap();
    assert_eq!(text(&events), "Hello");
    assert_eq!(finished(&events), (StopReason::EndTurn, usage(12, 6)));
}

#[tokio::test]
async fn anthropic_tool_call_round_trip_sends_a_tool_result_block() {
    let mock = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .and(body_partial_json(json!({"messages": [
            {"role": "user"},
            {"role": "assistant", "content": [
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "21°C"}]},
        ]})))
        .respond_with(sse(ANTHROPIC_FINAL))
        .expect(1)
        .mount(&mock)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .respond_with(sse(ANTHROPIC_TOOL_CALL))
        .up_to_n_times(1)
        .expect(1)
        .mount(&mock)
        .await;
    let base_url = format!("{}/v1", mock.uri());

    let events = run(&Anthropic, base_url.clone(), &request("claude-x", question())).await.unwrap();
    assert_eq!(text(&events), "Checking.");
    let calls = tool_calls(&events);
    assert_eq!(calls.len(), 1, "{events:?}");
    assert_eq!((calls[0].id.as_str(), calls[0].name.as_str()), ("toolu_1", "get_weather"));
    assert_eq!(arguments(&calls[0]), json!({"city": "Paris"}));
    assert_eq!(finished(&events), (StopReason::ToolUse, usage(40, 65)));

    let events = run(&Anthropic, base_url, &request("claude-x", answered("Checking.", &calls[0]))).await.unwrap();
    assert_eq!(text(&events), "It is 21°C.");
    assert!(tool_calls(&events).is_empty());
    assert_eq!(finished(&events), (StopReason::EndTurn, usage(120, 8)));
}

#[tokio::test]
async fn anthropic_merges_tool_results_and_inline_system_messages() {
    let mock = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .and(body_partial_json(json!({
            "max_tokens": 4096,
            "system": "Be brief.\n\nUse metric units.",
            "messages": [
                {"role": "user"},
                {"role": "assistant", "content": [
                    {"type": "tool_use", "id": "toolu_1", "input": {"city": "Paris"}},
                    {"type": "tool_use", "id": "toolu_2", "input": {}}]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": "21°C"},
                    {"type": "tool_result", "tool_use_id": "toolu_2", "content": "18°C"}]},
            ],
        })))
        .respond_with(sse(ANTHROPIC_FINAL))
        .expect(1)
        .mount(&mock)
        .await;
    let paris = ToolCall { id: "toolu_1".into(), name: "get_weather".into(), arguments: r#"{"city":"Paris"}"#.into() };
    let broken = ToolCall { id: "toolu_2".into(), name: "get_weather".into(), arguments: "not json".into() };
    let mut request = request(
        "claude-x",
        vec![
            Message::text(Role::User, "Weather in Paris and Lyon?"),
            Message::text(Role::System, "Use metric units."),
            Message::assistant("", vec![paris, broken]),
            Message::tool_result("toolu_1", "21°C"),
            Message::tool_result("toolu_2", "18°C"),
        ],
    );
    request.max_tokens = None;
    let events = run(&Anthropic, format!("{}/v1", mock.uri()), &request).await.unwrap();
    assert_eq!(text(&events), "It is 21°C.");
}

#[tokio::test]
async fn anthropic_error_event_mid_stream_is_upstream() {
    let mock = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .respond_with(sse(ANTHROPIC_OVERLOADED_MID_STREAM))
        .mount(&mock)
        .await;
    let err = run(&Anthropic, format!("{}/v1", mock.uri()), &request("claude-x", question())).await.unwrap_err();
    assert_eq!(err.kind, ProviderErrorKind::Upstream, "{err}");
}

#[tokio::test]
async fn anthropic_http_errors_map_to_kinds() {
    let auth = ("x-api-key", "k");
    let body = |kind: &str| json!({"type": "error", "error": {"type": kind, "message": "nope"}, "request_id": "req_1"});
    let cases = [
        (401, "authentication_error", ProviderErrorKind::InvalidKey),
        (429, "rate_limit_error", ProviderErrorKind::RateLimited),
        (500, "api_error", ProviderErrorKind::Upstream),
        (529, "overloaded_error", ProviderErrorKind::Upstream),
    ];
    for (status, error_type, kind) in cases {
        let got = error_kind(&Anthropic, "/v1", "/v1/messages", auth, status, body(error_type)).await;
        assert_eq!(got, kind, "status {status}");
    }
}

// --- Gemini -----------------------------------------------------------------------------

#[tokio::test]
async fn gemini_streams_text_and_usage() {
    let mock = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(GEMINI_PATH))
        .and(query_param("alt", "sse"))
        .and(header("x-goog-api-key", "k"))
        .and(body_partial_json(json!({
            "contents": [{"role": "user", "parts": [{"text": "Weather in Paris?"}]}],
            "systemInstruction": {"parts": [{"text": "Be brief."}]},
            "tools": [{"functionDeclarations": [{"name": "get_weather", "description": "Current weather in a city",
                "parametersJsonSchema": {"type": "object", "required": ["city"]}}]}],
            "generationConfig": {"maxOutputTokens": 256},
        })))
        .respond_with(sse(GEMINI_TEXT))
        .expect(1)
        .mount(&mock)
        .await;
    let events = run(&Gemini, format!("{}/v1beta", mock.uri()), &request("gemini-x", question())).await.unwrap();
    assert_eq!(text(&events), "Hello", "thought parts are not text");
    assert_eq!(finished(&events), (StopReason::EndTurn, usage(12, 8)));
}

#[tokio::test]
async fn gemini_tool_call_round_trip_sends_a_function_response() {
    let mock = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(GEMINI_PATH))
        .and(body_partial_json(json!({"contents": [
            {"role": "user"},
            {"role": "model", "parts": [{"functionCall": {"id": "call_0", "name": "get_weather", "args": {"city": "Paris"}}}]},
            {"role": "user", "parts": [
                {"functionResponse": {"id": "call_0", "name": "get_weather", "response": {"output": "21°C"}}}]},
        ]})))
        .respond_with(sse(GEMINI_FINAL))
        .expect(1)
        .mount(&mock)
        .await;
    Mock::given(method("POST"))
        .and(path(GEMINI_PATH))
        .respond_with(sse(GEMINI_TOOL_CALL))
        .up_to_n_times(1)
        .expect(1)
        .mount(&mock)
        .await;
    let base_url = format!("{}/v1beta", mock.uri());

    let events = run(&Gemini, base_url.clone(), &request("gemini-x", question())).await.unwrap();
    let calls = tool_calls(&events);
    assert_eq!(calls.len(), 1, "{events:?}");
    // Gemini sent no id, so one is generated.
    assert_eq!((calls[0].id.as_str(), calls[0].name.as_str()), ("call_0", "get_weather"));
    assert_eq!(arguments(&calls[0]), json!({"city": "Paris"}));
    assert_eq!(finished(&events), (StopReason::ToolUse, usage(40, 5)));

    let events = run(&Gemini, base_url, &request("gemini-x", answered("", &calls[0]))).await.unwrap();
    assert_eq!(text(&events), "It is 21°C.");
    assert!(tool_calls(&events).is_empty());
    assert_eq!(finished(&events), (StopReason::EndTurn, usage(60, 6)));
}

#[tokio::test]
async fn gemini_stream_without_finish_reason_is_upstream() {
    let mock = MockServer::start().await;
    Mock::given(method("POST")).and(path(GEMINI_PATH)).respond_with(sse(GEMINI_CUT_OFF)).mount(&mock).await;
    let err = run(&Gemini, format!("{}/v1beta", mock.uri()), &request("gemini-x", question())).await.unwrap_err();
    assert_eq!(err.kind, ProviderErrorKind::Upstream, "{err}");
}

#[tokio::test]
async fn gemini_error_chunk_maps_its_code() {
    let mock = MockServer::start().await;
    let body =
        "data: {\"error\":{\"code\":429,\"message\":\"Resource exhausted\",\"status\":\"RESOURCE_EXHAUSTED\"}}\n\n";
    Mock::given(method("POST")).and(path(GEMINI_PATH)).respond_with(sse(body)).mount(&mock).await;
    let err = run(&Gemini, format!("{}/v1beta", mock.uri()), &request("gemini-x", question())).await.unwrap_err();
    assert_eq!(err.kind, ProviderErrorKind::RateLimited, "{err}");
}

#[tokio::test]
async fn gemini_http_errors_map_to_kinds() {
    let auth = ("x-goog-api-key", "k");
    let body = |code: u16, status: &str| json!({"error": {"code": code, "message": "nope", "status": status}});
    let cases = [
        (401, "UNAUTHENTICATED", ProviderErrorKind::InvalidKey),
        (429, "RESOURCE_EXHAUSTED", ProviderErrorKind::RateLimited),
        (500, "INTERNAL", ProviderErrorKind::Upstream),
    ];
    for (status, rpc_status, kind) in cases {
        let got = error_kind(&Gemini, "/v1beta", GEMINI_PATH, auth, status, body(status, rpc_status)).await;
        assert_eq!(got, kind, "status {status}");
    }
}

/// A user message with a stored image, an image by URL, a PDF and a text file.
fn with_attachments() -> Vec<Message> {
    let stored = |kind, media_type: &str, filename: Option<&str>, data: &str| Attachment {
        kind,
        media_type: Some(media_type.into()),
        filename: filename.map(Into::into),
        source: AttachmentSource::Base64(data.into()),
        detail: None,
    };
    let mut message = Message::text(Role::User, "Describe these.");
    message.attachments = vec![
        stored(AttachmentKind::Image, "image/png", Some("image.png"), "iVBORw0K"),
        Attachment {
            kind: AttachmentKind::Image,
            media_type: None,
            filename: None,
            source: AttachmentSource::Url("https://example.com/cat.jpg".into()),
            detail: Some("high".into()),
        },
        stored(AttachmentKind::File, "application/pdf", Some("report.pdf"), "JVBERi0x"),
        stored(AttachmentKind::File, "text/plain", Some("notes.txt"), "YnV5IG1pbGs="),
    ];
    vec![message]
}

async fn sends<P: ModelProvider>(provider: &P, suffix: &str, route: &str, model: &str, body: Value, reply: &str) {
    let mock = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(route))
        .and(body_partial_json(body))
        .respond_with(sse(reply))
        .expect(1)
        .mount(&mock)
        .await;
    let events = run(provider, format!("{}{suffix}", mock.uri()), &request(model, with_attachments())).await;
    assert!(events.is_ok(), "{events:?}");
}

#[tokio::test]
async fn openai_sends_image_url_and_file_parts_before_the_text() {
    let content = json!([
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0K"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg", "detail": "high"}},
        {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBERi0x", "filename": "report.pdf"}},
        {"type": "file", "file": {"file_data": "data:text/plain;base64,YnV5IG1pbGs=", "filename": "notes.txt"}},
        {"type": "text", "text": "Describe these."},
    ]);
    let body = json!({"messages": [{"role": "system"}, {"role": "user", "content": content}]});
    sends(&OpenAi, "/v1", "/v1/chat/completions", "gpt-x", body, OPENAI_TEXT).await;
}

#[tokio::test]
async fn anthropic_sends_image_and_document_blocks() {
    let content = json!([
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0K"}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
        {"type": "document", "title": "report.pdf",
            "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0x"}},
        {"type": "document", "title": "notes.txt", "source": {"type": "text", "media_type": "text/plain", "data": "buy milk"}},
        {"type": "text", "text": "Describe these."},
    ]);
    let body = json!({"messages": [{"role": "user", "content": content}]});
    sends(&Anthropic, "/v1", "/v1/messages", "claude-x", body, ANTHROPIC_TEXT).await;
}

#[tokio::test]
async fn gemini_sends_inline_and_file_data_parts() {
    let parts = json!([
        {"inlineData": {"mimeType": "image/png", "data": "iVBORw0K"}},
        {"fileData": {"mimeType": "image/jpeg", "fileUri": "https://example.com/cat.jpg"}},
        {"inlineData": {"mimeType": "application/pdf", "data": "JVBERi0x"}},
        {"inlineData": {"mimeType": "text/plain", "data": "YnV5IG1pbGs="}},
        {"text": "Describe these."},
    ]);
    let body = json!({"contents": [{"role": "user", "parts": parts}]});
    sends(&Gemini, "/v1beta", GEMINI_PATH, "gemini-x", body, GEMINI_TEXT).await;
}
