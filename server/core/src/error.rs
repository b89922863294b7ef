//! The one error type: a kind the caller acts on, a stable code, and the OpenAI error envelope
//! it is written as. Statuses belong to the HTTP edge (the server crate's `http` module).

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

/// `{"error": {...}}`, the OpenAI error envelope, so OpenAI SDKs parse our failures unchanged.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorEnvelope {
    pub error: ErrorBody,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorBody {
    /// Human-readable; show it to people, never match on it.
    pub message: String,
    /// The OpenAI category of the error.
    #[serde(rename = "type")]
    pub kind: ErrorType,
    /// The request field the error is about, when there is one.
    pub param: Option<String>,
    /// Stable slug to match on (see docs/errors.md).
    pub code: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorType {
    InvalidRequestError,
    AuthenticationError,
    PermissionError,
    RateLimitError,
    ApiError,
}

/// What went wrong, in the terms a caller acts on. The HTTP edge (the server crate's `http`
/// module) turns it into a status; nothing else knows statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request is malformed or breaks a rule.
    Invalid,
    Unauthenticated,
    Forbidden,
    NotFound,
    /// A route exists, the method does not.
    MethodNotAllowed,
    /// The request conflicts with the current state.
    Conflict,
    /// A body larger than the route takes.
    TooLarge,
    /// A body that is not JSON.
    UnsupportedMediaType,
    /// An `Idempotency-Key` reused for another request.
    KeyReused,
    RateLimited,
    /// A dependency (the database) cannot be reached or is busy.
    Unavailable,
    /// The model provider failed or could not be reached.
    Upstream,
    /// Something did not finish in time.
    Timeout,
    /// A bug.
    Internal,
}

impl ErrorKind {
    /// The OpenAI error `type` of this kind.
    pub const fn openai_type(self) -> ErrorType {
        match self {
            Self::Unauthenticated => ErrorType::AuthenticationError,
            Self::Forbidden => ErrorType::PermissionError,
            Self::RateLimited => ErrorType::RateLimitError,
            Self::Unavailable | Self::Upstream | Self::Timeout | Self::Internal => ErrorType::ApiError,
            Self::Invalid
            | Self::NotFound
            | Self::MethodNotAllowed
            | Self::Conflict
            | Self::TooLarge
            | Self::UnsupportedMediaType
            | Self::KeyReused => ErrorType::InvalidRequestError,
        }
    }
}

/// An error with a stable code, on its way to a caller.
#[derive(Debug, Clone)]
pub struct Error {
    pub kind: ErrorKind,
    /// A fixed slug, or one carried over from a stored error (a failed run's).
    pub code: Cow<'static, str>,
    pub message: String,
    pub param: Option<String>,
    /// When a retry may succeed; sent as `Retry-After` (whole seconds).
    pub retry_after: Option<std::time::Duration>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The error a run recorded when it failed, as its caller gets it: the recorded code and
    /// message, of the kind its OpenAI type names (a run's own `api_error` failed upstream).
    pub fn from_recorded(body: ErrorBody) -> Self {
        let kind = match body.kind {
            ErrorType::AuthenticationError => ErrorKind::Unauthenticated,
            ErrorType::PermissionError => ErrorKind::Forbidden,
            ErrorType::RateLimitError => ErrorKind::RateLimited,
            ErrorType::InvalidRequestError => ErrorKind::Invalid,
            ErrorType::ApiError => ErrorKind::Upstream,
        };
        Self { kind, code: body.code.into(), message: body.message, param: body.param, retry_after: None }
    }

    pub fn new(kind: ErrorKind, code: &'static str, message: impl Into<String>) -> Self {
        Self { kind, code: Cow::Borrowed(code), message: message.into(), param: None, retry_after: None }
    }

    pub fn with_param(mut self, param: impl Into<String>) -> Self {
        self.param = Some(param.into());
        self
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Invalid, code, message)
    }

    pub fn invalid_param(param: &str, message: impl Into<String>) -> Self {
        Self::bad_request("invalid_parameter", message).with_param(param)
    }

    /// An input over one of its declared limits (length, count, size).
    pub fn limit_exceeded(param: &str, message: impl Into<String>) -> Self {
        Self::bad_request("limit_exceeded", message).with_param(param)
    }

    /// The resource does not exist *for this caller*: also what another tenant's resource looks like.
    pub fn not_found(code: &'static str, what: &str, id: impl std::fmt::Display) -> Self {
        Self::new(ErrorKind::NotFound, code, format!("No {what} with id '{id}'."))
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Conflict, code, message)
    }

    pub fn unauthenticated(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unauthenticated, code, message)
    }

    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Forbidden, code, message)
    }

    /// 429 `rate_limited`: over a capacity cap; retry after `retry_after`.
    pub fn rate_limited(message: impl Into<String>, retry_after: std::time::Duration) -> Self {
        Self { retry_after: Some(retry_after), ..Self::new(ErrorKind::RateLimited, "rate_limited", message) }
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, "internal_error", message)
    }

    pub fn envelope(&self) -> ErrorEnvelope {
        ErrorEnvelope {
            error: ErrorBody {
                message: self.message.clone(),
                kind: self.kind.openai_type(),
                param: self.param.clone(),
                code: self.code.to_string(),
            },
        }
    }
}

/// What a database error means for the caller: only an unreachable or busy database is worth
/// a retry; a constraint is the request's conflict; anything else is our bug, and retrying it
/// cannot help.
impl From<sea_orm::DbErr> for Error {
    fn from(err: sea_orm::DbErr) -> Self {
        use sea_orm::{DbErr, RuntimeErr, SqlErr};
        let unreachable = match &err {
            DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => true,
            DbErr::Exec(RuntimeErr::SqlxError(sqlx)) | DbErr::Query(RuntimeErr::SqlxError(sqlx)) => {
                matches!(
                    sqlx.as_ref(),
                    sea_orm::sqlx::Error::Io(_)
                        | sea_orm::sqlx::Error::Tls(_)
                        | sea_orm::sqlx::Error::PoolTimedOut
                        | sea_orm::sqlx::Error::PoolClosed
                        | sea_orm::sqlx::Error::WorkerCrashed
                ) || is_busy(sqlx)
            }
            _ => false,
        };
        if unreachable {
            tracing::warn!(error = %err, "database unavailable");
            return Self {
                retry_after: Some(std::time::Duration::from_secs(1)),
                ..Self::new(
                    ErrorKind::Unavailable,
                    "database_unavailable",
                    "The database did not answer; retry the request.",
                )
            };
        }
        if let Some(SqlErr::UniqueConstraintViolation(_) | SqlErr::ForeignKeyConstraintViolation(_)) = err.sql_err() {
            tracing::warn!(error = %err, "a write conflicted with a constraint");
            return Self::conflict("resource_conflict", "The request conflicts with the current state of a resource.");
        }
        tracing::error!(error = %err, "database error");
        Self::internal("The server hit an unexpected database error; the request id identifies it in our logs.")
    }
}

/// SQLite's "database is locked/busy" and PostgreSQL's serialization, deadlock and
/// admin-shutdown errors pass when retried.
fn is_busy(err: &sea_orm::sqlx::Error) -> bool {
    let Some(database) = err.as_database_error() else { return false };
    let Some(code) = database.code() else { return false };
    if matches!(code.as_ref(), "40001" | "40P01" | "57P01" | "57P02" | "57P03") {
        return true;
    }
    // SQLite's extended codes keep the primary code in their low byte: SQLITE_BUSY, SQLITE_LOCKED.
    code.parse::<i32>().is_ok_and(|code| matches!(code & 0xff, 5 | 6))
}
