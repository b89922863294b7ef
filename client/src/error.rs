//! Errors that carry what the server said: match on [`ApiError::code`].

use progenitor_client::Error as ProgenitorError;

use crate::types::ErrorEnvelope;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The server answered with an error envelope.
    #[error(transparent)]
    Api(Box<ApiError>),
    /// The request never got an answer (connection refused, timeout, …).
    #[error("transport error: {0}")]
    Transport(#[source] reqwest::Error),
    /// The request could not be built (a missing required field, a bad header value).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The server answered with something the spec does not describe.
    #[error("unexpected response (status {status:?}): {detail}")]
    UnexpectedResponse { status: Option<u16>, detail: String },
}

/// The server's error envelope, with the HTTP status and request id it came with.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{status} {code}: {message} (request {request_id})")]
pub struct ApiError {
    pub status: u16,
    /// The stable slug to match on, e.g. `smith_not_found`.
    pub code: String,
    /// The OpenAI category, e.g. `invalid_request_error`.
    pub kind: String,
    pub message: String,
    pub param: Option<String>,
    /// The `X-Request-Id` of the failed request: quote it when reporting a problem.
    pub request_id: String,
}

impl ApiError {
    pub(crate) fn from_envelope(status: u16, request_id: String, envelope: ErrorEnvelope) -> Self {
        Self {
            status,
            code: envelope.error.code,
            kind: envelope.error.type_.to_string(),
            message: envelope.error.message,
            param: envelope.error.param,
            request_id,
        }
    }
}

impl Error {
    /// The server's error code, when the server sent one.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Api(api) => Some(&api.code),
            _ => None,
        }
    }

    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Api(api) => Some(api.status),
            Self::Transport(err) => err.status().map(|status| status.as_u16()),
            Self::UnexpectedResponse { status, .. } => *status,
            Self::InvalidRequest(_) => None,
        }
    }
}

impl From<ApiError> for Error {
    fn from(err: ApiError) -> Self {
        Self::Api(Box::new(err))
    }
}

impl From<ProgenitorError<ErrorEnvelope>> for Error {
    fn from(err: ProgenitorError<ErrorEnvelope>) -> Self {
        match err {
            ProgenitorError::ErrorResponse(response) => {
                let status = response.status().as_u16();
                let request_id = response
                    .headers()
                    .get("x-request-id")
                    .and_then(|id| id.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                ApiError::from_envelope(status, request_id, response.into_inner()).into()
            }
            ProgenitorError::CommunicationError(err) | ProgenitorError::ResponseBodyError(err) => Self::Transport(err),
            ProgenitorError::InvalidRequest(message) | ProgenitorError::Custom(message) => {
                Self::InvalidRequest(message)
            }
            ProgenitorError::InvalidResponsePayload(bytes, err) => {
                Self::UnexpectedResponse { status: None, detail: format!("{err}: {}", String::from_utf8_lossy(&bytes)) }
            }
            ProgenitorError::UnexpectedResponse(response) => Self::UnexpectedResponse {
                status: Some(response.status().as_u16()),
                detail: "a status the spec does not declare".into(),
            },
            ProgenitorError::InvalidUpgrade(err) => Self::Transport(err),
        }
    }
}
