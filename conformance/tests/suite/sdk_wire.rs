//! The wire the real SDKs send (recorded by conformance/sdk/python/record_wire.py and
//! conformance/sdk/node/record-wire.cjs into conformance/fixtures/*-wire.json), replayed
//! against the server (insta snapshots, ids and times redacted), then the server's answers
//! served by wiremock to the generated Rust client, which must decode them whole.

use futures::TryStreamExt;
use ingram_client::{Client, ResponseEvent, RetryPolicy, types};
use reqwest::Method;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::fixtures::{redact, without_nulls};
use crate::harness::{TestApp, parse_frames};

/// Redacts ids and RFC 3339 times, plus the unix-second times OpenAI objects carry.
fn redact_all(value: &Value) -> Value {
    match redact(value) {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(key, value)| {
                    let value =
                        if matches!(key.as_str(), "created" | "created_at" | "completed_at") && value.is_number() {
                            json!("[time]")
                        } else {
                            redact_all(&value)
                        };
                    (key, value)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(redact_all).collect()),
        other => other,
    }
}

/// A streamed answer as the list of its data objects (chat chunks or response events).
fn stream_data(text: &str) -> Vec<Value> {
    let events = parse_frames(text);
    if !events.is_empty() {
        return events.into_iter().map(|frame| frame.data).collect();
    }
    text.lines()
        .filter_map(|line| line.strip_prefix("data: "))
        .filter(|data| *data != "[DONE]")
        .map(|data| serde_json::from_str(data).unwrap())
        .collect()
}

#[tokio::test]
async fn the_openai_python_sdks_wire() {
    replay("openai-sdk-wire.json", "openai_sdk_wire").await;
}

#[tokio::test]
async fn the_openai_node_sdks_wire() {
    replay("openai-node-wire.json", "openai_node_wire").await;
}

#[tokio::test]
async fn the_vercel_ai_sdks_wire() {
    replay("vercel-ai-wire.json", "vercel_ai_wire").await;
}

async fn replay(file: &str, snapshot: &str) {
    let text = std::fs::read_to_string(format!("{}/fixtures/{file}", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let fixture: Value = serde_json::from_str(&text).unwrap();
    let app = TestApp::start().await;
    let mock = MockServer::start().await;
    let client = Client::with_token_and_policy(&mock.uri(), "t", RetryPolicy::none()).unwrap();
    let mut transcript = Vec::new();
    for exchange in fixture["exchanges"].as_array().unwrap() {
        let name = exchange["name"].as_str().unwrap();
        let route = exchange["path"].as_str().unwrap();
        let body = exchange["body"].clone();
        mock.reset().await;
        if body["stream"] == true {
            let response =
                app.request(Method::POST, route).bearer_auth(&app.admin_token).json(&body).send().await.unwrap();
            assert_eq!(response.status(), 200, "{name}");
            let raw = response.text().await.unwrap();
            let data = stream_data(&raw);
            assert!(!data.is_empty(), "{name}");
            transcript.push(json!({"name": name, "request": body, "stream": redact_all(&Value::Array(data.clone()))}));
            Mock::given(method("POST"))
                .and(path(route))
                .respond_with(ResponseTemplate::new(200).set_body_raw(raw, "text/event-stream"))
                .mount(&mock)
                .await;
            let decoded = if route == "/v1/chat/completions" {
                let request: types::ChatCompletionRequest = serde_json::from_value(body).unwrap();
                let stream = client.create_chat_completion_stream(&request, None).await.unwrap();
                stream.try_collect::<Vec<_>>().await.unwrap().len()
            } else {
                let request: types::CreateResponseRequest = serde_json::from_value(body).unwrap();
                let stream = client.create_response_stream(&request, None).await.unwrap();
                let events: Vec<ResponseEvent> = stream.try_collect().await.unwrap();
                assert!(events.last().unwrap().is_terminal(), "{name}");
                events.len()
            };
            assert_eq!(decoded, data.len(), "{name}: every frame decodes");
            continue;
        }
        let answer = app.post(route, &app.admin_token, body.clone()).await.expect(200);
        transcript.push(json!({"name": name, "request": body, "response": redact_all(&answer.body)}));
        Mock::given(method("POST"))
            .and(path(route))
            .respond_with(ResponseTemplate::new(200).set_body_json(&answer.body))
            .mount(&mock)
            .await;
        let decoded = if route == "/v1/chat/completions" {
            let request: types::ChatCompletionRequest = serde_json::from_value(body).unwrap();
            serde_json::to_value(client.create_chat_completion().body(request).send().await.unwrap().into_inner())
                .unwrap()
        } else {
            let request: types::CreateResponseRequest = serde_json::from_value(body).unwrap();
            serde_json::to_value(client.create_response().body(request).send().await.unwrap().into_inner()).unwrap()
        };
        assert_eq!(without_nulls(&decoded), without_nulls(&answer.body), "{name}: the client's type lost data");
    }
    insta::assert_json_snapshot!(snapshot, transcript);
}
