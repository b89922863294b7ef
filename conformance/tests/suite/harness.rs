//! Starts the real server (the router the binary serves) on an ephemeral port over a fresh
//! database: a temporary SQLite file, or a new PostgreSQL database when
//! INGRAM_TEST_DATABASE_URL is set. Every response it hands back was checked against the spec.

use ingram_core::bootstrap::{self, Chosen};
use ingram_core::db;
use ingram_server::AppState;
use reqwest::Method;
use serde_json::{Value, json};
use tokio::sync::oneshot;

use crate::spec;

pub struct TestApp {
    pub base_url: String,
    pub org_key: String,
    pub admin_token: String,
    pub project_id: String,
    pub state: AppState,
    /// What a replica of this server connects to.
    database_url: String,
    http: reqwest::Client,
    _shutdown: oneshot::Sender<()>,
    _dir: Option<tempfile::TempDir>,
}

/// A response, already validated against the spec.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Answer {
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }

    pub fn id(&self) -> String {
        self.body["id"].as_str().unwrap_or_else(|| panic!("no id in {:#}", self.body)).to_owned()
    }

    #[track_caller]
    pub fn expect(self, status: u16) -> Self {
        assert_eq!(self.status, status, "unexpected status; body: {:#}", self.body);
        self
    }

    #[track_caller]
    pub fn expect_error(self, status: u16, code: &str) -> Self {
        assert_eq!((self.status, self.code()), (status, code), "body: {:#}", self.body);
        self
    }
}

impl TestApp {
    /// The server as the tests usually need it: its egress policy allows loopback, where
    /// the tests' wiremock providers listen.
    pub async fn start() -> Self {
        let mut settings = ingram_core::settings::Settings::for_tests();
        settings.egress = settings.egress.allowing("127.0.0.1").expect("a valid rule");
        Self::start_with(settings).await
    }

    pub async fn start_with(settings: ingram_core::settings::Settings) -> Self {
        let (url, dir) = match std::env::var("INGRAM_TEST_DATABASE_URL").ok().filter(|url| !url.is_empty()) {
            Some(base) => (fresh_postgres_database(&base).await, None),
            None => {
                let dir = tempfile::tempdir().expect("a temp dir");
                let url = format!("sqlite://{}?mode=rwc", dir.path().join("ingram.db").display());
                (url, Some(dir))
            }
        };
        let db = db::connect(&url).await.expect("the test database opens");
        let boot = bootstrap::ensure(&db, Chosen::default()).await.expect("bootstrap");
        let mut app = Self::serve(db, url, settings).await;
        app.org_key = boot.new_org_key.expect("a fresh database mints an org key");
        app.admin_token = boot.new_admin_token.expect("a fresh database mints an admin token");
        app.project_id = boot.project_id.into_string();
        app._dir = dir;
        app
    }

    /// Another replica of this server, over the same database (PostgreSQL: SQLite serves one),
    /// with its own caches and listener; the same secrets work on it.
    pub async fn replica(&self) -> Self {
        let mut settings = ingram_core::settings::Settings::for_tests();
        settings.egress = settings.egress.allowing("127.0.0.1").expect("a valid rule");
        let db = db::connect(&self.database_url).await.expect("the test database opens");
        let mut replica = Self::serve(db, self.database_url.clone(), settings).await;
        replica.org_key.clone_from(&self.org_key);
        replica.admin_token.clone_from(&self.admin_token);
        replica.project_id.clone_from(&self.project_id);
        replica
    }

    /// Whether the tests run on PostgreSQL.
    pub fn on_postgres(&self) -> bool {
        self.database_url.starts_with("postgres")
    }

    async fn serve(
        db: sea_orm::DatabaseConnection,
        database_url: String,
        settings: ingram_core::settings::Settings,
    ) -> Self {
        let state = AppState::new(db, settings).expect("the run store opens");
        state.engine.spawn_listener();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("an ephemeral port");
        let addr = listener.local_addr().unwrap();
        let (shutdown, stopped) = oneshot::channel::<()>();
        tokio::spawn(ingram_server::serve(listener, state.clone(), async {
            let _ = stopped.await;
        }));
        Self {
            base_url: format!("http://{addr}"),
            org_key: String::new(),
            admin_token: String::new(),
            project_id: String::new(),
            state,
            database_url,
            http: reqwest::Client::new(),
            _shutdown: shutdown,
            _dir: None,
        }
    }

