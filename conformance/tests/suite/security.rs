//! Security fixes, pinned: idempotency keys belong to the token that used them and are only
//! reached once it is authorized, stored answers are sealed, tenant-controlled provider URLs
//! go through the egress policy (at save and at connection, without redirects), and
//! provider error bodies never reach the tenant raw.

use ingram_server::egress::EgressPolicy;
use ingram_server::settings::Settings;
use reqwest::Method;
use sea_orm::EntityTrait;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::harness::{Answer, TestApp};
use crate::providers::OPENAI_TEXT;

const CHAT_PATH: &str = "/v1/chat/completions";
const API_KEY: &str = "sk-test-security-4242";

async fn keyed_post(app: &TestApp, token: &str, path: &str, key: &str, body: Value) -> Answer {
    let request = app.request(Method::POST, path).bearer_auth(token).header("idempotency-key", key).json(&body);
    app.send("POST", path, request).await
}

/// Mints a tenant-admin token with `scopes` (all of them when `None`); returns (id, secret).
async fn tenant_token(app: &TestApp, scopes: Option<&[&str]>) -> (String, String) {
    let body = match scopes {
        Some(scopes) => json!({"kind": "tenant_admin", "scopes": scopes}),
        None => json!({"kind": "tenant_admin"}),
    };
    let minted = app.post("/v1/tenant/tokens", &app.admin_token, body).await.expect(201);
    (minted.id(), minted.body["token"].as_str().unwrap().to_owned())
}

fn sse(body: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_raw(body, "text/event-stream")
}

async fn put_openai_key(app: &TestApp, base_url: &str) -> Answer {
    let key = json!({"api_key": API_KEY, "base_url": base_url});
    app.call("PUT", "/v1/tenant/model_keys/openai", Some(&app.admin_token), Some(key)).await
}

/// Stores the project's OpenAI key pointing at `base_url` and creates a smith on gpt-4o.
async fn openai_smith(app: &TestApp, base_url: &str) -> String {
    put_openai_key(app, base_url).await.expect(200);
    app.post("/v1/smiths", &app.admin_token, json!({"external_id": "security", "model": "gpt-4o"}))
        .await
        .expect(201)
        .id()
}

/// A synchronous run of `sid`; a failed run still answers 200, with its `error`.
async fn sync_run(app: &TestApp, sid: &str) -> Value {
    app.post(&format!("/v1/smiths/{sid}/runs"), &app.admin_token, json!({"input": [{"role": "user", "content": "hi"}]}))
        .await
        .expect(200)
        .body
}

/// A run against a mock that answers every chat request with `response`.
async fn run_against(response: ResponseTemplate) -> (Value, MockServer) {
    let app = TestApp::start().await;
    let mock = MockServer::start().await;
    Mock::given(method("POST")).and(path(CHAT_PATH)).respond_with(response).mount(&mock).await;
    let sid = openai_smith(&app, &format!("{}/v1", mock.uri())).await;
    (sync_run(&app, &sid).await, mock)
}

#[tokio::test]
async fn an_idempotency_key_never_replays_to_a_less_privileged_or_other_token() {
    let app = TestApp::start().await;
    let body = json!({"kind": "tenant_admin", "name": "minted-with-key"});
    let first = keyed_post(&app, &app.admin_token, "/v1/tenant/tokens", "mint-1", body.clone()).await.expect(201);
    let secret = first.body["token"].as_str().unwrap().to_owned();

    // A read-only token re-sending the same request with the same key is refused, not
    // handed the admin's answer (and its secret).
    let (_, reader) = tenant_token(&app, Some(&["runs:read"])).await;
    let refused = keyed_post(&app, &reader, "/v1/tenant/tokens", "mint-1", body.clone())
        .await
        .expect_error(403, "insufficient_scope");
    assert!(!refused.body.to_string().contains(&secret), "the secret leaked: {:#}", refused.body);
    assert!(!refused.headers.contains_key("idempotent-replayed"));

    // Another full-scope token gets its own answer: keys belong to the token that used them.
    let (_, other_admin) = tenant_token(&app, None).await;
    let fresh = keyed_post(&app, &other_admin, "/v1/tenant/tokens", "mint-1", body).await.expect(201);
    assert!(!fresh.headers.contains_key("idempotent-replayed"), "a replay of another token's answer");
    assert_ne!(fresh.id(), first.id());
    assert_ne!(fresh.body["token"], first.body["token"]);
}

