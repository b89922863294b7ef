//! `Idempotency-Key` on creates: the first request's status and body are stored and replayed
//! for the same key; the same key with another request is refused; concurrent duplicates
//! wait for the first one instead of creating a second resource.

use std::time::Duration;

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};

use crate::AppState;
use crate::api::extract::payload_too_large;
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::http::INPUT_BODY_LIMIT;
use crate::store::{idempotency_key, now};

pub const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
const REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");
/// Keys are kept at least this long; older ones are purged.
pub const RETENTION: Duration = Duration::from_secs(24 * 3600);
/// How long a duplicate waits for the first request before giving up with a 409.
const WAIT_FOR_FIRST: Duration = Duration::from_secs(30);
/// A key still unanswered after this long belongs to a request that died with its server.
const ABANDONED_AFTER: Duration = Duration::from_secs(300);
const MAX_KEY_LEN: usize = 255;

pub async fn idempotent_creates(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if request.method() != Method::POST {
        return next.run(request).await;
    }
    let Some(key) = request.headers().get(IDEMPOTENCY_KEY).cloned() else {
        return next.run(request).await;
    };
    match handle(&state, key, request, next).await {
        Ok(response) | Err(response) => response,
    }
}

async fn handle(state: &AppState, key: HeaderValue, request: Request, next: Next) -> Result<Response, Response> {
    let key = key
        .to_str()
        .ok()
        .filter(|key| !key.is_empty() && key.len() <= MAX_KEY_LEN)
        .ok_or_else(|| {
            ApiError::bad_request(
                "invalid_idempotency_key",
                "Idempotency-Key must be 1 to 255 visible ASCII characters.",
            )
            .with_param("Idempotency-Key")
            .into_response()
        })?
        .to_owned();
    let scope = request
        .extensions()
        .get::<Principal>()
        .map(Principal::idempotency_scope)
        .ok_or_else(|| ApiError::internal("idempotency runs after authentication").into_response())?;
    // The smith and thread named by header are part of the request.
    let named_smith = header_bytes(request.headers(), crate::api::openai::SMITH_HEADER);
    let named_thread = header_bytes(request.headers(), crate::api::openai::THREAD_HEADER);

    let (parts, body) = request.into_parts();
    // The route's own limit applies when its handler reads the body; this is the largest.
    let bytes = to_bytes(body, INPUT_BODY_LIMIT).await.map_err(|_| payload_too_large().into_response())?;
    let request_hash = crate::digest::sha256_hex(&[
        parts.method.as_str().as_bytes(),
        parts.uri.path().as_bytes(),
        &named_smith,
        &named_thread,
        &bytes,
    ]);

    let deadline = tokio::time::Instant::now() + WAIT_FOR_FIRST;
    loop {
        if claim(state, &scope, &key, &request_hash).await.map_err(IntoResponse::into_response)? {
            break;
        }
        match idempotency_key::Entity::find_by_id((scope.clone(), key.clone())).one(&state.db).await {
            Err(err) => return Err(ApiError::from(err).into_response()),
            // The first request failed and released the key: claim it ourselves.
            Ok(None) => continue,
            Ok(Some(stored)) if stored.request_hash != request_hash => {
                return Err(ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    crate::error::ErrorType::InvalidRequestError,
                    "idempotency_key_reused",
                    "This Idempotency-Key was already used with a different request.",
                )
                .with_param("Idempotency-Key")
                .into_response());
            }
            Ok(Some(stored)) => {
                if let (Some(status), Some(body)) = (stored.response_status, stored.response_body.clone()) {
                    return Ok(replay(status, body));
                }
                if abandoned(&stored) {
                    release(state, &scope, &key).await;
                    continue;
                }
                if tokio::time::Instant::now() >= deadline {
                    return Err(ApiError::conflict(
                        "idempotency_key_in_progress",
                        "A request with this Idempotency-Key is still being processed; retry shortly.",
                    )
                    .into_response());
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
        }
    }

    // The answer is produced and recorded in its own task: a client that hangs up must not
    // leave the key claimed without a stored answer (its retry would wait, then run twice).
    let state = state.clone();
    let answered = tokio::spawn(async move {
        let response = next.run(Request::from_parts(parts, Body::from(bytes))).await;
        record(&state, &scope, &key, response).await
    });
    answered.await.map_err(|_| ApiError::internal("The request's handler failed.").into_response())
}

/// Inserts the key as "in progress"; false when it already exists.
async fn claim(state: &AppState, scope: &str, key: &str, request_hash: &str) -> ApiResult<bool> {
    let row = idempotency_key::ActiveModel {
        scope: Set(scope.to_owned()),
        key: Set(key.to_owned()),
        request_hash: Set(request_hash.to_owned()),
        response_status: Set(None),
        response_body: Set(None),
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

/// Stores a final answer for replay; a server error releases the key so a retry runs anew.
async fn record(state: &AppState, scope: &str, key: &str, response: Response) -> Response {
    let status = response.status();
    if status.is_server_error() {
        release(state, scope, key).await;
        return response;
    }
    if is_event_stream(&response) {
        // A stream is never buffered or replayed. A native run stream's retry gets a pointer to
        // the run it started; other streams release the key.
        match response.headers().get(crate::api::runs::RUN_ID_HEADER).and_then(|id| id.to_str().ok()) {
            Some(run_id) => {
                let marker = serde_json::json!({ STREAM_MARKER: run_id }).to_string();
                store(state, scope, key, status, marker).await;
            }
            None => release(state, scope, key).await,
        }
        return response;
    }
    let (parts, body) = response.into_parts();
    let Ok(bytes) = to_bytes(body, usize::MAX).await else {
        release(state, scope, key).await;
        return ApiError::internal("The response could not be recorded.").into_response();
    };
    store(state, scope, key, status, String::from_utf8_lossy(&bytes).into_owned()).await;
    Response::from_parts(parts, Body::from(bytes))
}

async fn store(state: &AppState, scope: &str, key: &str, status: StatusCode, body: String) {
    let stored = idempotency_key::Entity::update_many()
        .col_expr(idempotency_key::Column::ResponseStatus, i32::from(status.as_u16()).into())
        .col_expr(idempotency_key::Column::ResponseBody, body.into())
        .filter(idempotency_key::Column::Scope.eq(scope))
        .filter(idempotency_key::Column::Key.eq(key))
        .exec(&state.db)
        .await;
    if let Err(err) = stored {
        tracing::error!(error = %err, "could not record an idempotent response");
    }
}

const STREAM_MARKER: &str = "streamed_run_id";

fn is_event_stream(response: &Response) -> bool {
    response.headers().get(header::CONTENT_TYPE).is_some_and(|value| value.as_bytes().starts_with(b"text/event-stream"))
}

async fn release(state: &AppState, scope: &str, key: &str) {
    let deleted = idempotency_key::Entity::delete_many()
        .filter(idempotency_key::Column::Scope.eq(scope))
        .filter(idempotency_key::Column::Key.eq(key))
        .exec(&state.db)
        .await;
    if let Err(err) = deleted {
        tracing::error!(error = %err, "could not release an idempotency key");
    }
}

fn abandoned(stored: &idempotency_key::Model) -> bool {
    Utc::now().signed_duration_since(stored.created_at).to_std().is_ok_and(|age| age > ABANDONED_AFTER)
}

fn replay(status: i32, body: String) -> Response {
    let stream_of = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|value| value.get(STREAM_MARKER).and_then(|id| id.as_str()).map(str::to_owned));
    if let Some(run_id) = stream_of {
        let data = crate::engine::types::RunDuplicateEvent { v: crate::engine::types::EVENT_VERSION, run_id };
        let frame =
            format!("event: run.duplicate\ndata: {}\n\n", serde_json::to_string(&data).expect("events serialize"));
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
pub async fn purge_expired(state: &AppState) -> ApiResult<u64> {
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
