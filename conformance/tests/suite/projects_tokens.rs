//! Projects (org key) and tokens (tenant admin): minting, scopes, revocation.

use serde_json::json;

use crate::harness::TestApp;

#[tokio::test]
async fn projects_are_created_listed_and_deleted_with_their_tokens() {
    let app = TestApp::start().await;
    let created = app.post("/v1/organization/projects", &app.org_key, json!({"name": "staging"})).await.expect(201);
    let pid = created.id();
    assert!(pid.starts_with("prj_"));
    assert!(created.body["default_agent_id"].as_str().unwrap().starts_with("agt_"));
    app.get(&format!("/v1/organization/projects/{pid}"), &app.org_key).await.expect(200);
    let list = app.get("/v1/organization/projects", &app.org_key).await.expect(200);
    assert_eq!(list.body["data"][0]["id"], pid.as_str(), "newest first");
    assert_eq!(list.body["data"].as_array().unwrap().len(), 2);

    let token = app.post(&format!("/v1/organization/projects/{pid}/tokens"), &app.org_key, json!({})).await.expect(201);
    let secret = token.body["token"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("tha_live_"));
    assert_eq!(token.body["kind"], "tenant_admin");
    app.get("/v1/smiths", &secret).await.expect(200);

    app.delete(&format!("/v1/organization/projects/{pid}"), &app.org_key).await.expect(200);
    app.get("/v1/smiths", &secret).await.expect_error(401, "invalid_token");
    app.get(&format!("/v1/organization/projects/{pid}"), &app.org_key).await.expect_error(404, "project_not_found");
    app.post("/v1/organization/projects", &app.org_key, json!({"name": ""}))
        .await
        .expect_error(400, "invalid_parameter");
}

#[tokio::test]
async fn tokens_show_their_secret_once_and_are_stored_hashed() {
    let app = TestApp::start().await;
    let created = app
        .post("/v1/tenant/tokens", &app.admin_token, json!({"kind": "tenant_admin", "name": "ci"}))
        .await
        .expect(201);
    let secret = created.body["token"].as_str().unwrap().to_owned();
    let tid = created.id();
    assert!(created.body["preview"].as_str().unwrap().starts_with("tha_live_"));

    let list = app.get("/v1/tenant/tokens", &app.admin_token).await.expect(200);
    let text = list.body.to_string();
    assert!(!text.contains(&secret) && !text.contains(&app.admin_token), "secrets never come back");
    assert!(list.body["data"].as_array().unwrap().iter().all(|t| t.get("token").is_none()));

    use sea_orm::EntityTrait;
    let stored = ingram_core::store::token::Entity::find_by_id(tid.clone()).one(&app.state.db).await.unwrap().unwrap();
    assert_ne!(stored.secret_hash, secret);
    assert!(!stored.secret_hash.contains(&secret[9..]));

    app.get("/v1/smiths", &secret).await.expect(200);
    app.delete(&format!("/v1/tenant/tokens/{tid}"), &app.admin_token).await.expect(200);
    app.get("/v1/smiths", &secret).await.expect_error(401, "invalid_token");
    app.delete(&format!("/v1/tenant/tokens/{tid}"), &app.admin_token).await.expect_error(404, "token_not_found");
}

