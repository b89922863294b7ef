//! Smiths (upsert, filters, pagination, overrides, revisions) and the agents they run on.

use serde_json::json;

use crate::harness::TestApp;

#[tokio::test]
async fn create_smith_upserts_on_external_id_and_agent() {
    let app = TestApp::start().await;
    let token = &app.admin_token;
    let body = json!({"external_id": "user_123", "display_name": "Ada", "instructions": "Be brief.", "model": "claude-sonnet-4-6"});
    let first = app.post("/v1/smiths", token, body.clone()).await.expect(201);
    assert!(first.id().starts_with("smt_"));
    assert_eq!(first.body["config_source"], "override");
    assert_eq!(first.body["effective_config"]["model"], "claude-sonnet-4-6");
    assert_eq!(first.body["revision"], 1);
    let again = app.post("/v1/smiths", token, json!({"external_id": "user_123"})).await.expect(200);
    assert_eq!(again.id(), first.id());
    assert_eq!(again.body["display_name"], "Ada", "an upsert returns the live smith unchanged");

    let plain = app.post("/v1/smiths", token, json!({"external_id": "user_456"})).await.expect(201);
    assert_eq!(plain.body["config_source"], "agent");
    assert_eq!(plain.body["agent_id"], first.body["agent_id"], "no agent_id lands on the default agent");

    let agent = app.post("/v1/agents", token, json!({"name": "support", "model": "gpt-4o"})).await.expect(201);
    let other =
        app.post("/v1/smiths", token, json!({"external_id": "user_123", "agent_id": agent.id()})).await.expect(201);
    assert_ne!(other.id(), first.id(), "one smith per (external_id, agent)");
    assert_eq!(other.body["effective_config"]["model"], "gpt-4o");
    app.post("/v1/smiths", token, json!({"external_id": "x", "agent_id": "agt_nope"}))
        .await
        .expect_error(404, "agent_not_found");
}

#[tokio::test]
async fn concurrent_creates_of_one_user_make_one_smith() {
    let app = TestApp::start().await;
    let creates = (0..8).map(|_| app.post("/v1/smiths", &app.admin_token, json!({"external_id": "racer"})));
    let answers = futures::future::join_all(creates).await;
    let ids: std::collections::HashSet<String> = answers.iter().map(|a| a.id()).collect();
    assert_eq!(ids.len(), 1);
    assert_eq!(answers.iter().filter(|a| a.status == 201).count(), 1);
}

#[tokio::test]
async fn deleted_smiths_are_gone_and_free_their_external_id() {
    let app = TestApp::start().await;
    let token = &app.admin_token;
    let sid = app.create_smith(token, "gone").await;
    app.delete(&format!("/v1/smiths/{sid}"), token).await.expect(200);
    app.get(&format!("/v1/smiths/{sid}"), token).await.expect_error(404, "smith_not_found");
    app.patch(&format!("/v1/smiths/{sid}"), token, json!({})).await.expect_error(404, "smith_not_found");
    app.delete(&format!("/v1/smiths/{sid}"), token).await.expect_error(404, "smith_not_found");
    let list = app.get("/v1/smiths?external_id=gone", token).await.expect(200);
    assert!(list.body["data"].as_array().unwrap().is_empty());
    let reborn = app.post("/v1/smiths", token, json!({"external_id": "gone"})).await.expect(201);
    assert_ne!(reborn.id(), sid);
}

#[tokio::test]
async fn smiths_filter_and_paginate_newest_first() {
    let app = TestApp::start().await;
    let token = &app.admin_token;
    let mut ids = Vec::new();
    for i in 0..5 {
        let answer =
            app.post("/v1/smiths", token, json!({"external_id": format!("anon:{i}"), "customer_id": "cus_1"})).await;
        ids.push(answer.expect(201).id());
    }
    app.create_smith(token, "user_1").await;
    let agent = app.post("/v1/agents", token, json!({"name": "a2"})).await.expect(201).id();
    app.post("/v1/smiths", token, json!({"external_id": "user_2", "agent_id": agent})).await.expect(201);

    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let page =
            app.get(&format!("/v1/smiths?external_id_prefix=anon:&limit=2&cursor={cursor}"), token).await.expect(200);
        seen.extend(page.body["data"].as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap().to_owned()));
        if !page.body["has_more"].as_bool().unwrap() {
            assert!(page.body["next_cursor"].is_null());
            break;
        }
        cursor = page.body["next_cursor"].as_str().unwrap().to_owned();
    }
    ids.reverse();
    assert_eq!(seen, ids);

    for (query, expected) in [
        ("external_id=user_1".to_owned(), 1),
        ("customer_id=cus_1".to_owned(), 5),
        (format!("agent_id={agent}"), 1),
        ("external_id_prefix=user_".to_owned(), 2),
    ] {
        let page = app.get(&format!("/v1/smiths?{query}"), token).await.expect(200);
        assert_eq!(page.body["data"].as_array().unwrap().len(), expected, "{query}");
    }
}

