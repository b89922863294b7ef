//! Reads a provider's `text/event-stream` body as (event name, data) pairs.

use futures::{Stream, StreamExt};

use super::{ProviderError, ProviderErrorKind};

/// The largest single event a provider may send; a longer one fails the stream.
pub const MAX_EVENT_BYTES: usize = 4 * 1024 * 1024;

fn oversized() -> ProviderError {
    ProviderError::new(
        ProviderErrorKind::Upstream,
        format!("the provider sent an event over {} MiB", MAX_EVENT_BYTES >> 20),
    )
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    pub event: Option<String>,
    pub data: String,
}

/// Parses an SSE byte stream; comment lines and `id:`/`retry:` fields are skipped.
pub fn events(response: reqwest::Response) -> impl Stream<Item = Result<SseEvent, ProviderError>> + Send {
    let bytes = response.bytes_stream();
    futures::stream::unfold(
        (bytes, Vec::<u8>::new(), SseEvent { event: None, data: String::new() }, false),
        |(mut bytes, mut buffer, mut current, done)| async move {
            if done {
                return None;
            }
            loop {
                if let Some(newline) = buffer.iter().position(|&b| b == b'\n') {
                    let mut line: Vec<u8> = buffer.drain(..=newline).collect();
                    line.pop();
                    if line.last() == Some(&b'\r') {
                        line.pop();
                    }
                    let line = String::from_utf8_lossy(&line).into_owned();
                    if line.is_empty() {
                        if current.event.is_some() || !current.data.is_empty() {
                            let event = std::mem::replace(&mut current, SseEvent { event: None, data: String::new() });
                            return Some((Ok(event), (bytes, buffer, current, false)));
                        }
                        continue;
                    }
                    if line.starts_with(':') {
                        continue;
                    }
                    let (field, value) = line.split_once(':').unwrap_or((line.as_str(), ""));
                    let value = value.strip_prefix(' ').unwrap_or(value);
                    match field {
                        "event" => current.event = Some(value.to_owned()),
                        "data" => {
                            if current.data.len() + value.len() > MAX_EVENT_BYTES {
                                return Some((Err(oversized()), (bytes, buffer, current, true)));
                            }
                            if !current.data.is_empty() {
                                current.data.push('\n');
                            }
                            current.data.push_str(value);
                        }
                        _ => {}
                    }
                    continue;
                }
                if buffer.len() > MAX_EVENT_BYTES {
                    return Some((Err(oversized()), (bytes, buffer, current, true)));
                }
                match bytes.next().await {
                    Some(Ok(chunk)) => buffer.extend_from_slice(&chunk),
                    Some(Err(err)) => {
                        return Some((Err(ProviderError::from_transport(&err)), (bytes, buffer, current, true)));
                    }
                    None => {
                        // A last event without its blank line still counts.
                        if current.event.is_some() || !current.data.is_empty() {
                            let event = std::mem::replace(&mut current, SseEvent { event: None, data: String::new() });
                            return Some((Ok(event), (bytes, buffer, current, true)));
                        }
                        return None;
                    }
                }
            }
        },
    )
}
