//! `Idempotency-Key` on creates.

use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::{Answer, TestApp};

async fn keyed_post(app: &TestApp, token: &str, path: &str, key: &str, body: Value) -> Answer {
    let request = app.request(Method::POST, path).bearer_auth(token).header("idempotency-key", key).json(&body);
    app.send("POST", path, request).await
}

async fn agent_count(app: &TestApp) -> usize {
    app.get("/v1/agents?limit=100", &app.admin_token).await.expect(200).body["data"].as_array().unwrap().len()
}

#[tokio::test]
async fn a_replay_returns_the_original_status_and_body() {
    let app = TestApp::start().await;
    let body = json!({"name": "support"});
    let first = keyed_post(&app, &app.admin_token, "/v1/agents", "k-1", body.clone()).await.expect(201);
    let replay = keyed_post(&app, &app.admin_token, "/v1/agents", "k-1", body).await.expect(201);
    assert_eq!(first.body, replay.body);
    assert_eq!(replay.headers["idempotent-replayed"], "true");
    assert_eq!(agent_count(&app).await, 2, "the default agent and one more");

    // Errors are answers too: the same bad request replays the same error.
    let bad = keyed_post(&app, &app.admin_token, "/v1/agents", "k-2", json!({"name": ""}))
        .await
        .expect_error(400, "invalid_parameter");
    let again = keyed_post(&app, &app.admin_token, "/v1/agents", "k-2", json!({"name": ""})).await;
    assert_eq!((again.status, again.body), (bad.status, bad.body));
}

#[tokio::test]
async fn the_same_key_with_another_body_is_refused() {
    let app = TestApp::start().await;
    keyed_post(&app, &app.admin_token, "/v1/agents", "k", json!({"name": "a"})).await.expect(201);
    let refused = keyed_post(&app, &app.admin_token, "/v1/agents", "k", json!({"name": "b"})).await;
    refused.expect_error(422, "idempotency_key_reused");
    keyed_post(&app, &app.admin_token, "/v1/smiths", "k", json!({"name": "a"}))
        .await
        .expect_error(422, "idempotency_key_reused");
    assert_eq!(agent_count(&app).await, 2);
}

#[tokio::test]
async fn concurrent_duplicates_create_one_resource() {
    let app = TestApp::start().await;
    let body = json!({"name": "raced"});
    let requests = (0..8).map(|_| keyed_post(&app, &app.admin_token, "/v1/agents", "race", body.clone()));
    let answers = futures::future::join_all(requests).await;
    let ids: std::collections::HashSet<String> = answers.into_iter().map(|answer| answer.expect(201).id()).collect();
    assert_eq!(ids.len(), 1);
    assert_eq!(agent_count(&app).await, 2);
}

#[tokio::test]
async fn keys_are_scoped_per_project() {
    let app = TestApp::start().await;
    let (_, other_token) = app.other_project().await;
    let body = json!({"name": "same"});
    let mine = keyed_post(&app, &app.admin_token, "/v1/agents", "shared", body.clone()).await.expect(201);
    let theirs = keyed_post(&app, &other_token, "/v1/agents", "shared", body).await.expect(201);
    assert_ne!(mine.id(), theirs.id());
}

#[tokio::test]
async fn bad_keys_are_rejected() {
    let app = TestApp::start().await;
    keyed_post(&app, &app.admin_token, "/v1/agents", &"k".repeat(300), json!({"name": "a"}))
        .await
        .expect_error(400, "invalid_idempotency_key");
}

#[tokio::test]
async fn smith_tokens_keep_their_keys_apart() {
    let app = TestApp::start().await;
    let body = json!({"model": "ingram/offline", "messages": [{"role": "user", "content": "same"}]});
    let mut ids = Vec::new();
    for user in ["alice", "bob"] {
        let sid = app.create_smith(&app.admin_token, user).await;
        let token = app.smith_token(&sid).await;
        let answer = keyed_post(&app, &token, "/v1/chat/completions", "shared-key", body.clone()).await.expect(200);
        ids.push(answer.body["id"].as_str().unwrap().to_owned());
    }
    assert_ne!(ids[0], ids[1], "one end-user's key never replays another's answer");
}

#[tokio::test]
async fn a_request_outlasting_the_claim_lease_is_never_executed_twice() {
    use std::time::Duration;
    let mut settings = ingram_core::settings::Settings::for_tests();
    // The first request renews its claim while it runs; before, a claim was taken over once
    // it was older than a fixed age, however alive its request.
    settings.idempotency_lease = Duration::from_millis(600);
    settings.offline_token_delay = Duration::from_millis(150);
    let app = TestApp::start_with(settings).await;
    let sid = app.create_smith(&app.admin_token, "patient").await;
    let path = format!("/v1/smiths/{sid}/runs");
    let words = "one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen";
    let body = json!({"input": [{"role": "user", "content": words}]});
    let first = keyed_post(&app, &app.admin_token, &path, "long-run", body.clone());
    let duplicate = async {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        keyed_post(&app, &app.admin_token, &path, "long-run", body.clone()).await
    };
    let (first, duplicate) = tokio::join!(first, duplicate);
    let (first, duplicate) = (first.expect(200), duplicate.expect(200));
    assert_eq!(first.body["id"], duplicate.body["id"]);
    assert_eq!(duplicate.headers["idempotent-replayed"], "true");
    let runs = app.get(&format!("/v1/runs?smith_id={sid}"), &app.admin_token).await.expect(200);
    assert_eq!(runs.body["data"].as_array().unwrap().len(), 1, "the run was executed once");
}
