//! The committed contract: finds the operation a request hit and validates responses
//! against the schema it declares for that status.

use std::sync::LazyLock;

use serde_json::{Value, json};

pub static SPEC: LazyLock<Value> = LazyLock::new(|| {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../spec/openapi.json");
    serde_json::from_str(&std::fs::read_to_string(path).expect("spec/openapi.json exists")).expect("the spec is JSON")
});

/// One operation of the spec.
#[derive(Debug, Clone)]
pub struct Operation {
    pub method: String,
    pub path: String,
    pub operation_id: String,
    pub body: Value,
}

impl Operation {
    pub fn path_params(&self) -> Vec<String> {
        self.path
            .split('/')
            .filter_map(|segment| segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(str::to_owned)
            .collect()
    }

    pub fn is_authenticated(&self) -> bool {
        self.body.get("security").is_some()
    }
}

pub fn operations() -> Vec<Operation> {
    let mut operations = Vec::new();
    for (path, item) in SPEC["paths"].as_object().expect("paths") {
        for (method, body) in item.as_object().expect("path item") {
            operations.push(Operation {
                method: method.to_uppercase(),
                path: path.clone(),
                operation_id: body["operationId"].as_str().expect("operationId").to_owned(),
                body: body.clone(),
            });
        }
    }
    operations
}

fn template_matches(template: &str, path: &str) -> bool {
    let template: Vec<&str> = template.split('/').collect();
    let path: Vec<&str> = path.split('/').collect();
    template.len() == path.len()
        && template.iter().zip(&path).all(|(t, p)| (t.starts_with('{') && !p.is_empty()) || t == p)
}

/// The operation a concrete request path hits, if the spec has one.
pub fn find_operation(method: &str, path: &str) -> Option<Operation> {
    let path = path.split('?').next().unwrap_or(path);
    operations().into_iter().find(|op| op.method.eq_ignore_ascii_case(method) && template_matches(&op.path, path))
}

/// Fails the test when `body` is not what the spec declares for this operation and status.
pub fn assert_conforms(method: &str, path: &str, status: u16, body: &Value) {
    let Some(operation) = find_operation(method, path) else {
        // Requests to routes outside the spec must still answer with the error envelope.
        validate(&json!({"$ref": "#/components/schemas/ErrorEnvelope"}), body, &format!("{method} {path} (no route)"));
        return;
    };
    let responses = &operation.body["responses"];
    let range = format!("{}XX", status / 100);
    let response = responses
        .get(status.to_string())
        .or_else(|| responses.get(&range))
        .unwrap_or_else(|| panic!("{} answered {status}, which the spec does not declare", operation.operation_id));
    let schema = &response["content"]["application/json"]["schema"];
    assert!(schema.is_object(), "{} {status} declares no JSON schema", operation.operation_id);
    validate(schema, body, &format!("{} {status}", operation.operation_id));
}

fn validate(schema: &Value, body: &Value, what: &str) {
    let mut root = schema.clone();
    root["components"] = SPEC["components"].clone();
    let validator = jsonschema::validator_for(&root).unwrap_or_else(|err| panic!("schema for {what}: {err}"));
    let errors: Vec<String> =
        validator.iter_errors(body).map(|err| format!("{err} at {}", err.instance_path)).collect();
    assert!(errors.is_empty(), "{what}: response violates its declared schema:\n{}\nbody: {body:#}", errors.join("\n"));
}

/// The smallest body that satisfies the operation's request schema: required fields only,
/// the first enum value or variant, empty arrays. The matrix sends it so that a refusal
/// comes from tenancy, not from parsing.
pub fn minimal_body(operation: &Operation) -> Option<Value> {
    let schema = operation.body.pointer("/requestBody/content/application~1json/schema")?;
    Some(minimal_instance(schema))
}

fn resolve(schema: &Value) -> &Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(reference) => {
            let name = reference.rsplit('/').next().unwrap_or_default();
            &SPEC["components"]["schemas"][name]
        }
        None => schema,
    }
}

fn minimal_instance(schema: &Value) -> Value {
    let schema = resolve(schema);
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        return values[0].clone();
    }
    for key in ["oneOf", "anyOf", "allOf"] {
        if let Some(first) =
            schema.get(key).and_then(Value::as_array).and_then(|variants| variants.iter().find(|v| v["type"] != "null"))
        {
            return minimal_instance(first);
        }
    }
    let kind = match &schema["type"] {
        Value::Array(types) => types.iter().find(|t| *t != "null").cloned().unwrap_or(Value::Null),
        other => other.clone(),
    };
    match kind.as_str() {
        Some("object") | None if schema.get("properties").is_some() => {
            let mut object = serde_json::Map::new();
            for name in schema["required"].as_array().into_iter().flatten().filter_map(Value::as_str) {
                object.insert(name.to_owned(), minimal_instance(&schema["properties"][name]));
            }
            Value::Object(object)
        }
        Some("object") => json!({}),
        Some("array") => json!([]),
        Some("string") => json!("x"),
        Some("integer") | Some("number") => json!(1),
        Some("boolean") => json!(false),
        _ => Value::Null,
    }
}

/// Validates an SSE frame's data against the `RunEventData` variant titled with its event name.
pub fn assert_frame_conforms(event: &str, data: &Value) {
    let variants = SPEC["components"]["schemas"]["RunEventData"]["oneOf"].as_array().expect("RunEventData variants");
    let variant = variants
        .iter()
        .find(|variant| variant["title"] == event)
        .unwrap_or_else(|| panic!("the spec declares no frame named '{event}'"));
    validate(&json!({"$ref": variant["$ref"]}), data, &format!("frame {event}"));
    assert_eq!(data["v"], 1, "frame {event} lacks v: 1");
}

/// Validates a value against a named component schema.
pub fn assert_matches_schema(name: &str, value: &Value) {
    validate(&json!({"$ref": format!("#/components/schemas/{name}")}), value, name);
}
