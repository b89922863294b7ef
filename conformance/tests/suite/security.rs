//! Security fixes, pinned: idempotency keys belong to the token that used them and are only
//! reached once it is authorized, stored answers are sealed, tenant-controlled provider URLs
//! go through the egress policy (at save and at connection, without redirects), and
//! provider error bodies never reach the tenant raw. Also: a smith token adds to its smith's
//! design and never replaces it, `allowed_models` bounds every token, model names cannot
//! reshape provider URLs, `user` creates smiths only with `smiths:write`, a scoped token
//! revokes only tokens within its scopes, and `external_id_prefix` has no wildcards.

use ingram_core::egress::EgressPolicy;
use ingram_core::settings::Settings;
use reqwest::Method;
use sea_orm::EntityTrait;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::harness::{Answer, TestApp};
use crate::providers::{GEMINI_TEXT, OPENAI_TEXT};

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
    let rows = ingram_core::store::idempotency_key::Entity::find().all(&app.state.db).await.unwrap();
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
    let rows = ingram_core::store::idempotency_key::Entity::find().all(&app.state.db).await.unwrap();
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

/// Sends `body` to `path` with `token`, naming the smith with the `IC-Smith-Id` header.
async fn post_for_smith(app: &TestApp, token: &str, path: &str, sid: &str, body: Value) -> Answer {
    let request = app.request(Method::POST, path).bearer_auth(token).header("ic-smith-id", sid).json(&body);
    app.send("POST", path, request).await
}

/// The JSON bodies of every request `mock` received, in order.
async fn received_bodies(mock: &MockServer) -> Vec<Value> {
    let received = mock.received_requests().await.unwrap();
    received.iter().map(|request| serde_json::from_slice(&request.body).expect("a JSON request body")).collect()
}

/// The system message of the last chat request `mock` received (none when it sent none).
async fn last_system_message(mock: &MockServer) -> Option<String> {
    let bodies = received_bodies(mock).await;
    let last = bodies.last().expect("the provider was called");
    let messages = last["messages"].as_array().expect("chat messages");
    messages.iter().find(|message| message["role"] == "system").map(|message| {
        message["content"].as_str().unwrap_or_else(|| panic!("text system content: {message:#}")).to_owned()
    })
}

/// A mock OpenAI provider answering every chat request with a text reply, and the project's
/// key pointing at it.
async fn openai_mock(app: &TestApp) -> MockServer {
    let mock = MockServer::start().await;
    Mock::given(method("POST")).and(path(CHAT_PATH)).respond_with(sse(OPENAI_TEXT)).mount(&mock).await;
    put_openai_key(app, &format!("{}/v1", mock.uri())).await.expect(200);
    mock
}

fn hi() -> Value {
    json!([{"role": "user", "content": "hi"}])
}

