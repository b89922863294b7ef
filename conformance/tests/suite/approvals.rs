//! Human approvals bound to the exact call: a real MCP tool (the official MCP Python SDK's
//! server) behind the gate, so a rejected call provably never reaches it; approve, reject,
//! edit, expiry, repeated and cross-run decisions, synchronously and streamed; the order
//! with client tools; the OpenAI surfaces; who may decide.

use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Respond, ResponseTemplate};

use crate::harness::{TestApp, openai_app, openai_turn};
use crate::mcp::{Era, PythonMcp, register};

fn say(text: &str) -> Value {
    json!({"input": [{"role": "user", "content": text}]})
}

fn forecast(city: &str) -> Value {
    say(&format!("/tool mcp__weather__forecast {{\"city\": \"{city}\"}}"))
}

/// A smith whose weather tools all ask, except `add`.
async fn gated_smith(app: &TestApp, external_id: &str) -> String {
    let body = json!({
        "external_id": external_id,
        "tools": ["mcp/weather/*"],
        "tool_approvals": {"mcp/weather/*": "always", "mcp/weather/add": "never"},
    });
    app.post("/v1/smiths", &app.admin_token, body).await.expect(201).id()
}

fn submit(approvals: Value) -> Value {
    json!({"approvals": approvals})
}

fn only_approval(run: &Value) -> (String, Value) {
    let action = &run["required_action"];
    assert_eq!(action["type"], "submit_approvals", "{run:#}");
    assert_eq!(action["tool_calls"], json!([]));
    let approvals = action["approvals"].as_array().unwrap();
    assert_eq!(approvals.len(), 1, "{run:#}");
    (approvals[0]["id"].as_str().unwrap().to_owned(), approvals[0].clone())
}

