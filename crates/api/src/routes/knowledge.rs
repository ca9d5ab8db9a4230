//! `/v1/knowledge`: sources of company documents, their documents (uploaded
//! whole, one per request; re-uploading unchanged bytes changes nothing),
//! and hybrid search returning passages with citations.

use crate::auth::Principal;
use crate::error::ApiError;
use crate::extract::{Json, Path, Query};
use crate::AppState;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use roster_core::knowledge::{
    validate_document_path, validate_source_name, DocumentError, KnowledgeDocument, KnowledgeSource,
};
use roster_memory::{
    ChunkOptions, IngestFailure, IngestOutcome, KnowledgeRequest, KnowledgeResults,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSource {
    #[schema(pattern = r"^(?!src_)[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
    pub name: String,
    #[serde(default)]
    pub description: String,
}

#[derive(Serialize, ToSchema)]
pub struct SourceList {
    pub data: Vec<KnowledgeSource>,
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct DocumentListParams {
    /// Documents whose path sorts after this one (the previous page's `next_after`).
    pub after: Option<String>,
    /// 1..=1000, default 100.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct DocumentPage {
    pub data: Vec<KnowledgeDocument>,
    pub next_after: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchKnowledge {
    /// Not blank; at most 10,000 bytes.
    #[schema(
        pattern = r"[^\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]",
        max_length = 10000
    )]
    pub query: String,
    /// Source names; all of the tenant's sources when omitted.
    #[serde(default)]
    pub sources: Vec<String>,
    /// 1..=100, default 5.
    #[schema(minimum = 1, maximum = 100)]
    pub limit: Option<usize>,
}

async fn find_source(
    state: &AppState,
    principal: &Principal,
    name: &str,
) -> Result<KnowledgeSource, ApiError> {
    state
        .store
        .get_source(&principal.tenant, name)
        .await?
        .ok_or_else(|| ApiError::not_found("knowledge source"))
}

#[utoipa::path(post, path = "/v1/knowledge/sources", request_body = CreateSource, tag = "knowledge",
    responses((status = 201, body = KnowledgeSource), (status = 409, body = crate::error::ErrorBody)))]
pub async fn create_source(
    State(state): State<AppState>,
    principal: Principal,
    Json(body): Json<CreateSource>,
) -> Result<(StatusCode, axum::Json<KnowledgeSource>), ApiError> {
    validate_source_name(&body.name)?;
    if body.description.len() > 10_000 {
        return Err(ApiError::invalid("description is longer than 10000 bytes"));
    }
    let source = state
        .store
        .create_source(&principal.tenant, &body.name, &body.description)
        .await?;
    Ok((StatusCode::CREATED, axum::Json(source)))
}

#[utoipa::path(get, path = "/v1/knowledge/sources", tag = "knowledge", responses((status = 200, body = SourceList)))]
pub async fn list_sources(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<axum::Json<SourceList>, ApiError> {
    Ok(axum::Json(SourceList {
        data: state.store.list_sources(&principal.tenant).await?,
    }))
}

#[utoipa::path(get, path = "/v1/knowledge/sources/{name}", tag = "knowledge", params(("name" = String, Path)),
    responses((status = 200, body = KnowledgeSource), (status = 404, body = crate::error::ErrorBody)))]
pub async fn show_source(
    State(state): State<AppState>,
    principal: Principal,
    Path(name): Path<String>,
) -> Result<axum::Json<KnowledgeSource>, ApiError> {
    Ok(axum::Json(find_source(&state, &principal, &name).await?))
}

#[utoipa::path(delete, path = "/v1/knowledge/sources/{name}", tag = "knowledge", params(("name" = String, Path)),
    responses((status = 204), (status = 404, body = crate::error::ErrorBody)))]
