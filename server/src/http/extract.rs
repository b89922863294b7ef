//! Request extractors whose rejections speak the error envelope instead of axum's plain text.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::http::error::ApiError;
use ingram_core::error::{Error, ErrorKind};

/// A JSON request body.
pub struct Json<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(ApiError(json_rejection(rejection))),
        }
    }
}

fn json_rejection(rejection: JsonRejection) -> Error {
    match rejection {
        JsonRejection::JsonDataError(err) => Error::bad_request("invalid_body", err.body_text()),
        JsonRejection::JsonSyntaxError(err) => Error::bad_request("invalid_json", err.body_text()),
        JsonRejection::MissingJsonContentType(_) => Error::new(
            ErrorKind::UnsupportedMediaType,
            "unsupported_media_type",
            "Send the body as JSON with 'Content-Type: application/json'.",
        ),
        other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => payload_too_large(),
        other => Error::bad_request("invalid_body", other.body_text()),
    }
}

pub fn payload_too_large() -> Error {
    Error::new(
        ErrorKind::TooLarge,
        "payload_too_large",
        format!(
            "The request body is too large: the limit is {} MiB, and {} MiB for requests that create runs.",
            crate::http::BODY_LIMIT >> 20,
            crate::http::INPUT_BODY_LIMIT >> 20
        ),
    )
}

/// Query-string parameters.
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(value)| Self(value))
            .map_err(|rejection: QueryRejection| ApiError(Error::bad_request("invalid_query", rejection.body_text())))
    }
}

/// Path parameters.
pub struct Path<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(value)| Self(value))
            .map_err(|rejection: PathRejection| ApiError(Error::bad_request("invalid_path", rejection.body_text())))
    }
}

/// A JSON body the caller may leave out entirely: no body at all means `T::default()`.
pub struct OptionalJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Default> FromRequest<S> for OptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        if req.headers().contains_key(axum::http::header::CONTENT_TYPE) {
            return Json::from_request(req, state).await.map(|Json(value)| Self(value));
        }
        let bytes = axum::body::Bytes::from_request(req, state).await.map_err(|_| ApiError(payload_too_large()))?;
        if bytes.is_empty() {
            Ok(Self(T::default()))
        } else {
            Err(ApiError(json_rejection(JsonRejection::MissingJsonContentType(Default::default()))))
        }
    }
}
