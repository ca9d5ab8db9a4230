//! `/v1/sessions/{id}/files…`: the session's sandbox workspace — the files
//! `run_code` reads and writes — listed, uploaded, downloaded and deleted.

use crate::auth::Principal;
use crate::error::ApiError;
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use roster_sandbox::{FileEntry, Sandbox, SandboxError};
use serde::Serialize;
use std::sync::Arc;
use utoipa::ToSchema;

/// Largest file one upload may carry.
pub const MAX_FILE_BYTES: usize = 100 * 1024 * 1024;

#[derive(Serialize, ToSchema)]
pub struct FileList {
    pub data: Vec<FileEntry>,
}

#[derive(Serialize, ToSchema)]
pub struct FileWritten {
    pub path: String,
    pub bytes: u64,
}

fn sandbox(state: &AppState) -> Result<&Arc<Sandbox>, ApiError> {
    state.sandbox.as_ref().ok_or_else(|| {
        ApiError::new(
            crate::codes::Code::SandboxUnavailable,
            "the code sandbox is not enabled on this server",
        )
    })
}

fn sandbox_error(e: SandboxError) -> ApiError {
    match e {
        SandboxError::InvalidPath(m) => {
            ApiError::new(crate::codes::Code::InvalidPath, format!("invalid path {m}"))
        }
        SandboxError::Invalid(m) => ApiError::invalid(m),
        SandboxError::NotFound(m) => ApiError::new(crate::codes::Code::NotFound, m),
        SandboxError::Unavailable(m) => ApiError::new(crate::codes::Code::SandboxUnavailable, m),
        e @ SandboxError::Io { .. } => ApiError::internal(e),
    }
}

/// The blocking file work runs off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, SandboxError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(ApiError::internal)?
        .map_err(sandbox_error)
}

#[utoipa::path(get, path = "/v1/sessions/{id}/files", tag = "files", params(("id" = String, Path)),
    responses((status = 200, body = FileList), (status = 404, body = crate::error::ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<axum::Json<FileList>, ApiError> {
    let session = super::sessions::find(&state, &principal, &id).await?;
    let sandbox = sandbox(&state)?.clone();
    let tenant = principal.tenant.clone();
    let data = blocking(move || sandbox.list_files(&tenant, &session.id)).await?;
    Ok(axum::Json(FileList { data }))
}

#[utoipa::path(get, path = "/v1/sessions/{id}/files/{*path}", tag = "files",
    params(("id" = String, Path), ("path" = String, Path, description = "relative path, may contain `/`")),
    responses((status = 200, description = "the file's bytes", content_type = "application/octet-stream", body = Vec<u8>),
        (status = 400, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn download(
    State(state): State<AppState>,
    principal: Principal,
    Path((id, path)): Path<(String, String)>,
) -> Result<impl IntoResponse, ApiError> {
    let session = super::sessions::find(&state, &principal, &id).await?;
    let sandbox = sandbox(&state)?.clone();
    let tenant = principal.tenant.clone();
    let bytes = blocking(move || sandbox.read_file(&tenant, &session.id, &path)).await?;
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], bytes))
}

#[utoipa::path(put, path = "/v1/sessions/{id}/files/{*path}", tag = "files",
    params(("id" = String, Path), ("path" = String, Path, description = "relative path, may contain `/`")),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "the file's bytes"),
    responses((status = 200, body = FileWritten), (status = 400, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody), (status = 413, body = crate::error::ErrorBody)))]
pub async fn upload(
    State(state): State<AppState>,
    principal: Principal,
    Path((id, path)): Path<(String, String)>,
    body: axum::body::Body,
) -> Result<axum::Json<FileWritten>, ApiError> {
    let session = super::sessions::find(&state, &principal, &id).await?;
    let sandbox = sandbox(&state)?.clone();
    roster_sandbox::workspace::clean_path(&path).map_err(sandbox_error)?;
    let Some(bytes) = super::knowledge::read_limited(body, MAX_FILE_BYTES).await? else {
        return Err(ApiError::new(
            crate::codes::Code::FileTooLarge,
            format!("`{path}` is larger than {} MiB", MAX_FILE_BYTES >> 20),
        ));
    };
    let tenant = principal.tenant.clone();
    let name = path.clone();
    let written = blocking(move || sandbox.write_file(&tenant, &session.id, &name, &bytes)).await?;
    Ok(axum::Json(FileWritten {
        path,
        bytes: written,
    }))
}

#[utoipa::path(delete, path = "/v1/sessions/{id}/files/{*path}", tag = "files",
    params(("id" = String, Path), ("path" = String, Path, description = "relative path, may contain `/`")),
    responses((status = 204), (status = 400, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    principal: Principal,
    Path((id, path)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let session = super::sessions::find(&state, &principal, &id).await?;
    let sandbox = sandbox(&state)?.clone();
    let tenant = principal.tenant.clone();
    blocking(move || sandbox.delete_file(&tenant, &session.id, &path)).await?;
    Ok(StatusCode::NO_CONTENT)
}