    /// Sends a request with `token` (if any) and a JSON body (if any).
    pub async fn call(&self, method: &str, path: &str, token: Option<&str>, body: Option<Value>) -> Answer {
        let mut request =
            self.http.request(Method::from_bytes(method.as_bytes()).unwrap(), format!("{}{path}", self.base_url));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        self.send(method, path, request).await
    }

    /// Sends a prepared request and checks the response against the spec.
    pub async fn send(&self, method: &str, path: &str, request: reqwest::RequestBuilder) -> Answer {
        let response = request.send().await.expect("the server answers");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.expect("a body");
        assert!(headers.contains_key("x-request-id"), "{method} {path}: no X-Request-Id");
        assert_eq!(
            headers.get("content-type").and_then(|v| v.to_str().ok()),
            Some("application/json"),
            "{method} {path} answered {status} without a JSON content type: {text}"
        );
        let body: Value = serde_json::from_str(&text).unwrap_or_else(|err| panic!("{method} {path}: {err}: {text}"));
        spec::assert_conforms(method, path, status, &body);
        Answer { status, headers, body }
    }

    pub fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.http.request(method, format!("{}{path}", self.base_url))
    }

    pub async fn get(&self, path: &str, token: &str) -> Answer {
        self.call("GET", path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Answer {
        self.call("POST", path, Some(token), Some(body)).await
    }

    pub async fn patch(&self, path: &str, token: &str, body: Value) -> Answer {
        self.call("PATCH", path, Some(token), Some(body)).await
    }

    pub async fn delete(&self, path: &str, token: &str) -> Answer {
        self.call("DELETE", path, Some(token), None).await
    }

    /// A second project of the same organization, with its own tenant-admin token.
    pub async fn other_project(&self) -> (String, String) {
        let project = self
            .post("/v1/organization/projects", &self.org_key, serde_json::json!({"name": "other"}))
            .await
            .expect(201);
        let project_id = project.id();
        let token = self
            .post(&format!("/v1/organization/projects/{project_id}/tokens"), &self.org_key, serde_json::json!({}))
            .await
            .expect(201);
        (project_id, token.body["token"].as_str().unwrap().to_owned())
    }

    pub async fn create_smith(&self, token: &str, external_id: &str) -> String {
        self.post("/v1/smiths", token, serde_json::json!({"external_id": external_id})).await.expect(201).id()
    }

    pub async fn smith_token(&self, smith_id: &str) -> String {
        let token = self
            .post("/v1/tenant/tokens", &self.admin_token, serde_json::json!({"kind": "smith", "smith_id": smith_id}))
            .await
            .expect(201);
        token.body["token"].as_str().unwrap().to_owned()
    }
}

/// Creates an empty database next to the one in `base` and returns its URL.
async fn fresh_postgres_database(base: &str) -> String {
    use sea_orm::{ConnectionTrait, Database};
    static LEFTOVERS_DROPPED: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    let admin = Database::connect(base).await.expect("INGRAM_TEST_DATABASE_URL answers");
    // Databases of earlier runs are dropped once per run, before this run makes its own.
    LEFTOVERS_DROPPED
        .get_or_init(|| async {
            let rows = admin
                .query_all_raw(sea_orm::Statement::from_string(
                    admin.get_database_backend(),
                    "SELECT datname FROM pg_database WHERE datname LIKE 'ingram_test_%'",
                ))
                .await
                .expect("listing databases");
            for row in rows {
                let name: String = row.try_get("", "datname").expect("datname");
                admin.execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await.ok();
            }
        })
        .await;
    let name = format!("ingram_test_{}", ulid::Ulid::new().to_string().to_lowercase());
    admin.execute_unprepared(&format!("CREATE DATABASE {name}")).await.expect("CREATE DATABASE");
    admin.close().await.ok();
    let (prefix, _) = base.rsplit_once('/').expect("a database URL ends in /name");
    format!("{prefix}/{name}")
}

/// One SSE frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    pub event: String,
    pub id: Option<String>,
    pub data: Value,
}

