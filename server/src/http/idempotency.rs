//! `Idempotency-Key` on creates: the first request's status and body are stored and replayed
//! for the same key; the same key with another request is refused; concurrent duplicates
//! wait for the first one instead of creating a second resource.
//!
//! Three rules keep it safe:
//! - A key belongs to the token that used it: another token's identical request never sees
//!   its answer.
//! - Nothing is looked up before the caller is authorized: the handler's authorization
//!   extractor passes the request's [`Gate`], and only then is the key claimed or replayed.
//! - Stored answers are sealed with the master key, bound to their token and key, since some
//!   carry secrets (a minted token).
//!
//! The request that claimed a key holds it with a lease (`Settings::idempotency_lease`, 30 s)
//! it renews while its handler runs, so a slow request is never executed twice and a late
//! finisher never overwrites another claim's answer.

use std::sync::{Arc, Mutex};

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures::FutureExt;
use tokio::sync::oneshot;

use crate::AppState;
use crate::http::INPUT_BODY_LIMIT;
use crate::http::error::ErrorResponse;
use crate::http::extract::payload_too_large;
use crate::http::headers;
use ingram_core::auth::Principal;
use ingram_core::domain::idempotency::{Claim, Claimed, Keyed, Keys};
use ingram_core::error::Error;
use ingram_core::types::{EVENT_VERSION, RunDuplicateEvent, RunEventData};

pub const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
const REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");
const MAX_KEY_LEN: usize = 255;

/// What an authorization extractor hears back once it passed the gate.
enum Verdict {
    /// Run the handler: this request holds the key.
    Proceed,
    /// Answer this instead of running the handler: a replay, or why the key cannot be used.
    Answer(Response),
}

type Opened = oneshot::Sender<oneshot::Sender<Verdict>>;

/// Placed in a keyed request's extensions. The extractors that authorize a caller pass it
/// after their checks; until then the key is neither claimed nor replayed.
#[derive(Clone)]
pub struct Gate(Arc<Mutex<Option<Opened>>>);

impl Gate {
    /// Called by an authorization extractor once the caller may make this request. `Err`
    /// is the answer to send instead of running the handler.
    pub async fn pass(parts: &mut Parts) -> Result<(), Response> {
        let Some(gate) = parts.extensions.remove::<Self>() else { return Ok(()) };
        let Some(opened) = gate.0.lock().unwrap_or_else(|p| p.into_inner()).take() else { return Ok(()) };
        let (reply, verdict) = oneshot::channel();
        let lost = || Error::internal("The request's idempotency check was lost.").into_response();
        opened.send(reply).map_err(|_| lost())?;
        match verdict.await {
            Ok(Verdict::Proceed) => Ok(()),
            Ok(Verdict::Answer(response)) => Err(response),
            Err(_) => Err(lost()),
        }
    }
}

pub async fn idempotent_creates(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if request.method() != Method::POST {
        return next.run(request).await;
    }
    let Some(key) = request.headers().get(IDEMPOTENCY_KEY).cloned() else {
        return next.run(request).await;
    };
    let (keyed, request) = match read_keyed(key, request).await {
        Ok(read) => read,
        Err(response) => return response,
    };
    // Answered and recorded in its own task: a client that hangs up must not leave the key
    // claimed without a stored answer (its retry would wait, then run twice).
    tokio::spawn(answer(state, keyed, request, next))
        .await
        .unwrap_or_else(|_| Error::internal("The request's handler failed.").into_response())
}

async fn read_keyed(key: HeaderValue, request: Request) -> Result<(Keyed, Request), Response> {
    let key = key
        .to_str()
        .ok()
        .filter(|key| !key.is_empty() && key.len() <= MAX_KEY_LEN)
        .ok_or_else(|| {
            Error::bad_request("invalid_idempotency_key", "Idempotency-Key must be 1 to 255 visible ASCII characters.")
                .with_param("Idempotency-Key")
                .into_response()
        })?
        .to_owned();
    let scope = request
        .extensions()
        .get::<Principal>()
        .map(|principal| principal.token_id().clone())
        .ok_or_else(|| Error::internal("idempotency runs after authentication").into_response())?;
    // The smith and thread named by header are part of the request.
    let named_smith = header_bytes(request.headers(), headers::SMITH);
    let named_thread = header_bytes(request.headers(), headers::THREAD);
    let (parts, body) = request.into_parts();
    // The route's own limit applies when its handler reads the body; this is the largest.
    let bytes = to_bytes(body, INPUT_BODY_LIMIT).await.map_err(|_| payload_too_large().into_response())?;
    let request_hash = ingram_core::digest::sha256_hex(&[
        parts.method.as_str().as_bytes(),
        parts.uri.path().as_bytes(),
        &named_smith,
        &named_thread,
        &bytes,
    ]);
    Ok((Keyed { scope, key, request_hash }, Request::from_parts(parts, Body::from(bytes))))
}