#[tokio::test]
async fn smith_token_instructions_are_appended_on_every_surface_and_admin_ones_replace() {
    let app = TestApp::start().await;
    let mock = openai_mock(&app).await;
    let sid = app
        .post(
            "/v1/smiths",
            &app.admin_token,
            json!({"external_id": "persona", "model": "gpt-4o", "instructions": "PERSONA"}),
        )
        .await
        .expect(201)
        .id();
    let smith = app.smith_token(&sid).await;
    let runs = format!("/v1/smiths/{sid}/runs");

    // Native: a smith token's `instructions` come after the smith's.
    let run = app.post(&runs, &smith, json!({"input": hi(), "instructions": "EXTRA"})).await.expect(200);
    assert_eq!(run.body["status"], "completed", "{:#}", run.body);
    assert_eq!(last_system_message(&mock).await.as_deref(), Some("PERSONA\n\nEXTRA"), "native, smith token");

    // Chat Completions: a system message is added, never a replacement.
    let chat = json!({"model": "default", "messages": [{"role": "system", "content": "EXTRA"}, {"role": "user", "content": "hi"}]});
    let answered = app.post(CHAT_PATH, &smith, chat.clone()).await.expect(200);
    assert_eq!(answered.body["choices"][0]["message"]["content"], "Hello", "{:#}", answered.body);
    assert_eq!(last_system_message(&mock).await.as_deref(), Some("PERSONA\n\nEXTRA"), "chat, smith token");

    // Responses: `instructions` are added too.
    let response = json!({"model": "default", "instructions": "EXTRA", "input": "hi"});
    let answered = app.post("/v1/responses", &smith, response.clone()).await.expect(200);
    assert_eq!(answered.body["status"], "completed", "{:#}", answered.body);
    assert_eq!(last_system_message(&mock).await.as_deref(), Some("PERSONA\n\nEXTRA"), "responses, smith token");

    // The tenant admin's chat system messages and Responses instructions are appended as well.
    post_for_smith(&app, &app.admin_token, CHAT_PATH, &sid, chat).await.expect(200);
    assert_eq!(last_system_message(&mock).await.as_deref(), Some("PERSONA\n\nEXTRA"), "chat, admin token");
    post_for_smith(&app, &app.admin_token, "/v1/responses", &sid, response).await.expect(200);
    assert_eq!(last_system_message(&mock).await.as_deref(), Some("PERSONA\n\nEXTRA"), "responses, admin token");

    // Only a native run's `instructions` from a tenant-admin token replace the design.
    let run = app.post(&runs, &app.admin_token, json!({"input": hi(), "instructions": "REPLACED"})).await.expect(200);
    assert_eq!(run.body["status"], "completed", "{:#}", run.body);
    assert_eq!(last_system_message(&mock).await.as_deref(), Some("REPLACED"), "native, admin token");
    assert_eq!(mock.received_requests().await.unwrap().len(), 6, "one provider call per turn");
}

