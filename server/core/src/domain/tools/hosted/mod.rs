//! Hosted tools: in-process, no server to run. `GET /v1/tenant/hosted_tools` lists them;
//! configs enable them as `hosted/<name>`.

pub mod calculator;
mod fetch;

use std::time::Duration;

use serde_json::{Value, json};

use crate::egress::Egress;

pub use fetch::{FETCH_BODY_MAX, FETCH_TEXT_MAX};

/// Runs hosted tool `name` with the model's `arguments`: its output, or an error text the
/// model reads (a tool's failure is the model's to handle, not the run's).
pub async fn call(name: &str, arguments: &Value, egress: &Egress, deadline: Duration) -> Result<String, String> {
    let text = |field: &str| -> Result<&str, String> {
        arguments.get(field).and_then(Value::as_str).ok_or_else(|| format!("'{field}' (a string) is required"))
    };
    match name {
        "calculator" => calculator::evaluate(text("expression")?).map(calculator::format),
        "current_time" => current_time(arguments.get("time_zone").and_then(Value::as_str)),
        "think" => {
            text("thought")?;
            Ok("Noted.".to_owned())
        }
        "http_fetch" => fetch::get(egress, text("url")?, deadline).await,
        other => Err(format!("no hosted tool is named {other}")),
    }
}

fn current_time(zone: Option<&str>) -> Result<String, String> {
    let now = chrono::Utc::now();
    let zone_name = zone.unwrap_or("UTC");
    let zone: chrono_tz::Tz = zone_name.parse().map_err(|_| format!("'{zone_name}' is not an IANA time zone"))?;
    let local = now.with_timezone(&zone);
    Ok(json!({
        "time_zone": zone_name,
        "local_time": local.format("%Y-%m-%dT%H:%M:%S%:z").to_string(),
        "weekday": local.format("%A").to_string(),
        "utc": now.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
    })
    .to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hosted_tools_answer_or_explain() {
        let egress = Egress::new(crate::egress::EgressPolicy::strict());
        let deadline = Duration::from_secs(1);
        let answer = |name: &'static str, arguments: Value| {
            let egress = egress.clone();
            async move { call(name, &arguments, &egress, deadline).await }
        };
        assert_eq!(answer("calculator", json!({"expression": "6 * 7"})).await.unwrap(), "42");
        assert!(answer("calculator", json!({})).await.unwrap_err().contains("expression"));
        let paris: Value =
            serde_json::from_str(&answer("current_time", json!({"time_zone": "Europe/Paris"})).await.unwrap()).unwrap();
        assert!(
            paris["local_time"].as_str().unwrap().ends_with("+01:00")
                || paris["local_time"].as_str().unwrap().ends_with("+02:00")
        );
        assert!(answer("current_time", json!({"time_zone": "Mars/Olympus"})).await.unwrap_err().contains("IANA"));
        assert_eq!(answer("think", json!({"thought": "first, add"})).await.unwrap(), "Noted.");
        let refused = answer("http_fetch", json!({"url": "http://127.0.0.1:9/secret"})).await.unwrap_err();
        assert!(refused.contains("not allowed") || refused.contains("refused"), "{refused}");
        assert!(answer("nope", json!({})).await.is_err());
        assert_eq!(crate::domain::tools::catalog::hosted().len(), 4);
    }
}
