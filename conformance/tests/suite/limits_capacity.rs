//! Limits and capacity, pinned. Every input has a bound, the same on native runs, Chat
//! Completions and Responses (400 `limit_exceeded` naming the field) and on smiths and
//! tokens, and the spec declares them. Per-project caps on runs executing, runs queued and
//! open streams answer 429 `rate_limited` with Retry-After before anything is created. A
//! run's working time is bounded, time paused for a client tool not counted. Deleting a
//! smith stops its runs, which stay readable. New SQLite files are readable by their owner
//! only.

use std::sync::Arc;
use std::time::Duration;

use ingram_core::settings::CapacityLimits;
use ingram_core::settings::Settings;
use reqwest::Method;
use serde_json::{Map, Value, json};

use crate::harness::{Answer, TestApp};

const KIB: usize = 1024;
const MIB: usize = 1024 * 1024;

/// The three ways a run is started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Surface {
    Native,
    Chat,
    Responses,
}

const SURFACES: [Surface; 3] = [Surface::Native, Surface::Chat, Surface::Responses];

/// What a test puts in a run request; each surface spells it its own way.
#[derive(Debug, Clone)]
struct Turn {
    /// Texts of user messages.
    messages: Vec<String>,
    /// Client tools as `{"name", "description"?, "parameters"?}`.
    tools: Vec<Value>,
    metadata: Option<Value>,
    /// Native runs and Responses: `instructions`; Chat Completions: a system message.
    instructions: Option<String>,
}

impl Turn {
    fn say(text: &str) -> Self {
        Self { messages: vec![text.to_owned()], tools: Vec::new(), metadata: None, instructions: None }
    }

    fn with_tools(tools: Vec<Value>) -> Self {
        Self { tools, ..Self::say("hi") }
    }

    fn with_metadata(metadata: Value) -> Self {
        Self { metadata: Some(metadata), ..Self::say("hi") }
    }
}

/// `count` client tools with unique, valid names.
fn tools(count: usize) -> Vec<Value> {
    (0..count).map(|i| json!({"name": format!("tool_{i:03}")})).collect()
}

/// `count` metadata pairs.
fn metadata_pairs(count: usize) -> Value {
    let pairs: Map<String, Value> = (0..count).map(|i| (format!("key_{i:02}"), json!("value"))).collect();
    Value::Object(pairs)
}

/// Sends `turn` to the smith `sid` through `surface`, as the tenant admin.
async fn start_run(app: &TestApp, sid: &str, surface: Surface, turn: &Turn) -> Answer {
    let messages: Vec<Value> = turn.messages.iter().map(|text| json!({"role": "user", "content": text})).collect();
    let (path, mut body) = match surface {
        Surface::Native => (format!("/v1/smiths/{sid}/runs"), json!({"input": messages})),
        Surface::Chat => {
            let system = turn.instructions.iter().map(|text| json!({"role": "system", "content": text}));
            let all: Vec<Value> = system.chain(messages).collect();
            ("/v1/chat/completions".to_owned(), json!({"model": "default", "messages": all}))
        }
        Surface::Responses => ("/v1/responses".to_owned(), json!({"model": "default", "input": messages})),
    };
    if !turn.tools.is_empty() {
        let tools: Vec<Value> = turn
            .tools
            .iter()
            .map(|tool| match surface {
                Surface::Native | Surface::Chat => json!({"type": "function", "function": tool}),
                Surface::Responses => {
                    let mut flat = tool.clone();
                    flat["type"] = json!("function");
                    flat
                }
            })
            .collect();
        body["tools"] = json!(tools);
    }
    if let Some(metadata) = &turn.metadata {
        body["metadata"] = metadata.clone();
    }
    if let Some(instructions) = &turn.instructions
        && surface != Surface::Chat
    {
        body["instructions"] = json!(instructions);
    }
    let mut request = app.request(Method::POST, &path).bearer_auth(&app.admin_token).json(&body);
    if surface != Surface::Native {
        request = request.header("ic-smith-id", sid);
    }
    app.send("POST", &path, request).await
}

/// A 400 `limit_exceeded` naming `param` (when given).
fn assert_limit_exceeded(answer: &Answer, surface: Surface, what: &str, param: Option<&str>) {
    assert_eq!(
        (answer.status, answer.code()),
        (400, "limit_exceeded"),
        "{surface:?}, {what}: expected a refusal; body: {:#}",
        answer.body
    );
    if let Some(param) = param {
        assert_eq!(answer.body["error"]["param"], param, "{surface:?}, {what}: {:#}", answer.body);
    }
}

