//! `/v1/chat/completions` over HTTP: every call a real run, OpenAI framing, stateless
//! conversations, client tools, and errors shaped for the SDKs.

use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::TestApp;
use crate::spec::assert_matches_schema;

const PATH: &str = "/v1/chat/completions";

fn weather() -> Value {
    json!([{"type": "function", "function": {"name": "weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}])
}

fn ask(text: &str) -> Value {
    json!({"model": "ingram/offline", "user": "user_42", "messages": [{"role": "user", "content": text}]})
}

/// Reads an OpenAI-style stream: `data:` lines only, ending with `[DONE]`.
async fn chunks(app: &TestApp, body: Value) -> Vec<Value> {
    let response = app.request(Method::POST, PATH).bearer_auth(&app.admin_token).json(&body).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers().contains_key("x-request-id"));
    let text = response.text().await.unwrap();
    assert!(
        !text.contains("\nid:") && !text.starts_with("id:") && !text.contains("event:"),
        "no id:/event: lines: {text}"
    );
    let data: Vec<&str> = text.lines().filter_map(|line| line.strip_prefix("data: ")).collect();
    assert_eq!(data.last(), Some(&"[DONE]"));
    data[..data.len() - 1]
        .iter()
        .map(|chunk| {
            let chunk: Value = serde_json::from_str(chunk).unwrap();
            assert_matches_schema("ChatCompletionChunk", &chunk);
            chunk
        })
        .collect()
}

#[tokio::test]
async fn a_chat_completion_is_a_run_of_the_users_smith() {
    let app = TestApp::start().await;
    let answer = app.post(PATH, &app.admin_token, ask("Say hello")).await.expect(200);
    let body = &answer.body;
    assert_eq!(body["object"], "chat.completion");
    assert!(body["id"].as_str().unwrap().starts_with("chatcmpl-run_"));
    assert_eq!(body["model"], "ingram/offline");
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "Hello! I am the built-in offline model. You said: \"Say hello\"."
    );
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    assert_eq!(
        body["usage"]["total_tokens"],
        body["usage"]["prompt_tokens"].as_u64().unwrap() + body["usage"]["completion_tokens"].as_u64().unwrap()
    );

    let smiths = app.get("/v1/smiths?external_id=user_42", &app.admin_token).await.expect(200);
    let sid = smiths.body["data"][0]["id"].as_str().unwrap().to_owned();
    let runs = app.get(&format!("/v1/runs?smith_id={sid}"), &app.admin_token).await.expect(200);
    assert_eq!(runs.body["data"].as_array().unwrap().len(), 1, "the call is a run, listed");

    // Stateless: a second call does not see the first; the client holds the conversation.
    let alone = app.post(PATH, &app.admin_token, ask("Again")).await.expect(200);
    assert!(!alone.body["choices"][0]["message"]["content"].as_str().unwrap().contains("conversation"));
    let held = json!({"model": "ingram/offline", "user": "user_42", "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "First"},
        {"role": "assistant", "content": "Noted."},
        {"role": "user", "content": "Second"}]});
    let answer = app.post(PATH, &app.admin_token, held).await.expect(200);
    assert!(
        answer.body["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .contains("message 2 of our conversation; it began with \"First\"")
    );
    let latest = app.get(&format!("/v1/runs?smith_id={sid}&limit=1"), &app.admin_token).await.expect(200);
    assert_eq!(
        latest.body["data"][0]["config"]["instructions"], "You are a helpful assistant.\n\nBe brief.",
        "system messages are added"
    );
}

#[tokio::test]
async fn the_smith_comes_from_the_token_the_header_or_user() {
    let app = TestApp::start().await;
    let sid = app.create_smith(&app.admin_token, "owner").await;
    let smith_token = app.smith_token(&sid).await;
    let no_user = json!({"model": "ingram/offline", "messages": [{"role": "user", "content": "hi"}]});
    app.post(PATH, &smith_token, no_user.clone()).await.expect(200);
    let by_header =
        app.request(Method::POST, PATH).bearer_auth(&app.admin_token).header("ic-smith-id", &sid).json(&no_user);
    app.send("POST", PATH, by_header).await.expect(200);
    let runs = app.get(&format!("/v1/runs?smith_id={sid}"), &app.admin_token).await.expect(200);
    assert_eq!(runs.body["data"].as_array().unwrap().len(), 2);
    app.post(PATH, &app.admin_token, no_user).await.expect_error(400, "smith_required");
    let other = app.create_smith(&app.admin_token, "other").await;
    let foreign =
        app.request(Method::POST, PATH).bearer_auth(&smith_token).header("ic-smith-id", &other).json(&ask("x"));
    let answer = app.send("POST", PATH, foreign).await.expect(200);
    assert!(answer.body["id"].as_str().is_some(), "a smith token always acts as its own smith");
    let runs = app.get(&format!("/v1/runs?smith_id={other}"), &app.admin_token).await.expect(200);
    assert!(runs.body["data"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn a_stream_follows_the_openai_chunk_rules() {
    let app = TestApp::start().await;
    let mut body = ask("Stream please");
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    let chunks = chunks(&app, body).await;
    assert_eq!(chunks[0]["choices"][0]["delta"], json!({"role": "assistant", "content": ""}));
    let roles = chunks.iter().filter(|c| c["choices"][0]["delta"].get("role").is_some()).count();
    assert_eq!(roles, 1, "role exactly once");
    let id = &chunks[0]["id"];
    assert!(chunks.iter().all(|c| &c["id"] == id && c["object"] == "chat.completion.chunk"));
    let text: String = chunks.iter().filter_map(|c| c["choices"][0]["delta"]["content"].as_str()).collect();
    assert_eq!(text, "Hello! I am the built-in offline model. You said: \"Stream please\".");
    let finish = &chunks[chunks.len() - 2];
    assert_eq!(finish["choices"][0]["finish_reason"], "stop");
    let usage = chunks.last().unwrap();
    assert_eq!(usage["choices"], json!([]));
    assert!(usage["usage"]["total_tokens"].as_u64().unwrap() > 0);
    assert!(chunks[..chunks.len() - 1].iter().all(|c| c["usage"].is_null()), "usage: null until the last chunk");
}

#[tokio::test]
async fn client_tools_round_trip_statelessly() {
    let app = TestApp::start().await;
    let call = json!({"model": "ingram/offline", "user": "u", "tools": weather(),
        "messages": [{"role": "user", "content": "/tool weather {\"city\":\"Rome\"}"}]});
    let answer = app.post(PATH, &app.admin_token, call.clone()).await.expect(200);
    let choice = &answer.body["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    assert!(choice["message"]["content"].is_null());
    let tool_call = &choice["message"]["tool_calls"][0];
    assert_eq!(
        (tool_call["type"].as_str(), tool_call["function"]["name"].as_str()),
        (Some("function"), Some("weather"))
    );

    let follow_up = json!({"model": "ingram/offline", "user": "u", "tools": weather(), "messages": [
        {"role": "user", "content": "/tool weather {\"city\":\"Rome\"}"},
        {"role": "assistant", "content": null, "tool_calls": [tool_call]},
        {"role": "tool", "tool_call_id": tool_call["id"], "content": "18C"}]});
    let answer = app.post(PATH, &app.admin_token, follow_up).await.expect(200);
    assert_eq!(answer.body["choices"][0]["message"]["content"], "The tool weather returned: 18C");

    let mut streamed = call;
    streamed["stream"] = json!(true);
    let chunks = chunks(&app, streamed).await;
    let fragment = chunks.iter().find_map(|c| c["choices"][0]["delta"]["tool_calls"].as_array()).unwrap();
    assert_eq!(fragment[0]["index"], 0);
    assert_eq!(fragment[0]["function"]["name"], "weather");
    assert_eq!(chunks.last().unwrap()["choices"][0]["finish_reason"], "tool_calls");

    let runs = app.get("/v1/runs?status=requires_action", &app.admin_token).await.expect(200);
    assert!(runs.body["data"].as_array().unwrap().is_empty(), "chat completion runs never stay paused");
}

#[tokio::test]
async fn tool_choice_is_honoured() {
    let app = TestApp::start().await;
    let forced = json!({"model": "ingram/offline", "user": "u", "tools": weather(), "tool_choice": "required",
        "messages": [{"role": "user", "content": "what's up"}]});
    let answer = app.post(PATH, &app.admin_token, forced).await.expect(200);
    assert_eq!(answer.body["choices"][0]["message"]["tool_calls"][0]["function"]["name"], "weather");
    let named = json!({"model": "ingram/offline", "user": "u", "tools": weather(),
        "tool_choice": {"type": "function", "function": {"name": "weather"}}, "messages": [{"role": "user", "content": "hm"}]});
    app.post(PATH, &app.admin_token, named).await.expect(200);
    let none = json!({"model": "ingram/offline", "user": "u", "tools": weather(), "tool_choice": "none",
        "messages": [{"role": "user", "content": "/tool weather {}"}]});
    let answer = app.post(PATH, &app.admin_token, none).await.expect(200);
    assert_eq!(answer.body["choices"][0]["message"]["content"], "No tool named weather is available to me.");
}

#[tokio::test]
async fn errors_carry_the_status_and_code_sdks_expect() {
    let app = TestApp::start().await;
    let mut keyless = ask("x");
    keyless["model"] = json!("gpt-4o");
    app.post(PATH, &app.admin_token, keyless.clone()).await.expect_error(400, "model_key_missing");
    app.post(PATH, &app.admin_token, json!({"model": "m", "user": "u", "messages": []}))
        .await
        .expect_error(400, "invalid_parameter");
    let image = json!({"model": "ingram/offline", "user": "u", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "ftp://x/y.png"}}]}]});
    app.post(PATH, &app.admin_token, image).await.expect_error(400, "invalid_content");
    app.post(PATH, "sk-wrong", ask("x")).await.expect_error(401, "invalid_token");

    let provider = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .respond_with(wiremock::ResponseTemplate::new(401).set_body_json(json!({"error": {"message": "bad key"}})))
        .mount(&provider)
        .await;
    app.call(
        "PUT",
        "/v1/tenant/model_keys/openai",
        Some(&app.admin_token),
        Some(json!({"api_key": "sk-bad", "base_url": provider.uri()})),
    )
    .await
    .expect(200);
    let refused = app.post(PATH, &app.admin_token, keyless.clone()).await.expect_error(401, "model_key_invalid");
    assert_eq!(refused.body["error"]["type"], "authentication_error");
    keyless["stream"] = json!(true);
    let streamed = app.request(Method::POST, PATH).bearer_auth(&app.admin_token).json(&keyless);
    app.send("POST", PATH, streamed).await.expect_error(401, "model_key_invalid");
}

