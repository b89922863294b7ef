//! Native SSE transcripts: each scenario runs against the server (insta snapshot of its
//! frames, ids and times redacted); the very bytes it sent are then served by wiremock to
//! the client, which must decode every frame. Plus the client's streams against the server.

use futures::TryStreamExt;
use ingram_client::{Client, RetryPolicy, RunEvent, RunEventFrame, types};
use reqwest::Method;
use serde_json::{Value, json};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::fixtures::redact;
use crate::harness::{Streamed, TestApp};

fn tools() -> Value {
    json!([{"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}])
}

fn transcript(streamed: &Streamed) -> Value {
    Value::Array(
        streamed.frames.iter().map(|f| json!({"event": f.event, "id": f.id, "data": redact(&f.data)})).collect(),
    )
}

/// Serves `raw` to the client as the answer to `POST path` and decodes it.
async fn through_client(raw: &str, smith_path: &str) -> Vec<RunEventFrame> {
    let mock = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(smith_path))
        .respond_with(ResponseTemplate::new(200).set_body_raw(raw.to_owned(), "text/event-stream"))
        .mount(&mock)
        .await;
    let client = Client::with_token_and_policy(&mock.uri(), "t", RetryPolicy::none()).unwrap();
    let request = types::CreateRunRequest::builder().input(vec![]).try_into().unwrap();
    let stream = client.create_run_stream("smt_x", &request).await.unwrap();
    stream.try_collect().await.unwrap()
}

fn assert_decoded(recorded: &Streamed, decoded: &[RunEventFrame]) {
    assert_eq!(decoded.len(), recorded.frames.len());
    for (frame, event) in recorded.frames.iter().zip(decoded) {
        assert_eq!(frame.id.as_deref().map(|id| id.parse::<u64>().unwrap()), event.seq);
        let kind = match &event.event {
            RunEvent::Started(_) => "run.started",
            RunEvent::MessageDelta(_) => "message.delta",
            RunEvent::MessageCompleted(_) => "message.completed",
            RunEvent::RequiresAction(_) => "run.requires_action",
            RunEvent::Completed(_) => "run.completed",
            RunEvent::Failed(_) => "run.failed",
            RunEvent::Cancelled(_) => "run.cancelled",
            RunEvent::Duplicate(_) => "run.duplicate",
            other => panic!("unexpected {other:?}"),
        };
        assert_eq!(kind, frame.event);
    }
}

#[tokio::test]
async fn native_sse_transcripts_replay_against_the_server_and_through_the_client() {
    let app = TestApp::start().await;
    let sid = app.create_smith(&app.admin_token, "sse").await;
    let runs = format!("/v1/smiths/{sid}/runs");
    let token = app.admin_token.clone();
    let mut scenarios: Vec<(&str, Streamed)> = Vec::new();

    let text = app
        .stream_post(&runs, &token, json!({"input": [{"role": "user", "content": "Say hello"}], "stream": true}))
        .await;
    scenarios.push(("text reply", text));

    let paused = app.stream_post(&runs, &token, json!({"input": [{"role": "user", "content": "/tool weather {\"city\":\"Oslo\"}"}], "tools": tools(), "stream": true})).await;
    let rid = paused.last().data["run_id"].as_str().unwrap().to_owned();
    let call_id = paused.last().data["required_action"]["tool_calls"][0]["id"].as_str().unwrap().to_owned();
    let submitted = app
        .stream_post(
            &format!("{runs}/{rid}/submit"),
            &token,
            json!({"tool_outputs": [{"tool_call_id": call_id, "output": "-3C"}], "stream": true}),
        )
        .await;
    scenarios.push(("client tool pause", paused));
    scenarios.push(("client tool submit", submitted));

    let to_cancel = app
        .post(&runs, &token, json!({"input": [{"role": "user", "content": "/tool weather {}"}], "tools": tools()}))
        .await;
    app.post(&format!("{runs}/{}/cancel", to_cancel.id()), &token, json!({})).await.expect(200);
    let cancelled = app
        .stream(
            app.request(Method::GET, &format!("{runs}/{}/events", to_cancel.id()))
                .bearer_auth(&token)
                .header("last-event-id", "3"),
        )
        .await;
    scenarios.push(("cancel after pause", cancelled));

    // A run whose key the provider refuses fails in-stream.
    let provider = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({"error": {"message": "bad key"}})))
        .mount(&provider)
        .await;
    app.call(
        "PUT",
        "/v1/tenant/model_keys/openai",
        Some(&token),
        Some(json!({"api_key": "sk-bad", "base_url": provider.uri()})),
    )
    .await
    .expect(200);
    let failed = app
        .stream_post(
            &runs,
            &token,
            json!({"input": [{"role": "user", "content": "x"}], "model": "gpt-4o", "stream": true}),
        )
        .await;
    scenarios.push(("failure", failed));

    let keyed = |body: Value| {
        app.request(Method::POST, &runs).bearer_auth(&token).header("idempotency-key", "dup-1").json(&body)
    };
    let body = json!({"input": [{"role": "user", "content": "only once"}], "stream": true});
    app.stream(keyed(body.clone())).await;
    let duplicate = app.stream(keyed(body)).await;
    scenarios.push(("duplicate through Idempotency-Key", duplicate));

    let resumed = app
        .stream(
            app.request(Method::GET, &format!("{runs}/{rid}/events")).bearer_auth(&token).header("last-event-id", "5"),
        )
        .await;
    scenarios.push(("resume through Last-Event-ID", resumed));

    let snapshot: Vec<Value> =
        scenarios.iter().map(|(name, streamed)| json!({"scenario": name, "frames": transcript(streamed)})).collect();
    insta::assert_json_snapshot!("native_sse", snapshot);

    for (name, streamed) in &scenarios {
        let decoded = through_client(&streamed.raw, "/v1/smiths/smt_x/runs").await;
        assert_decoded(streamed, &decoded);
        assert!(!decoded.is_empty(), "{name}");
    }
}

