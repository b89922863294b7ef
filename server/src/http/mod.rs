//! Conventions every route shares: request ids, the API version header, panics, and the
//! envelope for requests that match no route; and the conventions of the modules below:
//! errors as the OpenAI envelope, extractors, authentication, idempotency.

pub mod auth;
pub mod error;
pub mod extract;
pub mod headers;
pub mod idempotency;

use std::any::Any;

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use tower_http::request_id::{MakeRequestId, RequestId};

use ingram_core::error::{Error, ErrorKind};

pub use self::error::{ApiError, ApiResult, ErrorResponse};

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
pub const API_VERSION: HeaderName = HeaderName::from_static("ic-api-version");
pub const CURRENT_API_VERSION: &str = "2026-05-01";
/// The body limit of every route but those that take a conversation.
pub const BODY_LIMIT: usize = 1024 * 1024;
/// The body limit of routes that create runs, whose messages may inline images and files.
pub const INPUT_BODY_LIMIT: usize = 32 * 1024 * 1024;

/// Where a client's own `X-Request-Id` goes: the server mints its own id for every request
/// and logs the client's beside it, capped.
pub const CLIENT_REQUEST_ID: HeaderName = HeaderName::from_static("x-client-request-id");
pub const CLIENT_REQUEST_ID_MAX: usize = 128;

/// Moves a client-sent `X-Request-Id` aside (visible ASCII only, at most
/// [`CLIENT_REQUEST_ID_MAX`] characters), so the id in logs and answers is always the server's.
pub async fn set_aside_client_request_id(mut request: Request, next: Next) -> Response {
    let headers = request.headers_mut();
    headers.remove(CLIENT_REQUEST_ID);
    if let Some(sent) = headers.remove(REQUEST_ID) {
        let kept: String = String::from_utf8_lossy(sent.as_bytes())
            .chars()
            .filter(|c| c.is_ascii_graphic())
            .take(CLIENT_REQUEST_ID_MAX)
            .collect();
        if let Ok(value) = HeaderValue::from_str(&kept) {
            headers.insert(CLIENT_REQUEST_ID, value);
        }
    }
    next.run(request).await
}

/// Mints the `req_…` id of every request.
#[derive(Clone, Copy, Default)]
pub struct MakeRequestUlid;

impl MakeRequestId for MakeRequestUlid {
    fn make_request_id<B>(&mut self, _: &axum::http::Request<B>) -> Option<RequestId> {
        let id = format!("req_{}", ulid::Ulid::new().to_string().to_lowercase());
        HeaderValue::from_str(&id).ok().map(RequestId::new)
    }
}

/// Absent means the current version (OpenAI SDKs never send it); anything else we do not speak is a 400.
pub async fn check_api_version(request: Request, next: Next) -> Response {
    match request.headers().get(API_VERSION) {
        Some(version) if version.as_bytes() != CURRENT_API_VERSION.as_bytes() => Error::bad_request(
            "unsupported_api_version",
            format!("IC-Api-Version must be '{CURRENT_API_VERSION}', the only live version."),
        )
        .with_param("IC-Api-Version")
        .into_response(),
        _ => next.run(request).await,
    }
}

pub async fn route_not_found(request: Request) -> ApiError {
    ApiError(Error::new(
        ErrorKind::NotFound,
        "route_not_found",
        format!("No route for {} {}.", request.method(), request.uri().path()),
    ))
}

pub async fn method_not_allowed(request: Request) -> ApiError {
    ApiError(Error::new(
        ErrorKind::MethodNotAllowed,
        "method_not_allowed",
        format!("{} is not allowed on {}.", request.method(), request.uri().path()),
    ))
}

/// Runs inside the request's tracing span, so the log line carries the request id.
pub fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response {
    let detail = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("unknown panic");
    tracing::error!(panic = detail, "handler panicked");
    Error::internal("The server hit an unexpected error; the request id identifies it in our logs.").into_response()
}
