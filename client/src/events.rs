//! Typed run event streams: streaming creates, `/submit` with `stream: true`, and the events
//! endpoint. A stream that drops before the run finished or paused reconnects to the events
//! endpoint with `Last-Event-ID`, so the caller sees every event exactly once.

use std::pin::Pin;
use std::time::Duration;

use eventsource_stream::Eventsource;
use futures::{Stream, StreamExt};
use progenitor_client::ClientInfo;
use reqwest::header::{ACCEPT, HeaderValue};

use crate::Client;
use crate::error::{ApiError, Error, Result};
use crate::types;

/// One frame of a run's event stream.
#[derive(Debug, Clone, PartialEq)]
pub struct RunEventFrame {
    /// The run's event sequence number (absent only on `run.duplicate`).
    pub seq: Option<u64>,
    pub event: RunEvent,
}

/// A run event, decoded by the frame's `event:` name.
#[derive(Debug, Clone, PartialEq)]
pub enum RunEvent {
    Started(types::RunStartedEvent),
    MessageDelta(types::MessageDeltaEvent),
    MessageCompleted(types::MessageCompletedEvent),
    ToolExecuting(types::ToolExecutingEvent),
    ToolCompleted(types::ToolCompletedEvent),
    RequiresAction(types::RunRequiresActionEvent),
    ApprovalRequired(types::ApprovalRequiredEvent),
    Completed(types::RunCompletedEvent),
    Failed(types::RunFailedEvent),
    Cancelled(types::RunCancelledEvent),
    Duplicate(types::RunDuplicateEvent),
}

impl RunEvent {
    fn decode(name: &str, data: &str) -> Result<Self> {
        fn parse<T: serde::de::DeserializeOwned>(data: &str) -> Result<T> {
            serde_json::from_str(data)
                .map_err(|err| Error::UnexpectedResponse { status: None, detail: format!("{err}: {data}") })
        }
        Ok(match name {
            "run.started" => Self::Started(parse(data)?),
            "message.delta" => Self::MessageDelta(parse(data)?),
            "message.completed" => Self::MessageCompleted(parse(data)?),
            "tool.executing" => Self::ToolExecuting(parse(data)?),
            "tool.completed" => Self::ToolCompleted(parse(data)?),
            "run.requires_action" => Self::RequiresAction(parse(data)?),
            "approval.required" => Self::ApprovalRequired(parse(data)?),
            "run.completed" => Self::Completed(parse(data)?),
            "run.failed" => Self::Failed(parse(data)?),
            "run.cancelled" => Self::Cancelled(parse(data)?),
            "run.duplicate" => Self::Duplicate(parse(data)?),
            other => {
                return Err(Error::UnexpectedResponse { status: None, detail: format!("unknown run event '{other}'") });
            }
        })
    }

    pub fn run_id(&self) -> &str {
        match self {
            Self::Started(e) => &e.run_id,
            Self::MessageDelta(e) => &e.run_id,
            Self::MessageCompleted(e) => &e.run_id,
            Self::ToolExecuting(e) => &e.run_id,
            Self::ToolCompleted(e) => &e.run_id,
            Self::RequiresAction(e) => &e.run_id,
            Self::ApprovalRequired(e) => &e.run_id,
            Self::Completed(e) => &e.run_id,
            Self::Failed(e) => &e.run_id,
            Self::Cancelled(e) => &e.run_id,
            Self::Duplicate(e) => &e.run_id,
        }
    }

    /// Whether the server closes the stream after this event (the run ended or paused).
    pub fn ends_stream(&self) -> bool {
        matches!(
            self,
            Self::RequiresAction(_) | Self::Completed(_) | Self::Failed(_) | Self::Cancelled(_) | Self::Duplicate(_)
        )
    }
}

pub type RunEventStream = Pin<Box<dyn Stream<Item = Result<RunEventFrame>> + Send>>;

/// Reconnections after a drop, at most.
const RESUME_ATTEMPTS: u32 = 5;

impl Client {
    /// Creates a run and streams its events (`stream` is set for you).
    pub async fn create_run_stream(&self, smith_id: &str, request: &types::CreateRunRequest) -> Result<RunEventStream> {
        let mut body = serde_json::to_value(request).map_err(|err| Error::InvalidRequest(err.to_string()))?;
        body["stream"] = serde_json::Value::Bool(true);
        let path = format!("/v1/smiths/{smith_id}/runs");
        let response = self
            .open_stream(self.client().post(self.url(&path)).json(&body).header("idempotency-key", new_key()))
            .await?;
        Ok(self.follow(smith_id.to_owned(), response, None, None))
    }

    /// Answers a paused run's tool calls and streams the resumed run's events.
    pub async fn submit_tool_outputs_stream(
        &self,
        smith_id: &str,
        run_id: &str,
        tool_outputs: Vec<types::ToolOutput>,
    ) -> Result<RunEventStream> {
        let body = serde_json::json!({ "tool_outputs": tool_outputs, "stream": true });
        let path = format!("/v1/smiths/{smith_id}/runs/{run_id}/submit");
        let response = self
            .open_stream(self.client().post(self.url(&path)).json(&body).header("idempotency-key", new_key()))
            .await?;
        Ok(self.follow(smith_id.to_owned(), response, Some(run_id.to_owned()), None))
    }