/// Every run of the project (at most 100).
async fn all_runs(app: &TestApp, query: &str) -> Vec<Value> {
    let listed = app.get(&format!("/v1/runs?limit=100&{query}"), &app.admin_token).await.expect(200);
    listed.body["data"].as_array().expect("a list").clone()
}

/// Polls `/v1/runs?{query}` until `done` holds of the runs listed (10 s at most).
async fn wait_for_runs(app: &TestApp, query: &str, what: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let give_up = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let runs = all_runs(app, query).await;
        if done(&runs) {
            return runs;
        }
        assert!(tokio::time::Instant::now() < give_up, "never saw {what}: {runs:#?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn with_status<'a>(runs: &'a [Value], status: &str) -> Vec<&'a Value> {
    runs.iter().filter(|run| run["status"] == status).collect()
}

fn weather_tool() -> Value {
    json!([{"type": "function", "function": {"name": "weather", "parameters": {"type": "object", "properties": {}}}}])
}

fn pause_body(thread_id: &str) -> Value {
    json!({"input": [{"role": "user", "content": "/tool weather {}"}], "tools": weather_tool(), "thread_id": thread_id})
}

/// A prompt the offline model echoes back word by word: its reply has `words` + 9 words.
fn long_prompt(words: usize) -> String {
    vec!["word"; words].join(" ")
}

#[tokio::test]
async fn oversized_run_inputs_are_refused_on_every_surface() {
    let app = TestApp::start().await;
    let sid = app.create_smith(&app.admin_token, "limits").await;
    let long_key = "k".repeat(65);
    let cases: Vec<(&str, Turn, &str)> = vec![
        ("129 tools", Turn::with_tools(tools(129)), "tools"),
        ("17 metadata pairs", Turn::with_metadata(metadata_pairs(17)), "metadata"),
        ("a 65-character metadata key", Turn::with_metadata(json!({long_key: "v"})), "metadata"),
        ("a 513-character metadata value", Turn::with_metadata(json!({"k": "v".repeat(513)})), "metadata"),
        ("2049 messages", Turn { messages: vec!["hi".to_owned(); 2049], ..Turn::say("hi") }, "input"),
        ("a message of 1 MiB + 1 byte", Turn::say(&"a".repeat(MIB + 1)), "input"),
        (
            "256 KiB + 1 byte of instructions",
            Turn { instructions: Some("i".repeat(256 * KIB + 1)), ..Turn::say("hi") },
            "instructions",
        ),
    ];
    for surface in SURFACES {
        for (what, turn, param) in &cases {
            let answer = start_run(&app, &sid, surface, turn).await;
            // Chat Completions has neither `input` nor `instructions`: its messages carry both.
            let param = (surface != Surface::Chat || matches!(*param, "tools" | "metadata")).then_some(*param);
            assert_limit_exceeded(&answer, surface, what, param);
        }
    }
    assert!(all_runs(&app, "").await.is_empty(), "a refused request created a run");
}

#[tokio::test]
async fn client_tools_are_bounded_on_every_surface() {
    let app = TestApp::start().await;
    let sid = app.create_smith(&app.admin_token, "tools").await;
    let big_schema = json!({"type": "object", "description": "d".repeat(64 * KIB)});
    let too_big: Vec<(&str, Value)> = vec![
        ("a 4097-character description", json!({"name": "described", "description": "d".repeat(4097)})),
        ("a parameters schema over 64 KiB", json!({"name": "schema", "parameters": big_schema})),
    ];
    let invalid: Vec<(&str, Vec<Value>)> = vec![
        ("a duplicate name", vec![json!({"name": "twice"}), json!({"name": "twice"})]),
        ("a name with a space", vec![json!({"name": "two words"})]),
        ("a 65-character name", vec![json!({"name": "n".repeat(65)})]),
    ];
    for surface in SURFACES {
        for (what, tool) in &too_big {
            let answer = start_run(&app, &sid, surface, &Turn::with_tools(vec![tool.clone()])).await;
            assert_limit_exceeded(&answer, surface, what, Some("tools"));
        }
        for (what, tools) in &invalid {
            let answer = start_run(&app, &sid, surface, &Turn::with_tools(tools.clone())).await;
            assert_eq!(
                (answer.status, answer.code(), answer.body["error"]["param"].as_str()),
                (400, "invalid_parameter", Some("tools")),
                "{surface:?}, {what}: {:#}",
                answer.body
            );
        }
    }
    assert!(all_runs(&app, "").await.is_empty(), "a refused request created a run");
}

#[tokio::test]
async fn run_inputs_at_the_limits_are_accepted_on_every_surface() {
    let app = TestApp::start().await;
    let sid = app.create_smith(&app.admin_token, "at-the-limit").await;
    let mut metadata = metadata_pairs(14);
    metadata["k".repeat(64)] = json!("longest key");
    metadata["longest_value"] = json!("v".repeat(512));
    let mut at_limit = Turn::with_tools(tools(128));
    at_limit.metadata = Some(metadata);
    at_limit.instructions = Some("i".repeat(256 * KIB));
    for surface in SURFACES {
        let answer = start_run(&app, &sid, surface, &at_limit).await;
        assert_eq!(answer.status, 200, "{surface:?}: {:#}", answer.body);
    }
    let runs = all_runs(&app, "").await;
    assert_eq!(runs.len(), 3);
    assert!(runs.iter().all(|run| run["status"] == "completed"), "{runs:#?}");
}

#[tokio::test]
async fn smith_and_token_fields_are_bounded() {
    let app = TestApp::start().await;
    let token = &app.admin_token;
    let smith = |fields: Value| {
        let mut body = json!({"external_id": "bounded"});
        body.as_object_mut().unwrap().extend(fields.as_object().unwrap().clone());
        body
    };
    let refused = app.post("/v1/smiths", token, smith(json!({"display_name": "d".repeat(257)}))).await;
    assert_limit_exceeded(&refused, Surface::Native, "POST display_name", Some("display_name"));
    let refused = app.post("/v1/smiths", token, smith(json!({"customer_id": "c".repeat(257)}))).await;
    assert_limit_exceeded(&refused, Surface::Native, "POST customer_id", Some("customer_id"));
    let refused = app.post("/v1/smiths", token, smith(json!({"metadata": metadata_pairs(17)}))).await;
    assert_limit_exceeded(&refused, Surface::Native, "POST metadata", Some("metadata"));
    let listed = app.get("/v1/smiths", token).await.expect(200);
    assert!(listed.body["data"].as_array().unwrap().is_empty(), "a refused smith was created: {:#}", listed.body);

    // At the limits: 256 characters (of two bytes each: characters are counted) and 16 pairs.
    let name = "é".repeat(256);
    let created = app
        .post("/v1/smiths", token, smith(json!({"display_name": name, "metadata": metadata_pairs(16)})))
        .await
        .expect(201);
    let path = format!("/v1/smiths/{}", created.id());
    let refused = app.patch(&path, token, json!({"display_name": "d".repeat(257)})).await;
    assert_limit_exceeded(&refused, Surface::Native, "PATCH display_name", Some("display_name"));
    let refused = app.patch(&path, token, json!({"metadata": metadata_pairs(17)})).await;
    assert_limit_exceeded(&refused, Surface::Native, "PATCH metadata", Some("metadata"));
    let unchanged = app.get(&path, token).await.expect(200);
    assert_eq!(unchanged.body["display_name"], name.as_str());
    assert_eq!(unchanged.body["metadata"], metadata_pairs(16));

    let refused = app.post("/v1/tenant/tokens", token, json!({"kind": "tenant_admin", "name": "t".repeat(201)})).await;
    assert_limit_exceeded(&refused, Surface::Native, "token name", Some("name"));
    app.post("/v1/tenant/tokens", token, json!({"kind": "tenant_admin", "name": "t".repeat(200)})).await.expect(201);
}

#[test]
fn the_spec_declares_the_limits() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../spec/openapi.json");
    let spec: Value = serde_json::from_str(&std::fs::read_to_string(path).expect("the spec")).expect("JSON");
    let property = |schema: &str, name: &str| spec["components"]["schemas"][schema]["properties"][name].clone();
    assert_eq!(property("CreateRunRequest", "tools")["maxItems"], 128);
    assert_eq!(property("CreateRunRequest", "input")["maxItems"], 2048);
    assert_eq!(property("CreateRunRequest", "instructions")["maxLength"], 256 * KIB);
    assert_eq!(property("ChatCompletionRequest", "tools")["maxItems"], 128);
    assert_eq!(property("ChatCompletionRequest", "messages")["maxItems"], 2048);
    assert_eq!(property("CreateResponseRequest", "tools")["maxItems"], 128);
    assert_eq!(property("CreateResponseRequest", "instructions")["maxLength"], 256 * KIB);
    assert_eq!(property("CreateSmithRequest", "display_name")["maxLength"], 256);
    assert_eq!(property("CreateSmithRequest", "customer_id")["maxLength"], 256);
    assert_eq!(property("UpdateSmithRequest", "display_name")["maxLength"], 256);
    assert_eq!(property("CreateTokenRequest", "name")["maxLength"], 200);
    for schema in [
        "CreateRunRequest",
        "ChatCompletionRequest",
        "CreateResponseRequest",
        "CreateSmithRequest",
        "UpdateSmithRequest",
    ] {
        let metadata = property(schema, "metadata");
        assert_eq!(metadata["maxProperties"], 16, "{schema}.metadata: {metadata:#}");
        assert_eq!(metadata["propertyNames"]["maxLength"], 64, "{schema}.metadata: {metadata:#}");
        assert_eq!(metadata["additionalProperties"]["maxLength"], 512, "{schema}.metadata: {metadata:#}");
    }
}