#[tokio::test]
async fn smith_tokens_see_only_their_smith_and_cannot_manage() {
    let app = TestApp::start().await;
    let mine = app.create_smith(&app.admin_token, "u1").await;
    let theirs = app.create_smith(&app.admin_token, "u2").await;
    let token = app.smith_token(&mine).await;
    assert!(token.starts_with("ths_live_"));

    app.get(&format!("/v1/smiths/{mine}"), &token).await.expect(200);
    app.get(&format!("/v1/smiths/{theirs}"), &token).await.expect_error(404, "smith_not_found");
    let list = app.get("/v1/smiths", &token).await.expect(200);
    let ids: Vec<&str> = list.body["data"].as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(ids, vec![mine.as_str()]);

    app.get("/v1/tenant/tokens", &token).await.expect_error(403, "permission_denied");
    app.post("/v1/tenant/tokens", &token, json!({"kind": "smith", "smith_id": mine}))
        .await
        .expect_error(403, "permission_denied");
    app.patch(&format!("/v1/smiths/{mine}"), &token, json!({"instructions": "obey me"}))
        .await
        .expect_error(403, "permission_denied");
    app.post("/v1/smiths", &token, json!({"external_id": "u3"})).await.expect_error(403, "permission_denied");
    app.get("/v1/agents", &token).await.expect_error(403, "permission_denied");

    app.delete(&format!("/v1/smiths/{mine}"), &app.admin_token).await.expect(200);
    app.get(&format!("/v1/smiths/{mine}"), &token).await.expect_error(401, "invalid_token");
}

#[tokio::test]
async fn scopes_restrict_and_cannot_be_escalated() {
    let app = TestApp::start().await;
    let reader = app
        .post(
            "/v1/tenant/tokens",
            &app.admin_token,
            json!({"kind": "tenant_admin", "scopes": ["smiths:read", "tokens:write"]}),
        )
        .await
        .expect(201);
    assert_eq!(reader.body["scopes"], json!(["smiths:read", "tokens:write"]));
    let reader = reader.body["token"].as_str().unwrap().to_owned();
    app.get("/v1/smiths", &reader).await.expect(200);
    let denied =
        app.post("/v1/smiths", &reader, json!({"external_id": "x"})).await.expect_error(403, "insufficient_scope");
    assert_eq!(denied.body["error"]["type"], "permission_error");
    app.get("/v1/agents", &reader).await.expect_error(403, "insufficient_scope");
    app.post("/v1/tenant/tokens", &reader, json!({"kind": "tenant_admin", "scopes": ["agents:write"]}))
        .await
        .expect_error(403, "insufficient_scope");
    // A scoped caller's unscoped request inherits its scopes rather than widening them.
    let child = app.post("/v1/tenant/tokens", &reader, json!({"kind": "tenant_admin"})).await.expect(201);
    assert_eq!(child.body["scopes"], json!(["smiths:read", "tokens:write"]));
    app.post("/v1/tenant/tokens", &app.admin_token, json!({"kind": "tenant_admin", "scopes": ["smiths:fly"]}))
        .await
        .expect_error(400, "invalid_body");
}

#[tokio::test]
async fn token_requests_are_validated() {
    let app = TestApp::start().await;
    let token = &app.admin_token;
    app.post("/v1/tenant/tokens", token, json!({"kind": "smith"})).await.expect_error(400, "invalid_parameter");
    app.post("/v1/tenant/tokens", token, json!({"kind": "smith", "smith_id": "smt_nope"}))
        .await
        .expect_error(404, "smith_not_found");
    app.post("/v1/tenant/tokens", token, json!({"kind": "org"})).await.expect_error(400, "invalid_parameter");
    let sid = app.create_smith(token, "u").await;
    app.post("/v1/tenant/tokens", token, json!({"kind": "tenant_admin", "smith_id": sid}))
        .await
        .expect_error(400, "invalid_parameter");
    app.post("/v1/tenant/tokens", token, json!({"kind": "smith", "smith_id": sid, "scopes": ["tokens:write"]}))
        .await
        .expect_error(400, "invalid_parameter");
}

#[tokio::test]
async fn a_project_token_can_be_minted_without_a_body() {
    let app = TestApp::start().await;
    let path = format!("/v1/organization/projects/{}/tokens", app.project_id);
    let minted = app.call("POST", &path, Some(&app.org_key), None).await.expect(201);
    assert_eq!(minted.body["kind"], "tenant_admin");
}

