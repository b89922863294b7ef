//! Recorded request fixtures replayed against the server (insta snapshots, ids and
//! timestamps redacted), then the very responses served by wiremock to the generated client,
//! which must decode each into its type or its typed error.

use std::collections::HashMap;

use ingram_client::{Client, Error, RetryPolicy, types};
use serde::Deserialize;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::harness::TestApp;
use crate::spec::find_operation;

#[derive(Debug, Deserialize)]
struct Exchange {
    name: String,
    method: String,
    path: String,
    token: Option<String>,
    body: Option<Value>,
    #[serde(default)]
    capture: HashMap<String, String>,
}

struct Recorded {
    exchange: Exchange,
    path: String,
    status: u16,
    request_id: String,
    body: Value,
}

fn fill(template: &str, vars: &HashMap<String, String>) -> String {
    vars.iter().fold(template.to_owned(), |text, (name, value)| text.replace(&format!("{{{name}}}"), value))
}

async fn replay(app: &TestApp, file: &str) -> Vec<Recorded> {
    let text = std::fs::read_to_string(format!("{}/fixtures/{file}", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let exchanges: Vec<Exchange> = serde_json::from_str(&text).unwrap();
    let mut vars = HashMap::new();
    let mut recorded = Vec::new();
    for exchange in exchanges {
        let token = match exchange.token.as_deref() {
            Some("admin") => Some(app.admin_token.as_str()),
            Some("org") => Some(app.org_key.as_str()),
            None => None,
            Some(other) => panic!("unknown fixture token {other}"),
        };
        let path = fill(&exchange.path, &vars);
        let body = exchange.body.as_ref().map(|body| serde_json::from_str(&fill(&body.to_string(), &vars)).unwrap());
        let answer = app.call(&exchange.method, &path, token, body).await;
        // A field of the answer, or a JSON pointer into it (`/required_action/approvals/0/id`).
        for (name, field) in &exchange.capture {
            let value = if field.starts_with('/') { answer.body.pointer(field) } else { answer.body.get(field) };
            vars.insert(name.clone(), value.and_then(Value::as_str).unwrap().to_owned());
        }
        let request_id = answer.headers["x-request-id"].to_str().unwrap().to_owned();
        recorded.push(Recorded { exchange, path, status: answer.status, request_id, body: answer.body });
    }
    recorded
}

/// Replaces ids, secrets and timestamps with stable placeholders.
pub fn redact(value: &Value) -> Value {
    match value {
        // Scores order one answer only, and a duration is the machine's: neither is a contract.
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let measured = matches!(k.as_str(), "score" | "duration_ms") && v.is_number();
                    // An error's code and type are the contract itself, never an id.
                    let stable = matches!(k.as_str(), "code" | "type") && v.is_string();
                    let value = if measured {
                        json!(format!("[{k}]"))
                    } else if stable {
                        v.clone()
                    } else {
                        redact(v)
                    };
                    (k.clone(), value)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(redact).collect()),
        Value::String(text) => Value::String(redact_text(text)),
        other => other.clone(),
    }
}

fn redact_text(text: &str) -> String {
    if text.contains(' ') {
        // A sentence (an error message) may name an id: only those words change.
        return text.split(' ').map(redact_id_in_word).collect::<Vec<_>>().join(" ");
    }
    redact_token(text)
}

/// `'mem_01…'.` keeps its quotes and stop around `'[mem_id]'.`.
fn redact_id_in_word(word: &str) -> String {
    let inner = word.trim_matches(|c: char| !c.is_ascii_alphanumeric() && c != '_');
    match id_placeholder(inner) {
        Some(placeholder) if !inner.is_empty() => word.replacen(inner, &placeholder, 1),
        _ => word.to_owned(),
    }
}

/// `[prj_id]` for a generated id (a three-letter prefix and a ULID).
fn id_placeholder(text: &str) -> Option<String> {
    let (prefix, rest) = text.split_once('_')?;
    (prefix.len() == 3 && rest.len() == 26 && rest.chars().all(|c| c.is_ascii_alphanumeric()))
        .then(|| format!("[{prefix}_id]"))
}

fn redact_token(text: &str) -> String {
    for prefix in ["tha_live_", "ths_live_", "ik_org_"] {
        if text.starts_with(prefix) {
            return if text.ends_with('…') { format!("[{prefix}preview]") } else { format!("[{prefix}secret]") };
        }
    }
    if let Some(placeholder) = id_placeholder(text) {
        return placeholder;
    }
    if chrono::DateTime::parse_from_rfc3339(text).is_ok() {
        return "[timestamp]".into();
    }
    if text.len() > 20 && text.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
        return "[cursor]".into();
    }
    text.to_owned()
}

#[tokio::test]
async fn foundation_fixtures_replay_against_the_server_and_through_the_client() {
    replay_and_decode("foundation").await;
}

#[tokio::test]
async fn memory_fixtures_replay_against_the_server_and_through_the_client() {
    replay_and_decode("memory").await;
}