/// A 429 `rate_limited` telling the caller when to retry.
fn assert_rate_limited(answer: &Answer, what: &str) {
    assert_eq!((answer.status, answer.code()), (429, "rate_limited"), "{what}: {:#}", answer.body);
    let retry_after = answer.headers.get("retry-after").and_then(|value| value.to_str().ok());
    let seconds: u64 = retry_after.and_then(|value| value.parse().ok()).unwrap_or_else(|| {
        panic!("{what}: no Retry-After in whole seconds: {retry_after:?}");
    });
    assert!(seconds >= 1, "{what}: Retry-After {seconds}");
}

#[tokio::test]
async fn capacity_caps_refuse_with_429_before_creating_anything() {
    let mut settings = Settings::for_tests();
    settings.capacity = CapacityLimits { active_runs: 1, queued_runs: 1, streams: 1 };
    settings.offline_token_delay = Duration::from_millis(200);
    let app = Arc::new(TestApp::start_with(settings).await);
    let token = app.admin_token.clone();
    let sid = app.create_smith(&token, "capacity").await;
    let runs_path = format!("/v1/smiths/{sid}/runs");

    // A streamed run: it holds an active slot and the stream slot until it finishes.
    let first = tokio::spawn({
        let (app, path) = (app.clone(), runs_path.clone());
        let body =
            json!({"input": [{"role": "user", "content": long_prompt(15)}], "thread_id": "busy", "stream": true});
        async move { app.stream_post(&path, &app.admin_token, body).await }
    });
    let runs = wait_for_runs(&app, "", "the first run running", |runs| with_status(runs, "running").len() == 1).await;
    let first_id = runs[0]["id"].as_str().unwrap().to_owned();

    // No second run executes meanwhile, whatever the surface.
    for surface in SURFACES {
        let answer = start_run(&app, &sid, surface, &Turn::say("second")).await;
        assert_rate_limited(&answer, &format!("{surface:?}: a second run"));
    }
    // No second stream opens: not of a run's events, nor of a new run.
    let events = format!("{runs_path}/{first_id}/events");
    assert_rate_limited(&app.call("GET", &events, Some(&token), None).await, "a second event stream");
    let streamed_chat = json!({"model": "default", "messages": [{"role": "user", "content": "x"}], "stream": true});
    let request = app
        .request(Method::POST, "/v1/chat/completions")
        .bearer_auth(&token)
        .header("ic-smith-id", sid.as_str())
        .json(&streamed_chat);
    assert_rate_limited(&app.send("POST", "/v1/chat/completions", request).await, "a streamed chat completion");
    assert_eq!(all_runs(&app, "").await.len(), 1, "a refused request created a run");

    // One run may wait behind the busy thread; a second one is over the queue's cap.
    let enqueue = json!({"input": [{"role": "user", "content": "later"}], "thread_id": "busy", "on_busy": "enqueue"});
    let queued = tokio::spawn({
        let (app, path, body) = (app.clone(), runs_path.clone(), enqueue.clone());
        async move { app.post(&path, &app.admin_token, body).await }
    });
    let runs = wait_for_runs(&app, "", "a queued run", |runs| with_status(runs, "queued").len() == 1).await;
    let queued_id = with_status(&runs, "queued")[0]["id"].as_str().unwrap().to_owned();
    assert_rate_limited(&app.post(&runs_path, &token, enqueue).await, "a second queued run");
    assert_eq!(all_runs(&app, "").await.len(), 2, "a refused request created a run");
    app.post(&format!("{runs_path}/{queued_id}/cancel"), &token, json!({})).await.expect(200);
    assert_eq!(queued.await.unwrap().expect(200).body["status"], "cancelled");
    assert_eq!(all_runs(&app, "").await.len(), 2);

    // Once the first run finished, its slots are free again.
    let first = first.await.unwrap();
    assert_eq!(first.last().event, "run.completed", "{:?}", first.events());
    let paused = app.post(&runs_path, &token, pause_body("one")).await.expect(200);
    assert_eq!(paused.body["status"], "requires_action");

    // A paused run holds no slot: another run executes, and streams, beside it.
    let mut streamed = pause_body("two");
    streamed["stream"] = json!(true);
    let second = app.stream_post(&runs_path, &token, streamed).await;
    assert_eq!((second.status, second.last().event.as_str()), (200, "run.requires_action"), "{:?}", second.events());
    assert_eq!(with_status(&all_runs(&app, "").await, "requires_action").len(), 2);

    // Resuming a paused run takes an active slot again, which is free.
    let call_id = paused.body["required_action"]["tool_calls"][0]["id"].as_str().unwrap();
    let submit = json!({"tool_outputs": [{"tool_call_id": call_id, "output": "ok"}]});
    let resumed = app.post(&format!("{runs_path}/{}/submit", paused.id()), &token, submit).await.expect(200);
    assert_eq!(resumed.body["status"], "completed");
}

