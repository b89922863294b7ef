//! Server-side tools: the loop inside a run (events, record, rounds, usage), hosted and memory
//! tools, and their boundary with client tools and the OpenAI surfaces.

use serde_json::{Value, json};
use wiremock::matchers::{body_string_contains, method, path};
use wiremock::{Mock, MockServer};

use crate::harness::{TestApp, openai_app, openai_turn};

async fn smith_with_tools(app: &TestApp, external_id: &str, tools: Value, model: Option<&str>) -> String {
    let mut body = json!({"external_id": external_id, "tools": tools});
    if let Some(model) = model {
        body["model"] = json!(model);
    }
    app.post("/v1/smiths", &app.admin_token, body).await.expect(201).id()
}

fn say(text: &str) -> Value {
    json!({"input": [{"role": "user", "content": text}]})
}

#[tokio::test]
async fn the_offline_model_calls_a_hosted_tool_and_the_run_records_it() {
    let app = TestApp::start().await;
    let sid = smith_with_tools(&app, "calc", json!(["hosted/calculator", "hosted/think"]), None).await;
    let streamed = app
        .stream_post(
            &format!("/v1/smiths/{sid}/runs"),
            &app.admin_token,
            json!({"input": [{"role": "user", "content": "/tool hosted__calculator {\"expression\": \"6 * 7\"}"}], "stream": true}),
        )
        .await;
    let events = streamed.events();
    let executing = events.iter().position(|e| *e == "tool.executing").expect("tool.executing");
    let completed = events.iter().position(|e| *e == "tool.completed").expect("tool.completed");
    assert!(executing < completed && events.last() == Some(&"run.completed"), "{events:?}");
    let done = &streamed.frames[completed].data;
    assert_eq!(done["output"], "42");
    let tool_call = &streamed.frames[executing].data["tool_call"];
    assert_eq!(tool_call["name"], "hosted__calculator");
    // No message.completed offers the server's call to the client.
    assert!(
        streamed.frames.iter().filter(|f| f.event == "message.completed").all(|f| f.data["tool_calls"] == json!([]))
    );

    let run_id = streamed.frames[0].data["run_id"].as_str().unwrap().to_owned();
    let run = app.get(&format!("/v1/smiths/{sid}/runs/{run_id}"), &app.admin_token).await.expect(200);
    assert_eq!(run.body["status"], "completed");
    assert_eq!(run.body["output"]["content"], "The tool hosted__calculator returned: 42");
    assert_eq!(run.body["output"]["tool_calls"], json!([]));
    let recorded = &run.body["output"]["server_tool_calls"][0];
    assert_eq!(recorded["tool"], "hosted/calculator");
    assert_eq!(recorded["arguments"], "{\"expression\": \"6 * 7\"}");
    assert_eq!((recorded["output"].as_str(), recorded["is_error"].as_bool()), (Some("42"), Some(false)));
    assert!(recorded["duration_ms"].is_u64() && recorded["started_at"].is_string());

    // A failing tool goes back to the model as an error; the run completes.
    let failed = app
        .post(
            &format!("/v1/smiths/{sid}/runs"),
            &app.admin_token,
            say("/tool hosted__calculator {\"expression\": \"1/0\"}"),
        )
        .await
        .expect(200);
    assert_eq!(failed.body["status"], "completed");
    assert_eq!(failed.body["output"]["content"], "The tool hosted__calculator returned: Error: division by zero");
    assert_eq!(failed.body["output"]["server_tool_calls"][0]["is_error"], true);
}

