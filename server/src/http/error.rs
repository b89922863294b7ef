//! The HTTP edge of the core's errors: each [`ErrorKind`] answers with its status, every error
//! leaves as the OpenAI envelope, and one that a later retry may pass carries `Retry-After`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ingram_core::error::{Error, ErrorKind};

/// A core [`Error`] on its way out as a response. Handlers return [`ApiResult`] and use `?`
/// on core results.
#[derive(Debug)]
pub struct ApiError(pub Error);

pub type ApiResult<T> = Result<T, ApiError>;

impl From<Error> for ApiError {
    fn from(err: Error) -> Self {
        Self(err)
    }
}

/// The status each kind of error answers with.
pub const fn status_of(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::Invalid => StatusCode::BAD_REQUEST,
        ErrorKind::Unauthenticated => StatusCode::UNAUTHORIZED,
        ErrorKind::Forbidden => StatusCode::FORBIDDEN,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorKind::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ErrorKind::KeyReused => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorKind::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::Upstream => StatusCode::BAD_GATEWAY,
        ErrorKind::Timeout => StatusCode::GATEWAY_TIMEOUT,
        ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// Every error leaves as the OpenAI envelope, with its kind's status and, when a retry may
/// succeed later, `Retry-After`.
impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let Self(err) = self;
        let body = serde_json::to_vec(&err.envelope()).expect("error envelope serializes");
        let mut response =
            (status_of(err.kind), [(axum::http::header::CONTENT_TYPE, "application/json")], body).into_response();
        if let Some(after) = err.retry_after {
            response.headers_mut().insert(axum::http::header::RETRY_AFTER, after.as_secs().max(1).into());
        }
        response
    }
}

/// Lets middleware and extractors answer with a core error directly:
/// `Error::conflict(…).into_response()`.
pub trait ErrorResponse {
    fn into_response(self) -> Response;
}

impl ErrorResponse for Error {
    fn into_response(self) -> Response {
        ApiError(self).into_response()
    }
}
