//! The generated client against the real server, and its retries against wiremock.

use std::time::{Duration, Instant};

use futures::TryStreamExt;
use ingram_client::{Client, Error, RetryPolicy, paginate, types};
use ingram_core::settings::CapacityLimits;
use ingram_core::settings::Settings;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::harness::TestApp;

#[tokio::test]
async fn the_client_drives_the_server_with_typed_results_and_errors() {
    let app = TestApp::start().await;
    let client = Client::with_token(&app.base_url, &app.admin_token).unwrap();
    let created = client
        .create_smith()
        .body(
            types::CreateSmithRequest::builder()
                .external_id("user_1")
                .display_name(Some("Ada".parse::<types::CreateSmithRequestDisplayName>().unwrap())),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let smith = created.into_inner();
    assert_eq!(smith.config_source, types::ConfigSource::Agent);

    let fetched = client.get_smith().sid(&smith.id).send().await.unwrap().into_inner();
    assert_eq!(fetched, smith);

    let err = client.get_smith().sid("smt_missing").send().await.unwrap_err();
    let Error::Api(api) = &err else { panic!("{err}") };
    assert_eq!((api.status, api.code.as_str(), api.kind.as_str()), (404, "smith_not_found", "invalid_request_error"));
    assert!(api.request_id.starts_with("req_"));
    assert_eq!(err.code(), Some("smith_not_found"));
}

#[tokio::test]
async fn paginate_streams_every_item_across_pages() {
    let app = TestApp::start().await;
    let client = Client::with_token(&app.base_url, &app.admin_token).unwrap();
    for i in 0..7 {
        app.create_smith(&app.admin_token, &format!("u{i}")).await;
    }
    let smiths: Vec<types::Smith> =
        paginate(|cursor| client.list_smiths().limit(std::num::NonZeroU64::new(2).unwrap()).cursor(cursor).send())
            .try_collect()
            .await
            .unwrap();
    let mut ids: Vec<&str> = smiths.iter().map(|s| s.external_id.as_str()).collect();
    assert_eq!(ids.len(), 7);
    ids.dedup();
    assert_eq!(ids, vec!["u6", "u5", "u4", "u3", "u2", "u1", "u0"]);
}

fn quick_policy() -> RetryPolicy {
    RetryPolicy { max_retries: 2, initial_backoff: Duration::from_millis(10), max_backoff: Duration::from_secs(2) }
}

fn smith_json() -> serde_json::Value {
    serde_json::json!({
        "id": "smt_01", "external_id": "u", "agent_id": "agt_01", "customer_id": null, "display_name": null,
        "metadata": null, "config_source": "agent", "overrides": {},
        "effective_config": {"instructions": null, "model": "ingram/offline", "tools": [], "auto_memory": false, "resolved_tools": [], "tool_approvals": {}},
        "revision": 1, "created_at": "2026-11-22T10:00:00Z", "updated_at": "2026-11-22T10:00:00Z"
    })
}

fn envelope(code: &str) -> serde_json::Value {
    serde_json::json!({"error": {"message": "m", "type": "api_error", "param": null, "code": code}})
}

#[tokio::test]
async fn creates_carry_one_idempotency_key_across_retries() {
    let mock = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/smiths"))
        .respond_with(ResponseTemplate::new(503).set_body_json(envelope("database_unavailable")))
        .up_to_n_times(1)
        .mount(&mock)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/smiths"))
        .respond_with(ResponseTemplate::new(201).set_body_json(smith_json()))
        .mount(&mock)
        .await;
    let client = Client::with_token_and_policy(&mock.uri(), "tha_live_x", quick_policy()).unwrap();
    let smith = client.create_smith().body(types::CreateSmithRequest::builder().external_id("u")).send().await.unwrap();
    assert_eq!(smith.status(), 201);
    let requests: Vec<Request> = mock.received_requests().await.unwrap();
    assert_eq!(requests.len(), 2);
    let keys: Vec<&str> = requests.iter().map(|r| r.headers["idempotency-key"].to_str().unwrap()).collect();
    assert!(keys[0].starts_with("ingram-rs-"));
    assert_eq!(keys[0], keys[1], "a retry reuses the key");
    assert_eq!(requests[0].headers["authorization"], "Bearer tha_live_x");
    assert_eq!(requests[0].headers["ic-api-version"], "2026-05-01");
}

#[tokio::test]
async fn retries_are_bounded_and_end_in_the_typed_error() {
    let mock = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/smiths/smt_1"))
        .respond_with(ResponseTemplate::new(502).set_body_json(envelope("upstream_error")))
        .mount(&mock)
        .await;
    let client = Client::with_token_and_policy(&mock.uri(), "t", quick_policy()).unwrap();
    let err = client.get_smith().sid("smt_1").send().await.unwrap_err();
    assert_eq!(err.code(), Some("upstream_error"));
    assert_eq!(mock.received_requests().await.unwrap().len(), 3, "one try and two retries");

    // A 404 is an answer, not a hiccup: no retry.
    mock.reset().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(404).set_body_json(envelope("smith_not_found")))
        .mount(&mock)
        .await;
    client.get_smith().sid("smt_1").send().await.unwrap_err();
    assert_eq!(mock.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let mock = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/smiths/smt_1"))
        .respond_with(
            ResponseTemplate::new(429).insert_header("retry-after", "1").set_body_json(envelope("rate_limited")),
        )
        .up_to_n_times(1)
        .mount(&mock)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/smiths/smt_1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(smith_json()))
        .mount(&mock)
        .await;
    let client = Client::with_token_and_policy(&mock.uri(), "t", quick_policy()).unwrap();
    let started = Instant::now();
    client.get_smith().sid("smt_1").send().await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(950), "waited {:?}", started.elapsed());
}