#[tokio::test]
async fn tools_fixtures_replay_against_the_server_and_through_the_client() {
    replay_and_decode("tools").await;
}

#[tokio::test]
async fn approvals_fixtures_replay_against_the_server_and_through_the_client() {
    replay_and_decode("approvals").await;
}

#[tokio::test]
async fn mcp_fixtures_replay_against_the_server_and_through_the_client() {
    replay_and_decode("mcp").await;
}

/// Replays `fixtures/{name}.json`, snapshots the transcript as `name`, then serves each
/// recorded answer to the generated client.
async fn replay_and_decode(name: &str) {
    let app = TestApp::start().await;
    let recorded = replay(&app, &format!("{name}.json")).await;
    let transcript: Vec<Value> = recorded
        .iter()
        .map(|r| {
            json!({
                "name": r.exchange.name,
                "request": {"method": r.exchange.method, "path": r.exchange.path, "body": r.exchange.body},
                "status": r.status,
                "body": redact(&r.body),
            })
        })
        .collect();
    insta::assert_json_snapshot!(name, transcript);

    let mock = MockServer::start().await;
    let client = Client::with_token_and_policy(&mock.uri(), "tha_live_test", RetryPolicy::none()).unwrap();
    for r in &recorded {
        mock.reset().await;
        let response = ResponseTemplate::new(r.status)
            .insert_header("x-request-id", r.request_id.as_str())
            .set_body_raw(r.body.to_string(), "application/json");
        Mock::given(method(r.exchange.method.as_str()))
            .and(path(r.path.split('?').next().unwrap()))
            .respond_with(response)
            .mount(&mock)
            .await;
        let operation = find_operation(&r.exchange.method, &r.path).expect("every fixture hits a spec operation");
        let result =
            call_client(&client, &operation.operation_id, &operation.path, &r.path, r.exchange.body.clone()).await;
        match result {
            Ok(decoded) => {
                assert!(r.status < 400, "{}: a {} decoded as success", r.exchange.name, r.status);
                assert_eq!(
                    without_nulls(&decoded),
                    without_nulls(&r.body),
                    "{}: the client's type lost data",
                    r.exchange.name
                );
            }
            Err(Error::Api(err)) => {
                assert_eq!(err.status, r.status, "{}", r.exchange.name);
                assert_eq!(err.code, r.body["error"]["code"].as_str().unwrap());
                assert_eq!(err.request_id, r.request_id);
            }
            Err(other) => panic!("{}: {other}", r.exchange.name),
        }
    }
}

pub fn without_nulls(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| (k.clone(), without_nulls(v))).collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(without_nulls).collect()),
        other => other.clone(),
    }
}

