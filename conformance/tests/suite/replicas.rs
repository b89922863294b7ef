//! Two replicas on one PostgreSQL database hear of each other's changes at once, through
//! LISTEN/NOTIFY (docs/performance.md). On SQLite, which serves one replica, these pass
//! without running. The timings asserted are far below the backstops (a 1 s poll for events,
//! a 500 ms cache TTL), so they fail when the notifications do not work.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::json;

use crate::harness::{TestApp, parse_frames};

/// Less than the cache TTL and the events' backstop poll, and generous for a busy machine.
const AT_ONCE: Duration = Duration::from_millis(150);

async fn two_replicas(settings: ingram_core::settings::Settings) -> Option<(TestApp, TestApp)> {
    let a = TestApp::start_with(settings).await;
    if !a.on_postgres() {
        return None;
    }
    let b = a.replica().await;
    Some((a, b))
}

#[tokio::test]
async fn a_run_on_one_replica_streams_on_another_as_it_happens() {
    let mut settings = ingram_core::settings::Settings::for_tests();
    settings.offline_token_delay = Duration::from_millis(150);
    let Some((a, b)) = two_replicas(settings).await else { return };
    let sid = a.create_smith(&a.admin_token, "followed").await;
    let runs = format!("/v1/smiths/{sid}/runs");
    let body = json!({"input": [{"role": "user", "content": "one two three four"}], "stream": true});
    let mut on_a = a.request(Method::POST, &runs).bearer_auth(&a.admin_token).json(&body).send().await.unwrap();
    let run_id = on_a.headers()["x-run-id"].to_str().unwrap().to_owned();
    let mut on_b =
        b.request(Method::GET, &format!("{runs}/{run_id}/events")).bearer_auth(&b.admin_token).send().await.unwrap();
    let (read_a, read_b) = tokio::join!(timed_frames(&mut on_a), timed_frames(&mut on_b));
    let ids = |frames: &[(String, Instant)]| frames.iter().map(|(id, _)| id.clone()).collect::<Vec<_>>();
    assert_eq!(ids(&read_b), ids(&read_a), "b streams every event a streamed");
    let subscribed = read_b.first().map(|(_, at)| *at).unwrap();
    for (id, at_a) in read_a.iter().filter(|(_, at)| *at > subscribed) {
        let at_b = read_b.iter().find(|(seq, _)| seq == id).map(|(_, at)| *at).unwrap();
        let lag = at_b.saturating_duration_since(*at_a);
        assert!(lag < AT_ONCE, "event {id} reached the other replica {lag:?} late");
    }
}

/// The `id:` of every frame of an SSE body, with when it arrived.
async fn timed_frames(response: &mut reqwest::Response) -> Vec<(String, Instant)> {
    let mut frames = Vec::new();
    let mut text = String::new();
    while let Some(chunk) = response.chunk().await.unwrap() {
        text.push_str(std::str::from_utf8(&chunk).unwrap());
        let Some(end) = text.rfind("\n\n") else { continue };
        let complete: String = text.drain(..end + 2).collect();
        let at = Instant::now();
        frames.extend(parse_frames(&complete).into_iter().filter_map(|frame| Some((frame.id?, at))));
    }
    frames
}

#[tokio::test]
async fn a_token_revoked_through_one_replica_is_refused_by_the_other_at_once() {
    let Some((a, b)) = two_replicas(ingram_core::settings::Settings::for_tests()).await else { return };
    let minted = a.post("/v1/tenant/tokens", &a.admin_token, json!({"kind": "tenant_admin", "name": "ci"})).await;
    let (token, tid) = (minted.body["token"].as_str().unwrap().to_owned(), minted.id());
    // b caches it...
    b.get("/v1/smiths", &token).await.expect(200);
    a.delete(&format!("/v1/tenant/tokens/{tid}"), &a.admin_token).await.expect(200);
    tokio::time::sleep(AT_ONCE).await;
    // ...and forgets it as soon as a says so, well within the cache's TTL.
    b.get("/v1/smiths", &token).await.expect_error(401, "invalid_token");
}

