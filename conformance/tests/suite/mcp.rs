//! MCP servers of a project: a real server written with the official MCP Python SDK
//! (conformance/mcp/server.py, installed pinned by conformance/mcp/install.sh) behind a bearer
//! header, registered, refreshed and called by smiths on both protocol eras; servers that
//! refuse; the registry's rules; the catalog.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Respond, ResponseTemplate};

use crate::harness::{TestApp, openai_app, openai_turn};

const TOKEN: &str = "mcp-secret-token-1234";

/// Which protocol eras the Python server answers.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Era {
    /// The SDK's own: 2026-07-28 (stateless) and the initialize-era versions.
    Both,
    /// Only the initialize era (2025-11-25 and before), as servers from before 2026-07-28.
    Legacy,
}

/// conformance/mcp/server.py, running until dropped.
pub struct PythonMcp {
    pub url: String,
    base: String,
    child: Child,
}

fn python() -> &'static str {
    static PYTHON: OnceLock<String> = OnceLock::new();
    PYTHON.get_or_init(|| {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/mcp/install.sh");
        let installed = Command::new(root).output().expect("conformance/mcp/install.sh runs");
        assert!(
            installed.status.success(),
            "installing the MCP SDK failed: {}",
            String::from_utf8_lossy(&installed.stderr)
        );
        String::from_utf8(installed.stdout).unwrap().trim().to_owned()
    })
}

impl PythonMcp {
    pub async fn start(era: Era) -> Self {
        tokio::task::spawn_blocking(move || {
            let script = concat!(env!("CARGO_MANIFEST_DIR"), "/mcp/server.py");
            let era = if era == Era::Legacy { "legacy" } else { "dual" };
            let mut child = Command::new(python())
                .args([script, "--token", TOKEN, "--era", era])
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("the MCP server starts");
            let mut line = String::new();
            BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).expect("the server prints its port");
            let port: u16 = line.trim().parse().unwrap_or_else(|_| panic!("not a port: {line:?}"));
            let base = format!("http://127.0.0.1:{port}");
            Self { url: format!("{base}/mcp"), base, child }
        })
        .await
        .unwrap()
    }

    /// What reached /mcp: JSON-RPC method, protocol version header, session id, tool, arguments.
    pub async fn requests(&self) -> Vec<Value> {
        let answer = reqwest::get(format!("{}/requests", self.base)).await.unwrap();
        answer.json().await.unwrap()
    }

    /// The tools/call requests that reached the server.
    pub async fn calls(&self) -> Vec<Value> {
        self.requests().await.into_iter().filter(|request| request["method"] == "tools/call").collect()
    }
}

impl Drop for PythonMcp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Registers the server as `name`, with the bearer header it needs.
pub async fn register(app: &TestApp, name: &str, server: &PythonMcp) -> Value {
    let body =
        json!({"url": server.url, "headers": {"Authorization": format!("Bearer {TOKEN}")}, "description": "Weather"});
    app.call("PUT", &format!("/v1/tenant/mcp/{name}"), Some(&app.admin_token), Some(body)).await.expect(201).body
}

fn say(text: &str) -> Value {
    json!({"input": [{"role": "user", "content": text}]})
}