#[tokio::test]
async fn approve_reject_and_edit_are_bound_to_the_exact_call_of_a_real_mcp_tool() {
    let server = PythonMcp::start(Era::Both).await;
    let app = TestApp::start().await;
    register(&app, "weather", &server).await;
    let sid = gated_smith(&app, "careful").await;
    let smith = app.get(&format!("/v1/smiths/{sid}"), &app.admin_token).await.expect(200);
    assert_eq!(smith.body["effective_config"]["tool_approvals"]["mcp/weather/*"], "always");
    let runs = format!("/v1/smiths/{sid}/runs");

    // The gate: the run stops before the call; nothing reached the server.
    let paused = app.post(&runs, &app.admin_token, forecast("Paris")).await.expect(200);
    assert_eq!(paused.body["status"], "requires_action");
    let (apr, shown) = only_approval(&paused.body);
    assert_eq!(
        (shown["tool"].as_str(), &shown["arguments"]),
        (Some("mcp/weather/forecast"), &json!({"city": "Paris"}))
    );
    assert!(server.calls().await.is_empty(), "a gated call waits");
    let record = app.get(&format!("/v1/approvals/{apr}"), &app.admin_token).await.expect(200);
    assert_eq!(record.body["status"], "pending");
    assert_eq!(record.body["run_id"], paused.body["id"]);
    assert_eq!(record.body["smith_id"], sid);
    assert_eq!(record.body["arguments_sha256"].as_str().unwrap().len(), 64);
    let pending = app.get("/v1/approvals?status=pending", &app.admin_token).await.expect(200);
    assert_eq!(pending.body["data"].as_array().unwrap().len(), 1);

    // Approved: the call runs once, and the run completes synchronously.
    let rid = paused.id();
    let approve = submit(json!([{"approval_id": apr, "decision": "approve"}]));
    let done = app.post(&format!("{runs}/{rid}/submit"), &app.admin_token, approve).await.expect(200);
    assert_eq!(done.body["status"], "completed", "{:#}", done.body);
    assert_eq!(done.body["output"]["content"], "The tool mcp__weather__forecast returned: Sunny in Paris, 21 degrees.");
    assert_eq!(server.calls().await.len(), 1);
    // Deciding it again is refused, and runs nothing.
    let again = app
        .post(
            &format!("{runs}/{rid}/submit"),
            &app.admin_token,
            submit(json!([{"approval_id": apr, "decision": "approve"}])),
        )
        .await;
    again.expect_error(409, "approval_already_decided");
    assert_eq!(server.calls().await.len(), 1);
    let decided = app.get(&format!("/v1/approvals/{apr}"), &app.admin_token).await.expect(200);
    assert_eq!(decided.body["status"], "approved");
    assert!(decided.body["decided_at"].is_string());

    // Rejected, streamed: the model reads why; the server never sees the call. The pause,
    // streamed too: `approval.required` carries what `required_action` shows.
    let mut asking = forecast("Rome");
    asking["stream"] = json!(true);
    let asked = app.stream_post(&runs, &app.admin_token, asking).await;
    let events = asked.events();
    let required = events.iter().position(|e| *e == "approval.required").expect("approval.required");
    assert_eq!(events[required + 1..], ["message.completed", "run.requires_action"], "{events:?}");
    let rid = asked.frames[0].data["run_id"].as_str().unwrap().to_owned();
    let paused = app.get(&format!("{runs}/{rid}"), &app.admin_token).await.expect(200);
    let (apr, shown) = only_approval(&paused.body);
    assert_eq!(asked.frames[required].data["approval"], shown);
    let body =
        json!({"approvals": [{"approval_id": apr, "decision": "reject", "reason": "Not today"}], "stream": true});
    let streamed = app.stream_post(&format!("{runs}/{}/submit", paused.id()), &app.admin_token, body).await;
    let events = streamed.events();
    assert!(!events.contains(&"tool.executing"), "a rejected call does not execute: {events:?}");
    let completed = streamed.frames.iter().find(|f| f.event == "tool.completed").expect("tool.completed");
    assert_eq!(completed.data["output"], "Error: not run: a person rejected this call: Not today");
    assert_eq!(events.last(), Some(&"run.completed"), "{events:?}");
    assert_eq!(server.calls().await.len(), 1, "the rejected call never reached the server");
    let run = app.get(&format!("{runs}/{}", paused.id()), &app.admin_token).await.expect(200);
    assert_eq!(run.body["output"]["server_tool_calls"][0]["is_error"], true);
    let rejected = app.get(&format!("/v1/approvals/{apr}"), &app.admin_token).await.expect(200);
    assert_eq!(
        (rejected.body["status"].as_str(), rejected.body["reason"].as_str()),
        (Some("rejected"), Some("Not today"))
    );

    // Edited: approved with other arguments, which are what runs.
    let paused = app.post(&runs, &app.admin_token, forecast("Paris")).await.expect(200);
    let (apr, _) = only_approval(&paused.body);
    let edit = submit(json!([{"approval_id": apr, "decision": "approve", "arguments": {"city": "Oslo"}}]));
    let done = app.post(&format!("{runs}/{}/submit", paused.id()), &app.admin_token, edit).await.expect(200);
    assert_eq!(done.body["output"]["content"], "The tool mcp__weather__forecast returned: Sunny in Oslo, 21 degrees.");
    let calls = server.calls().await;
    assert_eq!((calls.len(), &calls[1]["arguments"]), (2, &json!({"city": "Oslo"})));
    assert_eq!(done.body["output"]["server_tool_calls"][0]["arguments"], "{\"city\":\"Oslo\"}");
    let edited = app.get(&format!("/v1/approvals/{apr}"), &app.admin_token).await.expect(200);
    assert_eq!(
        (&edited.body["arguments"], &edited.body["decided_arguments"]),
        (&json!({"city": "Paris"}), &json!({"city": "Oslo"}))
    );

    // A tool `never` gated runs at once.
    let added =
        app.post(&runs, &app.admin_token, say("/tool mcp__weather__add {\"a\": 2, \"b\": 3}")).await.expect(200);
    assert_eq!(added.body["status"], "completed");
    assert_eq!(added.body["output"]["content"], "The tool mcp__weather__add returned: 5");
}