/// A streamed answer, read to its end; every frame was validated against the spec schema
/// its `event:` name declares.
#[derive(Debug)]
pub struct Streamed {
    /// The body exactly as sent.
    pub raw: String,
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub frames: Vec<Frame>,
}

impl Streamed {
    pub fn events(&self) -> Vec<&str> {
        self.frames.iter().map(|frame| frame.event.as_str()).collect()
    }

    pub fn text(&self) -> String {
        self.frames.iter().filter(|f| f.event == "message.delta").map(|f| f.data["delta"].as_str().unwrap()).collect()
    }

    pub fn last(&self) -> &Frame {
        self.frames.last().expect("at least one frame")
    }
}

pub fn parse_frames(text: &str) -> Vec<Frame> {
    let mut frames = Vec::new();
    for block in text.split("\n\n") {
        let (mut event, mut id, mut data) = (None, None, String::new());
        for line in block.lines() {
            if let Some(value) = line.strip_prefix("event:") {
                event = Some(value.trim().to_owned());
            } else if let Some(value) = line.strip_prefix("id:") {
                id = Some(value.trim().to_owned());
            } else if let Some(value) = line.strip_prefix("data:") {
                data.push_str(value.trim_start());
            }
        }
        if let Some(event) = event {
            let data = serde_json::from_str(&data).unwrap_or_else(|err| panic!("frame {event}: {err}: {data}"));
            frames.push(Frame { event, id, data });
        }
    }
    frames
}

impl TestApp {
    /// Sends a request whose answer is an SSE stream and reads it to its end.
    pub async fn stream(&self, request: reqwest::RequestBuilder) -> Streamed {
        let response = request.send().await.expect("the server answers");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.expect("a body");
        assert!(headers.contains_key("x-request-id"), "a stream without X-Request-Id");
        assert_eq!(
            headers.get("content-type").and_then(|v| v.to_str().ok()),
            Some("text/event-stream"),
            "{status}: {text}"
        );
        let frames = parse_frames(&text);
        for frame in &frames {
            spec::assert_frame_conforms(&frame.event, &frame.data);
        }
        Streamed { raw: text, status, headers, frames }
    }

    pub async fn stream_post(&self, path: &str, token: &str, body: Value) -> Streamed {
        self.stream(self.request(Method::POST, path).bearer_auth(token).json(&body)).await
    }
}

/// An OpenAI stream answering with `calls` (name, arguments) or, when empty, with `text`.
pub fn openai_turn(text: &str, calls: &[(&str, &str, &str)], prompt_tokens: u32) -> wiremock::ResponseTemplate {
    let mut chunks = Vec::new();
    let chunk = |delta: Value, finish: Value| {
        json!({"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
               "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], "usage": null})
    };
    if calls.is_empty() {
        chunks.push(chunk(json!({"role": "assistant", "content": text}), Value::Null));
        chunks.push(chunk(json!({}), json!("stop")));
    } else {
        let tool_calls: Vec<Value> = calls
            .iter()
            .enumerate()
            .map(|(index, (id, name, arguments))| {
                json!({"index": index, "id": id, "type": "function", "function": {"name": name, "arguments": arguments}})
            })
            .collect();
        chunks.push(chunk(json!({"role": "assistant", "content": null, "tool_calls": tool_calls}), Value::Null));
        chunks.push(chunk(json!({}), json!("tool_calls")));
    }
    let usage = json!({"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": [],
                       "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": 3, "total_tokens": prompt_tokens + 3}});
    chunks.push(usage);
    let body: String = chunks.iter().map(|c| format!("data: {c}\n\n")).collect::<String>() + "data: [DONE]\n\n";
    wiremock::ResponseTemplate::new(200).set_body_raw(body, "text/event-stream")
}

/// The server with a project key for OpenAI pointing at `mock`.
pub async fn openai_app(mock: &wiremock::MockServer) -> TestApp {
    let app = TestApp::start().await;
    let key = json!({"api_key": "sk-test-1234", "base_url": format!("{}/v1", mock.uri())});
    app.call("PUT", "/v1/tenant/model_keys/openai", Some(&app.admin_token), Some(key)).await.expect(200);
    app
}