fn tool_names(server: &Value) -> Vec<&str> {
    let mut names: Vec<&str> =
        server["tools"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    names.sort_unstable();
    names
}

async fn registered_refreshed_and_called(era: Era, expected_version: &str) {
    let server = PythonMcp::start(era).await;
    let app = TestApp::start().await;
    let registered = register(&app, "weather", &server).await;
    assert_eq!(registered["error"], Value::Null, "{registered:#}");
    assert_eq!(tool_names(&registered), ["add", "fail", "forecast"]);
    assert_eq!(registered["protocol_version"], expected_version);
    assert_eq!(registered["headers"], json!({"Authorization": "********"}), "header values are never shown");
    assert!(!registered.to_string().contains(TOKEN));
    let forecast = registered["tools"].as_array().unwrap().iter().find(|t| t["name"] == "forecast").unwrap();
    assert_eq!(forecast["input_schema"]["properties"]["city"]["type"], "string");
    assert_eq!(forecast["description"], "The weather forecast for a city.");

    let listed = app.get("/v1/tenant/mcp", &app.admin_token).await.expect(200);
    assert_eq!(listed.body["data"][0]["name"], "weather");
    let refreshed = app.post("/v1/tenant/mcp/weather/refresh", &app.admin_token, json!({})).await.expect(200);
    assert_eq!(tool_names(&refreshed.body), ["add", "fail", "forecast"]);
    assert_eq!(refreshed.body["error"], Value::Null);

    // A smith naming one tool and the whole server: the effective config lists what resolved.
    let sid = app
        .post("/v1/smiths", &app.admin_token, json!({"external_id": "traveller", "tools": ["mcp/weather/*"]}))
        .await
        .expect(201)
        .id();
    let smith = app.get(&format!("/v1/smiths/{sid}"), &app.admin_token).await.expect(200);
    let mut resolved: Vec<&str> = smith.body["effective_config"]["resolved_tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    resolved.sort_unstable();
    assert_eq!(resolved, ["mcp__weather__add", "mcp__weather__fail", "mcp__weather__forecast"]);

    let streamed = app
        .stream_post(
            &format!("/v1/smiths/{sid}/runs"),
            &app.admin_token,
            json!({"input": [{"role": "user", "content": "/tool mcp__weather__forecast {\"city\": \"Paris\"}"}], "stream": true}),
        )
        .await;
    let events = streamed.events();
    let executing = events.iter().position(|e| *e == "tool.executing").expect("tool.executing");
    let completed = events.iter().position(|e| *e == "tool.completed").expect("tool.completed");
    assert!(executing < completed && events.last() == Some(&"run.completed"), "{events:?}");
    assert_eq!(streamed.frames[executing].data["tool_call"]["name"], "mcp__weather__forecast");
    assert_eq!(streamed.frames[completed].data["output"], "Sunny in Paris, 21 degrees.");
    let run_id = streamed.frames[0].data["run_id"].as_str().unwrap().to_owned();
    let run = app.get(&format!("/v1/smiths/{sid}/runs/{run_id}"), &app.admin_token).await.expect(200);
    let recorded = &run.body["output"]["server_tool_calls"][0];
    assert_eq!(
        (recorded["tool"].as_str(), recorded["is_error"].as_bool()),
        (Some("mcp/weather/forecast"), Some(false))
    );
    assert_eq!(run.body["output"]["content"], "The tool mcp__weather__forecast returned: Sunny in Paris, 21 degrees.");

    // The call reached the server, over the era agreed, with the server's own tool name.
    let calls = server.calls().await;
    assert_eq!(calls.len(), 1, "{calls:#?}");
    assert_eq!((calls[0]["tool"].as_str(), &calls[0]["arguments"]), (Some("forecast"), &json!({"city": "Paris"})));
    assert_eq!(calls[0]["protocol_version"], expected_version);
    match era {
        Era::Legacy => assert!(calls[0]["session_id"].is_string(), "the initialize era runs in a session"),
        Era::Both => assert!(calls[0]["session_id"].is_null(), "2026-07-28 is stateless"),
    }

    // The server's own tool error goes back to the model; the run completes.
    let failed = app
        .post(
            &format!("/v1/smiths/{sid}/runs"),
            &app.admin_token,
            say("/tool mcp__weather__fail {\"reason\": \"boom\"}"),
        )
        .await;
    let failed = failed.expect(200);
    assert_eq!(failed.body["status"], "completed");
    let recorded = &failed.body["output"]["server_tool_calls"][0];
    assert_eq!(recorded["is_error"], true, "{recorded:#}");
    assert!(recorded["output"].as_str().unwrap().contains("boom"), "{recorded:#}");

    // Removed: runs no longer offer its tools.
    app.delete("/v1/tenant/mcp/weather", &app.admin_token).await.expect(200);
    app.get("/v1/tenant/mcp/weather", &app.admin_token).await.expect_error(404, "mcp_server_not_found");
    let smith = app.get(&format!("/v1/smiths/{sid}"), &app.admin_token).await.expect(200);
    assert_eq!(smith.body["effective_config"]["resolved_tools"], json!([]));
}

#[tokio::test]
async fn a_real_mcp_server_is_registered_refreshed_and_called_over_2026_07_28() {
    registered_refreshed_and_called(Era::Both, "2026-07-28").await;
}

#[tokio::test]
async fn a_real_mcp_server_is_registered_refreshed_and_called_over_2025_11_25() {
    registered_refreshed_and_called(Era::Legacy, "2025-11-25").await;
}

/// Answers like OpenAI: a call of the MCP tool first, then (once the tool's result is in the
/// conversation) a reply.
struct OpenAiCallsTheTool;

impl Respond for OpenAiCallsTheTool {
    fn respond(&self, request: &wiremock::Request) -> ResponseTemplate {
        if String::from_utf8_lossy(&request.body).contains("\"role\":\"tool\"") {
            openai_turn("It will be sunny.", &[], 1)
        } else {
            openai_turn("", &[("call_w", "mcp__weather__forecast", "{\"city\":\"Oslo\"}")], 1)
        }
    }
}

#[tokio::test]
async fn on_a_wiremocked_openai_the_model_calls_the_mcp_tool_on_both_eras() {
    for era in [Era::Both, Era::Legacy] {
        let server = PythonMcp::start(era).await;
        let mock = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/v1/chat/completions"))
            .respond_with(OpenAiCallsTheTool)
            .mount(&mock)
            .await;
        let app = openai_app(&mock).await;
        register(&app, "weather", &server).await;
        let body = json!({"external_id": "gpt-traveller", "model": "gpt-4o", "tools": ["mcp/weather/forecast"]});
        let sid = app.post("/v1/smiths", &app.admin_token, body).await.expect(201).id();

        let streamed = app
            .stream_post(
                &format!("/v1/smiths/{sid}/runs"),
                &app.admin_token,
                json!({"input": [{"role": "user", "content": "Weather in Oslo?"}], "stream": true}),
            )
            .await;
        let events = streamed.events();
        assert!(events.contains(&"tool.executing") && events.contains(&"tool.completed"), "{era:?}: {events:?}");
        assert_eq!(events.last(), Some(&"run.completed"), "{era:?}: {events:?}");
        let requests = mock.received_requests().await.unwrap();
        let first: Value = serde_json::from_slice(&requests[0].body).unwrap();
        let offered = &first["tools"][0]["function"];
        assert_eq!(offered["name"], "mcp__weather__forecast");
        assert_eq!(offered["parameters"]["properties"]["city"]["type"], "string", "the server's own schema");
        assert_eq!(first["tools"].as_array().unwrap().len(), 1, "only the tool the config names");
        let second: Value = serde_json::from_slice(&requests[1].body).unwrap();
        let result = second["messages"].as_array().unwrap().iter().find(|m| m["role"] == "tool").unwrap();
        assert_eq!(result["content"], "Sunny in Oslo, 21 degrees.");
        let calls = server.calls().await;
        assert_eq!(calls.len(), 1, "{era:?}");
        assert_eq!(calls[0]["arguments"], json!({"city": "Oslo"}));

        // Chat Completions never shows the server-side call to the client.
        let completion = app
            .post(
                "/v1/chat/completions",
                &app.admin_token,
                json!({"model": "gpt-4o", "user": "gpt-traveller", "messages": [{"role": "user", "content": "Oslo?"}]}),
            )
            .await
            .expect(200);
        let message = &completion.body["choices"][0]["message"];
        assert_eq!(message["content"], "It will be sunny.");
        assert!(message["tool_calls"].is_null() || message["tool_calls"] == json!([]), "{message}");
    }
}

#[tokio::test]
async fn servers_that_refuse_are_reported_with_a_code_and_never_as_healthy() {
    let server = PythonMcp::start(Era::Both).await;
    let app = TestApp::start().await;

    // The wrong credentials.
    let body = json!({"url": server.url, "headers": {"Authorization": "Bearer wrong"}});
    let refused = app.call("PUT", "/v1/tenant/mcp/locked", Some(&app.admin_token), Some(body)).await.expect(201);
    assert_eq!(refused.body["error"]["code"], "mcp_unauthorized", "{:#}", refused.body);
    assert_eq!(refused.body["tools"], json!([]));
    // No credentials at all.
    let body = json!({"url": server.url});
    let refused = app.call("PUT", "/v1/tenant/mcp/locked", Some(&app.admin_token), Some(body)).await.expect(200);
    assert_eq!(refused.body["error"]["code"], "mcp_unauthorized");
    assert_eq!(refused.body["headers"], json!({}), "a replacement replaces the headers too");

    // Nothing listening.
    let closed = json!({"url": "http://127.0.0.1:9/mcp"});
    let unreachable = app.call("PUT", "/v1/tenant/mcp/gone", Some(&app.admin_token), Some(closed)).await.expect(201);
    assert_eq!(unreachable.body["error"]["code"], "mcp_unreachable", "{:#}", unreachable.body);

    // Something that is not an MCP server.
    let mock = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(404).set_body_string("Not Found"))
        .mount(&mock)
        .await;
    let body = json!({"url": format!("{}/mcp", mock.uri())});
    let not_mcp = app.call("PUT", "/v1/tenant/mcp/web", Some(&app.admin_token), Some(body)).await.expect(201);
    let code = not_mcp.body["error"]["code"].as_str().unwrap();
    assert!(matches!(code, "mcp_http_error" | "mcp_protocol_error"), "{:#}", not_mcp.body);

    // A healthy server that goes away keeps its tools on refresh, with the reason.
    let healthy = register(&app, "weather", &server).await;
    assert_eq!(healthy["error"], Value::Null);
    drop(server);
    let refreshed = app.post("/v1/tenant/mcp/weather/refresh", &app.admin_token, json!({})).await.expect(200);
    assert_eq!(refreshed.body["error"]["code"], "mcp_unreachable", "{:#}", refreshed.body);
    assert_eq!(tool_names(&refreshed.body), ["add", "fail", "forecast"]);
    // A run calling it gets the failure as the tool's answer, and completes.
    let sid = app
        .post("/v1/smiths", &app.admin_token, json!({"external_id": "stranded", "tools": ["mcp/weather/add"]}))
        .await
        .expect(201)
        .id();
    let run = app
        .post(&format!("/v1/smiths/{sid}/runs"), &app.admin_token, say("/tool mcp__weather__add {\"a\": 1, \"b\": 2}"))
        .await;
    let run = run.expect(200);
    assert_eq!(run.body["status"], "completed");
    assert_eq!(run.body["output"]["server_tool_calls"][0]["is_error"], true);
}

#[tokio::test]
async fn an_mcp_url_on_loopback_is_refused_unless_the_egress_allow_list_names_it() {
    let server = PythonMcp::start(Era::Both).await;
    let app = TestApp::start_with(ingram_core::settings::Settings::for_tests()).await;
    let body = json!({"url": server.url, "headers": {"Authorization": format!("Bearer {TOKEN}")}});
    let refused = app.call("PUT", "/v1/tenant/mcp/local", Some(&app.admin_token), Some(body)).await;
    let refused = refused.expect_error(400, "egress_denied");
    assert_eq!(refused.body["error"]["param"], "url");
    app.get("/v1/tenant/mcp/local", &app.admin_token).await.expect_error(404, "mcp_server_not_found");
    // A name that resolves to loopback passes the save-time check and is refused at connection.
    let by_name = json!({"url": server.url.replace("127.0.0.1", "localhost")});
    let named = app.call("PUT", "/v1/tenant/mcp/local", Some(&app.admin_token), Some(by_name)).await.expect(201);
    assert_eq!(named.body["error"]["code"], "egress_denied", "{:#}", named.body);
    assert!(server.requests().await.is_empty(), "nothing reached the server");
}

#[tokio::test]
async fn the_registry_checks_what_it_is_given_and_only_tenant_tokens_use_it() {
    let app = TestApp::start().await;
    let put = |name: &str, body: Value| {
        let path = format!("/v1/tenant/mcp/{name}");
        let token = app.admin_token.clone();
        let app = &app;
        async move { app.call("PUT", &path, Some(&token), Some(body)).await }
    };
    let url = "http://127.0.0.1:9/mcp";
    put("Bad Name", json!({"url": url})).await.expect_error(400, "invalid_parameter");
    put(&"a".repeat(49), json!({"url": url})).await.expect_error(400, "invalid_parameter");
    put("ok", json!({})).await.expect_error(400, "invalid_parameter");
    put("ok", json!({"url": url, "catalog": "deepwiki"})).await.expect_error(400, "invalid_parameter");
    put("ok", json!({"url": "ftp://example.com/mcp"})).await.expect_error(400, "egress_denied");
    put("ok", json!({"url": "http://169.254.169.254/mcp"})).await.expect_error(400, "egress_denied");
    for header in ["Mcp-Session-Id", "Host", "Accept", "bad name"] {
        put("ok", json!({"url": url, "headers": {header: "x"}})).await.expect_error(400, "invalid_parameter");
    }
    put("ok", json!({"url": url, "headers": {"X-Key": "line\nbreak"}})).await.expect_error(400, "invalid_parameter");
    put("ok", json!({"url": url, "unknown": 1})).await.expect_error(400, "invalid_body");
    put("ok", json!({"catalog": "nope"})).await.expect_error(400, "unknown_catalog_entry");
    put("ok", json!({"catalog": "linear"})).await.expect_error(400, "catalog_requires_connection");
    put("ok", json!({"catalog": "github"})).await.expect_error(400, "invalid_parameter");
    put("ok", json!({"catalog": "shopify-storefront"})).await.expect_error(400, "invalid_parameter");
    put("ok", json!({"catalog": "shopify-storefront", "variables": {"shop": "evil.com/x"}}))
        .await
        .expect_error(400, "invalid_parameter");
    app.get("/v1/tenant/mcp/ok", &app.admin_token).await.expect_error(404, "mcp_server_not_found");
    app.post("/v1/tenant/mcp/ok/refresh", &app.admin_token, json!({})).await.expect_error(404, "mcp_server_not_found");
    app.delete("/v1/tenant/mcp/ok", &app.admin_token).await.expect_error(404, "mcp_server_not_found");

    // The project's limit.
    for index in 0..32 {
        put(&format!("s{index}"), json!({"url": url})).await.expect(201);
    }
    put("one-more", json!({"url": url})).await.expect_error(400, "mcp_servers_limit");
    put("s0", json!({"url": url})).await.expect(200);

    // Smith tokens never reach the registry or the catalog.
    let sid = app.create_smith(&app.admin_token, "person").await;
    let smith_token = app.smith_token(&sid).await;
    app.get("/v1/tenant/mcp", &smith_token).await.expect_error(403, "permission_denied");
    let body = json!({"url": url});
    app.call("PUT", "/v1/tenant/mcp/mine", Some(&smith_token), Some(body)).await.expect_error(403, "permission_denied");
    app.get("/v1/catalog", &smith_token).await.expect_error(403, "permission_denied");
}

#[tokio::test]
async fn the_catalog_lists_presets_the_same_for_every_project() {
    let app = TestApp::start().await;
    let catalog = app.get("/v1/catalog", &app.admin_token).await.expect(200);
    let entries = catalog.body["data"].as_array().unwrap();
    assert!(entries.len() >= 8);
    let github = entries.iter().find(|entry| entry["slug"] == "github").unwrap();
    assert_eq!(github["auth"], "headers");
    assert_eq!(github["headers"][0]["name"], "Authorization");
    assert_eq!(github["headers"][0]["required"], true);
    assert_eq!(github["available"], true);
    let linear = entries.iter().find(|entry| entry["slug"] == "linear").unwrap();
    assert_eq!((linear["auth"].as_str(), linear["available"].as_bool()), (Some("oauth"), Some(false)));
    let shop = app.get("/v1/catalog/shopify-storefront", &app.admin_token).await.expect(200);
    assert_eq!(shop.body["url_template"], "https://{shop}.myshopify.com/api/mcp");
    assert_eq!(shop.body["variables"][0]["name"], "shop");
    app.get("/v1/catalog/nope", &app.admin_token).await.expect_error(404, "catalog_entry_not_found");
    let (_, other) = app.other_project().await;
    let theirs = app.get("/v1/catalog", &other).await.expect(200);
    assert_eq!(theirs.body, catalog.body);
}

#[tokio::test]
async fn the_client_registers_refreshes_and_reads_a_server_with_typed_calls() {
    use ingram_client::{Client, types};
    let server = PythonMcp::start(Era::Both).await;
    let app = TestApp::start().await;
    let client = Client::with_token(&app.base_url, &app.admin_token).unwrap();
    let request: types::PutMcpServerRequest =
        serde_json::from_value(json!({"url": server.url, "headers": {"Authorization": format!("Bearer {TOKEN}")}}))
            .unwrap();
    let created = client.put_mcp_server().name("weather").body(request).send().await.unwrap();
    assert_eq!(created.status(), 201);
    let created = created.into_inner();
    assert!(created.error.is_none(), "{:?}", created.error);
    assert_eq!(created.protocol_version.as_deref(), Some("2026-07-28"));
    assert!(created.tools.iter().any(|tool| tool.name == "forecast"));
    let refreshed = client.refresh_mcp_server().name("weather").send().await.unwrap().into_inner();
    assert_eq!(refreshed.tools, created.tools);
    let listed = client.list_mcp_servers().send().await.unwrap().into_inner();
    assert_eq!(listed.data.len(), 1);
    let missing = client.get_mcp_server().name("nope").send().await.unwrap_err();
    assert_eq!(missing.code(), Some("mcp_server_not_found"));
    let entry = client.get_catalog_entry().slug("github").send().await.unwrap().into_inner();
    assert_eq!(entry.auth, types::CatalogAuth::Headers);
}