#[tokio::test]
async fn config_changes_make_revisions_that_can_be_restored() {
    let app = TestApp::start().await;
    let token = &app.admin_token;
    let sid = app.post("/v1/smiths", token, json!({"external_id": "u", "instructions": "v1"})).await.expect(201).id();
    let path = format!("/v1/smiths/{sid}");
    let updated = app.patch(&path, token, json!({"instructions": "v2", "model": "gpt-4o"})).await.expect(200);
    assert_eq!(
        (updated.body["revision"].as_i64(), updated.body["effective_config"]["instructions"].as_str()),
        (Some(2), Some("v2"))
    );
    let renamed = app.patch(&path, token, json!({"display_name": "Ada"})).await.expect(200);
    assert_eq!(renamed.body["revision"], 2, "a display name is not config");
    let cleared = app.patch(&path, token, json!({"instructions": null, "model": null})).await.expect(200);
    assert_eq!(cleared.body["revision"], 3);
    assert_eq!(cleared.body["config_source"], "agent");
    assert_eq!(cleared.body["effective_config"]["instructions"], "You are a helpful assistant.");

    let revisions = app.get(&format!("{path}/revisions"), token).await.expect(200);
    let numbers: Vec<i64> =
        revisions.body["data"].as_array().unwrap().iter().map(|r| r["number"].as_i64().unwrap()).collect();
    assert_eq!(numbers, vec![3, 2, 1]);
    let page = app.get(&format!("{path}/revisions?limit=2"), token).await.expect(200);
    let cursor = page.body["next_cursor"].as_str().unwrap();
    let rest = app.get(&format!("{path}/revisions?limit=2&cursor={cursor}"), token).await.expect(200);
    assert_eq!(rest.body["data"][0]["number"], 1);

    let restored = app.post(&format!("{path}/revisions/1/restore"), token, json!({})).await.expect(200);
    assert_eq!(restored.body["revision"], 4);
    assert_eq!(restored.body["overrides"], json!({"instructions": "v1"}));
    let latest = app.get(&format!("{path}/revisions?limit=1"), token).await.expect(200);
    assert_eq!(latest.body["data"][0]["restored_from"], 1);
    app.post(&format!("{path}/revisions/99/restore"), token, json!({})).await.expect_error(404, "revision_not_found");
    app.post(&format!("{path}/revisions/abc/restore"), token, json!({})).await.expect_error(400, "invalid_path");
}

#[tokio::test]
async fn agents_crud_and_refuse_deletion_while_in_use() {
    let app = TestApp::start().await;
    let token = &app.admin_token;
    let created = app
        .post("/v1/agents", token, json!({"name": "support", "instructions": "Help.", "model": "gemini-2.5-flash", "tools": ["hosted/calculator"], "auto_memory": true}))
        .await
        .expect(201);
    let aid = created.id();
    assert!(aid.starts_with("agt_"));
    assert_eq!(created.body["tools"], json!(["hosted/calculator"]));
    let path = format!("/v1/agents/{aid}");
    let updated = app.patch(&path, token, json!({"instructions": null, "auto_memory": false})).await.expect(200);
    assert!(updated.body["instructions"].is_null());
    assert_eq!(updated.body["model"], "gemini-2.5-flash");

    let sid = app.post("/v1/smiths", token, json!({"external_id": "u", "agent_id": aid})).await.expect(201).id();
    app.delete(&path, token).await.expect_error(409, "agent_in_use");
    app.delete(&format!("/v1/smiths/{sid}"), token).await.expect(200);
    app.delete(&path, token).await.expect(200);
    app.get(&path, token).await.expect_error(404, "agent_not_found");

    let list = app.get("/v1/agents", token).await.expect(200);
    let default = &list.body["data"][0];
    assert_eq!(default["is_default"], true);
    app.delete(&format!("/v1/agents/{}", default["id"].as_str().unwrap()), token)
        .await
        .expect_error(409, "agent_is_default");
    app.post("/v1/agents", token, json!({"name": "x", "tools": [""]}))
        .await
        .expect_error(400, "invalid_tool_reference");
}

#[tokio::test]
async fn smiths_can_be_attached_to_another_agent() {
    let app = TestApp::start().await;
    let token = &app.admin_token;
    let sid = app.create_smith(token, "mover").await;
    let aid = app.post("/v1/agents", token, json!({"name": "b", "model": "gpt-4o-mini"})).await.expect(201).id();
    let moved = app.patch(&format!("/v1/smiths/{sid}"), token, json!({"agent_id": aid})).await.expect(200);
    assert_eq!((moved.body["agent_id"].as_str(), moved.body["revision"].as_i64()), (Some(aid.as_str()), Some(2)));
    assert_eq!(moved.body["effective_config"]["model"], "gpt-4o-mini");
    // Its old (external_id, default agent) slot is free again.
    app.post("/v1/smiths", token, json!({"external_id": "mover"})).await.expect(201);
}
