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
use std::time::Duration;

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures::FutureExt;
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};
use tokio::sync::oneshot;

use crate::AppState;
use crate::http::INPUT_BODY_LIMIT;
use crate::http::error::ErrorResponse;
use crate::http::extract::payload_too_large;
use crate::http::headers;
use ingram_core::auth::Principal;
use ingram_core::crypto::SealContext;
use ingram_core::error::{Error, ErrorKind};
use ingram_core::store::{idempotency_key, now};
use ingram_core::types::{EVENT_VERSION, RunDuplicateEvent, RunEventData};

pub const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
const REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");
/// Keys are kept at least this long; older ones are purged.
pub const RETENTION: Duration = Duration::from_secs(24 * 3600);
/// How long a duplicate waits for the first request before giving up with a 409.
const WAIT_FOR_FIRST: Duration = Duration::from_secs(30);
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

/// A key as one caller used it, with the request it was used for.
struct Keyed {
    /// The token that sent the request.
    scope: String,
    key: String,
    request_hash: String,
}

impl Keyed {
    fn sealing(&self) -> SealContext<'_> {
        SealContext::IdempotentAnswer { scope: &self.scope, key: &self.key }
    }
}

/// This request's hold on a key.
struct Claim {
    id: String,
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
        .map(|principal| principal.token_id().to_string())
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
    let claim = match claim_or_answer(&state, &keyed).await {
        Ok(claim) => claim,
        Err(answer) => {
            let _ = reply.send(Verdict::Answer(answer));
            return handler.await;
        }
    };
    if reply.send(Verdict::Proceed).is_err() {
        release(&state, &keyed, &claim).await;
        return Error::internal("The request's handler stopped.").into_response();
    }
    let _heartbeat =
        AbortOnDrop(tokio::spawn(renew(state.clone(), keyed.scope.clone(), keyed.key.clone(), claim.id.clone())));
    // A panicking handler must not leave the key claimed: it is released, and the retry runs.
    match std::panic::AssertUnwindSafe(handler).catch_unwind().await {
        Ok(response) => record(&state, &keyed, &claim, response).await,
        Err(panic) => {
            release(&state, &keyed, &claim).await;
            crate::http::panic_response(panic)
        }
    }
}

