//! Rewrites the OpenAPI 3.1 document utoipa emits into the 3.0 dialect progenitor reads.
//! The published spec stays 3.1; this form exists only to generate the client from.

use serde_json::{Map, Value, json};

pub fn convert(spec: &Value) -> Value {
    let mut spec = spec.clone();
    spec["openapi"] = json!("3.0.3");
    if let Some(license) = spec.pointer_mut("/info/license").and_then(Value::as_object_mut) {
        license.remove("identifier");
    }
    rewrite(&mut spec);
    if let Some(paths) = spec.get_mut("paths").and_then(Value::as_object_mut) {
        for operation in paths.values_mut().filter_map(Value::as_object_mut).flat_map(|item| item.values_mut()) {
            relax_optional_parameters(operation);
        }
    }
    spec
}

fn rewrite(value: &mut Value) {
    match value {
        Value::Array(items) => items.iter_mut().for_each(rewrite),
        Value::Object(object) => {
            object.values_mut().for_each(rewrite);
            rewrite_schema(object);
        }
        _ => {}
    }
}

fn is_null_schema(value: &Value) -> bool {
    value.get("type").and_then(Value::as_str) == Some("null")
}

fn rewrite_schema(object: &mut Map<String, Value>) {
    // `type: [X, "null"]` → `type: X, nullable: true`
    if let Some(Value::Array(types)) = object.get("type") {
        let (nulls, others): (Vec<&Value>, Vec<&Value>) = types.iter().partition(|t| t.as_str() == Some("null"));
        if let [single] = others.as_slice() {
            let single = (*single).clone();
            let nullable = !nulls.is_empty();
            object.insert("type".into(), single);
            if nullable {
                object.insert("nullable".into(), json!(true));
            }
        }
    }
    // `oneOf: [S, {type: null}]` → S made nullable (`allOf: [$ref]` for references)
    for key in ["oneOf", "anyOf"] {
        let Some(Value::Array(variants)) = object.get(key) else { continue };
        if !variants.iter().any(is_null_schema) {
            continue;
        }
        let rest: Vec<Value> = variants.iter().filter(|v| !is_null_schema(v)).cloned().collect();
        object.remove(key);
        object.insert("nullable".into(), json!(true));
        match rest.as_slice() {
            [single] if single.get("$ref").is_some() => {
                object.insert("allOf".into(), json!([single]));
            }
            [Value::Object(single)] => {
                for (k, v) in single {
                    object.entry(k.clone()).or_insert_with(|| v.clone());
                }
            }
            _ => {
                object.insert(key.into(), Value::Array(rest));
            }
        }
    }
    if let Some(Value::Number(bound)) = object.get("exclusiveMinimum").cloned() {
        object.insert("minimum".into(), Value::Number(bound));
        object.insert("exclusiveMinimum".into(), json!(true));
    }
    if let Some(Value::Number(bound)) = object.get("exclusiveMaximum").cloned() {
        object.insert("maximum".into(), Value::Number(bound));
        object.insert("exclusiveMaximum".into(), json!(true));
    }
    // Keywords 3.0 does not know; `propertyNames` only restates that JSON keys are strings.
    object.remove("propertyNames");
    if let Some(constant) = object.remove("const") {
        object.insert("enum".into(), json!([constant]));
    }
    if let Some(Value::Array(examples)) = object.remove("examples")
        && let Some(first) = examples.into_iter().next()
        && !object.contains_key("example")
    {
        object.insert("example".into(), first);
    }
    // 3.0 ignores everything beside a `$ref`.
    if object.contains_key("$ref") {
        object.retain(|key, _| key == "$ref");
    }
}

/// progenitor turns an optional *and* nullable parameter into `Option<Option<T>>`.
fn relax_optional_parameters(operation: &mut Value) {
    let Some(parameters) = operation.get_mut("parameters").and_then(Value::as_array_mut) else { return };
    for parameter in parameters {
        let required = parameter.get("required").and_then(Value::as_bool).unwrap_or(false);
        if !required && let Some(schema) = parameter.get_mut("schema").and_then(Value::as_object_mut) {
            schema.remove("nullable");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_the_shapes_progenitor_cannot_read() {
        let spec = json!({
            "openapi": "3.1.0",
            "info": {"license": {"name": "x", "identifier": "x"}},
            "components": {"schemas": {"S": {"type": "object", "properties": {
                "a": {"type": ["string", "null"]},
                "b": {"oneOf": [{"type": "null"}, {"$ref": "#/components/schemas/T"}]},
                "c": {"type": "integer", "exclusiveMinimum": 0},
                "d": {"const": "x"},
                "e": {"$ref": "#/components/schemas/T", "description": "dropped"},
                "f": {"type": "object", "propertyNames": {"type": "string"}},
            }}}},
        });
        let out = convert(&spec);
        let props = &out["components"]["schemas"]["S"]["properties"];
        assert_eq!(out["openapi"], "3.0.3");
        assert!(out["info"]["license"].get("identifier").is_none());
        assert_eq!(props["a"], json!({"type": "string", "nullable": true}));
        assert_eq!(props["b"], json!({"nullable": true, "allOf": [{"$ref": "#/components/schemas/T"}]}));
        assert_eq!(props["c"], json!({"type": "integer", "minimum": 0, "exclusiveMinimum": true}));
        assert_eq!(props["d"], json!({"enum": ["x"]}));
        assert_eq!(props["e"], json!({"$ref": "#/components/schemas/T"}));
        assert_eq!(props["f"], json!({"type": "object"}));
    }
}