#[tokio::test]
async fn stored_idempotent_answers_are_sealed() {
    let app = TestApp::start().await;
    let minted = keyed_post(&app, &app.admin_token, "/v1/tenant/tokens", "sealed", json!({"kind": "tenant_admin"}))
        .await
        .expect(201);
    let secret = minted.body["token"].as_str().unwrap().to_owned();
    let rows = ingram_server::store::idempotency_key::Entity::find().all(&app.state.db).await.unwrap();
    let row = rows.iter().find(|row| row.key == "sealed").expect("the key is stored");
    let stored = row.response_body.as_deref().expect("the answer is stored");
    assert!(!stored.contains(&secret), "the minted secret is stored in the clear");
    assert!(stored.starts_with("v2:"), "not sealed: {stored}");

    // And it still replays.
    let replay = keyed_post(&app, &app.admin_token, "/v1/tenant/tokens", "sealed", json!({"kind": "tenant_admin"}))
        .await
        .expect(201);
    assert_eq!(replay.headers["idempotent-replayed"], "true");
    assert_eq!(replay.body, minted.body);
}

#[tokio::test]
async fn a_keyed_request_refused_by_its_scope_check_is_not_stored() {
    let app = TestApp::start().await;
    let (_, reader) = tenant_token(&app, Some(&["runs:read"])).await;
    let body = json!({"name": "keyed-agent"});
    keyed_post(&app, &reader, "/v1/agents", "agent-key", body.clone()).await.expect_error(403, "insufficient_scope");
    let rows = ingram_server::store::idempotency_key::Entity::find().all(&app.state.db).await.unwrap();
    assert!(rows.is_empty(), "a refused caller claimed a key: {rows:?}");

    let created = keyed_post(&app, &app.admin_token, "/v1/agents", "agent-key", body).await.expect(201);
    assert!(!created.headers.contains_key("idempotent-replayed"));
    assert_eq!(created.body["name"], "keyed-agent");
}

#[tokio::test]
async fn internal_base_urls_are_refused_when_a_key_is_saved() {
    let app = TestApp::start_with(Settings::for_tests()).await;
    for base_url in ["http://127.0.0.1:9/v1", "http://169.254.169.254/latest", "http://[::1]:8080", "http://10.0.0.1"] {
        let refused = put_openai_key(&app, base_url).await;
        assert_eq!((refused.status, refused.code()), (400, "egress_denied"), "{base_url}: {:#}", refused.body);
    }
    let listed = app.get("/v1/tenant/model_keys", &app.admin_token).await.expect(200);
    assert!(listed.body["data"].as_array().unwrap().is_empty(), "no refused key was stored");
    put_openai_key(&app, "https://api.openai.com/v1").await.expect(200);
}

#[tokio::test]
async fn a_hostname_resolving_to_loopback_is_refused_at_connection() {
    let app = TestApp::start_with(Settings::for_tests()).await;
    let mock = MockServer::start().await;
    Mock::given(method("POST")).and(path(CHAT_PATH)).respond_with(sse(OPENAI_TEXT)).mount(&mock).await;
    let port = mock.address().port();
    // A name, not an IP literal: the save-time check lets it through.
    let sid = openai_smith(&app, &format!("http://localhost:{port}/v1")).await;
    let run = sync_run(&app, &sid).await;
    assert_eq!(run["status"], "failed", "{run:#}");
    assert_eq!(run["error"]["code"], "egress_denied", "{run:#}");
    assert!(mock.received_requests().await.unwrap().is_empty(), "the provider request was sent");
}