pub async fn delete_source(
    State(state): State<AppState>,
    principal: Principal,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    let source = find_source(&state, &principal, &name).await?;
    let log_id = state
        .store
        .delete_source(&principal.tenant, &source.id)
        .await?;
    if let Some(memory) = state.runtime.memory() {
        memory.wait_indexed(log_id).await;
    }
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/v1/knowledge/sources/{name}/documents", tag = "knowledge",
    params(("name" = String, Path), DocumentListParams),
    responses((status = 200, body = DocumentPage), (status = 400, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn list_documents(
    State(state): State<AppState>,
    principal: Principal,
    Path(name): Path<String>,
    Query(params): Query<DocumentListParams>,
) -> Result<axum::Json<DocumentPage>, ApiError> {
    let limit = params.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid("limit must be between 1 and 1000"));
    }
    let source = find_source(&state, &principal, &name).await?;
    let data = state
        .store
        .list_documents(
            &principal.tenant,
            &source.id,
            params.after.as_deref().unwrap_or(""),
            limit,
        )
        .await?;
    let next_after = (data.len() as i64 == limit)
        .then(|| data.last().map(|d| d.path.clone()))
        .flatten();
    Ok(axum::Json(DocumentPage { data, next_after }))
}

#[utoipa::path(get, path = "/v1/knowledge/sources/{name}/documents/{*path}", tag = "knowledge",
    params(("name" = String, Path), ("path" = String, Path, description = "document path; may contain `/`", pattern = r"^(?!(.*/)?\.\.?(/|$))[^/\\\x00-\x1f\x7f-\x9f]+(/[^/\\\x00-\x1f\x7f-\x9f]+)*$", max_length = 1000)),
    responses((status = 200, body = KnowledgeDocument), (status = 404, body = crate::error::ErrorBody)))]
pub async fn show_document(
    State(state): State<AppState>,
    principal: Principal,
    Path((name, path)): Path<(String, String)>,
) -> Result<axum::Json<KnowledgeDocument>, ApiError> {
    let source = find_source(&state, &principal, &name).await?;
    state
        .store
        .get_document(&principal.tenant, &source.id, &path)
        .await?
        .map(axum::Json)
        .ok_or_else(|| ApiError::not_found("document"))
}

/// Uploads a document's bytes; the server detects the type (Markdown, text,
/// HTML, PDF, CSV) from the path, the `Content-Type` and the bytes.
#[utoipa::path(put, path = "/v1/knowledge/sources/{name}/documents/{*path}", tag = "knowledge",
    params(("name" = String, Path), ("path" = String, Path, description = "document path; may contain `/`", pattern = r"^(?!(.*/)?\.\.?(/|$))[^/\\\x00-\x1f\x7f-\x9f]+(/[^/\\\x00-\x1f\x7f-\x9f]+)*$", max_length = 1000)),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "the file's bytes"),
    responses((status = 200, body = IngestOutcome),
        (status = 404, body = crate::error::ErrorBody),
        (status = 413, body = crate::error::ErrorBody, description = "document_too_large"),
        (status = 422, body = crate::error::ErrorBody, description = "the document cannot be ingested: empty_document, binary_content, garbled_text, unsupported_type, no_text, malformed_document")))]
pub async fn put_document(
    State(state): State<AppState>,
    principal: Principal,
    Path((name, path)): Path<(String, String)>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Result<axum::Json<IngestOutcome>, ApiError> {
    let service = super::memory_service(&state)?;
    validate_document_path(&path)?;
    let source = find_source(&state, &principal, &name).await?;
    let limit = state.max_document_bytes;
    let Some(bytes) = read_limited(body, limit).await? else {
        // Recorded like any refused document, so `knowledge list` says why.
        let message = too_large(&path, limit).message;
        state
            .store
            .fail_document(
                &principal.tenant,
                &source.id,
                &path,
                DocumentError {
                    code: "document_too_large".into(),
                    message,
                },
            )
            .await?;
        return Err(too_large(&path, limit));
    };
    let content_type = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let options = ChunkOptions {
        max_bytes: limit as u64,
        ..ChunkOptions::default()
    };
    match service
        .ingest(
            &principal.tenant,
            &source,
            &path,
            content_type.as_deref(),
            bytes,
            options,
        )
        .await
    {
        Ok(outcome) => Ok(axum::Json(outcome)),
        Err(IngestFailure::Document(e)) if e.code() == "document_too_large" => {
            Err(too_large(&path, limit))
        }
        Err(IngestFailure::Document(e)) => Err(ApiError::of_library(e.code(), e.to_string())),
        Err(IngestFailure::Service(e)) => Err(e.into()),
    }
}

/// Reads the body up to `limit` bytes; `None` when it is larger. The rest of
/// an oversized body is read and dropped (up to a bound), because a client
/// still sending when the answer comes sees a broken connection instead of
/// the answer.
pub(crate) async fn read_limited(
    body: axum::body::Body,
    limit: usize,
) -> Result<Option<Vec<u8>>, ApiError> {
    use futures::StreamExt;
    let drain_limit = limit.saturating_mul(8).max(64 * 1024 * 1024);
    let mut stream = body.into_data_stream();
    let mut bytes = Vec::new();
    let mut seen = 0usize;
    while let Some(chunk) = stream.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::invalid(format!("cannot read the document body: {e}")))?;
        seen = seen.saturating_add(chunk.len());
        if seen <= limit {
            bytes.extend_from_slice(&chunk);
        } else {
            bytes = Vec::new();
            if seen > drain_limit {
                break;
            }
        }
    }
    Ok((seen <= limit).then_some(bytes))
}