#[tokio::test]
async fn the_rust_client_calls_and_streams_chat_completions() {
    use futures::TryStreamExt;
    use ingram_client::{Client, types};
    let app = TestApp::start().await;
    let client = Client::with_token(&app.base_url, &app.admin_token).unwrap();
    let request: types::ChatCompletionRequest = serde_json::from_value(ask("From Rust")).unwrap();
    let completion = client.create_chat_completion().body(request.clone()).send().await.unwrap().into_inner();
    assert_eq!(
        completion.choices[0].message.content.as_deref(),
        Some("Hello! I am the built-in offline model. You said: \"From Rust\".")
    );
    let chunks: Vec<types::ChatCompletionChunk> =
        client.create_chat_completion_stream(&request, None).await.unwrap().try_collect().await.unwrap();
    let text: String = chunks.iter().filter_map(|c| c.choices.first()?.delta.content.clone()).collect();
    assert_eq!(text, "Hello! I am the built-in offline model. You said: \"From Rust\".");
    let mut keyless = request;
    keyless.model = "gpt-4o".parse().unwrap();
    let err = match client.create_chat_completion_stream(&keyless, None).await {
        Err(err) => err,
        Ok(_) => panic!("a model without a key is refused"),
    };
    assert_eq!(err.code(), Some("model_key_missing"));
}

#[tokio::test]
async fn ic_thread_id_records_calls_on_one_thread_without_adding_history() {
    let app = TestApp::start().await;
    let on_thread = |text: &str| {
        app.request(Method::POST, PATH)
            .bearer_auth(&app.admin_token)
            .header("IC-Thread-Id", "support-42")
            .json(&ask(text))
    };
    app.send("POST", PATH, on_thread("One")).await.expect(200);
    let second = app.send("POST", PATH, on_thread("Two")).await.expect(200);
    let reply = second.body["choices"][0]["message"]["content"].as_str().unwrap();
    assert!(!reply.contains("conversation"), "still stateless: {reply}");
    let runs = app.get("/v1/runs", &app.admin_token).await.expect(200);
    let threads: Vec<&str> =
        runs.body["data"].as_array().unwrap().iter().map(|r| r["thread_id"].as_str().unwrap()).collect();
    assert_eq!(threads, ["support-42", "support-42"]);

    let too_long =
        app.request(Method::POST, PATH).bearer_auth(&app.admin_token).header("IC-Thread-Id", "x".repeat(129));
    app.send("POST", PATH, too_long.json(&ask("x"))).await.expect_error(400, "invalid_parameter");
}
