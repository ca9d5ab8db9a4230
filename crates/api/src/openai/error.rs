//! Errors in OpenAI's envelope: `{"error": {message, type, param, code}}`
//! with the statuses the SDKs map to their exception classes, and
//! `x-should-retry: false` wherever a client's automatic retry would repeat
//! an action or cannot help (the SDKs retry 408, 409, 429 and 5xx).

use crate::ApiError;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

#[derive(Debug)]
pub struct OpenAiError {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
    pub param: Option<String>,
}

impl OpenAiError {
    pub fn invalid(param: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code: "invalid_request".into(),
            message: message.into(),
            param: Some(param.into()),
        }
    }

    pub fn not_found(what: &str, id: &str) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            code: "not_found".into(),
            message: format!("{what} `{id}` not found"),
            param: None,
        }
    }
}

impl From<ApiError> for OpenAiError {
    fn from(e: ApiError) -> Self {
        Self {
            status: e.status(),
            code: e.code.as_str().to_owned(),
            message: e.message,
            param: None,
        }
    }
}

impl From<roster_runtime::RuntimeError> for OpenAiError {
    fn from(e: roster_runtime::RuntimeError) -> Self {
        ApiError::from(e).into()
    }
}

impl From<roster_store::StoreError> for OpenAiError {
    fn from(e: roster_store::StoreError) -> Self {
        ApiError::from(e).into()
    }
}

impl From<super::items::Refused> for OpenAiError {
    fn from(r: super::items::Refused) -> Self {
        Self::invalid(r.param, r.message)
    }
}

/// OpenAI's `type` for a status.
fn kind(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 | 413 | 422 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        409 => "conflict_error",
        429 => "rate_limit_error",
        _ => "server_error",
    }
}

impl IntoResponse for OpenAiError {
    fn into_response(self) -> Response {
        let body = json!({"error": {
            "message": self.message,
            "type": kind(self.status),
            "param": self.param,
            "code": self.code,
        }});
        let mut response = (self.status, axum::Json(body)).into_response();
        // A retry cannot change a 4xx answer; for 409 (a busy session) it
        // would send the same turn again. 429 and 5xx stay retryable.
        if self.status.is_client_error() && self.status != StatusCode::TOO_MANY_REQUESTS {
            response.headers_mut().insert(
                "x-should-retry",
                axum::http::HeaderValue::from_static("false"),
            );
        }
        response
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[tokio::test]
    async fn a_busy_session_is_not_retried() {
        let error = OpenAiError::from(ApiError::new(crate::codes::Code::SessionBusy, "busy"));
        let response = error.into_response();
        assert_eq!(response.status(), StatusCode::CONFLICT);
        assert_eq!(response.headers()["x-should-retry"], "false");
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["error"]["type"], "conflict_error");
        assert_eq!(body["error"]["code"], "session_busy");
    }

    #[test]
    fn server_errors_stay_retryable() {
        let response = OpenAiError::from(ApiError::internal("x")).into_response();
        assert!(response.headers().get("x-should-retry").is_none());
    }
}
