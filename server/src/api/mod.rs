//! The `/v1` HTTP surface: one module per resource family, and the OpenAPI document they make.

pub mod agents;
pub mod approvals;
pub mod catalog;
pub mod files;
pub mod health;
pub mod mcp;
pub mod memory;
pub mod model_keys;
pub mod openai;
pub mod pagination;
pub mod projects;
pub mod responses;
pub mod runs;
pub mod schemas;
pub mod smiths;
pub mod tokens;
pub mod tools;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Value, json};
use utoipa::{OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;

use crate::AppState;
use crate::api::schemas::ErrorEnvelope;
use crate::http::CURRENT_API_VERSION;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Ingram API",
        version = "2026-05-01",
        description = "One AI assistant (a smith) per end-user of your app. Errors use the OpenAI envelope; match on `code`.",
        license(name = "Apache-2.0"),
    ),
    components(schemas(ErrorEnvelope)),
    tags(
        (name = "projects", description = "Tenants, managed with the org key."),
        (name = "tokens", description = "A project's API tokens."),
        (name = "agents", description = "The designs smiths run."),
        (name = "smiths", description = "One smith per end-user, with config revisions."),
        (name = "runs", description = "One turn of a smith: synchronous, or streamed as SSE."),
        (name = "openai", description = "OpenAI-compatible surface: point an OpenAI SDK at /v1."),
        (name = "files", description = "Images and documents inlined into conversations."),
        (name = "tools", description = "Server-side tools: hosted tools the server runs itself, the project's MCP servers, and the catalog of MCP integrations."),
        (name = "approvals", description = "Human approval of gated tool calls: what runs wait on, decided through /submit."),
        (name = "memory", description = "What each smith remembers about its person: blocks, memories, search."),
        (name = "models", description = "Provider keys (BYOK) and the models a project can use."),
        (name = "health", description = "Liveness."),
    )
)]
struct ApiDoc;

/// What a DELETE answers.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Deleted {
    pub id: String,
    pub deleted: bool,
}

impl Deleted {
    pub fn new(id: impl Into<String>) -> Self {
        Self { id: id.into(), deleted: true }
    }
}

/// The schema of every `metadata` field: up to 16 string pairs, keys up to 64 and values up
/// to 512 characters (as OpenAI), nullable like the optional fields around it.
pub fn metadata_schema() -> utoipa::openapi::Object {
    use ingram_core::domain::limits::{METADATA_KEY_MAX, METADATA_PAIRS_MAX, METADATA_VALUE_MAX};
    string_map_schema(METADATA_PAIRS_MAX, METADATA_KEY_MAX, METADATA_VALUE_MAX)
        .description(Some(format!(
            "Up to {METADATA_PAIRS_MAX} string pairs of your own: keys up to {METADATA_KEY_MAX} characters, values up to {METADATA_VALUE_MAX}."
        )))
        .build()
}

/// `tool_approvals`: tool references or `*` patterns to `always` or `never`, nullable.
pub fn tool_approvals_schema() -> utoipa::openapi::Object {
    tool_approvals_builder(true)
}

/// [`tool_approvals_schema`] where it is always present (an effective config's).
pub fn tool_approvals_map_schema() -> utoipa::openapi::Object {
    tool_approvals_builder(false)
}

fn tool_approvals_builder(nullable: bool) -> utoipa::openapi::Object {
    use ingram_core::domain::approvals::policy::ENTRIES_MAX;
    use ingram_core::domain::tools::reference::REFERENCE_MAX;
    use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
    let policy = ObjectBuilder::new().schema_type(Type::String).enum_values(Some(["always", "never"]));
    let kind = if nullable { SchemaType::from_iter([Type::Object, Type::Null]) } else { SchemaType::new(Type::Object) };
    ObjectBuilder::new()
        .schema_type(kind)
        .description(Some(format!(
            "Up to {ENTRIES_MAX} tool references or `*` patterns (`mcp/weather/*`, `mcp/*`, `hosted/*`, `memory/*`, `*`), each `always` (ask before every call) or `never`; the most specific match decides, and a call nothing matches runs without asking."
        )))
        .additional_properties(Some(policy))
        .property_names(Some(ObjectBuilder::new().schema_type(Type::String).max_length(Some(REFERENCE_MAX)).build()))
        .max_properties(Some(ENTRIES_MAX))
        .build()
}