#[tokio::test]
async fn a_run_working_past_its_deadline_fails() {
    let mut settings = Settings::for_tests();
    settings.run_deadline = Duration::from_secs(1);
    settings.offline_token_delay = Duration::from_millis(300);
    let app = TestApp::start_with(settings).await;
    let sid = app.create_smith(&app.admin_token, "slow").await;
    let path = format!("/v1/smiths/{sid}/runs");
    // 20 words echoed back, 300 ms apart: about 9 s of work against a deadline of 1 s.
    let body = json!({"input": [{"role": "user", "content": long_prompt(20)}]});
    let run = app.post(&path, &app.admin_token, body).await.expect(200);
    assert_eq!(run.body["status"], "failed", "{:#}", run.body);
    assert_eq!(run.body["error"]["code"], "run_deadline_exceeded", "{:#}", run.body);
    let log =
        app.stream(app.request(Method::GET, &format!("{path}/{}/events", run.id())).bearer_auth(&app.admin_token));
    let log = log.await;
    assert_eq!(log.last().event, "run.failed");
    assert_eq!(log.last().data["error"]["code"], "run_deadline_exceeded");

    // The same on the OpenAI surfaces, which answer with the run's error.
    for surface in [Surface::Chat, Surface::Responses] {
        let answer = start_run(&app, &sid, surface, &Turn::say(&long_prompt(20))).await;
        assert_eq!(answer.code(), "run_deadline_exceeded", "{surface:?}: {:#}", answer.body);
    }
}