#[tokio::test]
async fn decisions_must_name_pending_approvals_of_this_run() {
    let server = PythonMcp::start(Era::Both).await;
    let app = TestApp::start().await;
    register(&app, "weather", &server).await;
    let sid = gated_smith(&app, "two-runs").await;
    let runs = format!("/v1/smiths/{sid}/runs");
    let first = app.post(&runs, &app.admin_token, json!({"input": forecast("Paris")["input"], "thread_id": "a"})).await;
    let first = first.expect(200);
    let second = app.post(&runs, &app.admin_token, json!({"input": forecast("Rome")["input"], "thread_id": "b"})).await;
    let second = second.expect(200);
    let (first_apr, _) = only_approval(&first.body);
    let (second_apr, _) = only_approval(&second.body);
    let submit_to = |rid: String, approvals: Value| {
        let path = format!("{runs}/{rid}/submit");
        let app = &app;
        async move { app.post(&path, &app.admin_token, submit(approvals)).await }
    };

    // Another run's approval, an unknown one, one twice, tool outputs, nothing: refused, and
    // nothing is applied.
    submit_to(first.id(), json!([{"approval_id": second_apr, "decision": "approve"}]))
        .await
        .expect_error(400, "approval_of_another_run");
    submit_to(first.id(), json!([{"approval_id": "apr_01jzzzzzzzzzzzzzzzzzzzzzzz", "decision": "approve"}]))
        .await
        .expect_error(404, "approval_not_found");
    let twice =
        json!([{"approval_id": first_apr, "decision": "approve"}, {"approval_id": first_apr, "decision": "reject"}]);
    submit_to(first.id(), twice).await.expect_error(400, "duplicate_approval");
    let outputs = json!({"tool_outputs": [{"tool_call_id": "call_1", "output": "x"}]});
    app.post(&format!("{runs}/{}/submit", first.id()), &app.admin_token, outputs)
        .await
        .expect_error(400, "approvals_required");
    let edit_on_reject = json!([{"approval_id": first_apr, "decision": "reject", "arguments": {"city": "x"}}]);
    submit_to(first.id(), edit_on_reject).await.expect_error(400, "invalid_parameter");
    for apr in [&first_apr, &second_apr] {
        let still = app.get(&format!("/v1/approvals/{apr}"), &app.admin_token).await.expect(200);
        assert_eq!(still.body["status"], "pending");
    }
    assert!(server.calls().await.is_empty());

    // A smith token decides its own smith's approvals; another smith's token finds nothing.
    let other = app.create_smith(&app.admin_token, "someone-else").await;
    let other_token = app.smith_token(&other).await;
    app.get(&format!("/v1/approvals/{first_apr}"), &other_token).await.expect_error(404, "approval_not_found");
    let theirs = app.get("/v1/approvals", &other_token).await.expect(200);
    assert_eq!(theirs.body["data"], json!([]));
    let own_token = app.smith_token(&sid).await;
    let own = app.get("/v1/approvals?status=pending", &own_token).await.expect(200);
    assert_eq!(own.body["data"].as_array().unwrap().len(), 2);
    let path = format!("{runs}/{}/submit", first.id());
    let body = submit(json!([{"approval_id": first_apr, "decision": "reject", "reason": "no"}]));
    let done = app.post(&path, &own_token, body).await.expect(200);
    assert_eq!(done.body["status"], "completed");

    // Cancelling a paused run expires what it waits on.
    app.post(&format!("{runs}/{}/cancel", second.id()), &app.admin_token, json!({})).await.expect(200);
    let expired = app.get(&format!("/v1/approvals/{second_apr}"), &app.admin_token).await.expect(200);
    assert_eq!(expired.body["status"], "expired");
    submit_to(second.id(), json!([{"approval_id": second_apr, "decision": "approve"}]))
        .await
        .expect_error(409, "approval_expired");
    let by_run = app.get(&format!("/v1/approvals?run_id={}", first.id()), &app.admin_token).await.expect(200);
    assert_eq!(by_run.body["data"][0]["id"], first_apr);

    // Deleting a smith expires what its runs wait on.
    let doomed = gated_smith(&app, "doomed").await;
    let paused = app.post(&format!("/v1/smiths/{doomed}/runs"), &app.admin_token, forecast("Lima")).await.expect(200);
    let (doomed_apr, _) = only_approval(&paused.body);
    let of_smith = app.get(&format!("/v1/approvals?smith_id={doomed}"), &app.admin_token).await.expect(200);
    assert_eq!(of_smith.body["data"].as_array().unwrap().len(), 1);
    assert_eq!(of_smith.body["data"][0]["id"], doomed_apr);
    // Another smith's approval is not found through this smith's run, whoever names it.
    let probe = submit(json!([{"approval_id": doomed_apr, "decision": "approve"}]));
    app.post(&format!("{runs}/{}/submit", first.id()), &own_token, probe).await.expect_error(404, "approval_not_found");
    app.delete(&format!("/v1/smiths/{doomed}"), &app.admin_token).await.expect(200);
    let expired = app.get(&format!("/v1/approvals/{doomed_apr}"), &app.admin_token).await.expect(200);
    assert_eq!(expired.body["status"], "expired");
    assert!(server.calls().await.is_empty(), "nothing was approved");
}

