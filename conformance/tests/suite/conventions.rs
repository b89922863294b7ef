//! What every route shares: the error envelope, status codes, request ids, the version header.

use axum::routing::get;
use reqwest::Method;
use serde_json::json;

use crate::harness::TestApp;
use crate::spec;

#[tokio::test]
async fn unknown_routes_and_wrong_methods_answer_with_the_envelope() {
    let app = TestApp::start().await;
    app.call("GET", "/v1/nope", None, None).await.expect_error(404, "route_not_found");
    app.call("GET", "/", None, None).await.expect_error(404, "route_not_found");
    app.call("PUT", "/v1/smiths", Some(&app.admin_token), None).await.expect_error(405, "method_not_allowed");
}

#[tokio::test]
async fn bad_bodies_are_400_415_and_413() {
    let app = TestApp::start().await;
    let token = &app.admin_token;
    let raw = |body: &'static str, content_type: &'static str| {
        app.request(Method::POST, "/v1/smiths").bearer_auth(token).header("content-type", content_type).body(body)
    };
    app.send("POST", "/v1/smiths", raw("{bad", "application/json")).await.expect_error(400, "invalid_json");
    app.send("POST", "/v1/smiths", raw(r#"{"external_id": 5}"#, "application/json"))
        .await
        .expect_error(400, "invalid_body");
    app.send("POST", "/v1/smiths", raw(r#"{}"#, "application/json")).await.expect_error(400, "invalid_body");
    app.send("POST", "/v1/smiths", raw(r#"{"external_id":"a","bogus":1}"#, "application/json"))
        .await
        .expect_error(400, "invalid_body");
    app.send("POST", "/v1/smiths", raw(r#"{"external_id": "a"}"#, "text/plain"))
        .await
        .expect_error(415, "unsupported_media_type");
    let huge = json!({"external_id": "a", "instructions": "x".repeat(2 * 1024 * 1024)});
    app.post("/v1/smiths", token, huge.clone()).await.expect_error(413, "payload_too_large");
    let keyed = app.request(Method::POST, "/v1/smiths").bearer_auth(token).header("idempotency-key", "big").json(&huge);
    app.send("POST", "/v1/smiths", keyed).await.expect_error(413, "payload_too_large");
    app.get("/v1/smiths?limit=0", token).await.expect_error(400, "invalid_parameter");
    app.get("/v1/smiths?limit=abc", token).await.expect_error(400, "invalid_query");
    app.get("/v1/smiths?cursor=garbage!", token).await.expect_error(400, "invalid_cursor");
    app.post("/v1/smiths", token, json!({"external_id": ""})).await.expect_error(400, "invalid_parameter");
}

#[tokio::test]
async fn tokens_are_required_and_checked() {
    let app = TestApp::start().await;
    app.call("GET", "/v1/smiths", None, None).await.expect_error(401, "missing_token");
    let answer = app.get("/v1/smiths", "tha_live_not-a-real-token").await.expect_error(401, "invalid_token");
    assert_eq!(answer.body["error"]["type"], "authentication_error");
    let basic = app.request(Method::GET, "/v1/smiths").header("authorization", "Basic Zm9vOmJhcg==");
    app.send("GET", "/v1/smiths", basic).await.expect_error(401, "invalid_token");
    // An org key manages projects only; a project token cannot manage projects.
    let answer = app.get("/v1/smiths", &app.org_key).await.expect_error(403, "permission_denied");
    assert_eq!(answer.body["error"]["type"], "permission_error");
    app.get("/v1/organization/projects", &app.admin_token).await.expect_error(403, "permission_denied");
}

#[tokio::test]
async fn api_version_header_is_checked() {
    let app = TestApp::start().await;
    let versioned = |version: &'static str| {
        app.request(Method::GET, "/v1/smiths").bearer_auth(&app.admin_token).header("ic-api-version", version)
    };
    app.send("GET", "/v1/smiths", versioned("2026-05-01")).await.expect(200);
    let answer =
        app.send("GET", "/v1/smiths", versioned("2025-01-01")).await.expect_error(400, "unsupported_api_version");
    assert_eq!(answer.body["error"]["param"], "IC-Api-Version");
}

#[tokio::test]
async fn request_ids_are_always_minted_by_the_server() {
    let app = TestApp::start().await;
    let first = app.get("/v1/smiths", &app.admin_token).await;
    let second = app.get("/v1/smiths", &app.admin_token).await;
    let id = |answer: &crate::harness::Answer| answer.headers["x-request-id"].to_str().unwrap().to_owned();
    assert!(id(&first).starts_with("req_"));
    assert_ne!(id(&first), id(&second));
    // A client's own id is logged beside ours, never adopted: it could forge or collide.
    let sent = app.request(Method::GET, "/v1/nope").header("x-request-id", "my-trace-1");
    let answered = id(&app.send("GET", "/v1/nope", sent).await);
    assert!(answered.starts_with("req_") && answered != "my-trace-1", "{answered}");
}

#[tokio::test]
async fn health_answers_without_a_token() {
    let app = TestApp::start().await;
    assert_eq!(app.call("GET", "/healthz", None, None).await.expect(200).body, json!({"status": "ok"}));
}

async fn boom() -> &'static str {
    panic!("boom")
}

#[tokio::test]
async fn panics_become_a_500_envelope_with_a_request_id() {
    let app = TestApp::start().await;
    let routes = axum::Router::<ingram_server::AppState>::new().route("/boom", get(boom));
    let router = ingram_server::with_conventions(routes).with_state(app.state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    let response = reqwest::get(format!("http://{addr}/boom")).await.unwrap();
    assert_eq!(response.status(), 500);
    assert!(response.headers().contains_key("x-request-id"));
    assert_eq!(response.headers()["content-type"], "application/json");
    let body: serde_json::Value = response.json().await.unwrap();
    spec::assert_conforms("GET", "/boom", 500, &body);
    assert_eq!(
        (body["error"]["type"].as_str(), body["error"]["code"].as_str()),
        (Some("api_error"), Some("internal_error"))
    );
}

/// The spec's frame schemas are titled with the event names the core streams: the wire
/// layer's titles cannot drift from `EventKind`.
#[test]
fn the_spec_names_every_run_event_as_the_core_does() {
    use ingram_core::types::EventKind;
    use sea_orm::Iterable;
    let variants = spec::SPEC["components"]["schemas"]["RunEventData"]["oneOf"].as_array().unwrap();
    let titles: Vec<(&str, &str)> = variants
        .iter()
        .map(|variant| (variant["title"].as_str().unwrap(), variant["$ref"].as_str().unwrap()))
        .collect();
    let kinds: Vec<&str> = EventKind::iter().map(EventKind::as_str).collect();
    assert_eq!(titles.iter().map(|(title, _)| *title).collect::<Vec<_>>(), kinds, "in the enum's order");
    // Each title names the frame schema of its own event: `run.requires_action` is
    // `RunRequiresActionEvent`.
    for (title, schema) in titles {
        let camel: String = title.split(['.', '_']).map(|word| word[..1].to_uppercase() + &word[1..]).collect();
        assert_eq!(schema, format!("#/components/schemas/{camel}Event"), "{title}");
    }
}