#[tokio::test]
async fn a_smith_changed_through_one_replica_reads_changed_on_the_other_at_once() {
    let Some((a, b)) = two_replicas(ingram_core::settings::Settings::for_tests()).await else { return };
    let sid = a.create_smith(&a.admin_token, "renamed").await;
    let path = format!("/v1/smiths/{sid}");
    let before = b.get(&path, &b.admin_token).await.expect(200);
    assert_eq!(before.body["display_name"], serde_json::Value::Null);
    let patch = a.request(Method::PATCH, &path).bearer_auth(&a.admin_token).json(&json!({"display_name": "Ada"}));
    a.send("PATCH", &path, patch).await.expect(200);
    tokio::time::sleep(AT_ONCE).await;
    assert_eq!(b.get(&path, &b.admin_token).await.expect(200).body["display_name"], "Ada");
}

#[tokio::test]
async fn a_run_queued_on_one_replica_starts_as_soon_as_the_other_releases_its_thread() {
    let mut settings = ingram_core::settings::Settings::for_tests();
    settings.offline_token_delay = Duration::from_millis(100);
    let Some((a, b)) = two_replicas(settings).await else { return };
    let sid = a.create_smith(&a.admin_token, "queued").await;
    let runs = format!("/v1/smiths/{sid}/runs");
    let first = json!({"input": [{"role": "user", "content": "one two three"}], "thread_id": "shared", "stream": true});
    let mut on_a = a.request(Method::POST, &runs).bearer_auth(&a.admin_token).json(&first).send().await.unwrap();
    let second = json!({"input": [{"role": "user", "content": "next"}], "thread_id": "shared", "on_busy": "enqueue"});
    let queued = b.request(Method::POST, &runs).bearer_auth(&b.admin_token).json(&second);
    let (released, answered) = tokio::join!(
        async {
            while on_a.chunk().await.unwrap().is_some() {}
            Instant::now()
        },
        async {
            let response = queued.send().await.unwrap();
            assert_eq!(response.status(), 200);
            Instant::now()
        }
    );
    // Far sooner than the queue's 1 s poll: b heard the release.
    let waited = answered.saturating_duration_since(released);
    assert!(waited < AT_ONCE, "the queued run started {waited:?} after the thread was released");
}

/// Both replicas sweep expired approvals at the same moment: the approval expires once and
/// its run resumes once (docs/approvals.md).
#[tokio::test]
async fn an_expired_approval_resumes_its_run_once_whichever_replicas_sweep() {
    let mut settings = ingram_core::settings::Settings::for_tests();
    settings.approval_ttl = Duration::ZERO;
    let Some((a, b)) = two_replicas(settings).await else { return };
    let body = json!({"external_id": "swept", "tools": ["hosted/calculator"], "tool_approvals": {"*": "always"}});
    let sid = a.post("/v1/smiths", &a.admin_token, body).await.expect(201).id();
    let runs = format!("/v1/smiths/{sid}/runs");
    let ask = json!({"input": [{"role": "user", "content": "/tool hosted__calculator {\"expression\": \"1+1\"}"}]});
    let paused = a.post(&runs, &a.admin_token, ask).await.expect(200);
    assert_eq!(paused.body["status"], "requires_action");
    use sea_orm::EntityTrait;
    let run_id: ingram_core::ids::RunId = paused.id().into();
    let row = ingram_core::store::run::Entity::find_by_id(&run_id).one(&a.state.db).await.unwrap().unwrap();
    let (swept_a, swept_b) = tokio::join!(a.state.engine.expire_approvals(), b.state.engine.expire_approvals());
    swept_a.unwrap();
    swept_b.unwrap();
    // The events after the pause, once the run settled (on whichever replica resumed it).
    let after_pause = a
        .request(Method::GET, &format!("{runs}/{}/events", paused.id()))
        .bearer_auth(&a.admin_token)
        .header("Last-Event-ID", row.last_seq.to_string());
    let text = after_pause.send().await.unwrap().text().await.unwrap();
    let kinds: Vec<String> = parse_frames(&text).into_iter().map(|frame| frame.event).collect();
    let count = |kind: &str| kinds.iter().filter(|k| *k == kind).count();
    assert_eq!((count("tool.completed"), count("run.completed")), (1, 1), "{kinds:?}");
    let run = a.get(&format!("{runs}/{}", paused.id()), &a.admin_token).await.expect(200);
    assert_eq!(
        run.body["output"]["content"],
        "The tool hosted__calculator returned: Error: not run: nobody approved this call in time"
    );
}