fn too_large(path: &str, limit: usize) -> ApiError {
    ApiError::new(
        crate::codes::Code::DocumentTooLarge,
        format!(
            "{path} is larger than this server's limit of {} MiB per document",
            limit / (1024 * 1024)
        ),
    )
}

#[utoipa::path(delete, path = "/v1/knowledge/sources/{name}/documents/{*path}", tag = "knowledge",
    params(("name" = String, Path), ("path" = String, Path, description = "document path; may contain `/`", pattern = r"^(?!(.*/)?\.\.?(/|$))[^/\\\x00-\x1f\x7f-\x9f]+(/[^/\\\x00-\x1f\x7f-\x9f]+)*$", max_length = 1000)),
    responses((status = 204), (status = 404, body = crate::error::ErrorBody)))]
pub async fn delete_document(
    State(state): State<AppState>,
    principal: Principal,
    Path((name, path)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let source = find_source(&state, &principal, &name).await?;
    let log_id = state
        .store
        .delete_document(&principal.tenant, &source.id, &path)
        .await?
        .ok_or_else(|| ApiError::not_found("document"))?;
    if let Some(memory) = state.runtime.memory() {
        memory.wait_indexed(log_id).await;
    }
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/v1/knowledge/search", request_body = SearchKnowledge, tag = "knowledge",
    responses((status = 200, body = KnowledgeResults), (status = 400, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn search(
    State(state): State<AppState>,
    principal: Principal,
    Json(body): Json<SearchKnowledge>,
) -> Result<axum::Json<KnowledgeResults>, ApiError> {
    let service = super::memory_service(&state)?;
    let limit = body.limit.unwrap_or(5);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::invalid("limit must be between 1 and 100"));
    }
    // Checked before anything is looked up, so the answer does not depend
    // on whether the tenant has sources yet.
    if body.query.trim().is_empty() {
        return Err(ApiError::invalid("query must not be empty"));
    }
    if body.query.len() > roster_memory::MAX_QUERY_BYTES {
        return Err(ApiError::invalid(format!(
            "query is longer than {} bytes",
            roster_memory::MAX_QUERY_BYTES
        )));
    }
    let sources = if body.sources.is_empty() {
        state.store.list_sources(&principal.tenant).await?
    } else {
        let mut found = Vec::with_capacity(body.sources.len());
        for name in &body.sources {
            found.push(find_source(&state, &principal, name).await?);
        }
        found
    };
    if sources.is_empty() {
        return Ok(axum::Json(KnowledgeResults {
            mode: roster_memory::SearchMode::FullText,
            notice: Some("this tenant has no knowledge sources".into()),
            data: Vec::new(),
        }));
    }
    let results = service
        .search_knowledge(
            &principal.tenant,
            &KnowledgeRequest {
                sources,
                query: body.query,
                limit,
            },
        )
        .await?;
    Ok(axum::Json(results))
}