#[tokio::test]
async fn the_client_resumes_a_dropped_stream_with_last_event_id() {
    let app = TestApp::start().await;
    let sid = app.create_smith(&app.admin_token, "resume").await;
    let full = app
        .stream_post(
            &format!("/v1/smiths/{sid}/runs"),
            &app.admin_token,
            json!({"input": [{"role": "user", "content": "a long story"}], "stream": true}),
        )
        .await;
    let run_id = full.frames[0].data["run_id"].as_str().unwrap().to_owned();
    // The connection drops after three frames; the events endpoint serves the rest.
    let blocks: Vec<&str> = full.raw.split_inclusive("\n\n").collect();
    let head: String = blocks[..3].concat();
    let tail: String = blocks[3..].concat();
    let mock = MockServer::start().await;
    let runs_path = format!("/v1/smiths/{sid}/runs");
    Mock::given(method("POST"))
        .and(path(runs_path.as_str()))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("x-run-id", run_id.as_str())
                .set_body_raw(head, "text/event-stream"),
        )
        .mount(&mock)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{runs_path}/{run_id}/events")))
        .and(header("last-event-id", "3"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(tail, "text/event-stream"))
        .expect(1)
        .mount(&mock)
        .await;
    let client = Client::with_token_and_policy(&mock.uri(), "t", RetryPolicy::none()).unwrap();
    let request = types::CreateRunRequest::builder().input(vec![]).try_into().unwrap();
    let frames: Vec<RunEventFrame> =
        client.create_run_stream(&sid, &request).await.unwrap().try_collect().await.unwrap();
    let seqs: Vec<u64> = frames.iter().map(|f| f.seq.unwrap()).collect();
    assert_eq!(seqs, (1..=full.frames.len() as u64).collect::<Vec<_>>(), "every event once");
}