#[tokio::test]
async fn memory_tools_act_on_the_runs_own_smith_and_respect_read_only_blocks() {
    let app = TestApp::start().await;
    let tools = json!(["memory/add", "memory/search", "memory/update_block", "memory/append_block"]);
    let sid = smith_with_tools(&app, "self-memory", tools, None).await;
    let other = smith_with_tools(&app, "bystander", json!(["memory/search"]), None).await;
    let added = app
        .post(
            &format!("/v1/smiths/{sid}/runs"),
            &app.admin_token,
            say("/tool memory__add {\"text\": \"The user plays the cello.\"}"),
        )
        .await
        .expect(200);
    assert!(added.body["output"]["content"].as_str().unwrap().contains("Remembered"), "{}", added.body);
    let listed = app.get(&format!("/v1/smiths/{sid}/memories"), &app.admin_token).await.expect(200);
    assert_eq!(listed.body["data"][0]["source"], "tool");
    assert_eq!(listed.body["data"][0]["text"], "The user plays the cello.");
    let elsewhere = app
        .post(&format!("/v1/smiths/{other}/runs"), &app.admin_token, say("/tool memory__search {\"query\": \"cello\"}"))
        .await
        .expect(200);
    assert_eq!(elsewhere.body["output"]["server_tool_calls"][0]["output"], "[]", "another smith finds nothing");
    let persona = app
        .post(
            &format!("/v1/smiths/{sid}/runs"),
            &app.admin_token,
            say("/tool memory__update_block {\"label\": \"persona\", \"value\": \"I obey anyone.\"}"),
        )
        .await
        .expect(200);
    assert_eq!(persona.body["output"]["server_tool_calls"][0]["is_error"], true);
    let blocks = app.get(&format!("/v1/smiths/{sid}/blocks"), &app.admin_token).await.expect(200);
    assert_eq!(blocks.body["data"][1]["value"], "", "the read-only persona is unchanged");
    let human = app
        .post(
            &format!("/v1/smiths/{sid}/runs"),
            &app.admin_token,
            say("/tool memory__update_block {\"label\": \"human\", \"value\": \"A cellist.\"}"),
        )
        .await
        .expect(200);
    assert_eq!(human.body["output"]["server_tool_calls"][0]["is_error"], false, "{}", human.body);
    let blocks = app.get(&format!("/v1/smiths/{sid}/blocks"), &app.admin_token).await.expect(200);
    assert_eq!(blocks.body["data"][0]["value"], "A cellist.");
    // Two appends at once both land: each reads and writes under the smith's row lock.
    let append = |text: &str, thread: &str| {
        let call = format!("/tool memory__append_block {{\"label\": \"human\", \"text\": \"{text}\"}}");
        json!({"input": [{"role": "user", "content": call}], "thread_id": thread})
    };
    let runs = format!("/v1/smiths/{sid}/runs");
    let (a, b) = tokio::join!(
        app.post(&runs, &app.admin_token, append("Lives in Vienna.", "one")),
        app.post(&runs, &app.admin_token, append("Plays Bach.", "two")),
    );
    assert_eq!((a.status, b.status), (200, 200));
    assert_eq!(a.body["output"]["server_tool_calls"][0]["is_error"], false, "{}", a.body);
    let blocks = app.get(&format!("/v1/smiths/{sid}/blocks"), &app.admin_token).await.expect(200);
    let value = blocks.body["data"][0]["value"].as_str().unwrap();
    assert!(value.starts_with("A cellist.\n"), "{value}");
    assert!(value.contains("Lives in Vienna.") && value.contains("Plays Bach."), "{value}");
}

#[tokio::test]
async fn on_openai_the_loop_sends_results_back_and_sums_usage_and_chat_completions_never_sees_the_call() {
    let mock = MockServer::start().await;
    // After the tool result, the final answer; before it, the call.
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .and(body_string_contains("\"role\":\"tool\""))
        .respond_with(openai_turn("It is 42.", &[], 20))
        .mount(&mock)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(openai_turn("", &[("call_1", "hosted__calculator", "{\"expression\":\"6*7\"}")], 10))
        .mount(&mock)
        .await;
    let app = openai_app(&mock).await;
    let sid = smith_with_tools(&app, "gpt-calc", json!(["hosted/calculator"]), Some("gpt-4o")).await;
    let run = app.post(&format!("/v1/smiths/{sid}/runs"), &app.admin_token, say("What is 6*7?")).await.expect(200);
    assert_eq!(run.body["output"]["content"], "It is 42.");
    assert_eq!(run.body["usage"]["input_tokens"], 30, "both model calls counted");
    assert_eq!(run.body["usage"]["output_tokens"], 6);
    let requests = mock.received_requests().await.unwrap();
    let second: Value = serde_json::from_slice(&requests[1].body).unwrap();
    let messages = second["messages"].as_array().unwrap();
    let tool_message = messages.iter().find(|m| m["role"] == "tool").unwrap();
    assert_eq!((tool_message["tool_call_id"].as_str(), tool_message["content"].as_str()), (Some("call_1"), Some("42")));
    let first: Value = serde_json::from_slice(&requests[0].body).unwrap();
    assert_eq!(first["tools"][0]["function"]["name"], "hosted__calculator");

    // Responses, streamed: one message, opened once and closed once, after both rounds.
    let stream = app
        .request(reqwest::Method::POST, "/v1/responses")
        .bearer_auth(&app.admin_token)
        .json(&json!({"model": "gpt-4o", "user": "gpt-calc", "input": "6*7?", "stream": true}))
        .send()
        .await
        .unwrap();
    let frames = crate::harness::parse_frames(&stream.text().await.unwrap());
    let kinds: Vec<&str> = frames.iter().map(|f| f.event.as_str()).collect();
    assert_eq!(kinds.iter().filter(|k| **k == "response.output_item.done").count(), 1, "{kinds:?}");
    assert!(!kinds.contains(&"response.function_call_arguments.delta"), "{kinds:?}");
    let response = &frames.last().unwrap().data["response"];
    assert_eq!(response["output"].as_array().unwrap().len(), 1, "{response}");
    assert_eq!(response["output"][0]["content"][0]["text"], "It is 42.");
    for frame in &frames {
        crate::spec::assert_matches_schema("ResponseStreamEvent", &frame.data);
    }

    let completion = app
        .post(
            "/v1/chat/completions",
            &app.admin_token,
            json!({"model": "gpt-4o", "user": "gpt-calc", "messages": [{"role": "user", "content": "6*7?"}]}),
        )
        .await
        .expect(200);
    let choice = &completion.body["choices"][0];
    assert_eq!(choice["message"]["content"], "It is 42.");
    assert!(choice["message"]["tool_calls"].is_null() || choice["message"]["tool_calls"] == json!([]), "{choice}");
    assert_eq!(choice["finish_reason"], "stop");
}

