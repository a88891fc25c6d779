//! Errors as HTTP responses: every engine error kind maps to one status, and every response
//! has OpenAI's error shape (`{"error": {"message", "type", "code"}}`), on `/api` as on `/v1`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use lore_core::{Error, ErrorKind};
use serde_json::json;

/// An error on its way to the client.
#[derive(Debug)]
pub struct ApiError {
    /// The response's status.
    pub status: StatusCode,
    /// What went wrong and what to do, for a person.
    pub message: String,
    /// A short machine-readable code (`not_found`, `queue_full`, …).
    pub code: &'static str,
    /// Seconds after which trying again may succeed (503s).
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// An error with this status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError { status, message: message.into(), code, retry_after: None }
    }

    /// 400: the request is malformed.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }

    /// 401: no key, or not a valid one.
    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "invalid_api_key", message)
    }

    /// 403: the key may see the collection but not do this with it.
    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "permission_denied", message)
    }

    /// 404 for a collection: the same whether it does not exist or the caller may not use it.
    pub fn no_collection(name: &str) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("no collection '{name}'"))
    }

    /// 413: an upload over the server's limits.
    pub fn too_large(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", message)
    }

    /// 503 with `Retry-After`: the server is at capacity for this kind of work.
    pub fn busy(message: impl Into<String>, retry_after: u64) -> ApiError {
        ApiError {
            retry_after: Some(retry_after),
            ..ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "queue_full", message)
        }
    }

    fn kind_name(&self) -> &'static str {
        match self.status.as_u16() {
            401 => "authentication_error",
            403 => "permission_error",
            404 => "not_found_error",
            503 => "server_busy",
            400..=499 => "invalid_request_error",
            _ => "server_error",
        }
    }
}

impl From<Error> for ApiError {
    fn from(error: Error) -> ApiError {
        let (status, code) = match error.kind() {
            ErrorKind::NotFound => (StatusCode::NOT_FOUND, "not_found"),
            ErrorKind::AlreadyExists => (StatusCode::CONFLICT, "already_exists"),
            ErrorKind::InvalidInput => (StatusCode::BAD_REQUEST, "invalid_request"),
            ErrorKind::Unsupported => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported"),
            ErrorKind::Corrupt => (StatusCode::INTERNAL_SERVER_ERROR, "corrupt"),
            ErrorKind::Busy => (StatusCode::SERVICE_UNAVAILABLE, "busy"),
            ErrorKind::ModelUnavailable => (StatusCode::SERVICE_UNAVAILABLE, "model_unavailable"),
            ErrorKind::Cancelled => (StatusCode::SERVICE_UNAVAILABLE, "cancelled"),
            // Io, and kinds added later: the server failed, not the request.
            _ => (StatusCode::INTERNAL_SERVER_ERROR, "io"),
        };
        let retry_after = (status == StatusCode::SERVICE_UNAVAILABLE).then_some(5);
        ApiError { status, message: error.to_string(), code, retry_after }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body =
            json!({"error": {"message": self.message, "type": self.kind_name(), "param": null, "code": self.code}});
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(seconds) = self.retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// What a handler returns.
pub type ApiResult<T> = std::result::Result<T, ApiError>;