#[tokio::test]
async fn connection_errors_are_retried_then_reported() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let client = Client::with_token_and_policy(&format!("http://{addr}"), "t", quick_policy()).unwrap();
    let err = client.get_smith().sid("smt_1").send().await.unwrap_err();
    assert!(matches!(err, Error::Transport(_)), "{err}");
}

#[tokio::test]
async fn only_answers_that_can_succeed_are_retried() {
    let mock = MockServer::start().await;
    let client = Client::with_token_and_policy(&mock.uri(), "t", quick_policy()).unwrap();
    let attempts = |answer: ResponseTemplate| {
        let (mock, client) = (&mock, &client);
        async move {
            mock.reset().await;
            Mock::given(method("GET")).respond_with(answer).mount(mock).await;
            let _ = client.get_smith().sid("smt_1").send().await;
            mock.received_requests().await.unwrap().len()
        }
    };
    // A bug is not retried, nor is an answer such as a conflict the server stored.
    assert_eq!(attempts(ResponseTemplate::new(500).set_body_json(envelope("internal_error"))).await, 1);
    assert_eq!(attempts(ResponseTemplate::new(409).set_body_json(envelope("thread_busy"))).await, 1);
    // An outage, and a key still in progress (a 409 with Retry-After), are.
    assert_eq!(attempts(ResponseTemplate::new(503).set_body_json(envelope("database_unavailable"))).await, 3);
    let in_progress = ResponseTemplate::new(409)
        .insert_header("retry-after", "0")
        .set_body_json(envelope("idempotency_key_in_progress"));
    assert_eq!(attempts(in_progress).await, 3);
}

#[tokio::test]
async fn every_list_of_the_spec_paginates_runs_included() {
    let app = TestApp::start().await;
    let sid = app.create_smith(&app.admin_token, "pager").await;
    for turn in 0..3 {
        let body = serde_json::json!({"input": [{"role": "user", "content": format!("turn {turn}")}]});
        app.post(&format!("/v1/smiths/{sid}/runs"), &app.admin_token, body).await.expect(200);
    }
    let client = Client::with_token(&app.base_url, &app.admin_token).unwrap();
    let one = std::num::NonZeroU64::new(1).unwrap();
    let runs: Vec<types::Run> =
        paginate(|cursor| client.list_runs().limit(one).cursor(cursor).send()).try_collect().await.unwrap();
    assert_eq!(runs.len(), 3);
    let smith_runs: Vec<types::Run> =
        paginate(|cursor| client.list_smith_runs().sid(&sid).limit(one).cursor(cursor).send())
            .try_collect()
            .await
            .unwrap();
    assert_eq!(smith_runs, runs);
}

/// Against the real server: a create refused because the project's executing-runs cap is
/// reached is a typed 429 `rate_limited`, and the same call retried under its one
/// Idempotency-Key succeeds once the slot frees, so the server stored no 429 under the key.
#[tokio::test]
async fn a_create_refused_for_capacity_succeeds_when_retried_under_its_key() {
    let mut settings = Settings::for_tests();
    settings.capacity = CapacityLimits { active_runs: 1, queued_runs: 1, streams: 4 };
    settings.offline_token_delay = Duration::from_millis(100);
    let app = TestApp::start_with(settings).await;
    let sid = app.create_smith(&app.admin_token, "busy").await;
    let client = |policy| Client::with_token_and_policy(&app.base_url, &app.admin_token, policy).unwrap();
    let turn = |text: &str, thread: &str| -> types::CreateRunRequest {
        let message =
            types::InputMessage::builder().role(types::Role::User).content(types::MessageContent::Text(text.into()));
        types::CreateRunRequest::builder()
            .input(vec![message.try_into().unwrap()])
            .thread_id(Some(thread.parse().unwrap()))
            .try_into()
            .unwrap()
    };

    // A streamed run takes the one executing slot for a couple of seconds.
    let busy_client = client(RetryPolicy::none());
    let mut busy = busy_client.create_run_stream(&sid, &turn(&vec!["word"; 15].join(" "), "busy")).await.unwrap();
    assert!(busy.try_next().await.unwrap().is_some(), "the busy run started");

    let refused = client(RetryPolicy::none()).create_run().sid(&sid).body(turn("now", "other")).send().await;
    let err = refused.unwrap_err();
    assert_eq!((err.status(), err.code()), (Some(429), Some("rate_limited")), "{err}");

    let patient = RetryPolicy {
        max_retries: 100,
        initial_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(200),
    };
    let run = client(patient).create_run().sid(&sid).body(turn("later", "other")).send().await.unwrap().into_inner();
    assert_eq!(run.status, types::RunStatus::Completed);
    while busy.try_next().await.unwrap().is_some() {}
}