#[tokio::test]
async fn an_approval_nobody_decides_expires_and_the_run_goes_on() {
    let server = PythonMcp::start(Era::Both).await;
    let mut settings = ingram_core::settings::Settings::for_tests();
    settings.egress = settings.egress.allowing("127.0.0.1").expect("a valid rule");
    settings.approval_ttl = std::time::Duration::ZERO;
    let app = TestApp::start_with(settings).await;
    register(&app, "weather", &server).await;
    let sid = gated_smith(&app, "forgetful").await;
    let runs = format!("/v1/smiths/{sid}/runs");
    let paused = app.post(&runs, &app.admin_token, forecast("Paris")).await.expect(200);
    let (apr, _) = only_approval(&paused.body);
    let late = submit(json!([{"approval_id": apr, "decision": "approve"}]));
    app.post(&format!("{runs}/{}/submit", paused.id()), &app.admin_token, late)
        .await
        .expect_error(409, "approval_expired");

    // The sweeper expires it and resumes the run: the model reads that nobody approved.
    use sea_orm::EntityTrait;
    let run_id: ingram_core::ids::RunId = paused.id().into();
    let row = ingram_core::store::run::Entity::find_by_id(&run_id).one(&app.state.db).await.unwrap().unwrap();
    app.state.engine.expire_approvals().await.unwrap();
    let settled = app.state.engine.wait_settled(&run_id, row.last_seq).await.unwrap();
    assert_eq!(settled.status, ingram_core::types::RunStatus::Completed);
    let run = app.get(&format!("{runs}/{}", paused.id()), &app.admin_token).await.expect(200);
    assert_eq!(
        run.body["output"]["content"],
        "The tool mcp__weather__forecast returned: Error: not run: nobody approved this call in time"
    );
    let expired = app.get(&format!("/v1/approvals/{apr}"), &app.admin_token).await.expect(200);
    assert_eq!(expired.body["status"], "expired");
    // A second sweep finds nothing more to do.
    app.state.engine.expire_approvals().await.unwrap();
    assert!(server.calls().await.is_empty());
}

/// OpenAI answering: the first request calls the two forecasts and a client tool at once,
/// the next ones (tool results in the conversation) answer with text.
struct TwoForecastsAndAClientCall;

impl Respond for TwoForecastsAndAClientCall {
    fn respond(&self, request: &wiremock::Request) -> ResponseTemplate {
        if String::from_utf8_lossy(&request.body).contains("\"role\":\"tool\"") {
            return openai_turn("Done.", &[], 1);
        }
        let calls = [
            ("call_p", "mcp__weather__forecast", "{\"city\":\"Paris\"}"),
            ("call_o", "mcp__weather__forecast", "{\"city\":\"Oslo\"}"),
            ("call_c", "pack_bag", "{}"),
        ];
        openai_turn("", &calls, 1)
    }
}

