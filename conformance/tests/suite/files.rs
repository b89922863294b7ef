//! Images and files inlined into conversations: stored once as the smith's files, named by id
//! in the run's input, served by `/v1/files`, and handed to the model with their bytes.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use reqwest::Method;
use sea_orm::EntityTrait;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::harness::TestApp;
use crate::providers::OPENAI_TEXT;

const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR not really an image";
const PDF: &[u8] = b"%PDF-1.4 a tiny document";

fn data_url(media_type: &str, bytes: &[u8]) -> String {
    format!("data:{media_type};base64,{}", STANDARD.encode(bytes))
}

fn said(text: &str) -> String {
    format!("Hello! I am the built-in offline model. You said: \"{text}\".")
}

fn chat(user: &str, content: Value) -> Value {
    json!({"model": "ingram/offline", "user": user, "messages": [{"role": "user", "content": content}]})
}

fn image_part(url: &str) -> Value {
    json!({"type": "image_url", "image_url": {"url": url}})
}

/// The input the run behind a chat completion or response recorded.
async fn run_input(app: &TestApp, answer_id: &str) -> Value {
    let suffix = answer_id.strip_prefix("chatcmpl-run_").or_else(|| answer_id.strip_prefix("resp_")).unwrap();
    let run_id = format!("run_{suffix}");
    let runs = app.get("/v1/runs?limit=100", &app.admin_token).await.expect(200);
    let run = runs.body["data"].as_array().unwrap().iter().find(|run| run["id"] == run_id.as_str()).cloned();
    run.unwrap_or_else(|| panic!("{run_id} is not listed"))["input"].clone()
}

async fn content(app: &TestApp, token: &str, file_id: &str) -> reqwest::Response {
    app.request(Method::GET, &format!("/v1/files/{file_id}/content")).bearer_auth(token).send().await.unwrap()
}

