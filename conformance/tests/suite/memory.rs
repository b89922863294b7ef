//! Memory: blocks and memories over the API, word search on both databases, semantic search
//! against a wiremocked embeddings endpoint, memory in every run's context (offline model and
//! a wiremocked OpenAI), auto_memory, isolation between smiths, and erasure with the smith.

use std::time::Duration;

use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};
use wiremock::matchers::{body_string_contains, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::harness::TestApp;

fn memories(sid: &str) -> String {
    format!("/v1/smiths/{sid}/memories")
}

async fn add(app: &TestApp, sid: &str, text: &str) -> String {
    app.post(&memories(sid), &app.admin_token, json!({"text": text})).await.expect(201).id()
}

async fn search(app: &TestApp, token: &str, sid: &str, query: &str) -> Vec<String> {
    let found = app.post(&format!("{}/search", memories(sid)), token, json!({"query": query})).await.expect(200);
    found.body["data"].as_array().unwrap().iter().map(|m| m["text"].as_str().unwrap().to_owned()).collect()
}

async fn run(app: &TestApp, sid: &str, text: &str) -> Value {
    app.post(&format!("/v1/smiths/{sid}/runs"), &app.admin_token, json!({"input": [{"role": "user", "content": text}]}))
        .await
        .expect(200)
        .body
}

/// The smith's memories' texts once there are at least `count`, waiting for auto_memory
/// (which writes after the run's answer) for up to ten seconds.
async fn eventually(app: &TestApp, sid: &str, count: usize) -> Vec<String> {
    for _ in 0..200 {
        let listed = app.get(&memories(sid), &app.admin_token).await.expect(200);
        let texts: Vec<String> =
            listed.body["data"].as_array().unwrap().iter().map(|m| m["text"].as_str().unwrap().to_owned()).collect();
        if texts.len() >= count {
            return texts;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the smith never had {count} memories");
}

#[tokio::test]
async fn every_smith_has_human_and_persona_and_blocks_keep_their_limits() {
    let app = TestApp::start().await;
    let sid = app.create_smith(&app.admin_token, "blocks").await;
    let blocks = app.get(&format!("/v1/smiths/{sid}/blocks"), &app.admin_token).await.expect(200);
    let labels: Vec<&str> =
        blocks.body["data"].as_array().unwrap().iter().map(|b| b["label"].as_str().unwrap()).collect();
    assert_eq!(labels, ["human", "persona"]);
    assert_eq!(blocks.body["data"][0]["value"], "");
    assert_eq!(blocks.body["data"][1]["read_only"], true);

    let block = |label: &str| format!("/v1/smiths/{sid}/blocks/{label}");
    let written = app.patch(&block("human"), &app.admin_token, json!({"value": "Ada"})).await.expect(200);
    assert_eq!(written.body["value"], "Ada");
    assert!(written.body["updated_at"].is_string());
    app.patch(&block("human"), &app.admin_token, json!({"value": "x".repeat(5001)}))
        .await
        .expect_error(400, "block_limit_exceeded");
    // Limits count characters, not bytes.
    app.patch(&block("human"), &app.admin_token, json!({"value": "é".repeat(5000)})).await.expect(200);
    for label in ["Upper", "9lives", "with-dash", &"a".repeat(65)] {
        app.patch(&block(label), &app.admin_token, json!({"value": "x"})).await.expect_error(400, "invalid_parameter");
    }
    for i in 0..8 {
        app.patch(&block(&format!("notes_{i}")), &app.admin_token, json!({"value": "n"})).await.expect(200);
    }
    app.patch(&block("notes_8"), &app.admin_token, json!({"value": "n"}))
        .await
        .expect_error(400, "memory_blocks_limit");
    // Writing an existing one again is not a new block.
    app.patch(&block("notes_0"), &app.admin_token, json!({"value": "again"})).await.expect(200);
    let blocks = app.get(&format!("/v1/smiths/{sid}/blocks"), &app.admin_token).await.expect(200);
    assert_eq!(blocks.body["data"].as_array().unwrap().len(), 10);

    // An agent's declared blocks, with their defaults and limits.
    let agent = app
        .post(
            "/v1/agents",
            &app.admin_token,
            json!({"name": "declares", "memory_blocks": [
                {"label": "persona", "value": "A patient tutor.", "read_only": false},
                {"label": "goals", "limit": 10, "description": "The learner's goals."},
            ]}),
        )
        .await
        .expect(201);
    assert_eq!(agent.body["memory_blocks"][1]["label"], "goals");
    let tutored =
        app.post("/v1/smiths", &app.admin_token, json!({"external_id": "tutored", "agent_id": agent.id()})).await.id();
    let blocks = app.get(&format!("/v1/smiths/{tutored}/blocks"), &app.admin_token).await.expect(200);
    let data = blocks.body["data"].as_array().unwrap();
    assert_eq!(data.iter().map(|b| b["label"].as_str().unwrap()).collect::<Vec<_>>(), ["human", "persona", "goals"]);
    assert_eq!(data[1]["value"], "A patient tutor.");
    assert_eq!(data[1]["read_only"], false);
    assert_eq!(data[2]["limit"], 10);
    app.patch(&format!("/v1/smiths/{tutored}/blocks/goals"), &app.admin_token, json!({"value": "Learn calculus"}))
        .await
        .expect_error(400, "block_limit_exceeded");
    for bad in [
        json!([{"label": "a", "limit": 0}]),
        json!([{"label": "a", "limit": 20001}]),
        json!([{"label": "a"}, {"label": "a"}]),
        json!([{"label": "a", "limit": 3, "value": "four"}]),
        json!((0..17).map(|i| json!({"label": format!("b{i}")})).collect::<Vec<_>>()),
    ] {
        let refused = app.post("/v1/agents", &app.admin_token, json!({"name": "bad", "memory_blocks": bad})).await;
        assert_eq!(refused.status, 400, "{bad}: {}", refused.body);
    }
}

#[tokio::test]
async fn memories_are_listed_newest_first_corrected_and_erased() {
    let app = TestApp::start().await;
    let sid = app.create_smith(&app.admin_token, "facts").await;
    let first = app
        .post(&memories(&sid), &app.admin_token, json!({"text": "Likes tea.", "metadata": {"topic": "food"}}))
        .await
        .expect(201);
    assert_eq!(first.body["source"], "api");
    assert_eq!(first.body["metadata"]["topic"], "food");
    let second = add(&app, &sid, "Lives in Paris.").await;
    let listed = app.get(&format!("{}?limit=1", memories(&sid)), &app.admin_token).await.expect(200);
    assert_eq!(listed.body["data"][0]["id"], second);
    assert_eq!(listed.body["has_more"], true);
    let cursor = listed.body["next_cursor"].as_str().unwrap();
    let rest = app.get(&format!("{}?cursor={cursor}", memories(&sid)), &app.admin_token).await.expect(200);
    assert_eq!(rest.body["data"][0]["id"], first.id());
    let auto = app.get(&format!("{}?source=auto", memories(&sid)), &app.admin_token).await.expect(200);
    assert!(auto.body["data"].as_array().unwrap().is_empty());
    app.get(&format!("{}?source=dreamt", memories(&sid)), &app.admin_token).await.expect(400);

    let path = format!("{}/{}", memories(&sid), first.id());
    let corrected = app.patch(&path, &app.admin_token, json!({"text": "Likes green tea."})).await.expect(200);
    assert_eq!(corrected.body["text"], "Likes green tea.");
    assert_eq!(corrected.body["metadata"]["topic"], "food", "metadata left out stays");
    assert_eq!(search(&app, &app.admin_token, &sid, "green").await, ["Likes green tea."]);
    assert!(search(&app, &app.admin_token, &sid, "Paris").await.len() == 1);
    app.delete(&path, &app.admin_token).await.expect(200);
    app.get(&path, &app.admin_token).await.expect_error(404, "memory_not_found");
    app.delete(&path, &app.admin_token).await.expect_error(404, "memory_not_found");
    assert!(search(&app, &app.admin_token, &sid, "tea").await.is_empty(), "an erased memory is not found");

    app.post(&memories(&sid), &app.admin_token, json!({"text": ""})).await.expect_error(400, "invalid_parameter");
    app.post(&memories(&sid), &app.admin_token, json!({"text": "x".repeat(2001)}))
        .await
        .expect_error(400, "limit_exceeded");
    let search_path = format!("{}/search", memories(&sid));
    app.post(&search_path, &app.admin_token, json!({"query": "x".repeat(1001)}))
        .await
        .expect_error(400, "limit_exceeded");
    app.post(&search_path, &app.admin_token, json!({"query": "x", "limit": 51}))
        .await
        .expect_error(400, "invalid_parameter");
    app.get(&memories("smt_missing"), &app.admin_token).await.expect_error(404, "smith_not_found");
}

/// About thirty facts; each query's relevant fact must come first, on either database.
const FACTS: &[&str] = &[
    "The user is allergic to peanuts.",
    "The user's name is Ada Lovelace.",
    "The user lives in London with two cats.",
    "The user works as a mathematician.",
    "The user prefers tea over coffee.",
    "The user's daughter is called Byron.",
    "The user is learning to play the piano.",
    "The user runs five kilometres every morning.",
    "The user dislikes loud restaurants.",
    "The user's birthday is on the tenth of December.",
    "The user drives an old green bicycle, not a car.",
    "The user is vegetarian.",
    "The user reads science fiction novels.",
    "The user is planning a trip to Italy in spring.",
    "The user's favourite colour is blue.",
    "The user speaks French and German.",
    "The user's mother lives in Manchester.",
    "The user keeps bees in the garden.",
    "The user writes programs for the analytical engine.",
    "The user sleeps badly when it is hot.",
    "The user's dentist appointment is next Tuesday.",
    "The user collects antique maps.",
    "The user is saving money for a new house.",
    "The user volunteers at the library on Saturdays.",
    "The user has a brother who is a chef.",
    "The user cannot eat gluten either.",
    "The user takes vitamin D in winter.",
    "The user's cats are named Ratio and Sine.",
    "The user plays chess online in the evenings.",
    "The user wants reminders in the morning, not at night.",
];

#[tokio::test]
async fn search_ranks_the_relevant_memory_first_and_never_errs_on_syntax() {
    let app = TestApp::start().await;
    let sid = app.create_smith(&app.admin_token, "searcher").await;
    for fact in FACTS {
        add(&app, &sid, fact).await;
    }
    let token = &app.admin_token;
    for (query, expected) in [
        ("Can I bring a peanut snack?", "The user is allergic to peanuts."),
        ("What is my name?", "The user's name is Ada Lovelace."),
        ("Which languages do I speak?", "The user speaks French and German."),
        ("when is my dentist appointment", "The user's dentist appointment is next Tuesday."),
        ("what are my cats' names", "The user's cats are named Ratio and Sine."),
        ("gluten free bread", "The user cannot eat gluten either."),
        // Stemming: "maps" is stored, "map" asked; "planned" asked, "planning" stored.
        ("an old map", "The user collects antique maps."),
        ("trips we planned", "The user is planning a trip to Italy in spring."),
        // A word that matches nothing excludes nothing.
        ("xylophone bees zeppelin", "The user keeps bees in the garden."),
    ] {
        let found = search(&app, token, &sid, query).await;
        assert_eq!(found.first().map(String::as_str), Some(expected), "{query}: {found:?}");
    }
    let scored =
        app.post(&format!("{}/search", memories(&sid)), token, json!({"query": "cats London", "limit": 3})).await;
    let data = scored.body["data"].as_array().unwrap();
    assert!(data.len() <= 3 && !data.is_empty());
    assert_eq!(data[0]["text"], "The user lives in London with two cats.", "two matching words beat one");
    let scores: Vec<f64> = data.iter().map(|m| m["score"].as_f64().unwrap()).collect();
    assert!(scores.windows(2).all(|pair| pair[0] >= pair[1]), "best first: {scores:?}");
    for hostile in [
        "-peanuts",
        "\"unbalanced quote",
        "peanuts OR",
        "NOT AND OR",
        "a* b:c ^d {e} (f",
        "owner : smt_x",
        "'; DROP TABLE memories; --",
        "",
        "the of and",
        "日本語 🙂",
    ] {
        let answer = app.post(&format!("{}/search", memories(&sid)), token, json!({"query": hostile})).await;
        assert_eq!(answer.status, 200, "{hostile}: {}", answer.body);
    }
    assert_eq!(search(&app, token, &sid, "-peanuts").await[0], "The user is allergic to peanuts.");
    assert!(search(&app, token, &sid, "the of and").await.is_empty(), "stop words alone match nothing");
}

#[tokio::test]
async fn auto_memory_on_the_offline_model_remembers_ada_in_a_new_thread() {
    let app = TestApp::start().await;
    let smith =
        app.post("/v1/smiths", &app.admin_token, json!({"external_id": "ada", "auto_memory": true})).await.expect(201);
    let sid = smith.id();
    assert_eq!(smith.body["effective_config"]["auto_memory"], true);
    let first = run(&app, &sid, "My name is Ada and I am allergic to peanuts.").await;
    let reply = first["output"]["content"].as_str().unwrap();
    assert!(!reply.contains("I remember"), "nothing was remembered yet: {reply}");

    let mut texts = eventually(&app, &sid, 2).await;
    texts.sort();
    assert_eq!(texts, ["The user is allergic to peanuts.", "The user's name is Ada."]);
    let listed = app.get(&format!("{}?source=auto", memories(&sid)), &app.admin_token).await.expect(200);
    assert_eq!(listed.body["data"].as_array().unwrap().len(), 2);

    // A new thread carries them.
    let second = run(&app, &sid, "What snack should I bring?").await;
    assert_ne!(second["thread_id"], first["thread_id"]);
    let reply = second["output"]["content"].as_str().unwrap();
    assert!(reply.contains("I remember:"), "{reply}");
    assert!(reply.contains("The user's name is Ada.") && reply.contains("The user is allergic to peanuts."), "{reply}");

    // Said again, nothing is stored twice; something new is.
    run(&app, &sid, "Again: my name is Ada. I live in London.").await;
    let texts = eventually(&app, &sid, 3).await;
    assert_eq!(texts.len(), 3, "{texts:?}");
    assert!(texts.contains(&"The user lives in London.".to_owned()));

    // The extraction's model usage is recorded like a run's.
    use ingram_core::store::usage_record;
    let recorded = usage_record::Entity::find()
        .filter(usage_record::Column::SmithId.eq(sid.as_str()))
        .all(&app.state.db)
        .await
        .unwrap();
    assert!(recorded.len() >= 2, "{recorded:?}");
    assert!(recorded.iter().all(|r| r.purpose == "memory_extraction" && r.input_tokens > 0 && r.run_id.is_some()));

    // Streamed, on Chat Completions: the same memory.
    let completion = app
        .post(
            "/v1/chat/completions",
            &app.admin_token,
            json!({"model": "ingram/offline", "user": "ada", "messages": [{"role": "user", "content": "Hi"}]}),
        )
        .await
        .expect(200);
    let reply = completion.body["choices"][0]["message"]["content"].as_str().unwrap();
    assert!(reply.contains("The user is allergic to peanuts."), "{reply}");
}

#[tokio::test]
async fn auto_memory_off_writes_nothing_and_a_smith_without_memory_answers_as_before() {
    let app = TestApp::start().await;
    let sid = app.create_smith(&app.admin_token, "forgetful").await;
    let reply = run(&app, &sid, "My name is Bob.").await;
    assert_eq!(
        reply["output"]["content"], "Hello! I am the built-in offline model. You said: \"My name is Bob.\".",
        "a smith without memory gets the reply it always got"
    );
    // A smith with auto_memory on, run after, has its facts stored: by then the first
    // smith's would have been too, had it been on.
    let watcher =
        app.post("/v1/smiths", &app.admin_token, json!({"external_id": "watcher", "auto_memory": true})).await.id();
    run(&app, &watcher, "My name is Eve.").await;
    eventually(&app, &watcher, 1).await;
    let listed = app.get(&memories(&sid), &app.admin_token).await.expect(200);
    assert!(listed.body["data"].as_array().unwrap().is_empty(), "auto_memory off writes nothing");
}

#[tokio::test]
async fn blocks_and_memories_reach_an_openai_request_and_extraction_uses_the_smiths_model() {
    let app = TestApp::start().await;
    let mock = MockServer::start().await;
    let extraction = sse_text(r#"[\"The user lives in Paris.\"]"#, 40, 9);
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .and(body_string_contains("You extract durable facts"))
        .respond_with(extraction)
        .mount(&mock)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(sse_text("Noted.", 5, 2))
        .mount(&mock)
        .await;
    let key = json!({"api_key": "sk-test-1234", "base_url": format!("{}/v1", mock.uri())});
    app.call("PUT", "/v1/tenant/model_keys/openai", Some(&app.admin_token), Some(key)).await.expect(200);
    let sid = app
        .post(
            "/v1/smiths",
            &app.admin_token,
            json!({"external_id": "paris", "model": "gpt-4o", "auto_memory": true, "instructions": "Be brief."}),
        )
        .await
        .expect(201)
        .id();
    app.patch(&format!("/v1/smiths/{sid}/blocks/human"), &app.admin_token, json!({"value": "Ada, a mathematician."}))
        .await
        .expect(200);
    add(&app, &sid, "The user is allergic to peanuts.").await;

    run(&app, &sid, "I moved to Paris last month.").await;
    let texts = eventually(&app, &sid, 2).await;
    assert!(texts.contains(&"The user lives in Paris.".to_owned()), "{texts:?}");

    let requests = mock.received_requests().await.unwrap();
    let bodies: Vec<Value> = requests.iter().map(|r| serde_json::from_slice(&r.body).unwrap()).collect();
    let turn = bodies.iter().find(|b| !b.to_string().contains("You extract durable facts")).unwrap();
    let system = turn["messages"][0]["content"].as_str().unwrap();
    assert!(system.starts_with("Be brief.\n\n<memory>\n"), "{system}");
    assert!(system.contains("<block label=\"human\" chars=\"21/5000\">\nAda, a mathematician.\n</block>"), "{system}");
    assert!(system.contains("- The user is allergic to peanuts."), "{system}");
    assert!(!system.contains("persona"), "an empty block is left out: {system}");
    let asked = bodies.iter().find(|b| b.to_string().contains("You extract durable facts")).unwrap();
    assert_eq!(asked["model"], "gpt-4o");
    let question = asked["messages"][1]["content"].as_str().unwrap();
    assert!(question.contains("- The user is allergic to peanuts.") || question.contains("none"), "{question}");
    assert!(question.contains("I moved to Paris last month."), "{question}");
    assert!(question.contains("The assistant answered:\nNoted."), "{question}");

    use ingram_core::store::usage_record;
    let recorded = usage_record::Entity::find()
        .filter(usage_record::Column::SmithId.eq(sid.as_str()))
        .one(&app.state.db)
        .await
        .unwrap()
        .expect("the extraction's usage is recorded");
    assert_eq!((recorded.input_tokens, recorded.output_tokens, recorded.model.as_str()), (40, 9, "gpt-4o"));
    assert!(recorded.cost_usd.is_some_and(|cost| cost > 0.0));
}

/// An OpenAI stream answering `text`, with its usage.
fn sse_text(text: &str, prompt_tokens: u32, completion_tokens: u32) -> ResponseTemplate {
    let chunk = |delta: Value, finish: Value, usage: Value| {
        format!(
            "data: {}\n\n",
            json!({"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
                   "choices": if usage.is_null() { json!([{"index": 0, "delta": delta, "finish_reason": finish}]) } else { json!([]) },
                   "usage": usage})
        )
    };
    let text: String = serde_json::from_str(&format!("\"{text}\"")).unwrap();
    let body = [
        chunk(json!({"role": "assistant", "content": text}), Value::Null, Value::Null),
        chunk(json!({}), json!("stop"), Value::Null),
        chunk(
            Value::Null,
            Value::Null,
            json!({"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens, "total_tokens": prompt_tokens + completion_tokens}),
        ),
        "data: [DONE]\n\n".to_owned(),
    ]
    .concat();
    ResponseTemplate::new(200).set_body_raw(body, "text/event-stream")
}

#[tokio::test]
async fn one_smiths_memory_never_reaches_another_and_a_smith_token_reads_and_erases_its_own() {
    let app = TestApp::start().await;
    let ada = app.create_smith(&app.admin_token, "iso_ada").await;
    let bob = app.create_smith(&app.admin_token, "iso_bob").await;
    let secret = add(&app, &ada, "The user's bank PIN hint is a blue giraffe.").await;
    app.patch(&format!("/v1/smiths/{ada}/blocks/human"), &app.admin_token, json!({"value": "Ada's private notes"}))
        .await
        .expect(200);
    add(&app, &bob, "The user likes trains.").await;

    assert!(search(&app, &app.admin_token, &bob, "giraffe blue PIN").await.is_empty());
    let reply = run(&app, &bob, "Tell me about the giraffe").await;
    let reply = reply["output"]["content"].as_str().unwrap();
    assert!(reply.contains("trains") && !reply.contains("giraffe.") && !reply.contains("private"), "{reply}");
    app.get(&format!("{}/{secret}", memories(&bob)), &app.admin_token).await.expect_error(404, "memory_not_found");
    app.patch(&format!("{}/{secret}", memories(&bob)), &app.admin_token, json!({"text": "stolen"}))
        .await
        .expect_error(404, "memory_not_found");
    app.delete(&format!("{}/{secret}", memories(&bob)), &app.admin_token).await.expect_error(404, "memory_not_found");

    let bobs_token = app.smith_token(&bob).await;
    app.get(&memories(&ada), &bobs_token).await.expect_error(404, "smith_not_found");
    app.get(&format!("/v1/smiths/{ada}/blocks"), &bobs_token).await.expect_error(404, "smith_not_found");
    app.post(&format!("{}/search", memories(&ada)), &bobs_token, json!({"query": "giraffe"}))
        .await
        .expect_error(404, "smith_not_found");
    app.delete(&format!("{}/{secret}", memories(&ada)), &bobs_token).await.expect_error(404, "smith_not_found");

    // Ada's own token: reads, corrects and erases her memories; never adds facts or writes blocks.
    let adas_token = app.smith_token(&ada).await;
    assert_eq!(search(&app, &adas_token, &ada, "giraffe").await.len(), 1);
    app.get(&format!("/v1/smiths/{ada}/blocks"), &adas_token).await.expect(200);
    app.patch(&format!("/v1/smiths/{ada}/blocks/human"), &adas_token, json!({"value": "mine"}))
        .await
        .expect_error(403, "permission_denied");
    app.post(&memories(&ada), &adas_token, json!({"text": "planted"})).await.expect_error(403, "permission_denied");
    app.patch(&format!("{}/{secret}", memories(&ada)), &adas_token, json!({"text": "The user has a PIN."}))
        .await
        .expect(200);
    app.delete(&format!("{}/{secret}", memories(&ada)), &adas_token).await.expect(200);
    assert!(app.get(&memories(&ada), &adas_token).await.body["data"].as_array().unwrap().is_empty());

    // Another project's token finds none of it.
    let (_, other) = app.other_project().await;
    app.get(&memories(&bob), &other).await.expect_error(404, "smith_not_found");
    app.get(&format!("/v1/smiths/{bob}/blocks"), &other).await.expect_error(404, "smith_not_found");
}

#[tokio::test]
async fn deleting_a_smith_erases_its_memories_and_blocks() {
    use ingram_core::store::{memory, memory_block};
    let app = TestApp::start().await;
    let sid = app.create_smith(&app.admin_token, "erased").await;
    let kept = app.create_smith(&app.admin_token, "kept").await;
    add(&app, &sid, "The user is allergic to peanuts.").await;
    add(&app, &kept, "The user is allergic to peanuts.").await;
    app.patch(&format!("/v1/smiths/{sid}/blocks/human"), &app.admin_token, json!({"value": "Ada"})).await.expect(200);
    app.delete(&format!("/v1/smiths/{sid}"), &app.admin_token).await.expect(200);
    let db = &app.state.db;
    assert_eq!(memory::Entity::find().filter(memory::Column::SmithId.eq(sid.as_str())).count(db).await.unwrap(), 0);
    assert_eq!(
        memory_block::Entity::find().filter(memory_block::Column::SmithId.eq(sid.as_str())).count(db).await.unwrap(),
        0
    );
    assert_eq!(
        search(&app, &app.admin_token, &kept, "peanuts").await.len(),
        1,
        "the index lost only the erased smith's"
    );
}

#[tokio::test]
async fn a_smith_keeps_at_most_a_thousand_memories() {
    let app = TestApp::start().await;
    let sid = app.create_smith(&app.admin_token, "full").await;
    // Filled directly: a thousand API calls would only slow the suite.
    use ingram_core::store::smith;
    use sea_orm::{ActiveModelTrait, ActiveValue::Set, IntoActiveModel};
    let row = smith::Entity::find_by_id(sid.as_str()).one(&app.state.db).await.unwrap().unwrap();
    let mut row = row.into_active_model();
    row.memory_count = Set(999);
    row.update(&app.state.db).await.unwrap();
    let last = add(&app, &sid, "The thousandth fact.").await;
    app.post(&memories(&sid), &app.admin_token, json!({"text": "One too many."}))
        .await
        .expect_error(400, "memory_limit_reached");
    app.delete(&format!("{}/{last}", memories(&sid)), &app.admin_token).await.expect(200);
    add(&app, &sid, "Room again.").await;
}

/// Fixed 4-dimensional vectors by topic, so similarity is predictable.
fn embeddings(request: &Request) -> ResponseTemplate {
    let body: Value = serde_json::from_slice(&request.body).unwrap();
    let text = body["input"][0].as_str().unwrap().to_lowercase();
    let vector = if ["peanut", "snack", "nut", "eat"].iter().any(|w| text.contains(w)) {
        [0.9, 0.1, 0.0, 0.0]
    } else if ["train", "travel", "journey"].iter().any(|w| text.contains(w)) {
        [0.0, 0.9, 0.1, 0.0]
    } else {
        [0.0, 0.0, 0.0, 1.0]
    };
    ResponseTemplate::new(200).set_body_json(json!({
        "object": "list", "model": body["model"],
        "data": [{"object": "embedding", "index": 0, "embedding": vector}],
        "usage": {"prompt_tokens": 3, "total_tokens": 3},
    }))
}

#[tokio::test]
async fn semantic_search_blends_meaning_with_words_and_falls_back_to_words() {
    let app = TestApp::start().await;
    let mock = MockServer::start().await;
    Mock::given(method("POST")).and(path("/v1/embeddings")).respond_with(embeddings).mount(&mock).await;
    let settings = app
        .call(
            "PUT",
            "/v1/tenant/embeddings",
            Some(&app.admin_token),
            Some(json!({"base_url": format!("{}/v1", mock.uri()), "api_key": "sk-embed-4242", "model": "embed-4"})),
        )
        .await
        .expect(200);
    assert_eq!(settings.body["preview"], "…4242");
    assert!(!settings.body.to_string().contains("sk-embed"), "the key is never returned");
    let sid = app.create_smith(&app.admin_token, "semantic").await;
    add(&app, &sid, "The user is allergic to peanuts.").await;
    add(&app, &sid, "The user commutes by train.").await;
    add(&app, &sid, "The user's favourite colour is blue.").await;
    let sent = mock.received_requests().await.unwrap();
    assert!(sent.iter().all(|r| r.headers["authorization"] == "Bearer sk-embed-4242"));

    // No word in common: only meaning finds it.
    assert_eq!(search(&app, &app.admin_token, &sid, "what can I eat").await[0], "The user is allergic to peanuts.");
    assert_eq!(search(&app, &app.admin_token, &sid, "journey tips").await[0], "The user commutes by train.");

    // The endpoint failing: words still work, nothing fails.
    mock.reset().await;
    Mock::given(method("POST")).and(path("/v1/embeddings")).respond_with(ResponseTemplate::new(500)).mount(&mock).await;
    assert_eq!(search(&app, &app.admin_token, &sid, "blue").await, ["The user's favourite colour is blue."]);
    assert!(search(&app, &app.admin_token, &sid, "what can I eat").await.is_empty());
    add(&app, &sid, "Stored without a vector.").await;

    // A browser's smith token neither reads nor replaces the project's embeddings endpoint.
    let smith_token = app.smith_token(&sid).await;
    app.get("/v1/tenant/embeddings", &smith_token).await.expect_error(403, "permission_denied");
    let planted = json!({"base_url": "https://evil.example/v1", "api_key": "sk-x", "model": "m"});
    app.call("PUT", "/v1/tenant/embeddings", Some(&smith_token), Some(planted))
        .await
        .expect_error(403, "permission_denied");
    app.delete("/v1/tenant/embeddings", &smith_token).await.expect_error(403, "permission_denied");

    // An embeddings URL the egress policy forbids is refused.
    let strict = TestApp::start_with(ingram_core::settings::Settings::for_tests()).await;
    strict
        .call(
            "PUT",
            "/v1/tenant/embeddings",
            Some(&strict.admin_token),
            Some(json!({"base_url": "http://127.0.0.1:9/v1", "api_key": "sk-x", "model": "m"})),
        )
        .await
        .expect_error(400, "egress_denied");
}