#[tokio::test]
async fn an_operator_allowance_opens_exactly_its_port() {
    let mock = MockServer::start().await;
    Mock::given(method("POST")).and(path(CHAT_PATH)).respond_with(sse(OPENAI_TEXT)).mount(&mock).await;
    let port = mock.address().port();
    let mut settings = Settings::for_tests();
    settings.egress = EgressPolicy::strict().allowing(&format!("127.0.0.1:{port}")).expect("a valid rule");
    let app = TestApp::start_with(settings).await;

    let other_port = if port == 9 { 10 } else { 9 };
    put_openai_key(&app, &format!("http://127.0.0.1:{other_port}/v1")).await.expect_error(400, "egress_denied");

    let sid = openai_smith(&app, &format!("http://127.0.0.1:{port}/v1")).await;
    let run = sync_run(&app, &sid).await;
    assert_eq!(run["status"], "completed", "{run:#}");
    assert_eq!(run["output"]["content"], "Hello");
    assert_eq!(mock.received_requests().await.unwrap().len(), 1);

    // A name passes the save-time check; at connection its loopback address on another port
    // is still refused.
    put_openai_key(&app, &format!("http://localhost:{other_port}/v1")).await.expect(200);
    let refused = sync_run(&app, &sid).await;
    assert_eq!(refused["status"], "failed", "{refused:#}");
    assert_eq!(refused["error"]["code"], "egress_denied", "{refused:#}");
}

#[tokio::test]
async fn provider_redirects_are_not_followed() {
    let app = TestApp::start().await;
    let mock = MockServer::start().await;
    let target = "/elsewhere/chat/completions";
    let redirect = ResponseTemplate::new(307).insert_header("location", format!("{}{target}", mock.uri()).as_str());
    Mock::given(method("POST")).and(path(CHAT_PATH)).respond_with(redirect).mount(&mock).await;
    Mock::given(method("POST")).and(path(target)).respond_with(sse(OPENAI_TEXT)).mount(&mock).await;
    let sid = openai_smith(&app, &format!("{}/v1", mock.uri())).await;
    let run = sync_run(&app, &sid).await;
    assert_eq!(run["status"], "failed", "{run:#}");
    let received = mock.received_requests().await.unwrap();
    assert!(received.iter().all(|request| request.url.path() == CHAT_PATH), "the redirect was followed");
    assert_eq!(received.len(), 1, "a redirect is not retried");
    let leaked = received
        .iter()
        .filter(|request| request.url.path() != CHAT_PATH)
        .any(|request| request.headers.values().any(|value| value.to_str().unwrap_or("").contains(API_KEY)));
    assert!(!leaked, "the api key reached the redirect target");
}

#[tokio::test]
async fn provider_error_bodies_are_not_passed_on_raw() {
    const MARKER: &str = "SECRET-INTERNAL-PAGE";
    let html = format!("<html>{MARKER}</html>");
    for (status, code) in [(500, "upstream_error"), (400, "upstream_invalid_request")] {
        let (run, _mock) = run_against(ResponseTemplate::new(status).set_body_raw(html.clone(), "text/html")).await;
        assert_eq!(run["status"], "failed", "{status}: {run:#}");
        assert_eq!(run["error"]["code"], code, "{status}: {run:#}");
        let message = run["error"]["message"].as_str().unwrap();
        assert!(!message.contains(MARKER), "{status}: the raw body reached the tenant: {message}");
    }

    // The provider's own error envelope is passed on.
    let (run, _mock) =
        run_against(ResponseTemplate::new(401).set_body_json(json!({"error": {"message": "bad key"}}))).await;
    assert_eq!(run["error"]["code"], "model_key_invalid", "{run:#}");
    assert!(run["error"]["message"].as_str().unwrap().contains("bad key"), "{run:#}");

    // ... capped, however large the envelope.
    let long = "x".repeat(10_000);
    let huge = json!({"error": {"message": long, "padding": "p".repeat(1024 * 1024)}});
    let small = json!({"error": {"message": long}});
    for body in [huge, small] {
        let (run, _mock) = run_against(ResponseTemplate::new(400).set_body_json(body)).await;
        assert_eq!(run["error"]["code"], "upstream_invalid_request", "{run:#}");
        let message = run["error"]["message"].as_str().unwrap();
        assert!(message.chars().count() <= 600, "a {}-char message", message.chars().count());
    }
}
