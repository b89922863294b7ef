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
    // A conversation id obeys the thread id rule, and the error names `conversation`.
    let long = json!({"model": "ingram/offline", "user": "r1", "conversation": "c".repeat(129), "input": "x"});
    let refused = app.post(PATH, token, long).await.expect_error(400, "invalid_parameter");
    assert_eq!(refused.body["error"]["param"], "conversation");
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

/// What the Vercel AI SDK sends when it holds the conversation: earlier output items of
/// stored responses by reference.
#[tokio::test]
async fn item_references_bring_back_earlier_output_items() {
    let app = TestApp::start().await;
    let token = &app.admin_token;
    let ask = |input: Value| json!({"model": "ingram/offline", "user": "vercel", "input": input});
    let first = app.post(PATH, token, ask(json!("First"))).await.expect(200);
    let message_id = first.body["output"][0]["id"].as_str().unwrap().to_owned();
    let history = json!([
        {"role": "user", "content": [{"type": "input_text", "text": "First"}]},
        {"type": "item_reference", "id": message_id},
        {"role": "user", "content": [{"type": "input_text", "text": "Second"}]},
    ]);
    let second = app.post(PATH, token, ask(history)).await.expect(200);
    let text = second.body["output"][0]["content"][0]["text"].as_str().unwrap();
    assert!(text.contains("message 2 of our conversation; it began with \"First\""), "{text}");

    let weather = json!([{"type": "function", "name": "weather", "parameters": {"type": "object"}}]);
    let mut calling = ask(json!("/tool weather {\"city\":\"Rome\"}"));
    calling["tools"] = weather.clone();
    let call = app.post(PATH, token, calling).await.expect(200).body["output"][0].clone();
    let mut answered = ask(json!([
        {"role": "user", "content": "/tool weather {\"city\":\"Rome\"}"},
        {"type": "item_reference", "id": call["id"]},
        {"type": "function_call_output", "call_id": call["call_id"], "output": "30C"},
    ]));
    answered["tools"] = weather;
    let answer = app.post(PATH, token, answered).await.expect(200);
    assert_eq!(answer.body["output"][0]["content"][0]["text"], "The tool weather returned: 30C");

    for unknown in ["msg_nope", "fc_nope", "rs_123", "nope"] {
        let input = json!([{"type": "item_reference", "id": unknown}, {"role": "user", "content": "x"}]);
        app.post(PATH, token, ask(input)).await.expect_error(404, "item_not_found");
    }
    // Another smith's items are not this smith's history.
    let mut elsewhere = ask(json!([{"type": "item_reference", "id": message_id}, {"role": "user", "content": "x"}]));
    elsewhere["user"] = json!("someone-else");
    app.post(PATH, token, elsewhere).await.expect_error(404, "item_not_found");
}

#[tokio::test]
async fn the_rust_client_calls_and_streams_responses() {
    use futures::TryStreamExt;
    use ingram_client::{Client, ResponseEvent, RetryPolicy, types};
    let app = TestApp::start().await;
    let client = Client::with_token(&app.base_url, &app.admin_token).unwrap();
    let said = "Hello! I am the built-in offline model. You said: \"From Rust\".";
    let request: types::CreateResponseRequest =
        serde_json::from_value(json!({"model": "ingram/offline", "user": "rust", "input": "From Rust"})).unwrap();
    let response = client.create_response().body(request.clone()).send().await.unwrap().into_inner();
    assert_eq!(serde_json::to_value(&response.output).unwrap()[0]["content"][0]["text"], said);

    let events: Vec<ResponseEvent> =
        client.create_response_stream(&request, None).await.unwrap().try_collect().await.unwrap();
    assert!(matches!(events.first(), Some(ResponseEvent::Created { sequence_number: 0, .. })));
    let text: String = events
        .iter()
        .filter_map(|event| match event {
            ResponseEvent::OutputTextDelta { delta, .. } => Some(delta.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(text, said);
    assert!(matches!(events.last(), Some(ResponseEvent::Completed { .. })));

    let mut keyless = request;
    keyless.model = "gpt-4o".parse().unwrap();
    let Err(err) = client.create_response_stream(&keyless, None).await else {
        panic!("a model without a key is refused")
    };
    assert_eq!(err.code(), Some("model_key_missing"));

    // An `error` event ends the stream with that error.
    let mock = wiremock::MockServer::start().await;
    let frames = "event: response.created\ndata: {\"type\":\"response.created\",\"sequence_number\":0,\"response\":RESPONSE}\n\n\
        event: error\ndata: {\"type\":\"error\",\"sequence_number\":1,\"code\":\"upstream_error\",\"message\":\"boom\",\"param\":null}\n\n"
        .replace("RESPONSE", &serde_json::to_string(&response).unwrap());
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .respond_with(wiremock::ResponseTemplate::new(200).set_body_raw(frames, "text/event-stream"))
        .mount(&mock)
        .await;
    let client = Client::with_token_and_policy(&mock.uri(), "t", RetryPolicy::none()).unwrap();
    let results: Vec<_> =
        futures::StreamExt::collect(client.create_response_stream(&keyless, None).await.unwrap()).await;
    assert_eq!(results.len(), 2);
    assert_eq!(results[1].as_ref().unwrap_err().code(), Some("upstream_error"));
}
