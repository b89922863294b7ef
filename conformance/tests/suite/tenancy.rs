//! The tenancy matrix, derived from the spec: every operation, called with a token of another
//! project (or organization), or with a smith token for another smith, finds nothing and
//! changes nothing. An operation added to the spec is covered without editing this file.

use std::collections::HashMap;

use reqwest::Method;
use sea_orm::ActiveModelTrait;
use sea_orm::ActiveValue::Set;
use serde_json::json;

use crate::harness::TestApp;
use crate::spec::{Operation, operations};

/// Path parameters that name a slot inside the caller's own project (its key for a
/// provider, its MCP server of that name) or what every project shares (a catalog entry),
/// not a resource id: an intruder using them reaches its own slot, so the matrix only checks
/// that nothing of the victim's leaks or changes.
const CALLER_SCOPED_PARAMS: &[&str] = &["provider", "name", "slug"];

fn targets_victim_resource(operation: &Operation) -> bool {
    operation.path_params().iter().any(|name| !CALLER_SCOPED_PARAMS.contains(&name.as_str()))
}

/// Resources of the victim project, one per path parameter name the spec uses.
struct Victim {
    params: HashMap<&'static str, String>,
    /// Ids that must never appear in an answer to the intruder.
    secrets: Vec<String>,
}