/// A nullable object of up to `pairs` string pairs, with keys and values bounded.
pub fn string_map_schema(pairs: usize, key_max: usize, value_max: usize) -> utoipa::openapi::schema::ObjectBuilder {
    use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
    let string = |max: usize| ObjectBuilder::new().schema_type(Type::String).max_length(Some(max));
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Object, Type::Null]))
        .additional_properties(Some(string(value_max)))
        .property_names(Some(string(key_max).build()))
        .max_properties(Some(pairs))
}

/// For PATCH fields where `null` (clear) differs from absent (keep).
pub fn double_option<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(deserializer).map(Some)
}

/// The routes that need a token, and the public ones.
pub fn routers() -> (OpenApiRouter<AppState>, OpenApiRouter<AppState>) {
    let authenticated = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(projects::router())
        .merge(tokens::router())
        .merge(agents::router())
        .merge(smiths::router())
        .merge(runs::router())
        .merge(model_keys::router())
        .merge(openai::router())
        .merge(responses::router())
        .merge(files::router())
        .merge(memory::router())
        .merge(tools::router())
        .merge(mcp::router())
        .merge(catalog::router())
        .merge(approvals::router());
    (authenticated, health::router())
}

/// The OpenAPI document, with the conventions every operation shares written into it.
pub fn openapi() -> Value {
    let (authenticated, public) = routers();
    let (_, doc) = authenticated.merge(public).split_for_parts();
    let mut doc = serde_json::to_value(doc).expect("the OpenAPI document serializes");
    apply_conventions(&mut doc);
    doc
}

const PUBLIC_PATHS: &[&str] = &["/healthz"];

fn apply_conventions(doc: &mut Value) {
    doc["components"]["securitySchemes"]["bearer"] = json!({
        "type": "http",
        "scheme": "bearer",
        "description": "A tenant-admin token (tha_…), a smith token (ths_…), or for /v1/organization the org key (ik_org_…).",
    });
    let error = json!({
        "description": "The OpenAI error envelope; `error.code` is a stable slug (docs/errors.md).",
        "content": { "application/json": { "schema": { "$ref": "#/components/schemas/ErrorEnvelope" } } },
    });
    let Some(paths) = doc["paths"].as_object_mut() else { return };
    for (path, item) in paths.iter_mut() {
        let Some(item) = item.as_object_mut() else { continue };
        for (method, operation) in item.iter_mut() {
            let Some(operation) = operation.as_object_mut() else { continue };
            let responses = operation.entry("responses").or_insert_with(|| json!({}));
            responses["4XX"] = error.clone();
            responses["5XX"] = error.clone();
            if PUBLIC_PATHS.contains(&path.as_str()) {
                continue;
            }
            operation.insert("security".into(), json!([{ "bearer": [] }]));
            let parameters = operation.entry("parameters").or_insert_with(|| json!([]));
            let Some(parameters) = parameters.as_array_mut() else { continue };
            parameters.push(json!({
                "name": "IC-Api-Version",
                "in": "header",
                "required": false,
                "description": format!("The API version; absent means the current one, {CURRENT_API_VERSION}."),
                "schema": { "type": "string", "enum": [CURRENT_API_VERSION] },
            }));
            if method == "post" {
                parameters.push(json!({
                    "name": "Idempotency-Key",
                    "in": "header",
                    "required": false,
                    "description": "Replays the first response for the same key and body; the same key with another body is refused with 422 idempotency_key_reused. Kept 24 hours.",
                    "schema": { "type": "string", "minLength": 1, "maxLength": 255 },
                }));
            }
        }
    }
}
