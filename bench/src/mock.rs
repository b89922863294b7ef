//! A mock OpenAI upstream. The model name sets the pacing, so one mock serves every scenario:
//! `bench-l<latency ms>-c<chunks>-i<interval ms>` waits `latency` before the first chunk (or
//! the whole answer), then streams `chunks` content chunks `interval` apart.

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use futures::StreamExt;
use serde_json::{Value, json};

#[derive(clap::Args)]
pub struct Options {
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: std::net::SocketAddr,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Pacing {
    latency: Duration,
    chunks: u32,
    interval: Duration,
}

impl Pacing {
    fn from_model(model: &str) -> Self {
        let mut pacing = Self { latency: Duration::ZERO, chunks: 1, interval: Duration::ZERO };
        for part in model.strip_prefix("bench-").unwrap_or_default().split('-') {
            let (key, value) = part.split_at(part.len().min(1));
            let Ok(value) = value.parse::<u64>() else { continue };
            match key {
                "l" => pacing.latency = Duration::from_millis(value),
                "c" => pacing.chunks = u32::try_from(value).unwrap_or(u32::MAX).max(1),
                "i" => pacing.interval = Duration::from_millis(value),
                _ => {}
            }
        }
        pacing
    }
}

pub async fn serve(options: Options) -> anyhow::Result<()> {
    use axum::serve::ListenerExt;
    let app = Router::new().route("/v1/chat/completions", post(complete)).route("/chat/completions", post(complete));
    let listener = tokio::net::TcpListener::bind(options.listen).await?;
    println!("{}", listener.local_addr()?);
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app).await?;
    Ok(())
}

async fn complete(body: axum::body::Bytes) -> Response {
    let request: Value = serde_json::from_slice(&body).unwrap_or_default();
    let model = request["model"].as_str().unwrap_or_default().to_owned();
    let pacing = Pacing::from_model(&model);
    if request["stream"] != true {
        pause(pacing.latency).await;
        let content = vec!["tok"; pacing.chunks as usize].join(" ");
        return axum::Json(json!({
            "id": "chatcmpl-mock", "object": "chat.completion", "created": 0, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 8, "completion_tokens": pacing.chunks, "total_tokens": 8 + pacing.chunks},
        }))
        .into_response();
    }
    let include_usage = request["stream_options"]["include_usage"] == true;
    let chunk = move |delta: Value, finish: Value| {
        let chunk = json!({"id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": 0, "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
        format!("data: {chunk}\n\n")
    };
    let frames = (0..=pacing.chunks + 1).map(move |index| match index {
        0 => chunk(json!({"role": "assistant", "content": ""}), Value::Null),
        n if n <= pacing.chunks => chunk(json!({"content": if n == 1 { "tok" } else { " tok" }}), Value::Null),
        _ => {
            let mut tail = chunk(json!({}), json!("stop"));
            if include_usage {
                let usage = json!({"id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": 0, "choices": [],
                    "usage": {"prompt_tokens": 8, "completion_tokens": pacing.chunks, "total_tokens": 8 + pacing.chunks}});
                tail.push_str(&format!("data: {usage}\n\n"));
            }
            tail.push_str("data: [DONE]\n\n");
            tail
        }
    });
    let paced = futures::stream::iter(frames.enumerate()).then(move |(index, frame)| async move {
        match index {
            1 => pause(pacing.latency).await,
            n if n > 1 && (n as u32) <= pacing.chunks => pause(pacing.interval).await,
            _ => {}
        }
        Ok::<_, std::convert::Infallible>(frame)
    });
    ([(CONTENT_TYPE, "text/event-stream")], Body::from_stream(paced)).into_response()
}

/// Sleeps, but not for zero: tokio's timer would still wait for its next millisecond tick.
async fn pause(duration: Duration) {
    if !duration.is_zero() {
        tokio::time::sleep(duration).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_model_name_sets_the_pacing() {
        let pacing = Pacing::from_model("bench-l20-c64-i5");
        assert_eq!(
            pacing,
            Pacing { latency: Duration::from_millis(20), chunks: 64, interval: Duration::from_millis(5) }
        );
        assert_eq!(Pacing::from_model("gpt-4o").chunks, 1);
    }
}