#[tokio::test]
async fn time_paused_for_a_client_tool_does_not_count_toward_the_deadline() {
    let mut settings = Settings::for_tests();
    settings.run_deadline = Duration::from_secs(1);
    let app = TestApp::start_with(settings).await;
    let sid = app.create_smith(&app.admin_token, "patient").await;
    let path = format!("/v1/smiths/{sid}/runs");
    let paused = app.post(&path, &app.admin_token, pause_body("t")).await.expect(200);
    assert_eq!(paused.body["status"], "requires_action");
    // The client takes longer than the whole deadline to answer.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let call_id = paused.body["required_action"]["tool_calls"][0]["id"].as_str().unwrap();
    let submit = json!({"tool_outputs": [{"tool_call_id": call_id, "output": "ok"}]});
    let done = app.post(&format!("{path}/{}/submit", paused.id()), &app.admin_token, submit).await.expect(200);
    assert_eq!(done.body["status"], "completed", "{:#}", done.body);
    assert_eq!(done.body["output"]["content"], "The tool weather returned: ok");
}

#[tokio::test]
async fn deleting_a_smith_cancels_its_runs_which_stay_readable() {
    let mut settings = Settings::for_tests();
    settings.offline_token_delay = Duration::from_millis(200);
    let app = Arc::new(TestApp::start_with(settings).await);
    let token = app.admin_token.clone();
    let sid = app.create_smith(&token, "leaving").await;
    let runs_path = format!("/v1/smiths/{sid}/runs");
    let query = format!("smith_id={sid}");

    let paused = app.post(&runs_path, &token, pause_body("paused")).await.expect(200);
    assert_eq!(paused.body["status"], "requires_action");
    let running = tokio::spawn({
        let (app, path) = (app.clone(), runs_path.clone());
        let body =
            json!({"input": [{"role": "user", "content": long_prompt(30)}], "thread_id": "long", "stream": true});
        async move { app.stream_post(&path, &app.admin_token, body).await }
    });
    wait_for_runs(&app, &query, "a running run", |runs| with_status(runs, "running").len() == 1).await;
    let queued = tokio::spawn({
        let (app, path) = (app.clone(), runs_path.clone());
        let body = json!({"input": [{"role": "user", "content": "after"}], "thread_id": "long", "on_busy": "enqueue"});
        async move { app.post(&path, &app.admin_token, body).await }
    });
    wait_for_runs(&app, &query, "a queued run", |runs| with_status(runs, "queued").len() == 1).await;

    app.delete(&format!("/v1/smiths/{sid}"), &token).await.expect(200);
    let runs = wait_for_runs(&app, &query, "every run cancelled", |runs| {
        runs.len() == 3 && runs.iter().all(|run| run["status"] == "cancelled")
    })
    .await;
    let streamed = running.await.unwrap();
    assert_eq!(streamed.last().event, "run.cancelled", "{:?}", streamed.events());
    assert_eq!(queued.await.unwrap().expect(200).body["status"], "cancelled");

    // The runs stay readable by the project once their smith is gone.
    app.get(&format!("/v1/smiths/{sid}"), &token).await.expect_error(404, "smith_not_found");
    for run in &runs {
        let id = run["id"].as_str().unwrap();
        let fetched = app.get(&format!("{runs_path}/{id}"), &token).await.expect(200);
        assert_eq!(fetched.body["status"], "cancelled");
    }
}

