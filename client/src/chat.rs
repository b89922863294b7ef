//! A typed stream for `/v1/chat/completions` with `stream: true`: `data:` chunks until `[DONE]`.

use std::pin::Pin;

use eventsource_stream::Eventsource;
use futures::{Stream, StreamExt};
use progenitor_client::ClientInfo;

use crate::error::{Error, Result};
use crate::events::error_from;
use crate::{Client, types};

pub type ChatCompletionStream = Pin<Box<dyn Stream<Item = Result<types::ChatCompletionChunk>> + Send>>;

impl Client {
    /// Streams a chat completion (`stream` is set for you). `smith_id` names the smith for a
    /// tenant-admin token when the request carries no `user`.
    pub async fn create_chat_completion_stream(
        &self,
        request: &types::ChatCompletionRequest,
        smith_id: Option<&str>,
    ) -> Result<ChatCompletionStream> {
        let mut body = serde_json::to_value(request).map_err(|err| Error::InvalidRequest(err.to_string()))?;
        body["stream"] = serde_json::Value::Bool(true);
        let mut http = self.client().post(format!("{}/v1/chat/completions", self.baseurl())).json(&body);
        if let Some(smith_id) = smith_id {
            http = http.header("ic-smith-id", smith_id);
        }
        let response = http.send().await.map_err(Error::Transport)?;
        if !response.status().is_success() {
            return Err(error_from(response).await);
        }
        let chunks = response
            .bytes_stream()
            .eventsource()
            .take_while(|event| std::future::ready(!matches!(event, Ok(event) if event.data == "[DONE]")))
            .map(|event| match event {
                Ok(event) => serde_json::from_str::<serde_json::Value>(&event.data)
                    .map_err(|err| Error::UnexpectedResponse { status: None, detail: err.to_string() })
                    .and_then(chunk_or_error),
                Err(eventsource_stream::EventStreamError::Transport(err)) => Err(Error::Transport(err)),
                Err(err) => Err(Error::UnexpectedResponse { status: None, detail: err.to_string() }),
            });
        Ok(Box::pin(chunks))
    }
}

/// A chunk, or the error a stream that failed midway ends with (`{"error": {...}}`).
fn chunk_or_error(value: serde_json::Value) -> Result<types::ChatCompletionChunk> {
    if let Some(error) = value.get("error") {
        let envelope: types::ErrorEnvelope = serde_json::from_value(serde_json::json!({ "error": error }))
            .map_err(|err| Error::UnexpectedResponse { status: None, detail: err.to_string() })?;
        return Err(crate::ApiError::from_envelope(200, String::new(), envelope).into());
    }
    serde_json::from_value(value).map_err(|err| Error::UnexpectedResponse { status: None, detail: err.to_string() })
}
