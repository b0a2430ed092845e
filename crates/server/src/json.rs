//! A JSON body extractor whose rejections use the API's error shape and status codes:
//! 400 for malformed JSON, 413 for a body over the limit, 415 without a JSON content
//! type, 422 for JSON of the wrong shape.

use crate::error::{ApiError, problem};
use axum::body::Bytes;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};
use serde::de::DeserializeOwned;

/// `axum::Json`, with API-shaped errors.
pub(crate) struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if is_curl_form(&req) {
            return from_curl_form(req, state).await;
        }
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(rejection_error(rejection)),
        }
    }
}

/// `curl -d '{...}'` without `-H "Content-Type: application/json"` sends
/// `application/x-www-form-urlencoded`, and HUD's documentation shows exactly that cron
/// line. A body of that type that parses as JSON is taken as JSON; anything else keeps the
/// 415.
fn is_curl_form(req: &Request) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|mime| {
            mime.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

async fn from_curl_form<S, T>(req: Request, state: &S) -> Result<ApiJson<T>, ApiError>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            payload_too_large()
        } else {
            ApiError::bad_request(format!(
                "could not read the request body: {}",
                rejection.body_text()
            ))
        }
    })?;
    // Only a body that is JSON at all is accepted under the form type; a real form stays 415.
    if serde_json::from_slice::<serde::de::IgnoredAny>(&bytes).is_err() {
        return Err(unsupported_media_type());
    }
    match axum::Json::<T>::from_bytes(&bytes) {
        Ok(axum::Json(value)) => Ok(ApiJson(value)),
        Err(rejection) => Err(rejection_error(rejection)),
    }
}

fn unsupported_media_type() -> ApiError {
    ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        "send the body as JSON with the header 'Content-Type: application/json'",
    )
}

fn payload_too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        "the request body is larger than the server accepts",
    )
}

fn rejection_error(rejection: JsonRejection) -> ApiError {
    match rejection {
        JsonRejection::JsonDataError(error) => {
            let detail = std::error::Error::source(&error)
                .map(ToString::to_string)
                .unwrap_or_else(|| error.body_text());
            ApiError::invalid(vec![problem("body", detail)])
        }
        JsonRejection::JsonSyntaxError(error) => {
            let detail = std::error::Error::source(&error)
                .map(ToString::to_string)
                .unwrap_or_else(|| error.body_text());
            ApiError::bad_request(format!("the request body is not valid JSON: {detail}"))
        }
        JsonRejection::MissingJsonContentType(_) => unsupported_media_type(),
        other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => payload_too_large(),
        other => ApiError::bad_request(format!(
            "could not read the request body: {}",
            other.body_text()
        )),
    }
}

/// `axum::extract::Query`, with API-shaped errors: a query string of the wrong shape (a
/// number too large, text where a number goes) is a 422 like a body of the wrong shape,
/// never axum's plain-text 400.
pub(crate) struct ApiQuery<T>(pub T);

impl<S, T> axum::extract::FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(Self(value)),
            Err(rejection) => {
                let detail = std::error::Error::source(&rejection)
                    .map(ToString::to_string)
                    .unwrap_or_else(|| rejection.body_text());
                Err(ApiError::invalid(vec![problem("query", detail)]))
            }
        }
    }
}