#[tokio::test]
async fn allowed_models_bound_every_surface_and_every_token() {
    let app = TestApp::start().await;
    let mock = openai_mock(&app).await;
    let agent = app
        .post(
            "/v1/agents",
            &app.admin_token,
            json!({"name": "bounded", "model": "gpt-4o", "allowed_models": ["gpt-4o-mini"]}),
        )
        .await
        .expect(201);
    assert_eq!(agent.body["allowed_models"], json!(["gpt-4o-mini"]), "{:#}", agent.body);
    let aid = agent.id();
    let created =
        app.post("/v1/smiths", &app.admin_token, json!({"external_id": "bounded", "agent_id": aid})).await.expect(201);
    assert_eq!(created.body["effective_config"]["allowed_models"], json!(["gpt-4o-mini"]), "{:#}", created.body);
    let sid = created.id();
    let smith = app.smith_token(&sid).await;
    let runs = format!("/v1/smiths/{sid}/runs");

    let native = |model: &str| json!({"input": hi(), "model": model});
    let chat = |model: &str| json!({"model": model, "messages": hi()});
    let response = |model: &str| json!({"model": model, "input": "hi"});
    for (who, token) in [("admin", app.admin_token.as_str()), ("smith", smith.as_str())] {
        let refused = app.post(&runs, token, native("gpt-4.1")).await;
        assert_eq!((refused.status, refused.code()), (400, "model_not_allowed"), "{who}, native: {:#}", refused.body);
        assert_eq!(refused.body["error"]["param"], "model", "{who}");
        let refused = post_for_smith(&app, token, CHAT_PATH, &sid, chat("gpt-4.1")).await;
        assert_eq!((refused.status, refused.code()), (400, "model_not_allowed"), "{who}, chat: {:#}", refused.body);
        let refused = post_for_smith(&app, token, "/v1/responses", &sid, response("gpt-4.1")).await;
        assert_eq!(
            (refused.status, refused.code()),
            (400, "model_not_allowed"),
            "{who}, responses: {:#}",
            refused.body
        );
    }
    assert!(mock.received_requests().await.unwrap().is_empty(), "a refused model reached the provider");

    // An allowed model runs, on every surface and with both tokens.
    for token in [app.admin_token.as_str(), smith.as_str()] {
        let run = app.post(&runs, token, native("gpt-4o-mini")).await.expect(200);
        assert_eq!(run.body["status"], "completed", "{:#}", run.body);
        let answered = post_for_smith(&app, token, CHAT_PATH, &sid, chat("gpt-4o-mini")).await.expect(200);
        assert_eq!(answered.body["choices"][0]["message"]["content"], "Hello");
        post_for_smith(&app, token, "/v1/responses", &sid, response("gpt-4o-mini")).await.expect(200);
    }
    // The smith's own model needs no listing.
    app.post(&runs, &smith, native("gpt-4o")).await.expect(200);
    let models: Vec<Value> = received_bodies(&mock).await.into_iter().map(|body| body["model"].clone()).collect();
    assert_eq!(models.len(), 7, "{models:?}");
    assert!(models[..6].iter().all(|model| model == "gpt-4o-mini"), "{models:?}");
    assert_eq!(models[6], "gpt-4o");

    // A smith's own list replaces its agent's.
    let patched = app
        .patch(&format!("/v1/smiths/{sid}"), &app.admin_token, json!({"allowed_models": ["gpt-4.1"]}))
        .await
        .expect(200);
    assert_eq!(patched.body["effective_config"]["allowed_models"], json!(["gpt-4.1"]), "{:#}", patched.body);
    app.post(&runs, &smith, native("gpt-4o-mini")).await.expect_error(400, "model_not_allowed");
    let run = app.post(&runs, &smith, native("gpt-4.1")).await.expect(200);
    assert_eq!(run.body["status"], "completed", "{:#}", run.body);
    let other = app
        .post(
            "/v1/smiths",
            &app.admin_token,
            json!({"external_id": "own-list", "agent_id": aid, "allowed_models": ["o3-mini"]}),
        )
        .await
        .expect(201);
    assert_eq!(other.body["effective_config"]["allowed_models"], json!(["o3-mini"]), "{:#}", other.body);

    // The agent's list can change; smiths without their own follow it.
    let agent =
        app.patch(&format!("/v1/agents/{aid}"), &app.admin_token, json!({"allowed_models": ["gpt-4.1-nano"]})).await;
    assert_eq!(agent.expect(200).body["allowed_models"], json!(["gpt-4.1-nano"]));
    let follower =
        app.post("/v1/smiths", &app.admin_token, json!({"external_id": "follower", "agent_id": aid})).await.expect(201);
    assert_eq!(follower.body["effective_config"]["allowed_models"], json!(["gpt-4.1-nano"]));
    let fid = follower.id();
    app.post(&format!("/v1/smiths/{fid}/runs"), &app.admin_token, native("gpt-4o-mini"))
        .await
        .expect_error(400, "model_not_allowed");
    let kept = app.get(&format!("/v1/smiths/{sid}"), &app.admin_token).await.expect(200);
    assert_eq!(kept.body["effective_config"]["allowed_models"], json!(["gpt-4.1"]), "the smith's own list stays");
}

const BAD_MODEL_NAMES: [&str; 5] = ["gemini-x/../../admin?x=#", "a b", "x%2e", "../x", "a//b"];

fn bad_model_names() -> Vec<String> {
    let mut names: Vec<String> = BAD_MODEL_NAMES.iter().map(|name| (*name).to_owned()).collect();
    names.extend(["gemini-x/./y", "gemini-x\\y", "gemini-x\ny", "gemini-x/", "/gemini-x"].map(String::from));
    names.push("x".repeat(257));
    names
}

