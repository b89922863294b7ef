//! The same engine behaviours on every provider, each served by wiremock with recorded wire:
//! a text reply, a client tool round trip through `/submit`, errors mapped to our codes, and
//! a cancel that aborts the upstream request.

use std::time::Duration;

use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::harness::TestApp;
use crate::providers::*;

struct Provider {
    name: &'static str,
    model: &'static str,
    base_suffix: &'static str,
    path: &'static str,
    text: &'static str,
    tool_call: &'static str,
    after_tool: &'static str,
}

const PROVIDERS: [Provider; 3] = [
    Provider {
        name: "openai",
        model: "gpt-4o",
        base_suffix: "/v1",
        path: "/v1/chat/completions",
        text: OPENAI_TEXT,
        tool_call: OPENAI_TOOL_CALL,
        after_tool: OPENAI_FINAL,
    },
    Provider {
        name: "anthropic",
        model: "claude-sonnet-4-6",
        base_suffix: "/v1",
        path: "/v1/messages",
        text: ANTHROPIC_TEXT,
        tool_call: ANTHROPIC_TOOL_CALL,
        after_tool: ANTHROPIC_FINAL,
    },
    Provider {
        name: "gemini",
        model: "gemini-x",
        base_suffix: "/v1beta",
        path: GEMINI_PATH,
        text: GEMINI_TEXT,
        tool_call: GEMINI_TOOL_CALL,
        after_tool: GEMINI_FINAL,
    },
];

fn sse(body: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_raw(body, "text/event-stream")
}

/// A smith on `provider`'s model, the project's key for it pointing at `mock`.
async fn smith_on(app: &TestApp, provider: &Provider, mock: &MockServer) -> String {
    let key = json!({"api_key": "sk-test-1234", "base_url": format!("{}{}", mock.uri(), provider.base_suffix)});
    app.call("PUT", &format!("/v1/tenant/model_keys/{}", provider.name), Some(&app.admin_token), Some(key))
        .await
        .expect(200);
    let smith =
        app.post("/v1/smiths", &app.admin_token, json!({"external_id": provider.name, "model": provider.model})).await;
    smith.expect(201).id()
}

/// A smith on the OpenAI provider whose every answer takes `delay` to start.
async fn slow_openai_smith(delay: Duration) -> (TestApp, MockServer, String) {
    let provider = &PROVIDERS[0];
    let app = TestApp::start().await;
    let mock = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(provider.path))
        .respond_with(sse(provider.text).set_delay(delay))
        .mount(&mock)
        .await;
    let sid = smith_on(&app, provider, &mock).await;
    (app, mock, sid)
}

fn tools() -> serde_json::Value {
    json!([{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}])
}

#[tokio::test]
async fn every_provider_answers_a_run() {
    for provider in &PROVIDERS {
        let app = TestApp::start().await;
        let mock = MockServer::start().await;
        Mock::given(method("POST")).and(path(provider.path)).respond_with(sse(provider.text)).mount(&mock).await;
        let sid = smith_on(&app, provider, &mock).await;
        let run = app
            .post(
                &format!("/v1/smiths/{sid}/runs"),
                &app.admin_token,
                json!({"input": [{"role": "user", "content": "Hi"}]}),
            )
            .await
            .expect(200);
        assert_eq!(run.body["status"], "completed", "{}: {:#}", provider.name, run.body);
        assert_eq!(run.body["output"]["content"], "Hello", "{}", provider.name);
        assert!(run.body["usage"]["input_tokens"].as_u64().unwrap() > 0, "{}", provider.name);
    }
}

#[tokio::test]
async fn every_provider_round_trips_a_client_tool() {
    for provider in &PROVIDERS {
        let app = TestApp::start().await;
        let mock = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path(provider.path))
            .respond_with(sse(provider.tool_call))
            .up_to_n_times(1)
            .mount(&mock)
            .await;
        Mock::given(method("POST")).and(path(provider.path)).respond_with(sse(provider.after_tool)).mount(&mock).await;
        let sid = smith_on(&app, provider, &mock).await;
        let runs = format!("/v1/smiths/{sid}/runs");
        let body = json!({"input": [{"role": "user", "content": "Weather in Paris?"}], "tools": tools()});
        let paused = app.post(&runs, &app.admin_token, body).await.expect(200);
        assert_eq!(paused.body["status"], "requires_action", "{}: {:#}", provider.name, paused.body);
        let call = &paused.body["required_action"]["tool_calls"][0];
        assert_eq!(call["name"], "get_weather", "{}", provider.name);
        let arguments: serde_json::Value = serde_json::from_str(call["arguments"].as_str().unwrap()).unwrap();
        assert_eq!(arguments["city"], "Paris", "{}", provider.name);
        let submit = json!({"tool_outputs": [{"tool_call_id": call["id"], "output": "{\"tempC\":21}"}]});
        let done = app.post(&format!("{runs}/{}/submit", paused.id()), &app.admin_token, submit).await.expect(200);
        assert_eq!(done.body["status"], "completed", "{}", provider.name);
        assert_eq!(done.body["output"]["content"], "It is 21°C.", "{}", provider.name);
        let second = &mock.received_requests().await.unwrap()[1];
        assert!(
            String::from_utf8_lossy(&second.body).contains("tempC"),
            "{}: the tool output went upstream",
            provider.name
        );
    }
}