/// Stops the claim's renewal however the request ends.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Claims the key for this request, or says what to answer instead: the stored answer, a
/// refusal of a reused key, or a 409 while another request still holds it.
async fn claim_or_answer(state: &AppState, keyed: &Keyed) -> Result<Claim, Response> {
    let deadline = tokio::time::Instant::now() + WAIT_FOR_FIRST;
    let claim = Claim { id: ulid::Ulid::new().to_string() };
    loop {
        if try_claim(state, keyed, &claim).await.map_err(ErrorResponse::into_response)? {
            return Ok(claim);
        }
        let stored = idempotency_key::Entity::find_by_id((keyed.scope.clone(), keyed.key.clone()))
            .one(&state.db)
            .await
            .map_err(|err| Error::from(err).into_response())?;
        let Some(stored) = stored else {
            // The first request failed and released the key: claim it ourselves.
            continue;
        };
        if stored.request_hash != keyed.request_hash {
            return Err(Error::new(
                ErrorKind::KeyReused,
                "idempotency_key_reused",
                "This Idempotency-Key was already used with a different request.",
            )
            .with_param("Idempotency-Key")
            .into_response());
        }
        if let (Some(status), Some(sealed)) = (stored.response_status, &stored.response_body) {
            let body = state.settings.master_key.open(sealed, keyed.sealing()).ok_or_else(|| {
                Error::conflict(
                    "idempotency_answer_unreadable",
                    "The answer stored for this Idempotency-Key cannot be read (the server's master key changed); use a new key.",
                )
                .into_response()
            })?;
            return Err(replay(status, body));
        }
        if take_over_lapsed(state, keyed, &stored, &claim).await.map_err(ErrorResponse::into_response)? {
            return Ok(claim);
        }
        if tokio::time::Instant::now() >= deadline {
            // The one 409 that is worth retrying, and says so with Retry-After.
            let in_progress = Error::conflict(
                "idempotency_key_in_progress",
                "A request with this Idempotency-Key is still being processed; retry shortly.",
            );
            return Err(Error { retry_after: Some(Duration::from_secs(1)), ..in_progress }.into_response());
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn lease_until(state: &AppState) -> chrono::DateTime<chrono::Utc> {
    now() + chrono::Duration::from_std(state.settings.idempotency_lease).unwrap_or_default()
}

/// Inserts the key as claimed by this request; false when it already exists.
async fn try_claim(state: &AppState, keyed: &Keyed, claim: &Claim) -> ingram_core::Result<bool> {
    let row = idempotency_key::ActiveModel {
        scope: Set(keyed.scope.clone()),
        key: Set(keyed.key.clone()),
        request_hash: Set(keyed.request_hash.clone()),
        response_status: Set(None),
        response_body: Set(None),
        claim_id: Set(Some(claim.id.clone())),
        lease_until: Set(Some(lease_until(state))),
        created_at: Set(now()),
    };
    let inserted = idempotency_key::Entity::insert(row)
        .on_conflict(
            OnConflict::columns([idempotency_key::Column::Scope, idempotency_key::Column::Key]).do_nothing().to_owned(),
        )
        .exec_without_returning(&state.db)
        .await?;
    Ok(inserted == 1)
}

/// Takes over an unanswered key whose claim lapsed (its server died), unless someone else
/// took it or answered it first.
async fn take_over_lapsed(
    state: &AppState,
    keyed: &Keyed,
    stored: &idempotency_key::Model,
    claim: &Claim,
) -> ingram_core::Result<bool> {
    if stored.lease_until.is_some_and(|until| until >= now()) {
        return Ok(false);
    }
    let taken = idempotency_key::Entity::update_many()
        .col_expr(idempotency_key::Column::ClaimId, Expr::value(Some(claim.id.clone())))
        .col_expr(idempotency_key::Column::LeaseUntil, Expr::value(Some(lease_until(state))))
        .filter(idempotency_key::Column::Scope.eq(keyed.scope.as_str()))
        .filter(idempotency_key::Column::Key.eq(keyed.key.as_str()))
        .filter(idempotency_key::Column::ResponseStatus.is_null())
        // Lapsed still, as the row stands: a renewal that came in between wins.
        .filter(
            sea_orm::Condition::any()
                .add(idempotency_key::Column::LeaseUntil.lt(now()))
                .add(idempotency_key::Column::LeaseUntil.is_null()),
        )
        .filter(match &stored.claim_id {
            Some(previous) => idempotency_key::Column::ClaimId.eq(previous.as_str()),
            None => idempotency_key::Column::ClaimId.is_null(),
        })
        .exec(&state.db)
        .await?;
    Ok(taken.rows_affected == 1)
}

/// Renews the claim while the handler runs.
async fn renew(state: AppState, scope: String, key: String, claim_id: String) {
    loop {
        tokio::time::sleep(state.settings.idempotency_lease / 3).await;
        let renewed = idempotency_key::Entity::update_many()
            .col_expr(idempotency_key::Column::LeaseUntil, Expr::value(Some(lease_until(&state))))
            .filter(idempotency_key::Column::Scope.eq(scope.as_str()))
            .filter(idempotency_key::Column::Key.eq(key.as_str()))
            .filter(idempotency_key::Column::ClaimId.eq(claim_id.as_str()))
            .exec(&state.db)
            .await;
        if let Err(err) = renewed {
            tracing::warn!(error = %err, "could not renew an idempotency claim");
        }
    }
}

/// Stores a final answer for replay. A server error or a 429 releases the key, so a retry
/// runs anew.
async fn record(state: &AppState, keyed: &Keyed, claim: &Claim, response: Response) -> Response {
    let status = response.status();
    if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
        release(state, keyed, claim).await;
        return response;
    }
    if is_event_stream(&response) {
        // A stream is never buffered or replayed. A native run stream's retry gets a pointer to
        // the run it started; other streams release the key.
        match response.headers().get(headers::RUN_ID).and_then(|id| id.to_str().ok()) {
            Some(run_id) => {
                let marker = serde_json::json!({ STREAM_MARKER: run_id }).to_string();
                store(state, keyed, claim, status, &marker).await;
            }
            None => release(state, keyed, claim).await,
        }
        return response;
    }
    let (parts, body) = response.into_parts();
    let Ok(bytes) = to_bytes(body, usize::MAX).await else {
        release(state, keyed, claim).await;
        return Error::internal("The response could not be recorded.").into_response();
    };
    store(state, keyed, claim, status, &String::from_utf8_lossy(&bytes)).await;
    Response::from_parts(parts, Body::from(bytes))
}

/// Writes the answer sealed, only while this request still holds the key.
async fn store(state: &AppState, keyed: &Keyed, claim: &Claim, status: StatusCode, body: &str) {
    let sealed = state.settings.master_key.seal(body, keyed.sealing());
    let stored = idempotency_key::Entity::update_many()
        .col_expr(idempotency_key::Column::ResponseStatus, Expr::value(Some(i32::from(status.as_u16()))))
        .col_expr(idempotency_key::Column::ResponseBody, Expr::value(Some(sealed)))
        .col_expr(idempotency_key::Column::LeaseUntil, Expr::value(Option::<chrono::DateTime<chrono::Utc>>::None))
        .filter(idempotency_key::Column::Scope.eq(keyed.scope.as_str()))
        .filter(idempotency_key::Column::Key.eq(keyed.key.as_str()))
        .filter(idempotency_key::Column::ClaimId.eq(claim.id.as_str()))
        .filter(idempotency_key::Column::ResponseStatus.is_null())
        .exec(&state.db)
        .await;
    match stored {
        Ok(result) if result.rows_affected == 0 => {
            tracing::warn!("an idempotency claim was taken over before its answer was stored; the answer is not kept");
        }
        Ok(_) => {}
        Err(err) => tracing::error!(error = %err, "could not record an idempotent response"),
    }
}

const STREAM_MARKER: &str = "streamed_run_id";

fn is_event_stream(response: &Response) -> bool {
    response.headers().get(header::CONTENT_TYPE).is_some_and(|value| value.as_bytes().starts_with(b"text/event-stream"))
}

/// Gives the key up, if this request still holds it unanswered.
async fn release(state: &AppState, keyed: &Keyed, claim: &Claim) {
    let deleted = idempotency_key::Entity::delete_many()
        .filter(idempotency_key::Column::Scope.eq(keyed.scope.as_str()))
        .filter(idempotency_key::Column::Key.eq(keyed.key.as_str()))
        .filter(idempotency_key::Column::ClaimId.eq(claim.id.as_str()))
        .filter(idempotency_key::Column::ResponseStatus.is_null())
        .exec(&state.db)
        .await;
    if let Err(err) = deleted {
        tracing::error!(error = %err, "could not release an idempotency key");
    }
}

fn replay(status: i32, body: String) -> Response {
    let stream_of = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|value| value.get(STREAM_MARKER).and_then(|id| id.as_str()).map(str::to_owned));
    if let Some(run_id) = stream_of {
        let duplicate = RunEventData::Duplicate(RunDuplicateEvent { v: EVENT_VERSION, run_id: run_id.into() });
        let data = serde_json::to_string(&duplicate).expect("events serialize");
        let frame = format!("event: {}\ndata: {data}\n\n", duplicate.kind());
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
    let status = u16::try_from(status).ok().and_then(|s| StatusCode::from_u16(s).ok()).unwrap_or(StatusCode::OK);
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

/// Deletes keys past their retention; run periodically.
pub async fn purge_expired(state: &AppState) -> ingram_core::Result<u64> {
    let cutoff = now() - chrono::Duration::from_std(RETENTION).unwrap_or_default() * 2;
    let result = idempotency_key::Entity::delete_many()
        .filter(idempotency_key::Column::CreatedAt.lt(cutoff))
        .exec(&state.db)
        .await?;
    Ok(result.rows_affected)
}

fn header_bytes(headers: &axum::http::HeaderMap, name: &str) -> Vec<u8> {
    headers.get(name).map(|value| value.as_bytes().to_vec()).unwrap_or_default()
}