#[tokio::test]
async fn model_names_that_could_reshape_a_provider_url_are_refused() {
    let app = TestApp::start().await;
    let sid = app.create_smith(&app.admin_token, "names").await;
    let runs = format!("/v1/smiths/{sid}/runs");
    for name in bad_model_names() {
        let refused = app.post(&runs, &app.admin_token, json!({"input": hi(), "model": name})).await;
        assert_eq!((refused.status, refused.code()), (400, "invalid_model"), "run {name:?}: {:#}", refused.body);
        assert_eq!(refused.body["error"]["param"], "model", "run {name:?}");
        let chat = json!({"model": name, "messages": hi(), "user": "names"});
        let refused = app.post(CHAT_PATH, &app.admin_token, chat).await;
        assert_eq!((refused.status, refused.code()), (400, "invalid_model"), "chat {name:?}: {:#}", refused.body);
        let response = json!({"model": name, "input": "hi", "user": "names"});
        let refused = app.post("/v1/responses", &app.admin_token, response).await;
        assert_eq!((refused.status, refused.code()), (400, "invalid_model"), "responses {name:?}: {:#}", refused.body);
        let refused = app.patch(&format!("/v1/smiths/{sid}"), &app.admin_token, json!({"model": name})).await;
        assert_eq!((refused.status, refused.code()), (400, "invalid_model"), "smith {name:?}: {:#}", refused.body);
        let refused = app.post("/v1/agents", &app.admin_token, json!({"name": "bad", "model": name})).await;
        assert_eq!((refused.status, refused.code()), (400, "invalid_model"), "agent {name:?}: {:#}", refused.body);
        let refused = app.post("/v1/agents", &app.admin_token, json!({"name": "bad", "allowed_models": [name]})).await;
        assert_eq!((refused.status, refused.code()), (400, "invalid_model"), "allowed {name:?}: {:#}", refused.body);
    }
    let smith = app.get(&format!("/v1/smiths/{sid}"), &app.admin_token).await.expect(200);
    assert_eq!(smith.body["effective_config"]["model"], "ingram/offline", "no refused name was stored");
    let runs_made = app.get(&runs, &app.admin_token).await.expect(200);
    assert!(runs_made.body["data"].as_array().unwrap().is_empty(), "a refused run was recorded");

    // Slashes and dots inside a segment are ordinary names.
    for name in ["meta-llama/Llama-3-8B", "gemini-2.5-flash", "provider/model", "x".repeat(256).as_str()] {
        let patched = app.patch(&format!("/v1/smiths/{sid}"), &app.admin_token, json!({"model": name})).await;
        assert_eq!(patched.expect(200).body["effective_config"]["model"], name);
        app.post("/v1/agents", &app.admin_token, json!({"name": "fine", "model": name})).await.expect(201);
    }
}

#[tokio::test]
async fn a_refused_model_name_never_reaches_the_gemini_provider() {
    let app = TestApp::start().await;
    let mock = MockServer::start().await;
    let good_path = "/v1beta/models/gemini-2.5-flash:streamGenerateContent";
    Mock::given(method("POST")).and(path(good_path)).respond_with(sse(GEMINI_TEXT)).mount(&mock).await;
    let key = json!({"api_key": API_KEY, "base_url": format!("{}/v1beta", mock.uri())});
    app.call("PUT", "/v1/tenant/model_keys/gemini", Some(&app.admin_token), Some(key)).await.expect(200);
    let sid = app.create_smith(&app.admin_token, "gemini").await;
    let runs = format!("/v1/smiths/{sid}/runs");
    let mut names = bad_model_names();
    names.extend(["gemini-x/../../v1beta/models/gemini-2.5-flash".to_owned(), "gemini-x%2F..%2Fadmin".to_owned()]);
    for name in names {
        let refused = app.post(&runs, &app.admin_token, json!({"input": hi(), "model": name})).await;
        assert_eq!((refused.status, refused.code()), (400, "invalid_model"), "{name:?}: {:#}", refused.body);
    }
    assert!(mock.received_requests().await.unwrap().is_empty(), "a refused name reached the provider");

    let run = app.post(&runs, &app.admin_token, json!({"input": hi(), "model": "gemini-2.5-flash"})).await.expect(200);
    assert_eq!(run.body["status"], "completed", "{:#}", run.body);
    assert_eq!(run.body["output"]["content"], "Hello");
    let received = mock.received_requests().await.unwrap();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].url.path(), good_path);
    assert_eq!(received[0].url.query(), Some("alt=sse"));
}