#[tokio::test]
async fn provider_errors_fail_the_run_with_our_codes() {
    for provider in &PROVIDERS {
        for (status, code, attempts) in
            [(401, "model_key_invalid", 1), (500, "upstream_error", 3), (400, "upstream_invalid_request", 1)]
        {
            let app = TestApp::start().await;
            let mock = MockServer::start().await;
            let error = ResponseTemplate::new(status).set_body_json(json!({"error": {"message": "nope"}}));
            Mock::given(method("POST")).and(path(provider.path)).respond_with(error).mount(&mock).await;
            let sid = smith_on(&app, provider, &mock).await;
            let run = app
                .post(
                    &format!("/v1/smiths/{sid}/runs"),
                    &app.admin_token,
                    json!({"input": [{"role": "user", "content": "Hi"}]}),
                )
                .await
                .expect(200);
            assert_eq!(run.body["status"], "failed", "{} {status}", provider.name);
            assert_eq!(run.body["error"]["code"], code, "{} {status}", provider.name);
            assert_eq!(
                mock.received_requests().await.unwrap().len(),
                attempts,
                "{} {status}: transient errors are retried",
                provider.name
            );
        }
    }
}

#[tokio::test]
async fn cancel_aborts_a_run_waiting_on_its_provider() {
    let (app, _mock, sid) = slow_openai_smith(Duration::from_secs(30)).await;
    let runs = format!("/v1/smiths/{sid}/runs");
    let streamed =
        app.stream_post(&runs, &app.admin_token, json!({"input": [{"role": "user", "content": "Hi"}], "stream": true}));
    let cancel = async {
        let run_id = loop {
            let listed = app.get(&runs, &app.admin_token).await;
            if let Some(id) = listed.body["data"][0]["id"].as_str() {
                break id.to_owned();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        app.post(&format!("{runs}/{run_id}/cancel"), &app.admin_token, json!({})).await
    };
    let started = std::time::Instant::now();
    let (streamed, cancelled) = tokio::join!(streamed, cancel);
    assert_eq!(cancelled.expect(200).body["status"], "cancelled");
    assert_eq!(streamed.events(), vec!["run.started", "run.cancelled"]);
    assert!(started.elapsed() < Duration::from_secs(20), "the upstream wait was abandoned");
}

#[tokio::test]
async fn model_keys_are_sealed_masked_and_listed_with_models() {
    let app = TestApp::start().await;
    let token = &app.admin_token;
    let put = app
        .call("PUT", "/v1/tenant/model_keys/anthropic", Some(token), Some(json!({"api_key": "sk-ant-secret-9876"})))
        .await
        .expect(200);
    assert_eq!(put.body["preview"], "…9876");
    let listed = app.get("/v1/tenant/model_keys", token).await.expect(200);
    assert!(!listed.body.to_string().contains("secret"), "the key never comes back");
    use sea_orm::EntityTrait;
    let stored = ingram_core::store::model_key::Entity::find().all(&app.state.db).await.unwrap();
    assert!(!stored[0].ciphertext.contains("sk-ant"), "sealed at rest");

    let models = app.get("/v1/tenant/models", token).await.expect(200);
    let ids: Vec<&str> = models.body["data"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert!(
        ids.contains(&"ingram/offline") && ids.contains(&"claude-sonnet-4-6") && !ids.contains(&"gpt-4o"),
        "{ids:?}"
    );
    assert_eq!(models.body["data"][1]["key_source"], "project");

    app.call("PUT", "/v1/tenant/model_keys/ingram", Some(token), Some(json!({"api_key": "x"})))
        .await
        .expect_error(400, "invalid_parameter");
    app.call("PUT", "/v1/tenant/model_keys/openai", Some(token), Some(json!({"api_key": "k", "base_url": "ftp://x"})))
        .await
        .expect_error(400, "invalid_parameter");
    app.delete("/v1/tenant/model_keys/anthropic", token).await.expect(200);
    app.delete("/v1/tenant/model_keys/anthropic", token).await.expect_error(404, "model_key_not_found");
}

#[tokio::test]
async fn a_run_outlives_a_client_that_disconnects_mid_stream() {
    let (app, _mock, sid) = slow_openai_smith(Duration::from_millis(300)).await;
    let runs = format!("/v1/smiths/{sid}/runs");
    let mut response = app
        .request(reqwest::Method::POST, &runs)
        .bearer_auth(&app.admin_token)
        .json(&json!({"input": [{"role": "user", "content": "Hi"}], "stream": true}))
        .send()
        .await
        .unwrap();
    let run_id = response.headers()["x-run-id"].to_str().unwrap().to_owned();
    let first = response.chunk().await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&first).contains("run.started"));
    drop(response);
    let finished = loop {
        let run = app.get(&format!("{runs}/{run_id}"), &app.admin_token).await.expect(200);
        if run.body["status"] != "running" && run.body["status"] != "queued" {
            break run;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(finished.body["status"], "completed");
    assert_eq!(finished.body["output"]["content"], "Hello");
}

#[tokio::test]
async fn a_keyed_request_whose_client_hung_up_still_records_its_answer() {
    let (app, mock, sid) = slow_openai_smith(Duration::from_millis(400)).await;
    let runs = format!("/v1/smiths/{sid}/runs");
    let body = json!({"input": [{"role": "user", "content": "Hi"}]});
    let keyed = || {
        app.request(reqwest::Method::POST, &runs)
            .bearer_auth(&app.admin_token)
            .header("idempotency-key", "hang-up")
            .json(&body)
    };
    // The client gives up long before the provider answers.
    let gave_up = tokio::time::timeout(Duration::from_millis(100), keyed().send()).await;
    assert!(gave_up.is_err());
    let retried = app.send("POST", &runs, keyed()).await.expect(200);
    assert_eq!(retried.body["status"], "completed");
    let listed = app.get(&runs, &app.admin_token).await.expect(200);
    assert_eq!(listed.body["data"].as_array().unwrap().len(), 1, "the retry replayed the first run");
    assert_eq!(mock.received_requests().await.unwrap().len(), 1);
}
