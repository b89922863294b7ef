//! Typed streams for the OpenAI-compatible endpoints: `/v1/chat/completions` (`data:` chunks
//! until `[DONE]`) and `/v1/responses` (`event:`/`data:` frames until a terminal event).

use std::pin::Pin;

use eventsource_stream::Eventsource;
use futures::{Stream, StreamExt};
use progenitor_client::ClientInfo;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::error::{Error, Result};
use crate::events::error_from;
use crate::{ApiError, Client, types};

pub type ChatCompletionStream = Pin<Box<dyn Stream<Item = Result<types::ChatCompletionChunk>> + Send>>;
pub type ResponseEventStream = Pin<Box<dyn Stream<Item = Result<ResponseEvent>> + Send>>;

/// One event of a streamed response, by its `type`. Items and parts stay JSON: their shape
/// depends on their own `type` (`message`, `function_call`, `output_text`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type")]
pub enum ResponseEvent {
    #[serde(rename = "response.created")]
    Created { sequence_number: u64, response: types::ResponseObject },
    #[serde(rename = "response.in_progress")]
    InProgress { sequence_number: u64, response: types::ResponseObject },
    #[serde(rename = "response.output_item.added")]
    OutputItemAdded { sequence_number: u64, output_index: u32, item: Value },
    #[serde(rename = "response.output_item.done")]
    OutputItemDone { sequence_number: u64, output_index: u32, item: Value },
    #[serde(rename = "response.content_part.added")]
    ContentPartAdded { sequence_number: u64, item_id: String, output_index: u32, content_index: u32, part: Value },
    #[serde(rename = "response.content_part.done")]
    ContentPartDone { sequence_number: u64, item_id: String, output_index: u32, content_index: u32, part: Value },
    #[serde(rename = "response.output_text.delta")]
    OutputTextDelta { sequence_number: u64, item_id: String, output_index: u32, content_index: u32, delta: String },
    #[serde(rename = "response.output_text.done")]
    OutputTextDone { sequence_number: u64, item_id: String, output_index: u32, content_index: u32, text: String },
    #[serde(rename = "response.function_call_arguments.delta")]
    FunctionCallArgumentsDelta { sequence_number: u64, item_id: String, output_index: u32, delta: String },
    #[serde(rename = "response.function_call_arguments.done")]
    FunctionCallArgumentsDone {
        sequence_number: u64,
        item_id: String,
        output_index: u32,
        name: String,
        arguments: String,
    },
    #[serde(rename = "response.completed")]
    Completed { sequence_number: u64, response: types::ResponseObject },
    #[serde(rename = "response.incomplete")]
    Incomplete { sequence_number: u64, response: types::ResponseObject },
    /// The response failed; `response.error` says why. The stream ends here.
    #[serde(rename = "response.failed")]
    Failed { sequence_number: u64, response: types::ResponseObject },
}

impl ResponseEvent {
    /// Whether the stream ends with this event.
    pub fn is_terminal(&self) -> bool {
        matches!(self, Self::Completed { .. } | Self::Incomplete { .. } | Self::Failed { .. })
    }
}

impl Client {
    /// Streams a chat completion (`stream` is set for you). `smith_id` names the smith for a
    /// tenant-admin token when the request carries no `user`.
    pub async fn create_chat_completion_stream(
        &self,
        request: &types::ChatCompletionRequest,
        smith_id: Option<&str>,
    ) -> Result<ChatCompletionStream> {
        let response = self.open_openai_stream("/v1/chat/completions", request, smith_id).await?;
        let chunks = response
            .bytes_stream()
            .eventsource()
            .take_while(|event| std::future::ready(!matches!(event, Ok(event) if event.data == "[DONE]")))
            .map(|event| decode_frame(event.map(|event| event.data)));
        Ok(Box::pin(chunks))
    }

    /// Streams a response (`stream` is set for you) until `response.completed`,
    /// `response.incomplete` or `response.failed`; an `error` event ends it with that error.
    pub async fn create_response_stream(
        &self,
        request: &types::CreateResponseRequest,
        smith_id: Option<&str>,
    ) -> Result<ResponseEventStream> {
        let response = self.open_openai_stream("/v1/responses", request, smith_id).await?;
        let mut ended = false;
        let events = response
            .bytes_stream()
            .eventsource()
            .map(|event| decode_frame::<ResponseEvent>(event.map(|event| event.data)))
            .take_while(move |event| {
                let more = !ended;
                ended = !matches!(event, Ok(event) if !event.is_terminal());
                std::future::ready(more)
            });
        Ok(Box::pin(events))
    }

    async fn open_openai_stream(
        &self,
        path: &str,
        request: &impl serde::Serialize,
        smith_id: Option<&str>,
    ) -> Result<reqwest::Response> {
        let mut body = serde_json::to_value(request).map_err(|err| Error::InvalidRequest(err.to_string()))?;
        body["stream"] = Value::Bool(true);
        let mut http = self.client().post(format!("{}{path}", self.baseurl())).json(&body);
        if let Some(smith_id) = smith_id {
            http = http.header("ic-smith-id", smith_id);
        }
        let response = http.send().await.map_err(Error::Transport)?;
        if !response.status().is_success() {
            return Err(error_from(response).await);
        }
        Ok(response)
    }
}

/// A frame's data as `T`, or the error a stream ends with: a chat chunk carrying
/// `{"error": {...}}`, or a Responses `error` event (flat `code`, `message`, `param`).
fn decode_frame<T: DeserializeOwned>(
    data: std::result::Result<String, eventsource_stream::EventStreamError<reqwest::Error>>,
) -> Result<T> {
    let unexpected = |detail: String| Error::UnexpectedResponse { status: None, detail };
    let data = match data {
        Ok(data) => data,
        Err(eventsource_stream::EventStreamError::Transport(err)) => return Err(Error::Transport(err)),
        Err(err) => return Err(unexpected(err.to_string())),
    };
    let value: Value = serde_json::from_str(&data).map_err(|err| unexpected(format!("{err}: {data}")))?;
    let error = match (value.get("error"), value.get("type").and_then(Value::as_str)) {
        (Some(error), _) if error.is_object() => Some(error.clone()),
        (_, Some("error")) => Some(json!({
            "message": value["message"], "type": "api_error", "param": value["param"], "code": value["code"],
        })),
        _ => None,
    };
    if let Some(error) = error {
        let envelope: types::ErrorEnvelope =
            serde_json::from_value(json!({ "error": error })).map_err(|err| unexpected(err.to_string()))?;
        return Err(ApiError::from_envelope(200, String::new(), envelope).into());
    }
    serde_json::from_value(value).map_err(|err| unexpected(format!("{err}: {data}")))
}