#[tokio::test]
async fn one_answer_asks_for_decisions_first_then_client_outputs_and_partial_decisions_wait() {
    let server = PythonMcp::start(Era::Legacy).await;
    let mock = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(TwoForecastsAndAClientCall)
        .mount(&mock)
        .await;
    let app = openai_app(&mock).await;
    register(&app, "weather", &server).await;
    let body = json!({"external_id": "packer", "model": "gpt-4o", "tools": ["mcp/weather/forecast"],
                      "tool_approvals": {"*": "always"}});
    let sid = app.post("/v1/smiths", &app.admin_token, body).await.expect(201).id();
    let runs = format!("/v1/smiths/{sid}/runs");
    let client_tool = json!({"type": "function", "function": {"name": "pack_bag", "parameters": {"type": "object"}}});
    let run_body = json!({"input": [{"role": "user", "content": "Pack for Paris or Oslo"}], "tools": [client_tool]});
    let paused = app.post(&runs, &app.admin_token, run_body).await.expect(200);
    let action = &paused.body["required_action"];
    assert_eq!(action["type"], "submit_approvals", "{:#}", paused.body);
    let approvals: Vec<String> =
        action["approvals"].as_array().unwrap().iter().map(|a| a["id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(approvals.len(), 2);
    assert_eq!(paused.body["output"]["tool_calls"][0]["name"], "pack_bag", "the client call is asked after");
    let submit_path = format!("{runs}/{}/submit", paused.id());

    // One decided: the run keeps waiting, and says so.
    let first = submit(json!([{"approval_id": approvals[0], "decision": "approve"}]));
    let waiting = app.post(&submit_path, &app.admin_token, first).await.expect(200);
    assert_eq!(waiting.body["status"], "requires_action");
    assert!(server.calls().await.is_empty(), "nothing runs before every approval is decided");
    // The other, rejected: the approved call runs, then the run asks for the client call.
    let second = submit(json!([{"approval_id": approvals[1], "decision": "reject"}]));
    let client_pause = app.post(&submit_path, &app.admin_token, second).await.expect(200);
    assert_eq!(client_pause.body["status"], "requires_action", "{:#}", client_pause.body);
    assert_eq!(client_pause.body["required_action"]["type"], "submit_tool_outputs");
    assert_eq!(client_pause.body["required_action"]["tool_calls"][0]["id"], "call_c");
    let calls = server.calls().await;
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0]["arguments"], json!({"city": "Paris"}));
    assert!(calls[0]["session_id"].is_string(), "over the 2025-11-25 era");
    let outputs = json!({"tool_outputs": [{"tool_call_id": "call_c", "output": "packed"}]});
    let done = app.post(&submit_path, &app.admin_token, outputs).await.expect(200);
    assert_eq!(done.body["status"], "completed");
    assert_eq!(done.body["output"]["content"], "Done.");
    // The model saw every answer in the order it made the calls.
    let requests = mock.received_requests().await.unwrap();
    let last: Value = serde_json::from_slice(&requests.last().unwrap().body).unwrap();
    let results: Vec<(&str, &str)> = last["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "tool")
        .map(|m| (m["tool_call_id"].as_str().unwrap(), m["content"].as_str().unwrap()))
        .collect();
    assert_eq!(
        results,
        [
            ("call_p", "Sunny in Paris, 21 degrees."),
            ("call_o", "Error: not run: a person rejected this call"),
            ("call_c", "packed")
        ]
    );

    // On Chat Completions the answer says what waits; the run is decided natively.
    let completion = app
        .post(
            "/v1/chat/completions",
            &app.admin_token,
            json!({"model": "gpt-4o", "user": "packer", "messages": [{"role": "user", "content": "Pack"}],
                   "tools": [client_tool_chat()]}),
        )
        .await
        .expect(200);
    let message = &completion.body["choices"][0]["message"];
    let text = message["content"].as_str().unwrap();
    assert!(text.starts_with("Waiting for approval: mcp/weather/forecast (approval apr_"), "{text}");
    assert_eq!(text.lines().count(), 2);
    assert_eq!(completion.body["choices"][0]["finish_reason"], "stop");
    assert!(message["tool_calls"].is_null() || message["tool_calls"] == json!([]));
    let rid = completion.body["id"].as_str().unwrap().strip_prefix("chatcmpl-").unwrap().to_owned();
    let run = app.get(&format!("{runs}/{rid}"), &app.admin_token).await.expect(200);
    assert_eq!(run.body["status"], "requires_action");

    // Responses, streamed: one completed response whose text says what waits.
    let stream = app
        .request(reqwest::Method::POST, "/v1/responses")
        .bearer_auth(&app.admin_token)
        .json(&json!({"model": "gpt-4o", "user": "packer", "input": "Pack", "stream": true, "tools": [
            {"type": "function", "name": "pack_bag", "parameters": {"type": "object"}}]}))
        .send()
        .await
        .unwrap();
    let frames = crate::harness::parse_frames(&stream.text().await.unwrap());
    let last = frames.last().unwrap();
    assert_eq!(last.event, "response.completed", "{frames:#?}");
    let text = last.data["response"]["output"][0]["content"][0]["text"].as_str().unwrap();
    assert!(text.starts_with("Waiting for approval: mcp/weather/forecast (approval apr_"), "{text}");
    for frame in &frames {
        crate::spec::assert_matches_schema("ResponseStreamEvent", &frame.data);
    }
}

fn client_tool_chat() -> Value {
    json!({"type": "function", "function": {"name": "pack_bag", "parameters": {"type": "object"}}})
}

/// OpenAI calling the gated forecast twice in one run with the same call id: first for Paris,
/// then (after that result) for Oslo; then answering.
struct SameIdTwice;

impl Respond for SameIdTwice {
    fn respond(&self, request: &wiremock::Request) -> ResponseTemplate {
        let results = String::from_utf8_lossy(&request.body).matches("\"role\":\"tool\"").count();
        match results {
            0 => openai_turn("", &[("call_same", "mcp__weather__forecast", "{\"city\":\"Paris\"}")], 1),
            1 => openai_turn("", &[("call_same", "mcp__weather__forecast", "{\"city\":\"Oslo\"}")], 1),
            _ => openai_turn("Done.", &[], 1),
        }
    }
}

#[tokio::test]
async fn an_earlier_pauses_approval_never_applies_to_a_later_call_with_the_same_id() {
    let server = PythonMcp::start(Era::Both).await;
    let mock = MockServer::start().await;
    Mock::given(method("POST")).and(path("/v1/chat/completions")).respond_with(SameIdTwice).mount(&mock).await;
    let app = openai_app(&mock).await;
    register(&app, "weather", &server).await;
    let body = json!({"external_id": "twice", "model": "gpt-4o", "tools": ["mcp/weather/forecast"],
                      "tool_approvals": {"mcp/*": "always"}});
    let sid = app.post("/v1/smiths", &app.admin_token, body).await.expect(201).id();
    let runs = format!("/v1/smiths/{sid}/runs");
    let paused = app.post(&runs, &app.admin_token, say("Weather?")).await.expect(200);
    let (first, shown) = only_approval(&paused.body);
    assert_eq!(shown["arguments"], json!({"city": "Paris"}));
    let submit_path = format!("{runs}/{}/submit", paused.id());
    let approve = submit(json!([{"approval_id": first, "decision": "approve"}]));
    let again = app.post(&submit_path, &app.admin_token, approve).await.expect(200);
    // The same call id again, for Oslo: a new approval, and only its decision counts.
    let (second, shown) = only_approval(&again.body);
    assert_ne!(second, first);
    assert_eq!(shown["arguments"], json!({"city": "Oslo"}));
    let reject = submit(json!([{"approval_id": second, "decision": "reject"}]));
    let done = app.post(&submit_path, &app.admin_token, reject).await.expect(200);
    assert_eq!(done.body["status"], "completed", "{:#}", done.body);
    assert_eq!(done.body["output"]["content"], "Done.");
    let calls = server.calls().await;
    assert_eq!(calls.len(), 1, "the rejected Oslo call never ran: {calls:#?}");
    assert_eq!(calls[0]["arguments"], json!({"city": "Paris"}));
}