#[tokio::test]
async fn creating_a_smith_through_user_needs_smiths_write() {
    let app = TestApp::start().await;
    let (_, runner) = tenant_token(&app, Some(&["runs:write"])).await;
    let chat = |user: &str| json!({"model": "default", "messages": hi(), "user": user});
    let response = |user: &str| json!({"model": "default", "input": "hi", "user": user});

    app.post(CHAT_PATH, &runner, chat("new_person")).await.expect_error(403, "insufficient_scope");
    app.post("/v1/responses", &runner, response("new_person")).await.expect_error(403, "insufficient_scope");
    let listed = app.get("/v1/smiths?external_id=new_person", &app.admin_token).await.expect(200);
    assert!(listed.body["data"].as_array().unwrap().is_empty(), "a smith was created: {:#}", listed.body);
    let runs = app.get("/v1/runs", &app.admin_token).await.expect(200);
    assert!(runs.body["data"].as_array().unwrap().is_empty(), "a run was recorded: {:#}", runs.body);

    // A smith that already exists needs only runs:write.
    let sid = app.create_smith(&app.admin_token, "existing_person").await;
    let answered = app.post(CHAT_PATH, &runner, chat("existing_person")).await.expect(200);
    assert_eq!(answered.body["choices"][0]["message"]["role"], "assistant", "{:#}", answered.body);
    let answered = app.post("/v1/responses", &runner, response("existing_person")).await.expect(200);
    assert_eq!(answered.body["status"], "completed", "{:#}", answered.body);
    let runs = app.get(&format!("/v1/runs?smith_id={sid}"), &app.admin_token).await.expect(200);
    assert_eq!(runs.body["data"].as_array().unwrap().len(), 2);

    // A token holding smiths:write creates one as before.
    let (_, creator) = tenant_token(&app, Some(&["runs:write", "smiths:write"])).await;
    app.post(CHAT_PATH, &creator, chat("new_person")).await.expect(200);
    let listed = app.get("/v1/smiths?external_id=new_person", &app.admin_token).await.expect(200);
    assert_eq!(listed.body["data"].as_array().unwrap().len(), 1, "{:#}", listed.body);
}

#[tokio::test]
async fn a_scoped_token_revokes_only_tokens_within_its_scopes() {
    let app = TestApp::start().await;
    let listed = app.get("/v1/tenant/tokens", &app.admin_token).await.expect(200);
    let admin_id = listed.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|token| app.admin_token.starts_with(token["preview"].as_str().unwrap().trim_end_matches('…')))
        .expect("the admin token is listed")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, revoker) = tenant_token(&app, Some(&["tokens:write", "tokens:read"])).await;
    let (broader_id, broader) = tenant_token(&app, Some(&["tokens:write", "smiths:write"])).await;
    let (reader_id, reader) = tenant_token(&app, Some(&["tokens:read"])).await;

    // Never an unscoped token: the admin keeps working.
    app.delete(&format!("/v1/tenant/tokens/{admin_id}"), &revoker).await.expect_error(403, "insufficient_scope");
    app.get("/v1/smiths", &app.admin_token).await.expect(200);
    // Never one with a scope it does not hold.
    app.delete(&format!("/v1/tenant/tokens/{broader_id}"), &revoker).await.expect_error(403, "insufficient_scope");
    app.post("/v1/smiths", &broader, json!({"external_id": "still-works"})).await.expect(201);

    // A token within its scopes, yes.
    app.get("/v1/tenant/tokens", &reader).await.expect(200);
    app.delete(&format!("/v1/tenant/tokens/{reader_id}"), &revoker).await.expect(200);
    app.get("/v1/tenant/tokens", &reader).await.expect_error(401, "invalid_token");

    // The unscoped token revokes any of its project's.
    app.delete(&format!("/v1/tenant/tokens/{broader_id}"), &app.admin_token).await.expect(200);
    app.post("/v1/smiths", &broader, json!({"external_id": "gone"})).await.expect_error(401, "invalid_token");
}