/// Runs the handler; once its authorization passed the gate, claims the key (and records
/// the answer) or answers from the key instead.
async fn answer(state: AppState, keyed: Keyed, mut request: Request, next: Next) -> Response {
    let (opened, gate_passed) = oneshot::channel();
    request.extensions_mut().insert(Gate(Arc::new(Mutex::new(Some(opened)))));
    let handler = next.run(request);
    tokio::pin!(handler);
    let reply = tokio::select! {
        passed = gate_passed => match passed {
            Ok(reply) => reply,
            // The handler dropped the gate unpassed: it refused the caller. Nothing is stored.
            Err(_) => return handler.await,
        },
        response = &mut handler => return response,
    };
    let keys = Keys::new(&state.db, &state.settings);
    let claim = match keys.claim_or_replay(&keyed).await {
        Ok(Claimed::Run(claim)) => claim,
        Ok(Claimed::Replay { status, body }) => {
            let _ = reply.send(Verdict::Answer(replay(status, body)));
            return handler.await;
        }
        Err(refused) => {
            let _ = reply.send(Verdict::Answer(refused.into_response()));
            return handler.await;
        }
    };
    if reply.send(Verdict::Proceed).is_err() {
        keys.release(&keyed, &claim).await;
        return Error::internal("The request's handler stopped.").into_response();
    }
    // A panicking handler must not leave the key claimed: it is released, and the retry runs.
    let finished = async {
        match std::panic::AssertUnwindSafe(handler).catch_unwind().await {
            Ok(response) => record(keys, &keyed, &claim, response).await,
            Err(panic) => {
                keys.release(&keyed, &claim).await;
                crate::http::panic_response(panic)
            }
        }
    };
    // The claim is renewed until the answer is recorded.
    tokio::select! {
        response = finished => response,
        () = keys.keep_renewing(&keyed, &claim) => unreachable!("renewal runs until the answer is recorded"),
    }
}

/// Keeps a final answer for replay. A server error or a 429 releases the key, so a retry runs
/// anew.
async fn record(keys: Keys<'_>, keyed: &Keyed, claim: &Claim, response: Response) -> Response {
    let status = response.status();
    if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
        keys.release(keyed, claim).await;
        return response;
    }
    if is_event_stream(&response) {
        // A stream is never buffered or replayed. A native run stream's retry gets a pointer to
        // the run it started; other streams release the key.
        match response.headers().get(headers::RUN_ID).and_then(|id| id.to_str().ok()) {
            Some(run_id) => {
                let marker = serde_json::json!({ STREAM_MARKER: run_id }).to_string();
                keys.store(keyed, claim, status.as_u16(), &marker).await;
            }
            None => keys.release(keyed, claim).await,
        }
        return response;
    }
    let (parts, body) = response.into_parts();
    let Ok(bytes) = to_bytes(body, usize::MAX).await else {
        keys.release(keyed, claim).await;
        return Error::internal("The response could not be recorded.").into_response();
    };
    keys.store(keyed, claim, status.as_u16(), &String::from_utf8_lossy(&bytes)).await;
    Response::from_parts(parts, Body::from(bytes))
}

const STREAM_MARKER: &str = "streamed_run_id";

fn is_event_stream(response: &Response) -> bool {
    response.headers().get(header::CONTENT_TYPE).is_some_and(|value| value.as_bytes().starts_with(b"text/event-stream"))
}

fn replay(status: u16, body: String) -> Response {
    let stream_of = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|value| value.get(STREAM_MARKER).and_then(|id| id.as_str()).map(str::to_owned));
    if let Some(run_id) = stream_of {
        let duplicate = RunEventData::Duplicate(RunDuplicateEvent { v: EVENT_VERSION, run_id: run_id.into() });
        let data = serde_json::to_string(&duplicate).expect("events serialize");
        let frame = format!("event: {}\ndata: {data}\n\n", duplicate.kind().as_str());
        return (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream")),
                (REPLAYED, HeaderValue::from_static("true")),
            ],
            frame,
        )
            .into_response();
    }
    let Ok(status) = StatusCode::from_u16(status) else {
        return Error::internal("A stored answer has an invalid status.").into_response();
    };
    (
        status,
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("application/json")),
            (REPLAYED, HeaderValue::from_static("true")),
        ],
        body,
    )
        .into_response()
}

fn header_bytes(headers: &axum::http::HeaderMap, name: &str) -> Vec<u8> {
    headers.get(name).map(|value| value.as_bytes().to_vec()).unwrap_or_default()
}