async fn victim(app: &TestApp) -> Victim {
    let token = &app.admin_token;
    let sid = app
        .post("/v1/smiths", token, json!({"external_id": "victim", "instructions": "private"}))
        .await
        .expect(201)
        .id();
    let aid = app.post("/v1/agents", token, json!({"name": "victim-agent"})).await.expect(201).id();
    let tid =
        app.post("/v1/tenant/tokens", token, json!({"kind": "tenant_admin", "name": "victim"})).await.expect(201).id();
    let input = json!([{"role": "user", "content": [
        {"type": "text", "text": "secret plans"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,c2VjcmV0IGltYWdl"}},
    ]}]);
    let run = app.post(&format!("/v1/smiths/{sid}/runs"), token, json!({"input": input})).await.expect(200);
    let rid = run.id();
    let fid = run.body["input"][0]["content"][1]["image_url"]["file_id"].as_str().unwrap().to_owned();
    let thread = run.body["thread_id"].as_str().unwrap().to_owned();
    let mid =
        app.post(&format!("/v1/smiths/{sid}/memories"), token, json!({"text": "secret memory"})).await.expect(201).id();
    app.patch(&format!("/v1/smiths/{sid}/blocks/human"), token, json!({"value": "secret block"})).await.expect(200);
    app.call(
        "PUT",
        "/v1/tenant/model_keys/openai",
        Some(token),
        Some(json!({"api_key": "sk-victim-key", "base_url": "http://127.0.0.1:9/v1"})),
    )
    .await
    .expect(200);
    // A run waiting for a person's approval of its calculator call.
    let gated =
        json!({"external_id": "victim-gated", "tools": ["hosted/calculator"], "tool_approvals": {"*": "always"}});
    let gated = app.post("/v1/smiths", token, gated).await.expect(201).id();
    let ask = json!({"input": [{"role": "user", "content": "/tool hosted__calculator {\"expression\": \"40+2\"}"}]});
    let paused = app.post(&format!("/v1/smiths/{gated}/runs"), token, ask).await.expect(200);
    let apr = paused.body["required_action"]["approvals"][0]["id"].as_str().unwrap().to_owned();
    // Nothing listens there: registered with its error, and its header sealed.
    let mcp = json!({"url": "http://127.0.0.1:9/victim-mcp-path", "headers": {"X-Secret": "victim-header-value"}});
    app.call("PUT", "/v1/tenant/mcp/victim-mcp", Some(token), Some(mcp)).await.expect(201);
    let params = HashMap::from([
        ("sid", sid.clone()),
        ("aid", aid.clone()),
        ("tid", tid.clone()),
        ("pid", app.project_id.clone()),
        ("n", "1".to_owned()),
        ("rid", rid.clone()),
        ("provider", "openai".to_owned()),
        ("fid", fid.clone()),
        ("mid", mid.clone()),
        ("label", "human".to_owned()),
        ("name", "victim-mcp".to_owned()),
        ("slug", "github".to_owned()),
        ("id", apr.clone()),
    ]);
    Victim {
        params,
        secrets: vec![
            sid,
            aid,
            tid,
            rid,
            thread,
            fid,
            app.project_id.clone(),
            "sk-victim".to_owned(),
            "secret plans".to_owned(),
            mid,
            "secret memory".to_owned(),
            "secret block".to_owned(),
            "victim-mcp-path".to_owned(),
            apr,
            gated,
            "victim-header-value".to_owned(),
        ],
    }
}

fn concrete_path(operation: &Operation, params: &HashMap<&'static str, String>) -> String {
    let mut path = operation.path.clone();
    for name in operation.path_params() {
        let value = params.get(name.as_str()).unwrap_or_else(|| {
            panic!("tenancy matrix: add a victim resource for path parameter '{name}' ({})", operation.operation_id)
        });
        path = path.replace(&format!("{{{name}}}"), value);
    }
    path
}

fn body_for(operation: &Operation) -> Option<serde_json::Value> {
    let mut body = crate::spec::minimal_body(operation)
        .or_else(|| matches!(operation.method.as_str(), "POST" | "PATCH" | "PUT").then(|| json!({})))?;
    // A body that names a model names the offline one: the matrix never reaches a provider.
    if let Some(model) = body.get_mut("model") {
        *model = json!("ingram/offline");
    }
    Some(body)
}

/// No victim id may appear in an answer, except one the caller itself put in the path (a
/// 404 message may name the id it did not find).
fn assert_no_leak(what: &str, path: &str, body: &serde_json::Value, secrets: &[String]) {
    let text = body.to_string();
    for secret in secrets.iter().filter(|secret| !path.contains(secret.as_str())) {
        assert!(!text.contains(secret.as_str()), "{what} leaked {secret}: {text}");
    }
}

async fn assert_victim_intact(app: &TestApp, victim: &Victim) {
    let token = &app.admin_token;
    app.get(&format!("/v1/smiths/{}", victim.params["sid"]), token).await.expect(200);
    app.get(&format!("/v1/agents/{}", victim.params["aid"]), token).await.expect(200);
    let tokens = app.get("/v1/tenant/tokens?limit=100", token).await.expect(200);
    assert!(tokens.body.to_string().contains(&victim.params["tid"]), "the victim's token survived");
    app.get(&format!("/v1/smiths/{}/runs/{}", victim.params["sid"], victim.params["rid"]), token).await.expect(200);
    app.get(&format!("/v1/files/{}", victim.params["fid"]), token).await.expect(200);
    let memory =
        app.get(&format!("/v1/smiths/{}/memories/{}", victim.params["sid"], victim.params["mid"]), token).await;
    assert_eq!(memory.expect(200).body["text"], "secret memory", "the victim's memory survived unchanged");
    let blocks = app.get(&format!("/v1/smiths/{}/blocks", victim.params["sid"]), token).await.expect(200);
    assert_eq!(blocks.body["data"][0]["value"], "secret block", "the victim's block survived unchanged");
    let keys = app.get("/v1/tenant/model_keys", token).await.expect(200);
    assert_eq!(keys.body["data"].as_array().unwrap().len(), 1, "the victim's model key survived");
    let mcp = app.get("/v1/tenant/mcp/victim-mcp", token).await.expect(200);
    assert_eq!(mcp.body["url"], "http://127.0.0.1:9/victim-mcp-path", "the victim's MCP server survived unchanged");
    assert_eq!(mcp.body["headers"], json!({"X-Secret": "********"}));
    let approval = app.get(&format!("/v1/approvals/{}", victim.params["id"]), token).await.expect(200);
    assert_eq!(approval.body["status"], "pending", "the victim's approval is still undecided");
}

#[tokio::test]
async fn another_projects_token_never_sees_or_changes_data() {
    let app = TestApp::start().await;
    let victim = victim(&app).await;
    let (_, intruder) = app.other_project().await;
    let intruder_org_key = second_organization_key(&app).await;

    let mut covered = 0;
    for operation in operations().into_iter().filter(Operation::is_authenticated) {
        let token = if operation.path.starts_with("/v1/organization") { &intruder_org_key } else { &intruder };
        let path = concrete_path(&operation, &victim.params);
        let answer = app.call(&operation.method, &path, Some(token), body_for(&operation)).await;
        let what = format!("{} {path}", operation.method);
        if targets_victim_resource(&operation) {
            assert_eq!(answer.status, 404, "{what}: another tenant's resource must be a 404: {:#}", answer.body);
        }
        assert!(answer.status < 500, "{what}: {:#}", answer.body);
        assert_no_leak(&what, &path, &answer.body, &victim.secrets);
        covered += 1;
    }
    assert!(covered >= 20, "the matrix covered only {covered} operations");
    assert_victim_intact(&app, &victim).await;
}

#[tokio::test]
async fn a_smith_token_never_reaches_beyond_its_smith() {
    let app = TestApp::start().await;
    let victim = victim(&app).await;
    let own = app.create_smith(&app.admin_token, "me").await;
    let token = app.smith_token(&own).await;

    for operation in operations().into_iter().filter(Operation::is_authenticated) {
        let path = concrete_path(&operation, &victim.params);
        let answer = app.call(&operation.method, &path, Some(&token), body_for(&operation)).await;
        let what = format!("{} {path}", operation.method);
        // Operations that name a victim resource must refuse; the others act on the token's
        // own smith (its list, its chat completion) and may answer anything but a 5xx, as
        // long as nothing of the victim's comes back.
        if targets_victim_resource(&operation) {
            assert!(matches!(answer.status, 403 | 404), "{what} answered {}: {:#}", answer.status, answer.body);
        } else {
            assert!(answer.status < 500, "{what} answered {}: {:#}", answer.status, answer.body);
        }
        assert_no_leak(&what, &path, &answer.body, &victim.secrets);
    }
    assert_victim_intact(&app, &victim).await;
}

/// An org key of another organization (the API has no way to create one, so the test does).
async fn second_organization_key(app: &TestApp) -> String {
    use ingram_core::auth::TokenKind;
    use ingram_core::domain::tokens;
    use ingram_core::store::organization;
    let org = organization::ActiveModel {
        id: Set(ingram_core::ids::OrganizationId::generate()),
        name: Set("intruders".into()),
        created_at: Set(ingram_core::store::now()),
    }
    .insert(&app.state.db)
    .await
    .unwrap();
    let minted = tokens::mint(
        &app.state.db,
        tokens::Mint {
            kind: TokenKind::Org,
            organization_id: &org.id,
            project_id: None,
            smith_id: None,
            name: None,
            scopes: None,
            secret: None,
        },
    )
    .await
    .unwrap();
    minted.secret
}

/// The caches (docs/performance.md) answer lookups the database would: a smith its owner just
/// read, and so holds in memory, is still another project's 404 and another smith's 404.
#[tokio::test]
async fn a_cached_smith_is_no_one_elses() {
    let app = TestApp::start().await;
    let sid = app.create_smith(&app.admin_token, "cached").await;
    let path = format!("/v1/smiths/{sid}");
    let chat = json!({"model": "ingram/offline", "messages": [{"role": "user", "content": "hi"}]});
    let (_, intruder) = app.other_project().await;
    let other_smith = app.create_smith(&app.admin_token, "neighbour").await;
    let smith_token = app.smith_token(&other_smith).await;
    for token in [&intruder, &smith_token] {
        // Warm: the owner's reads put the smith and its token in the caches.
        app.get(&path, &app.admin_token).await.expect(200);
        app.get(&path, token).await.expect_error(404, "smith_not_found");
        app.get(&format!("{path}/runs"), token).await.expect_error(404, "smith_not_found");
    }
    app.get(&path, &app.admin_token).await.expect(200);
    let ask = app.request(Method::POST, "/v1/chat/completions").bearer_auth(&intruder).header("ic-smith-id", &sid);
    app.send("POST", "/v1/chat/completions", ask.json(&chat)).await.expect_error(404, "smith_not_found");
    // "Ensure smith" by the same external id in another project makes that project's own.
    let theirs = app.post("/v1/smiths", &intruder, json!({"external_id": "cached"})).await.expect(201).id();
    assert_ne!(theirs, sid);
}