    /// A run's events after `after` (all of them for `None`), then live ones until the run
    /// finishes or pauses.
    pub async fn stream_run_events(&self, smith_id: &str, run_id: &str, after: Option<u64>) -> Result<RunEventStream> {
        let response = self.open_events(smith_id, run_id, after).await?;
        Ok(self.follow(smith_id.to_owned(), response, Some(run_id.to_owned()), after))
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.baseurl())
    }

    async fn open_events(&self, smith_id: &str, run_id: &str, after: Option<u64>) -> Result<reqwest::Response> {
        let mut request = self.client().get(self.url(&format!("/v1/smiths/{smith_id}/runs/{run_id}/events")));
        if let Some(after) = after {
            request = request.header("last-event-id", after.to_string());
        }
        self.open_stream(request).await
    }

    async fn open_stream(&self, request: reqwest::RequestBuilder) -> Result<reqwest::Response> {
        let response = request
            .header(ACCEPT, HeaderValue::from_static("text/event-stream"))
            .send()
            .await
            .map_err(Error::Transport)?;
        if response.status().is_success() {
            return Ok(response);
        }
        Err(error_from(response).await)
    }

    /// Reads frames from `response`; after a drop, resumes from the last sequence number seen
    /// (or `after`, where the stream began, when none was seen yet).
    fn follow(
        &self,
        smith_id: String,
        response: reqwest::Response,
        run_id: Option<String>,
        after: Option<u64>,
    ) -> RunEventStream {
        struct Follow {
            client: Client,
            smith_id: String,
            run_id: Option<String>,
            last_seq: Option<u64>,
            frames: Option<Pin<Box<dyn Stream<Item = Result<RunEventFrame>> + Send>>>,
            resumes_left: u32,
            done: bool,
        }
        let header = |name: &str| response.headers().get(name).and_then(|value| value.to_str().ok()).map(str::to_owned);
        let run_id = run_id.or_else(|| header("x-run-id"));
        let after = after
            .or_else(|| header("x-run-stream-after").and_then(|after| after.parse().ok()).filter(|after| *after > 0));
        let state = Follow {
            client: self.clone(),
            smith_id,
            run_id,
            last_seq: after,
            frames: Some(frames(response)),
            resumes_left: RESUME_ATTEMPTS,
            done: false,
        };
        Box::pin(futures::stream::unfold(state, |mut state| async move {
            loop {
                if state.done {
                    return None;
                }
                let dropped = match state.frames.as_mut() {
                    Some(frames) => match frames.next().await {
                        Some(Ok(frame)) => {
                            if frame.seq.is_some_and(|seq| state.last_seq.is_some_and(|last| seq <= last)) {
                                continue;
                            }
                            state.last_seq = frame.seq.or(state.last_seq);
                            state.run_id.get_or_insert_with(|| frame.event.run_id().to_owned());
                            state.done = frame.event.ends_stream();
                            return Some((Ok(frame), state));
                        }
                        Some(Err(Error::Transport(err))) => Some(Error::Transport(err)),
                        Some(Err(err)) => {
                            state.done = true;
                            return Some((Err(err), state));
                        }
                        // Closed before the run ended or paused: a drop.
                        None => None,
                    },
                    None => None,
                };
                state.frames = None;
                let Some(run_id) = state.run_id.clone().filter(|_| state.resumes_left > 0) else {
                    state.done = true;
                    let err = dropped.unwrap_or(Error::UnexpectedResponse {
                        status: None,
                        detail: "the event stream ended early".into(),
                    });
                    return Some((Err(err), state));
                };
                state.resumes_left -= 1;
                tokio::time::sleep(Duration::from_millis(200 * u64::from(RESUME_ATTEMPTS - state.resumes_left))).await;
                match state.client.open_events(&state.smith_id, &run_id, state.last_seq).await {
                    Ok(response) => state.frames = Some(frames(response)),
                    Err(Error::Transport(_)) => {}
                    Err(err) => {
                        state.done = true;
                        return Some((Err(err), state));
                    }
                }
            }
        }))
    }
}

fn frames(response: reqwest::Response) -> Pin<Box<dyn Stream<Item = Result<RunEventFrame>> + Send>> {
    Box::pin(response.bytes_stream().eventsource().map(|event| match event {
        Ok(event) => {
            Ok(RunEventFrame { seq: event.id.parse().ok(), event: RunEvent::decode(&event.event, &event.data)? })
        }
        Err(eventsource_stream::EventStreamError::Transport(err)) => Err(Error::Transport(err)),
        Err(err) => Err(Error::UnexpectedResponse { status: None, detail: err.to_string() }),
    }))
}

fn new_key() -> String {
    format!("ingram-rs-{}", uuid::Uuid::new_v4())
}

/// The typed error of a non-2xx answer to a request made outside the generated methods.
pub(crate) async fn error_from(response: reqwest::Response) -> Error {
    let status = response.status().as_u16();
    let request_id =
        response.headers().get("x-request-id").and_then(|id| id.to_str().ok()).unwrap_or_default().to_owned();
    let text = response.text().await.unwrap_or_default();
    match serde_json::from_str::<types::ErrorEnvelope>(&text) {
        Ok(envelope) => ApiError::from_envelope(status, request_id, envelope).into(),
        Err(_) => Error::UnexpectedResponse { status: Some(status), detail: text },
    }
}
