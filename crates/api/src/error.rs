//! The one error shape of the API: `{"error": {"code", "message"}}` with a
//! stable code per kind and the matching status. Internal details are
//! logged, never sent.

use crate::codes::Code;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use roster_runtime::RuntimeError;
use roster_store::StoreError;
use serde::Serialize;

#[derive(Debug)]
pub struct ApiError {
    pub code: Code,
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
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// The HTTP status of the answer: the code's.
    pub fn status(&self) -> StatusCode {
        self.code.status()
    }

    /// An error a library reported with its own stable `code` (every such
    /// code is in the table; see `codes::tests`).
    pub(crate) fn of_library(code: &str, message: impl Into<String>) -> Self {
        match Code::parse(code) {
            Some(code) => Self::new(code, message),
            None => Self::internal(format!("unknown error code `{code}`: {}", message.into())),
        }
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(crate::codes::Code::NotFound, format!("{what} not found"))
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(crate::codes::Code::InvalidRequest, message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(crate::codes::Code::Unauthorized, message)
    }

    pub(crate) fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "internal error");
        Self::new(
            crate::codes::Code::InternalError,
            "internal error; see the server log",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.as_str().to_owned(),
                message: self.message,
            },
        };
        (status, axum::Json(body)).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => Self::not_found(&what),
            StoreError::Conflict(message) | StoreError::LimitReached(message) => {
                Self::new(crate::codes::Code::Conflict, message)
            }
            StoreError::SessionBusy(session) => Self::new(
                crate::codes::Code::SessionBusy,
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
                crate::codes::Code::RunFinished,
                format!("run {run} has already finished"),
            ),
            RuntimeError::ShuttingDown => Self::new(
                crate::codes::Code::ShuttingDown,
                "the server is shutting down",
            ),
            e @ RuntimeError::InputTooLarge { .. } => {
                Self::new(crate::codes::Code::InputTooLarge, e.to_string())
            }
            e @ RuntimeError::AgentDeleted => Self::new(Code::AgentDeleted, e.to_string()),
            RuntimeError::Denied(reason) => Self::new(Code::DeniedByPolicy, reason),
            e @ RuntimeError::SelfApproval => Self::new(Code::SelfApprovalForbidden, e.to_string()),
            RuntimeError::NotPending(message) => Self::new(Code::ApprovalNotPending, message),
            RuntimeError::InvalidPolicy(message) => Self::new(Code::InvalidPolicy, message),
            RuntimeError::InsufficientScope(message) => Self::new(Code::InsufficientScope, message),
            RuntimeError::UserNotAllowed(message) => Self::new(Code::UserNotAllowed, message),
            RuntimeError::Conflict(message) => Self::new(Code::Conflict, message),
            e @ RuntimeError::NotRetryable { .. } => {
                Self::new(crate::codes::Code::RunNotFailed, e.to_string())
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
        match e {
            roster_egress::EgressError::Denied(m) => Self::new(Code::EgressDenied, m),
            roster_egress::EgressError::Unresolved(m) => Self::new(Code::HostUnresolved, m),
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