#[tokio::test]
async fn server_calls_run_before_a_pause_for_client_calls_and_rounds_are_bounded() {
    let mock = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .and(body_string_contains("\"role\":\"tool\""))
        .and(body_string_contains("loop-forever"))
        .respond_with(openai_turn("", &[("call_x", "hosted__think", "{\"thought\":\"loop-forever\"}")], 1))
        .mount(&mock)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .and(body_string_contains("Loop please"))
        .respond_with(openai_turn("", &[("call_x", "hosted__think", "{\"thought\":\"loop-forever\"}")], 1))
        .mount(&mock)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .and(body_string_contains("Both please"))
        .respond_with(openai_turn(
            "",
            &[
                ("call_s", "hosted__calculator", "{\"expression\":\"1+1\"}"),
                ("call_c", "weather", "{\"city\":\"Paris\"}"),
            ],
            1,
        ))
        .mount(&mock)
        .await;
    let app = openai_app(&mock).await;
    let sid = smith_with_tools(&app, "mixed", json!(["hosted/calculator", "hosted/think"]), Some("gpt-4o")).await;
    let weather = json!([{"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}]);
    let paused = app
        .post(
            &format!("/v1/smiths/{sid}/runs"),
            &app.admin_token,
            json!({"input": [{"role": "user", "content": "Both please"}], "tools": weather}),
        )
        .await
        .expect(200);
    assert_eq!(paused.body["status"], "requires_action");
    let waiting: Vec<&str> = paused.body["required_action"]["tool_calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|call| call["name"].as_str().unwrap())
        .collect();
    assert_eq!(waiting, ["weather"], "only the client's call waits");
    assert_eq!(paused.body["output"]["server_tool_calls"][0]["output"], "2");
    // After the client's output the model answers; the record still has the server's call.
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .and(body_string_contains("21C"))
        .respond_with(openai_turn("Two, and 21C in Paris.", &[], 1))
        .with_priority(1)
        .mount(&mock)
        .await;
    let submit = format!("/v1/smiths/{sid}/runs/{}/submit", paused.id());
    let done = app
        .post(&submit, &app.admin_token, json!({"tool_outputs": [{"tool_call_id": "call_c", "output": "21C"}]}))
        .await
        .expect(200);
    assert_eq!(done.body["status"], "completed", "{}", done.body);
    assert_eq!(done.body["output"]["content"], "Two, and 21C in Paris.");
    assert_eq!(done.body["output"]["server_tool_calls"][0]["tool"], "hosted/calculator", "kept across the pause");

    let looping = app.post(&format!("/v1/smiths/{sid}/runs"), &app.admin_token, say("Loop please")).await;
    assert_eq!(looping.body["status"], "failed", "{}", looping.body);
    assert_eq!(looping.body["error"]["code"], "tool_rounds_exceeded");

    // A client tool may not take a server-side tool's name.
    let clash = json!([{"type": "function", "function": {"name": "hosted__calculator"}}]);
    app.post(
        &format!("/v1/smiths/{sid}/runs"),
        &app.admin_token,
        json!({"input": [{"role": "user", "content": "x"}], "tools": clash}),
    )
    .await
    .expect_error(400, "tool_name_conflict");
}

#[tokio::test]
async fn configs_name_tools_by_reference_and_hosted_tools_are_listed() {
    let app = TestApp::start().await;
    let listed = app.get("/v1/tenant/hosted_tools", &app.admin_token).await.expect(200);
    let names: Vec<&str> =
        listed.body["data"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["calculator", "current_time", "think", "http_fetch"]);
    assert_eq!(listed.body["data"][0]["input_schema"]["required"], json!(["expression"]));
    for (tools, code) in [
        (json!(["calculator"]), "invalid_tool_reference"),
        (json!(["hosted/teleporter"]), "unknown_tool"),
        (json!(["memory/forget_everything"]), "unknown_tool"),
        (json!(["mcp/"]), "invalid_tool_reference"),
    ] {
        app.post("/v1/smiths", &app.admin_token, json!({"external_id": "bad-tools", "tools": tools}))
            .await
            .expect_error(400, code);
    }
    let sid = app.create_smith(&app.admin_token, "plain").await;
    let smith_token = app.smith_token(&sid).await;
    app.get("/v1/tenant/hosted_tools", &smith_token).await.expect_error(403, "permission_denied");
}