#[tokio::test]
async fn the_client_streams_and_drives_runs_against_the_server() {
    let app = TestApp::start().await;
    let client = Client::with_token(&app.base_url, &app.admin_token).unwrap();
    let sid = app.create_smith(&app.admin_token, "client").await;
    let user = |text: &str| -> types::InputMessage {
        types::InputMessage::builder()
            .role(types::Role::User)
            .content(types::MessageContent::Text(text.into()))
            .try_into()
            .expect("a valid message")
    };

    let request: types::CreateRunRequest =
        types::CreateRunRequest::builder().input(vec![user("Hi")]).try_into().unwrap();
    let frames: Vec<RunEventFrame> =
        client.create_run_stream(&sid, &request).await.unwrap().try_collect().await.unwrap();
    let text: String = frames
        .iter()
        .filter_map(|f| if let RunEvent::MessageDelta(d) = &f.event { Some(d.delta.as_str()) } else { None })
        .collect();
    assert_eq!(text, "Hello! I am the built-in offline model. You said: \"Hi\".");
    assert!(matches!(frames.last().unwrap().event, RunEvent::Completed(_)));

    let weather = types::FunctionTool {
        type_: types::FunctionToolType::Function,
        function: types::FunctionDefinition { name: "weather".parse().unwrap(), description: None, parameters: None },
    };
    let paused = client
        .create_run()
        .sid(&sid)
        .body(types::CreateRunRequest::builder().input(vec![user("/tool weather {}")]).tools(vec![weather]))
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(paused.status, types::RunStatus::RequiresAction);
    let call = &paused.required_action.as_ref().unwrap().tool_calls[0];
    let outputs = vec![types::ToolOutput { tool_call_id: call.id.clone(), output: "sunny".into() }];
    let resumed: Vec<RunEventFrame> =
        client.submit_tool_outputs_stream(&sid, &paused.id, outputs).await.unwrap().try_collect().await.unwrap();
    assert!(matches!(resumed.last().unwrap().event, RunEvent::Completed(_)));

    let all: Vec<RunEventFrame> =
        client.stream_run_events(&sid, &paused.id, None).await.unwrap().try_collect().await.unwrap();
    assert!(matches!(all.last().unwrap().event, RunEvent::RequiresAction(_)), "the log closes at the pause");

    let replayed = client
        .replay_run()
        .sid(&sid)
        .rid(&paused.id)
        .body(types::ReplayRunRequest::default())
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(replayed.replay_of.as_ref(), Some(&paused.id));
    let cancelled = client.cancel_run().sid(&sid).rid(&replayed.id).send().await.unwrap().into_inner();
    assert_eq!(cancelled.status, types::RunStatus::Cancelled);
    let listed = client.list_runs().smith_id(&sid).send().await.unwrap().into_inner();
    assert_eq!(listed.data.len(), 3);

    let missing_key: types::CreateRunRequest = types::CreateRunRequest::builder()
        .input(vec![user("x")])
        .model(Some("gpt-4o".parse::<types::CreateRunRequestModel>().unwrap()))
        .try_into()
        .unwrap();
    let err = match client.create_run_stream(&sid, &missing_key).await {
        Err(err) => err,
        Ok(_) => panic!("a run without a key must be refused"),
    };
    assert_eq!(err.code(), Some("model_key_missing"));
}

#[tokio::test]
async fn a_submit_stream_dropped_before_its_first_frame_resumes_after_the_pause() {
    let mock = MockServer::start().await;
    let runs = "/v1/smiths/smt_x/runs";
    Mock::given(method("POST"))
        .and(path(format!("{runs}/run_x/submit")))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("x-run-id", "run_x")
                .insert_header("x-run-stream-after", "3")
                .set_body_raw("", "text/event-stream"),
        )
        .mount(&mock)
        .await;
    let tail = "event: run.completed\nid: 4\ndata: {\"v\":1,\"run_id\":\"run_x\",\"stop_reason\":\"end_turn\",\"usage\":{\"input_tokens\":1,\"output_tokens\":1,\"total_tokens\":2,\"cost_usd\":0.0}}\n\n";
    Mock::given(method("GET"))
        .and(path(format!("{runs}/run_x/events")))
        .and(header("last-event-id", "3"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(tail, "text/event-stream"))
        .expect(1)
        .mount(&mock)
        .await;
    let client = Client::with_token_and_policy(&mock.uri(), "t", RetryPolicy::none()).unwrap();
    let frames: Vec<RunEventFrame> =
        client.submit_tool_outputs_stream("smt_x", "run_x", vec![]).await.unwrap().try_collect().await.unwrap();
    assert_eq!(frames.len(), 1);
    assert!(matches!(frames[0].event, RunEvent::Completed(_)));
}