#[cfg(unix)]
#[tokio::test]
async fn new_sqlite_database_files_are_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join("private.db");
    let db = ingram_core::db::connect(&format!("sqlite://{}?mode=rwc", path.display())).await.expect("it opens");
    assert!(path.exists(), "the database file was created");
    // While the connection is open (the migrations wrote through it), SQLite keeps its WAL
    // and shared-memory files beside the database; they take its permissions.
    for suffix in ["", "-wal", "-shm"] {
        let file = dir.path().join(format!("private.db{suffix}"));
        if let Ok(found) = std::fs::metadata(&file) {
            let mode = found.permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{} has mode {mode:o}", file.display());
        }
    }
    db.close().await.expect("it closes");
}

#[tokio::test]
async fn an_enqueued_run_starts_only_within_the_executing_runs_cap() {
    let mut settings = Settings::for_tests();
    settings.capacity = CapacityLimits { active_runs: 1, queued_runs: 4, streams: 4 };
    settings.offline_token_delay = Duration::from_millis(150);
    let app = Arc::new(TestApp::start_with(settings).await);
    let sid = app.create_smith(&app.admin_token, "enqueuer").await;
    let path = format!("/v1/smiths/{sid}/runs");
    let first = tokio::spawn({
        let (app, path) = (app.clone(), path.clone());
        let body = json!({"input": [{"role": "user", "content": long_prompt(10)}], "thread_id": "a"});
        async move { app.post(&path, &app.admin_token, body).await }
    });
    wait_for_runs(&app, "", "the first run running", |runs| with_status(runs, "running").len() == 1).await;
    // Its own thread is free, so before the cap bound queued runs it would start at once.
    let second = tokio::spawn({
        let (app, path) = (app.clone(), path.clone());
        let body = json!({"input": [{"role": "user", "content": "hi"}], "thread_id": "b", "on_busy": "enqueue"});
        async move { app.post(&path, &app.admin_token, body).await }
    });
    let runs = wait_for_runs(&app, "", "the second run queued", |runs| runs.len() == 2).await;
    assert_eq!(with_status(&runs, "queued").len(), 1, "{runs:#?}");
    assert_eq!(with_status(&runs, "running").len(), 1, "never two at once: {runs:#?}");
    first.await.unwrap().expect(200);
    assert_eq!(second.await.unwrap().expect(200).body["status"], "completed");
}