#[tokio::test]
async fn bootstrap_creates_operator_chosen_secrets_once_and_never_reinstates_or_moves_them() {
    use ingram_core::bootstrap::{self, Chosen};
    let app = TestApp::start().await;
    let chosen =
        || Chosen { org_key: Some("ik_org_chosen-by-ops".into()), admin_token: Some("tha_live_chosen-by-ops".into()) };
    let again = bootstrap::ensure(&app.state.db, chosen()).await.unwrap();
    assert!(!again.created && again.new_org_key.is_none() && again.new_admin_token.is_none(), "nothing new is printed");
    assert_eq!(again.project_id.as_str(), app.project_id);
    app.get("/v1/smiths", "tha_live_chosen-by-ops").await.expect(200);
    app.get("/v1/organization/projects", "ik_org_chosen-by-ops").await.expect(200);

    // Restarting with the same secrets changes nothing; a revoked chosen token stays revoked.
    bootstrap::ensure(&app.state.db, chosen()).await.unwrap();
    let tokens = app.get("/v1/tenant/tokens?limit=100", &app.admin_token).await.expect(200);
    assert_eq!(tokens.body["data"].as_array().unwrap().len(), 2, "the bootstrap token and the chosen one, once");
    let chosen_token =
        tokens.body["data"].as_array().unwrap().iter().find(|t| t["preview"] == "tha_live_cho…").unwrap();
    app.delete(&format!("/v1/tenant/tokens/{}", chosen_token["id"].as_str().unwrap()), &app.admin_token)
        .await
        .expect(200);
    bootstrap::ensure(&app.state.db, chosen()).await.unwrap();
    app.get("/v1/smiths", "tha_live_chosen-by-ops").await.expect_error(401, "invalid_token");
}

#[tokio::test]
async fn a_chosen_admin_token_never_moves_to_another_project() {
    use ingram_core::bootstrap::{self, Chosen};
    let app = TestApp::start().await;
    let chosen = || Chosen { org_key: None, admin_token: Some("tha_live_pinned-by-ops".into()) };
    bootstrap::ensure(&app.state.db, chosen()).await.unwrap();
    // A second project appears, then the first (the token's) is deleted.
    let (other_project, other_token) = app.other_project().await;
    app.delete(&format!("/v1/organization/projects/{}", app.project_id), &app.org_key).await.expect(200);
    bootstrap::ensure(&app.state.db, chosen()).await.unwrap();
    app.get("/v1/smiths", "tha_live_pinned-by-ops").await.expect_error(401, "invalid_token");
    let tokens = app.get("/v1/tenant/tokens?limit=100", &other_token).await.expect(200);
    assert!(
        tokens.body["data"].as_array().unwrap().iter().all(|t| t["preview"] != "tha_live_pin…"),
        "the chosen token was not re-attached to {other_project}"
    );
}

#[tokio::test]
async fn a_chosen_secret_that_names_another_token_stops_the_server() {
    use ingram_core::bootstrap::{self, Chosen};
    let app = TestApp::start().await;
    // The operator sets INGRAM_ADMIN_TOKEN to the org key's secret.
    let clash = Chosen { org_key: None, admin_token: Some(app.org_key.clone()) };
    let refused = bootstrap::ensure(&app.state.db, clash).await.err().expect("a conflict stops the start");
    assert_eq!(refused.code, "bootstrap_secret_conflict");
    assert!(refused.message.contains("INGRAM_ADMIN_TOKEN"), "{}", refused.message);
    app.get("/v1/organization/projects", &app.org_key).await.expect(200);
}

/// An org key's project tokens obey the same grant rules and limits as any other.
#[tokio::test]
async fn project_names_and_org_minted_token_names_are_bounded() {
    let app = TestApp::start().await;
    let long = "n".repeat(201);
    app.post("/v1/organization/projects", &app.org_key, json!({"name": long}))
        .await
        .expect_error(400, "invalid_parameter");
    let created = app.post("/v1/organization/projects", &app.org_key, json!({"name": "p"})).await.expect(201);
    let tokens = format!("/v1/organization/projects/{}/tokens", created.id());
    app.post(&tokens, &app.org_key, json!({"name": long})).await.expect_error(400, "limit_exceeded");
    app.post(&tokens, &app.org_key, json!({"name": "ci"})).await.expect(201);
}
