//! `/v1/responses` over HTTP: server-held history, function calls, and the event stream.

use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::{TestApp, parse_frames};

const PATH: &str = "/v1/responses";

#[tokio::test]
async fn responses_chain_on_the_server_and_stream_in_order() {
    let app = TestApp::start().await;
    let token = &app.admin_token;
    let first = app
        .post(
            PATH,
            token,
            json!({"model": "ingram/offline", "user": "r1", "input": "First", "instructions": "Be brief."}),
        )
        .await
        .expect(200);
    assert_eq!(first.body["object"], "response");
    assert_eq!(first.body["instructions"], "Be brief.");
    let first_id = first.id();
    let second = app
        .post(PATH, token, json!({"model": "ingram/offline", "previous_response_id": first_id, "input": "Second"}))
        .await
        .expect(200);
    let text = second.body["output"][0]["content"][0]["text"].as_str().unwrap();
    assert!(text.contains("message 2 of our conversation"), "{text}");
    assert!(second.body["instructions"].is_null(), "instructions are not carried over");
    // Branching from an earlier response would mix histories: refused.
    let branch = json!({"model": "ingram/offline", "previous_response_id": first_id, "input": "Other"});
    app.post(PATH, token, branch).await.expect_error(409, "response_not_latest");
    let both = json!({"model": "m", "previous_response_id": first_id, "conversation": "c", "input": "x"});
    app.post(PATH, token, both).await.expect_error(400, "invalid_parameter");
    let unstored = app
        .post(PATH, token, json!({"model": "ingram/offline", "user": "r1", "input": "x", "store": false}))
        .await
        .expect(200);
    app.post(PATH, token, json!({"model": "ingram/offline", "previous_response_id": unstored.id(), "input": "y"}))
        .await
        .expect_error(404, "response_not_found");

    let stream = app
        .request(Method::POST, PATH)
        .bearer_auth(token)
        .json(&json!({"model": "ingram/offline", "user": "r2", "input": "/tool weather {\"city\":\"Rome\"}", "stream": true,
            "tools": [{"type": "function", "name": "weather", "parameters": {"type": "object"}}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.headers()["content-type"], "text/event-stream");
    let frames = parse_frames(&stream.text().await.unwrap());
    let kinds: Vec<&str> = frames.iter().map(|f| f.event.as_str()).collect();
    assert_eq!(
        kinds,
        vec![
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.done",
            "response.output_item.done",
            "response.completed",
        ]
    );
    for (i, frame) in frames.iter().enumerate() {
        assert_eq!(
            (frame.data["type"].as_str(), frame.data["sequence_number"].as_u64()),
            (Some(frame.event.as_str()), Some(i as u64))
        );
        crate::spec::assert_matches_schema("ResponseStreamEvent", &frame.data);
    }
    let response: &Value = &frames.last().unwrap().data["response"];
    crate::spec::assert_matches_schema("ResponseObject", response);
    assert_eq!(response["output"][0]["type"], "function_call");
    assert_eq!(response["id"], frames[0].data["response"]["id"], "one id from created to completed");
}