#[tokio::test]
async fn external_id_prefixes_match_exactly_without_wildcards_or_case_folding() {
    let app = TestApp::start().await;
    let names = ["user_1", "userXb", "USER_2", "50%off", "5000"];
    let mut smith_of = std::collections::BTreeMap::new();
    for name in names {
        let sid = app.create_smith(&app.admin_token, name).await;
        let run = app.post(&format!("/v1/smiths/{sid}/runs"), &app.admin_token, json!({"input": hi()})).await;
        assert_eq!(run.expect(200).body["status"], "completed");
        smith_of.insert(sid, name);
    }
    let cases: [(&str, &[&str]); 6] = [
        ("user_", &["user_1"]),
        ("USER", &["USER_2"]),
        ("user", &["userXb", "user_1"]),
        ("50%25", &["50%off"]),
        ("%25", &[]),
        ("_", &[]),
    ];
    for (prefix, expected) in cases {
        let smiths = app.get(&format!("/v1/smiths?external_id_prefix={prefix}"), &app.admin_token).await.expect(200);
        let mut found: Vec<&str> = smiths.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|smith| smith["external_id"].as_str().unwrap())
            .collect();
        found.sort_unstable();
        assert_eq!(found, expected, "smiths with prefix {prefix}");

        let runs = app.get(&format!("/v1/runs?external_id_prefix={prefix}"), &app.admin_token).await.expect(200);
        let mut found: Vec<&str> = runs.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|run| smith_of[run["smith_id"].as_str().unwrap()])
            .collect();
        found.sort_unstable();
        assert_eq!(found, expected, "runs with prefix {prefix}");
    }
}

#[tokio::test]
async fn oversized_provider_events_and_tool_arguments_fail_the_run() {
    // One SSE event over 4 MiB.
    let huge_event = format!(
        "data: {{\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"{}\"}}}}]}}\n\ndata: [DONE]\n\n",
        "x".repeat(4 * 1024 * 1024 + 1)
    );
    let (run, _mock) = run_against(sse(&huge_event)).await;
    assert_eq!((run["status"].as_str(), run["error"]["code"].as_str()), (Some("failed"), Some("upstream_error")));

    // One tool call's arguments streamed past 1 MiB in many small events.
    let fragment = "a".repeat(64 * 1024);
    let mut body = String::from(
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"weather\",\"arguments\":\"\"}}]}}]}\n\n",
    );
    for _ in 0..17 {
        body.push_str(&format!(
            "data: {{\"choices\":[{{\"index\":0,\"delta\":{{\"tool_calls\":[{{\"index\":0,\"function\":{{\"arguments\":\"{fragment}\"}}}}]}}}}]}}\n\n"
        ));
    }
    body.push_str("data: [DONE]\n\n");
    let (run, _mock) = run_against(sse(&body)).await;
    assert_eq!((run["status"].as_str(), run["error"]["code"].as_str()), (Some("failed"), Some("upstream_error")));
    assert!(run["error"]["message"].as_str().unwrap().contains("arguments"), "{run:#}");
}

#[tokio::test]
async fn a_token_whose_stored_scopes_do_not_decode_is_never_listed_as_unrestricted() {
    use sea_orm::{ActiveModelTrait, EntityTrait, IntoActiveModel, Set};
    let app = TestApp::start().await;
    let scoped =
        app.post("/v1/tenant/tokens", &app.admin_token, json!({"kind": "tenant_admin", "scopes": ["runs:read"]})).await;
    let id = scoped.expect(201).id();
    let stored = ingram_core::store::token::Entity::find_by_id(id).one(&app.state.db).await.unwrap().unwrap();
    let mut damaged = stored.into_active_model();
    damaged.scopes = Set(Some(json!("runs:read")));
    damaged.update(&app.state.db).await.unwrap();
    // Before, the list showed `scopes: null`: everything its kind allows.
    app.get("/v1/tenant/tokens", &app.admin_token).await.expect_error(500, "internal_error");
}