/// Calls the generated method for `operation_id` with the fixture's parameters and body.
async fn call_client(
    client: &Client,
    operation_id: &str,
    template: &str,
    concrete: &str,
    body: Option<Value>,
) -> Result<Value, Error> {
    let concrete_path = concrete.split('?').next().unwrap();
    let params: HashMap<String, String> = template
        .split('/')
        .zip(concrete_path.split('/'))
        .filter_map(|(t, c)| {
            t.strip_prefix('{').and_then(|t| t.strip_suffix('}')).map(|name| (name.to_owned(), c.to_owned()))
        })
        .collect();
    let query: HashMap<String, String> = concrete
        .split_once('?')
        .map(|(_, q)| {
            q.split('&').filter_map(|kv| kv.split_once('=')).map(|(k, v)| (k.to_owned(), v.to_owned())).collect()
        })
        .unwrap_or_default();
    let limit = query.get("limit").map(|l| l.parse::<u64>().unwrap());
    let p = |name: &str| params[name].clone();
    fn body_of<T: serde::de::DeserializeOwned>(body: Option<Value>) -> T {
        serde_json::from_value(body.unwrap_or_else(|| json!({})))
            .expect("the fixture body fits the client's request type")
    }
    macro_rules! done {
        ($call:expr) => {
            $call.await.map(|response| serde_json::to_value(response.into_inner()).unwrap()).map_err(Error::from)
        };
    }
    macro_rules! with_limit {
        ($builder:expr) => {{
            let builder = $builder;
            match limit {
                Some(limit) => builder.limit(std::num::NonZeroU64::new(limit).unwrap_or(std::num::NonZeroU64::MIN)),
                None => builder,
            }
        }};
    }
    match operation_id {
        "create_agent" => done!(client.create_agent().body(body_of::<types::CreateAgentRequest>(body)).send()),
        "list_agents" => done!(with_limit!(client.list_agents()).send()),
        "get_agent" => done!(client.get_agent().aid(p("aid")).send()),
        "update_agent" => {
            done!(client.update_agent().aid(p("aid")).body(body_of::<types::UpdateAgentRequest>(body)).send())
        }
        "delete_agent" => done!(client.delete_agent().aid(p("aid")).send()),
        "create_smith" => done!(client.create_smith().body(body_of::<types::CreateSmithRequest>(body)).send()),
        "list_smiths" => {
            let mut builder = with_limit!(client.list_smiths());
            if let Some(prefix) = query.get("external_id_prefix") {
                builder = builder.external_id_prefix(prefix.clone());
            }
            done!(builder.send())
        }
        "get_smith" => done!(client.get_smith().sid(p("sid")).send()),
        "update_smith" => {
            done!(client.update_smith().sid(p("sid")).body(body_of::<types::UpdateSmithRequest>(body)).send())
        }
        "delete_smith" => done!(client.delete_smith().sid(p("sid")).send()),
        "list_revisions" => done!(with_limit!(client.list_revisions().sid(p("sid"))).send()),
        "restore_revision" => done!(client.restore_revision().sid(p("sid")).n(p("n").parse::<i32>().unwrap()).send()),
        "create_token" => done!(client.create_token().body(body_of::<types::CreateTokenRequest>(body)).send()),
        "list_tokens" => done!(with_limit!(client.list_tokens()).send()),
        "delete_token" => done!(client.delete_token().tid(p("tid")).send()),
        "create_project" => done!(client.create_project().body(body_of::<types::CreateProjectRequest>(body)).send()),
        "list_projects" => done!(with_limit!(client.list_projects()).send()),
        "get_project" => done!(client.get_project().pid(p("pid")).send()),
        "delete_project" => done!(client.delete_project().pid(p("pid")).send()),
        "create_project_token" => {
            done!(
                client
                    .create_project_token()
                    .pid(p("pid"))
                    .body(body_of::<types::CreateProjectTokenRequest>(body))
                    .send()
            )
        }
        "healthz" => done!(client.healthz().send()),
        "list_blocks" => done!(client.list_blocks().sid(p("sid")).send()),
        "update_block" => done!(
            client
                .update_block()
                .sid(p("sid"))
                .label(p("label"))
                .body(body_of::<types::UpdateBlockRequest>(body))
                .send()
        ),
        "list_memories" => {
            let mut builder = with_limit!(client.list_memories().sid(p("sid")));
            if let Some(source) = query.get("source") {
                builder = builder.source(source.parse::<types::MemorySource>().unwrap());
            }
            done!(builder.send())
        }
        "create_memory" => {
            done!(client.create_memory().sid(p("sid")).body(body_of::<types::CreateMemoryRequest>(body)).send())
        }
        "search_memories" => {
            done!(client.search_memories().sid(p("sid")).body(body_of::<types::SearchMemoriesRequest>(body)).send())
        }
        "get_memory" => done!(client.get_memory().sid(p("sid")).mid(p("mid")).send()),
        "update_memory" => done!(
            client.update_memory().sid(p("sid")).mid(p("mid")).body(body_of::<types::UpdateMemoryRequest>(body)).send()
        ),
        "delete_memory" => done!(client.delete_memory().sid(p("sid")).mid(p("mid")).send()),
        "get_embeddings" => done!(client.get_embeddings().send()),
        "put_embeddings" => {
            done!(client.put_embeddings().body(body_of::<types::PutEmbeddingSettingsRequest>(body)).send())
        }
        "delete_embeddings" => done!(client.delete_embeddings().send()),
        "list_hosted_tools" => done!(client.list_hosted_tools().send()),
        "list_catalog" => done!(client.list_catalog().send()),
        "get_catalog_entry" => done!(client.get_catalog_entry().slug(p("slug")).send()),
        "list_mcp_servers" => done!(client.list_mcp_servers().send()),
        "get_mcp_server" => done!(client.get_mcp_server().name(p("name")).send()),
        "put_mcp_server" => {
            done!(client.put_mcp_server().name(p("name")).body(body_of::<types::PutMcpServerRequest>(body)).send())
        }
        "refresh_mcp_server" => done!(client.refresh_mcp_server().name(p("name")).send()),
        "delete_mcp_server" => done!(client.delete_mcp_server().name(p("name")).send()),
        "list_approvals" => {
            let mut builder = with_limit!(client.list_approvals());
            if let Some(status) = query.get("status") {
                builder = builder.status(status.parse::<types::ApprovalStatus>().unwrap());
            }
            if let Some(run_id) = query.get("run_id") {
                builder = builder.run_id(run_id.as_str());
            }
            done!(builder.send())
        }
        "get_approval" => done!(client.get_approval().id(p("id")).send()),
        "submit_tool_outputs" => done!(
            client
                .submit_tool_outputs()
                .sid(p("sid"))
                .rid(p("rid"))
                .body(body_of::<types::SubmitToolOutputsRequest>(body))
                .send()
        ),
        "create_run" => {
            done!(client.create_run().sid(p("sid")).body(body_of::<types::CreateRunRequest>(body)).send())
        }
        other => panic!("the fixture client has no call for {other}"),
    }
}