#[tokio::test]
async fn chat_parts_are_stored_seen_by_the_model_and_served() {
    let app = TestApp::start().await;
    let parts = json!([
        {"type": "text", "text": "What are these?"},
        image_part(&data_url("image/png", PNG)),
        {"type": "file", "file": {"file_data": data_url("application/pdf", PDF), "filename": "report.pdf"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg?size=2", "detail": "low"}},
    ]);
    let answer = app.post("/v1/chat/completions", &app.admin_token, chat("ada", parts.clone())).await.expect(200);
    let expected = format!(
        "{} I see an image (image/png, {} bytes) and a file report.pdf (application/pdf, {} bytes) and an image at https://example.com/cat.jpg?size=2.",
        said("What are these?"),
        PNG.len(),
        PDF.len()
    );
    assert_eq!(answer.body["choices"][0]["message"]["content"], expected.as_str());

    // The run names the files; no base64 stays in it.
    let input = run_input(&app, &answer.id()).await;
    assert!(!input.to_string().contains(&STANDARD.encode(PNG)), "{input:#}");
    let stored = &input[0]["content"];
    let image_id = stored[1]["image_url"]["file_id"].as_str().unwrap().to_owned();
    let pdf_id = stored[2]["file"]["file_id"].as_str().unwrap().to_owned();
    assert!(stored[1]["image_url"].get("url").is_none());
    assert_eq!(stored[3]["image_url"], json!({"url": "https://example.com/cat.jpg?size=2", "detail": "low"}));

    let image = app.get(&format!("/v1/files/{image_id}"), &app.admin_token).await.expect(200);
    assert_eq!(image.body["object"], "file");
    assert_eq!(image.body["bytes"], PNG.len());
    assert_eq!(image.body["media_type"], "image/png");
    assert_eq!(image.body["filename"], "image.png");
    let pdf = app.get(&format!("/v1/files/{pdf_id}"), &app.admin_token).await.expect(200);
    assert_eq!(
        (pdf.body["filename"].as_str(), pdf.body["media_type"].as_str()),
        (Some("report.pdf"), Some("application/pdf"))
    );

    let served = content(&app, &app.admin_token, &image_id).await;
    assert_eq!(served.status(), 200);
    assert_eq!(served.headers()["content-type"], "image/png");
    assert_eq!(served.headers()["x-content-type-options"], "nosniff");
    assert!(served.headers().contains_key("x-request-id"));
    assert_eq!(served.bytes().await.unwrap().as_ref(), PNG);

    // Chat Completions resends the conversation every turn: the same content is stored once.
    let again = app.post("/v1/chat/completions", &app.admin_token, chat("ada", parts)).await.expect(200);
    assert_eq!(run_input(&app, &again.id()).await[0]["content"][1]["image_url"]["file_id"], image_id.as_str());
}

#[tokio::test]
async fn a_smith_token_reads_its_own_files_only() {
    let app = TestApp::start().await;
    let ada = app.create_smith(&app.admin_token, "ada").await;
    let ada_token = app.smith_token(&ada).await;
    let answer = app
        .post("/v1/chat/completions", &ada_token, chat("ignored", json!([image_part(&data_url("image/gif", PNG))])))
        .await
        .expect(200);
    let file_id =
        run_input(&app, &answer.id()).await[0]["content"][0]["image_url"]["file_id"].as_str().unwrap().to_owned();
    assert_eq!(app.get(&format!("/v1/files/{file_id}"), &ada_token).await.expect(200).body["smith_id"], ada.as_str());
    assert_eq!(content(&app, &ada_token, &file_id).await.status(), 200);

    let bob = app.create_smith(&app.admin_token, "bob").await;
    let bob_token = app.smith_token(&bob).await;
    app.get(&format!("/v1/files/{file_id}"), &bob_token).await.expect_error(404, "file_not_found");
    assert_eq!(content(&app, &bob_token, &file_id).await.status(), 404);
    // Nor can another smith's conversation name it.
    let borrowed = json!([{"type": "image_url", "image_url": {"file_id": file_id}}]);
    app.post("/v1/chat/completions", &bob_token, chat("ignored", borrowed.clone()))
        .await
        .expect_error(404, "file_not_found");
    // Its own smith can name it again by id.
    let reused = app.post("/v1/chat/completions", &ada_token, chat("ignored", borrowed)).await.expect(200);
    assert!(reused.body["choices"][0]["message"]["content"].as_str().unwrap().contains("I see an image (image/gif"));
}

#[tokio::test]
async fn native_runs_take_images_too() {
    let app = TestApp::start().await;
    let sid = app.create_smith(&app.admin_token, "ada").await;
    let body = json!({"input": [{"role": "user", "content": [
        {"type": "text", "text": "Look"}, image_part(&data_url("image/webp", PNG))]}]});
    let run = app.post(&format!("/v1/smiths/{sid}/runs"), &app.admin_token, body).await.expect(200);
    let reply = run.body["output"]["content"].as_str().unwrap();
    assert_eq!(reply, format!("{} I see an image (image/webp, {} bytes).", said("Look"), PNG.len()));
    assert!(run.body["input"][0]["content"][1]["image_url"]["file_id"].as_str().unwrap().starts_with("file_"));
}

#[tokio::test]
async fn bad_parts_are_refused_and_store_nothing() {
    let app = TestApp::start().await;
    let refused = [
        (json!([image_part("ftp://example.com/cat.png")]), 400, "invalid_content"),
        (json!([image_part("data:text/plain;base64,aGk=")]), 400, "invalid_content"),
        (json!([image_part("data:image/png;base64,not base64!")]), 400, "invalid_content"),
        (json!([{"type": "image_url", "image_url": {}}]), 400, "invalid_content"),
        (json!([{"type": "file", "file": {"filename": "a.pdf"}}]), 400, "invalid_content"),
        (json!([{"type": "file", "file": {"file_id": "file_nope"}}]), 404, "file_not_found"),
        (json!([{"type": "input_audio", "input_audio": {"data": "", "format": "wav"}}]), 400, "invalid_body"),
    ];
    for (parts, status, code) in refused {
        let mut body = chat("ada", parts.clone());
        // A valid image beside the bad part: it must not be stored when the request fails.
        body["messages"][0]["content"].as_array_mut().unwrap().insert(0, image_part(&data_url("image/png", PDF)));
        app.post("/v1/chat/completions", &app.admin_token, body).await.expect_error(status, code);
    }
    let system_image = json!({"model": "ingram/offline", "user": "ada", "messages": [
        {"role": "system", "content": [image_part(&data_url("image/png", PNG))]},
        {"role": "user", "content": "hi"}]});
    app.post("/v1/chat/completions", &app.admin_token, system_image).await.expect_error(400, "invalid_content");
    let runs = app.get("/v1/runs", &app.admin_token).await.expect(200);
    assert_eq!(runs.body["data"], json!([]), "no refused request left a run");
    let stored = ingram_core::store::file::Entity::find().all(&app.state.db).await.unwrap();
    assert!(stored.is_empty(), "no refused request left a file: {stored:?}");
}

#[tokio::test]
async fn images_past_the_default_body_limit_are_accepted_where_runs_are_made() {
    let app = TestApp::start().await;
    let big = vec![7u8; 3 * 1024 * 1024];
    let body = chat("ada", json!([image_part(&data_url("image/png", &big))]));
    let request = app
        .request(Method::POST, "/v1/chat/completions")
        .bearer_auth(&app.admin_token)
        .header("Idempotency-Key", "big-image")
        .json(&body);
    let answer = app.send("POST", "/v1/chat/completions", request).await.expect(200);
    let reply = answer.body["choices"][0]["message"]["content"].as_str().unwrap();
    assert!(reply.ends_with(&format!("I see an image (image/png, {} bytes).", big.len())), "{reply}");
}

#[tokio::test]
async fn response_images_and_files_reach_the_provider_on_later_turns_too() {
    let app = TestApp::start().await;
    let mock = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(OPENAI_TEXT, "text/event-stream"))
        .mount(&mock)
        .await;
    let key = json!({"api_key": "sk-test-1234", "base_url": format!("{}/v1", mock.uri())});
    app.call("PUT", "/v1/tenant/model_keys/openai", Some(&app.admin_token), Some(key)).await.expect(200);

    let notes = b"buy milk";
    let first = json!({"model": "gpt-4o", "user": "ada", "input": [{"role": "user", "content": [
        {"type": "input_text", "text": "Read these"},
        {"type": "input_image", "image_url": data_url("image/png", PNG), "detail": "low"},
        {"type": "input_file", "file_data": STANDARD.encode(notes), "filename": "notes.txt"},
    ]}]});
    let first = app.post("/v1/responses", &app.admin_token, first).await.expect(200);
    let second = json!({"model": "gpt-4o", "previous_response_id": first.id(), "input": "And now?"});
    app.post("/v1/responses", &app.admin_token, second).await.expect(200);

    let requests = mock.received_requests().await.unwrap();
    assert_eq!(requests.len(), 2);
    for request in requests {
        let body: Value = request.body_json().unwrap();
        let user = body["messages"].as_array().unwrap().iter().find(|m| m["role"] == "user").unwrap().clone();
        assert_eq!(
            user["content"],
            json!([
                {"type": "image_url", "image_url": {"url": data_url("image/png", PNG), "detail": "low"}},
                {"type": "file", "file": {"file_data": data_url("text/plain", notes), "filename": "notes.txt"}},
                {"type": "text", "text": "Read these"},
            ])
        );
    }
}
