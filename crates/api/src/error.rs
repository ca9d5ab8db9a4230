//! The one error shape of the API: `{"error": {"code", "message"}}` with a
//! stable code per kind and the matching status. Internal details are
//! logged, never sent.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use roster_runtime::RuntimeError;
use roster_store::StoreError;
use serde::Serialize;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code, e.g. `not_found`, `invalid_request`.
    pub code: String,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub(crate) fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "internal error; see the server log",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_owned(),
                message: self.message,
            },
        };
        (self.status, axum::Json(body)).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => Self::not_found(&what),
            StoreError::Conflict(message) => Self::new(StatusCode::CONFLICT, "conflict", message),
            StoreError::SessionBusy(session) => Self::new(
                StatusCode::CONFLICT,
                "session_busy",
                format!(
                    "session {session} has a run in progress and the request asked not to queue"
                ),
            ),
            other => Self::internal(other),
        }
    }
}

impl From<RuntimeError> for ApiError {
    fn from(e: RuntimeError) -> Self {
        match e {
            RuntimeError::Store(e) => e.into(),
            RuntimeError::NotFound(what) => Self::not_found(what),
            RuntimeError::Invalid(message) => Self::invalid(message),
            RuntimeError::AlreadyFinished(run) => Self::new(
                StatusCode::CONFLICT,
                "run_finished",
                format!("run {run} has already finished"),
            ),
            RuntimeError::ShuttingDown => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "shutting_down",
                "the server is shutting down",
            ),
            e @ RuntimeError::InputTooLarge { .. } => Self::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "input_too_large",
                e.to_string(),
            ),
            e @ RuntimeError::NotRetryable { .. } => {
                Self::new(StatusCode::CONFLICT, "run_not_failed", e.to_string())
            }
        }
    }
}

impl From<roster_core::ValidationError> for ApiError {
    fn from(e: roster_core::ValidationError) -> Self {
        Self::invalid(e.to_string())
    }
}

/// Refusals of the egress policy are the operator's walls: `403`, with the
/// policy's message (which address, and how the operator allows it).
impl From<roster_egress::EgressError> for ApiError {
    fn from(e: roster_egress::EgressError) -> Self {
        let code = e.code();
        match e {
            roster_egress::EgressError::Denied(m) => Self::new(StatusCode::FORBIDDEN, code, m),
            roster_egress::EgressError::Unresolved(m) => {
                Self::new(StatusCode::BAD_GATEWAY, code, m)
            }
            other => Self::internal(other),
        }
    }
}

impl From<roster_memory::MemoryError> for ApiError {
    fn from(e: roster_memory::MemoryError) -> Self {
        match e {
            roster_memory::MemoryError::Store(e) => e.into(),
            roster_memory::MemoryError::Invalid(message) => Self::invalid(message),
            other => Self::internal(other),
        }
    }
}
