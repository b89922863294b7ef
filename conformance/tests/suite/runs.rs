//! Runs on the built-in offline model: sync and streamed, threads, the event log and its
//! resumption, client tool pauses, busy threads, cancel, replay, duplicates, crash recovery.

use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::{TestApp, parse_frames};

fn say(text: &str) -> Value {
    json!({"input": [{"role": "user", "content": text}]})
}

fn weather_tool() -> Value {
    json!([{"type": "function", "function": {"name": "weather", "description": "Weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}])
}

async fn smith(app: &TestApp) -> String {
    app.create_smith(&app.admin_token, "runner").await
}

#[tokio::test]
async fn a_sync_run_answers_and_its_thread_carries_on() {
    let app = TestApp::start().await;
    let sid = smith(&app).await;
    let path = format!("/v1/smiths/{sid}/runs");
    let first = app
        .post(
            &path,
            &app.admin_token,
            json!({"input": [{"role": "user", "content": "Say hello!"}], "thread_id": "chat_001"}),
        )
        .await
        .expect(200);
    let run = &first.body;
    assert!(first.id().starts_with("run_"));
    assert_eq!((run["status"].as_str(), run["thread_id"].as_str()), (Some("completed"), Some("chat_001")));
    assert_eq!(run["output"]["content"], "Hello! I am the built-in offline model. You said: \"Say hello!\".");
    assert_eq!(run["usage"]["input_tokens"], 7, "the default instructions (5 words) and the message (2)");
    assert_eq!(run["usage"]["output_tokens"], 11);
    assert_eq!(run["usage"]["cost_usd"], 0.0);
    assert_eq!(run["stop_reason"], "end_turn");
    assert_eq!(run["config"]["model"], "ingram/offline");

    let second = app
        .post(
            &path,
            &app.admin_token,
            json!({"input": [{"role": "user", "content": "And again"}], "thread_id": "chat_001"}),
        )
        .await
        .expect(200);
    let content = second.body["output"]["content"].as_str().unwrap();
    assert!(content.contains("message 2 of our conversation; it began with \"Say hello!\""), "{content}");

    let fresh = app.post(&path, &app.admin_token, say("New topic")).await.expect(200);
    assert!(fresh.body["thread_id"].as_str().unwrap().starts_with("thr_"));
    assert!(!fresh.body["output"]["content"].as_str().unwrap().contains("conversation"), "no thread_id starts fresh");

    let fetched = app.get(&format!("{path}/{}", first.id()), &app.admin_token).await.expect(200);
    assert_eq!(fetched.body, first.body);
}

#[tokio::test]
async fn a_streamed_run_sends_the_native_envelope_and_its_log_replays_exactly() {
    let app = TestApp::start().await;
    let sid = smith(&app).await;
    let mut body = say("Tell me a story.");
    body["stream"] = json!(true);
    let streamed = app.stream_post(&format!("/v1/smiths/{sid}/runs"), &app.admin_token, body).await;
    assert_eq!(streamed.status, 200);
    let events = streamed.events();
    assert_eq!(events.first(), Some(&"run.started"));
    assert_eq!(&events[events.len() - 2..], &["message.completed", "run.completed"]);
    assert!(events.iter().filter(|e| **e == "message.delta").count() > 5, "word by word");
    let ids: Vec<i64> = streamed.frames.iter().map(|f| f.id.as_ref().unwrap().parse().unwrap()).collect();
    assert_eq!(ids, (1..=ids.len() as i64).collect::<Vec<_>>());
    assert_eq!(streamed.last().data["stop_reason"], "end_turn");
    assert_eq!(streamed.text(), "Hello! I am the built-in offline model. You said: \"Tell me a story.\".");
    let run_id = streamed.frames[0].data["run_id"].as_str().unwrap().to_owned();
    assert_eq!(streamed.headers["x-run-id"], run_id.as_str());

    let events_path = format!("/v1/smiths/{sid}/runs/{run_id}/events");
    let replayed = app.stream(app.request(Method::GET, &events_path).bearer_auth(&app.admin_token)).await;
    assert_eq!(replayed.raw, streamed.raw, "a finished run replays exactly the bytes its stream sent");

    let resumed = app
        .stream(app.request(Method::GET, &events_path).bearer_auth(&app.admin_token).header("last-event-id", "3"))
        .await;
    assert_eq!(resumed.frames, streamed.frames[3..].to_vec());
    let bad = app.request(Method::GET, &events_path).bearer_auth(&app.admin_token).header("last-event-id", "x");
    app.send("GET", &events_path, bad).await.expect_error(400, "invalid_last_event_id");
}

#[tokio::test]
async fn a_client_tool_pauses_the_run_until_its_output_is_submitted() {
    let app = TestApp::start().await;
    let sid = smith(&app).await;
    let path = format!("/v1/smiths/{sid}/runs");
    let body = json!({"input": [{"role": "user", "content": "/tool weather {\"city\":\"Paris\"}"}], "tools": weather_tool(), "thread_id": "t"});
    let paused = app.post(&path, &app.admin_token, body).await.expect(200);
    let rid = paused.id();
    assert_eq!(paused.body["status"], "requires_action");
    let call = &paused.body["required_action"]["tool_calls"][0];
    assert_eq!(paused.body["required_action"]["type"], "submit_tool_outputs");
    assert_eq!((call["name"].as_str(), call["arguments"].as_str()), (Some("weather"), Some("{\"city\":\"Paris\"}")));
    let call_id = call["id"].as_str().unwrap().to_owned();

    // The thread is held while the run waits.
    app.post(&path, &app.admin_token, json!({"input": [{"role": "user", "content": "hi"}], "thread_id": "t"}))
        .await
        .expect_error(409, "thread_busy");

    let submit = format!("{path}/{rid}/submit");
    let answer = |id: &str| json!({"tool_outputs": [{"tool_call_id": id, "output": "21C and sunny"}]});
    app.post(&submit, &app.admin_token, answer("call_other")).await.expect_error(400, "unknown_tool_call");
    app.post(&submit, &app.admin_token, json!({"tool_outputs": []})).await.expect_error(400, "tool_outputs_incomplete");
    let two =
        json!({"tool_outputs": [{"tool_call_id": call_id, "output": "a"}, {"tool_call_id": call_id, "output": "b"}]});
    app.post(&submit, &app.admin_token, two).await.expect_error(400, "duplicate_tool_output");
    let done = app.post(&submit, &app.admin_token, answer(&call_id)).await.expect(200);
    assert_eq!(done.body["status"], "completed");
    assert_eq!(done.body["output"]["content"], "The tool weather returned: 21C and sunny");
    assert!(done.body["required_action"].is_null());
    app.post(&submit, &app.admin_token, answer(&call_id)).await.expect_error(409, "run_not_waiting");

    let log = app.stream(app.request(Method::GET, &format!("{path}/{rid}/events")).bearer_auth(&app.admin_token)).await;
    assert_eq!(
        log.events(),
        vec!["run.started", "message.completed", "run.requires_action"],
        "the log closes at the pause"
    );
    let after = app
        .stream(
            app.request(Method::GET, &format!("{path}/{rid}/events"))
                .bearer_auth(&app.admin_token)
                .header("last-event-id", "3"),
        )
        .await;
    assert_eq!(after.events().first(), Some(&"message.delta"));
    assert_eq!(after.events().last(), Some(&"run.completed"));
}

#[tokio::test]
async fn submit_can_stream_the_resumed_run() {
    let app = TestApp::start().await;
    let sid = smith(&app).await;
    let path = format!("/v1/smiths/{sid}/runs");
    let body =
        json!({"input": [{"role": "user", "content": "/tool weather {}"}], "tools": weather_tool(), "stream": true});
    let paused = app.stream_post(&path, &app.admin_token, body).await;
    assert_eq!(paused.last().event, "run.requires_action");
    let rid = paused.last().data["run_id"].as_str().unwrap().to_owned();
    let call_id = paused.last().data["required_action"]["tool_calls"][0]["id"].as_str().unwrap().to_owned();
    let resumed = app
        .stream_post(
            &format!("{path}/{rid}/submit"),
            &app.admin_token,
            json!({"tool_outputs": [{"tool_call_id": call_id, "output": "ok"}], "stream": true}),
        )
        .await;
    assert_eq!(resumed.frames[0].id.as_deref(), Some("4"), "numbering carries on after the pause");
    assert_eq!(resumed.headers["x-run-stream-after"], "3");
    assert_eq!(resumed.last().event, "run.completed");
    assert_eq!(resumed.text(), "The tool weather returned: ok");
}

#[tokio::test]
async fn busy_threads_reject_enqueue_or_interrupt() {
    let app = TestApp::start().await;
    let sid = smith(&app).await;
    let path = format!("/v1/smiths/{sid}/runs");
    let pause = json!({"input": [{"role": "user", "content": "/tool weather {}"}], "tools": weather_tool(), "thread_id": "busy"});
    let first = app.post(&path, &app.admin_token, pause.clone()).await.expect(200);

    // Enqueued behind the paused run: it starts once that one is answered.
    let queued_body =
        json!({"input": [{"role": "user", "content": "next"}], "thread_id": "busy", "on_busy": "enqueue"});
    let queued = {
        let app = &app;
        let path = path.clone();
        async move { app.post(&path, &app.admin_token, queued_body).await }
    };
    let submit = async {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let call_id = first.body["required_action"]["tool_calls"][0]["id"].as_str().unwrap();
        app.post(
            &format!("{path}/{}/submit", first.id()),
            &app.admin_token,
            json!({"tool_outputs": [{"tool_call_id": call_id, "output": "x"}]}),
        )
        .await
    };
    let (queued, submitted) = tokio::join!(queued, submit);
    assert_eq!(submitted.expect(200).body["status"], "completed");
    let queued = queued.expect(200);
    assert_eq!(queued.body["status"], "completed");
    assert!(
        queued.body["output"]["content"].as_str().unwrap().contains("message 2 of our conversation"),
        "it ran after the first"
    );

    // Interrupt cancels the active run and takes the thread.
    let paused = app.post(&path, &app.admin_token, pause).await.expect(200);
    let interrupting =
        json!({"input": [{"role": "user", "content": "stop that"}], "thread_id": "busy", "on_busy": "interrupt"});
    app.post(&path, &app.admin_token, interrupting).await.expect(200);
    let cancelled = app.get(&format!("{path}/{}", paused.id()), &app.admin_token).await.expect(200);
    assert_eq!(cancelled.body["status"], "cancelled");
}

#[tokio::test]
async fn cancel_stops_a_paused_run_and_refuses_a_finished_one() {
    let app = TestApp::start().await;
    let sid = smith(&app).await;
    let path = format!("/v1/smiths/{sid}/runs");
    let paused = app
        .post(
            &path,
            &app.admin_token,
            json!({"input": [{"role": "user", "content": "/tool weather {}"}], "tools": weather_tool()}),
        )
        .await;
    let rid = paused.id();
    let cancelled = app.post(&format!("{path}/{rid}/cancel"), &app.admin_token, json!({})).await.expect(200);
    assert_eq!(cancelled.body["status"], "cancelled");
    // The log closes at the pause; what came after it is read from there on.
    let log = app
        .stream(
            app.request(Method::GET, &format!("{path}/{rid}/events"))
                .bearer_auth(&app.admin_token)
                .header("last-event-id", "3"),
        )
        .await;
    assert_eq!(log.events(), vec!["run.cancelled"]);
    app.post(&format!("{path}/{rid}/cancel"), &app.admin_token, json!({})).await.expect_error(409, "run_not_active");
    let submit = json!({"tool_outputs": [{"tool_call_id": "call_1", "output": "late"}]});
    app.post(&format!("{path}/{rid}/submit"), &app.admin_token, submit).await.expect_error(409, "run_not_waiting");
}

#[tokio::test]
async fn replay_runs_the_same_input_and_config_again() {
    let app = TestApp::start().await;
    let sid = smith(&app).await;
    let path = format!("/v1/smiths/{sid}/runs");
    let original = app
        .post(
            &path,
            &app.admin_token,
            json!({"input": [{"role": "user", "content": "Again?"}], "instructions": "Be terse."}),
        )
        .await
        .expect(200);
    let replay =
        app.call("POST", &format!("{path}/{}/replay", original.id()), Some(&app.admin_token), None).await.expect(200);
    assert_eq!(replay.body["replay_of"], original.id().as_str());
    assert_ne!(replay.id(), original.id());
    assert_eq!(replay.body["input"], original.body["input"]);
    assert_eq!(replay.body["config"], original.body["config"]);
    assert_eq!(replay.body["output"], original.body["output"]);
}

#[tokio::test]
async fn idempotent_run_creates_replay_the_run_or_point_at_the_stream() {
    let app = TestApp::start().await;
    let sid = smith(&app).await;
    let path = format!("/v1/smiths/{sid}/runs");
    let keyed = |key: &'static str, body: Value| {
        app.request(Method::POST, &path).bearer_auth(&app.admin_token).header("idempotency-key", key).json(&body)
    };
    let first = app.send("POST", &path, keyed("sync-1", say("once"))).await.expect(200);
    let again = app.send("POST", &path, keyed("sync-1", say("once"))).await.expect(200);
    assert_eq!(first.body, again.body);

    let mut body = say("stream once");
    body["stream"] = json!(true);
    let streamed = app.stream(keyed("stream-1", body.clone())).await;
    let run_id = streamed.frames[0].data["run_id"].clone();
    let duplicate = app.stream(keyed("stream-1", body)).await;
    assert_eq!(duplicate.events(), vec!["run.duplicate"]);
    assert_eq!(duplicate.frames[0].data["run_id"], run_id);
    let runs = app.get(&format!("{path}?limit=100"), &app.admin_token).await.expect(200);
    assert_eq!(runs.body["data"].as_array().unwrap().len(), 2, "one run per key");
}

#[tokio::test]
async fn runs_are_listed_and_filtered() {
    let app = TestApp::start().await;
    let anon = app.create_smith(&app.admin_token, "anon:1").await;
    let user = app.create_smith(&app.admin_token, "user:1").await;
    for sid in [&anon, &user, &user] {
        app.post(&format!("/v1/smiths/{sid}/runs"), &app.admin_token, say("hi")).await.expect(200);
    }
    let paused = app
        .post(
            &format!("/v1/smiths/{anon}/runs"),
            &app.admin_token,
            json!({"input": [{"role": "user", "content": "/tool weather {}"}], "tools": weather_tool()}),
        )
        .await;
    let count = |query: String| {
        let app = &app;
        async move {
            app.get(&format!("/v1/runs?{query}"), &app.admin_token).await.expect(200).body["data"]
                .as_array()
                .unwrap()
                .len()
        }
    };
    assert_eq!(count(String::new()).await, 4);
    assert_eq!(count("external_id_prefix=anon:".into()).await, 2);
    assert_eq!(count(format!("smith_id={user}")).await, 2);
    assert_eq!(count("status=requires_action".into()).await, 1);
    assert_eq!(count("since=2999-01-01T00:00:00Z".into()).await, 0);
    let page = app.get("/v1/runs?limit=3", &app.admin_token).await.expect(200);
    assert_eq!(page.body["data"][0]["id"], paused.id().as_str(), "newest first");
    assert_eq!(page.body["has_more"], true);
    assert_eq!(
        app.get(&format!("/v1/smiths/{user}/runs"), &app.admin_token).await.expect(200).body["data"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    app.get("/v1/runs?status=sleeping", &app.admin_token).await.expect_error(400, "invalid_query");

    let token = app.smith_token(&anon).await;
    let own = app.get("/v1/runs", &token).await.expect(200);
    assert!(own.body["data"].as_array().unwrap().iter().all(|run| run["smith_id"] == anon.as_str()));
}

#[tokio::test]
async fn a_smith_token_drives_its_own_smiths_runs() {
    let app = TestApp::start().await;
    let sid = smith(&app).await;
    let token = app.smith_token(&sid).await;
    let run = app.post(&format!("/v1/smiths/{sid}/runs"), &token, say("from the browser")).await.expect(200);
    assert_eq!(run.body["status"], "completed");
}

#[tokio::test]
async fn bad_run_requests_are_refused_clearly() {
    let app = TestApp::start().await;
    let sid = smith(&app).await;
    let path = format!("/v1/smiths/{sid}/runs");
    app.post(&path, &app.admin_token, json!({"input": []})).await.expect_error(400, "invalid_parameter");
    app.post(&path, &app.admin_token, json!({"input": [{"role": "tool", "content": "x"}]}))
        .await
        .expect_error(400, "invalid_parameter");
    app.post(&path, &app.admin_token, json!({"input": [{"role": "wizard", "content": "x"}]}))
        .await
        .expect_error(400, "invalid_body");
    let dup_tools =
        json!({"input": [{"role": "user", "content": "x"}], "tools": [weather_tool()[0], weather_tool()[0]]});
    app.post(&path, &app.admin_token, dup_tools).await.expect_error(400, "invalid_parameter");
    let missing = app
        .post(&path, &app.admin_token, json!({"input": [{"role": "user", "content": "x"}], "model": "gpt-4o"}))
        .await;
    missing.expect_error(400, "model_key_missing");
    app.get(&format!("{path}/run_nope"), &app.admin_token).await.expect_error(404, "run_not_found");
    // Content as parts works like a string.
    let parts = json!({"input": [{"role": "user", "content": [{"type": "text", "text": "in "}, {"type": "text", "text": "parts"}]}]});
    let run = app.post(&path, &app.admin_token, parts).await.expect(200);
    assert!(run.body["output"]["content"].as_str().unwrap().contains("You said: \"in parts\""));
}

#[tokio::test]
async fn a_run_whose_replica_died_is_failed_not_left_running() {
    use sea_orm::{ActiveModelTrait, ActiveValue::Set, IntoActiveModel};
    let app = TestApp::start().await;
    let sid = smith(&app).await;
    let path = format!("/v1/smiths/{sid}/runs");
    let done = app
        .post(&path, &app.admin_token, json!({"input": [{"role": "user", "content": "x"}], "thread_id": "crash"}))
        .await
        .expect(200);
    // What kill -9 leaves behind: a run marked running, claimed by a replica that stopped
    // renewing its lease, holding its thread.
    use sea_orm::EntityTrait;
    let stored = ingram_core::store::run::Entity::find_by_id(done.id()).one(&app.state.db).await.unwrap().unwrap();
    // Every event a client saw was committed first; a crash leaves all but the closing one.
    let streamed_through = stored.last_seq - 1;
    let mut orphan = stored.into_active_model();
    orphan.status = Set(ingram_core::types::RunStatus::Running);
    orphan.active_thread_id = Set(Some("crash".into()));
    orphan.lease_owner = Set(Some("replica_dead".into()));
    orphan.lease_until = Set(Some(ingram_core::store::now() - chrono::Duration::seconds(1)));
    // A running run's row has not recorded its events' numbers yet.
    orphan.last_seq = Set(0);
    orphan.update(&app.state.db).await.unwrap();
    use ingram_core::store::run_event;
    use sea_orm::{ColumnTrait, QueryFilter};
    run_event::Entity::delete_many()
        .filter(run_event::Column::RunId.eq(done.id()))
        .filter(run_event::Column::Seq.gt(streamed_through))
        .exec(&app.state.db)
        .await
        .unwrap();

    app.state.engine.upkeep().await.unwrap();
    let failed = app.get(&format!("{path}/{}", done.id()), &app.admin_token).await.expect(200);
    assert_eq!(failed.body["status"], "failed");
    assert_eq!(failed.body["error"]["code"], "run_interrupted");
    let log = app
        .stream(
            app.request(Method::GET, &format!("{path}/{}/events", done.id()))
                .bearer_auth(&app.admin_token)
                .header("last-event-id", streamed_through.to_string()),
        )
        .await;
    assert_eq!(log.events(), vec!["run.failed"]);
    let failed_seq: i32 = log.frames[0].id.as_ref().unwrap().parse().unwrap();
    assert!(failed_seq > streamed_through, "a client resuming from any event it saw still gets the closing one");
    // Its thread is free again.
    app.post(&path, &app.admin_token, json!({"input": [{"role": "user", "content": "y"}], "thread_id": "crash"}))
        .await
        .expect(200);
}

#[test]
fn frames_parse() {
    let frames = parse_frames("event: a\nid: 1\ndata: {\"v\":1}\n\n: keep-alive\n\n");
    assert_eq!(frames.len(), 1);
}

#[tokio::test]
async fn a_stale_cancel_request_does_not_kill_a_resumed_run() {
    use sea_orm::{ActiveModelTrait, ActiveValue::Set, EntityTrait, IntoActiveModel};
    let app = TestApp::start().await;
    let sid = smith(&app).await;
    let path = format!("/v1/smiths/{sid}/runs");
    let body = json!({"input": [{"role": "user", "content": "/tool weather {}"}], "tools": weather_tool()});
    let paused = app.post(&path, &app.admin_token, body).await.expect(200);
    // A cancel that arrived while the run was pausing left its flag behind.
    let stored = ingram_core::store::run::Entity::find_by_id(paused.id()).one(&app.state.db).await.unwrap().unwrap();
    let mut flagged = stored.into_active_model();
    flagged.cancel_requested = Set(true);
    flagged.update(&app.state.db).await.unwrap();
    let call_id = paused.body["required_action"]["tool_calls"][0]["id"].as_str().unwrap();
    let submit = json!({"tool_outputs": [{"tool_call_id": call_id, "output": "ok"}]});
    let done = app.post(&format!("{path}/{}/submit", paused.id()), &app.admin_token, submit).await.expect(200);
    assert_eq!(done.body["status"], "completed");
    app.state.engine.upkeep().await.unwrap();
    let later = app.get(&format!("{path}/{}", paused.id()), &app.admin_token).await.expect(200);
    assert_eq!(later.body["status"], "completed");
}

#[tokio::test]
async fn a_run_whose_stored_data_does_not_decode_is_an_error_not_a_default() {
    use sea_orm::{ActiveModelTrait, EntityTrait, IntoActiveModel, Set};
    let app = TestApp::start().await;
    let sid = smith(&app).await;
    let path = format!("/v1/smiths/{sid}/runs");
    let body = json!({"input": [{"role": "user", "content": "x"}], "thread_id": "kept"});
    let done = app.post(&path, &app.admin_token, body).await.expect(200);
    let stored = ingram_core::store::run::Entity::find_by_id(done.id()).one(&app.state.db).await.unwrap().unwrap();
    let mut damaged = stored.into_active_model();
    damaged.transcript = Set(json!("not a list of messages"));
    damaged.update(&app.state.db).await.unwrap();
    // The run still reads (its transcript is not part of it), but the next turn of its thread
    // fails instead of losing that history silently, as it did when it read as empty.
    app.get(&format!("{path}/{}", done.id()), &app.admin_token).await.expect(200);
    let next = json!({"input": [{"role": "user", "content": "y"}], "thread_id": "kept"});
    let next = app.post(&path, &app.admin_token, next).await.expect(200);
    assert_eq!(next.body["status"], "failed", "{:#}", next.body);
    assert_eq!(next.body["error"]["code"], "internal_error", "{:#}", next.body);
}
