//! `/v1/memories`: inspect and correct what agents remember long-term —
//! create, list, show (with history), edit, delete and hybrid search.
//! Records of `users/NAME` namespaces are reached only by keys that may act
//! for NAME (see [`crate::identity`]): naming another user's namespace
//! answers `403 user_not_allowed`, and their records do not exist for the
//! key (`404`, left out of lists).

use crate::auth::Principal;
use crate::error::ApiError;
use crate::extract::{Json, Path, Query};
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use roster_core::record::{
    validate_content, validate_key, validate_kind, validate_metadata, validate_namespace,
    MemoryRecord, MemoryRecordVersion,
};
use roster_core::MemoryId;
use roster_memory::{MemoryService, SearchRequest, SearchResults};
use roster_store::{MemoryOp, MemoryQuery, MemoryWrite};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateMemory {
    /// e.g. `agents/helper` or `users/ada`.
    #[schema(
        pattern = r"^(?!(.*/)?\.\.?(/|$))[A-Za-z0-9._@-]{1,100}(/[A-Za-z0-9._@-]{1,100})*$",
        max_length = 200
    )]
    pub namespace: String,
    /// Not blank; at most 10,000 characters.
    #[schema(
        pattern = r"[^\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]",
        max_length = 10000
    )]
    pub content: String,
    /// `fact` (default), `preference`, `summary` or `note`.
    #[serde(default)]
    #[schema(pattern = r"^(fact|preference|summary|note)$")]
    pub kind: Option<String>,
    /// With a key already used in the namespace, that record is updated.
    #[serde(default)]
    /// 1-200 bytes without control characters.
    #[schema(pattern = r"^[^\x00-\x1f\x7f-\x9f]+$", max_length = 200)]
    pub key: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Value>,
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
}

/// Fields to change; the old state stays in the record's history.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateMemory {
    #[schema(
        pattern = r"[^\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]",
        max_length = 10000
    )]
    pub content: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Value>,
    /// A time, or `null` to clear the expiry; omit to keep it.
    #[serde(default, with = "double_option")]
    #[schema(value_type = Option<DateTime<Utc>>)]
    pub expires_at: Option<Option<DateTime<Utc>>>,
    /// Refuse the change (409) unless the record is at this version.
    pub expected_version: Option<i64>,
}

/// Tells an absent field (keep) from an explicit `null` (clear).
pub(crate) mod double_option {
    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
    where
        D: Deserializer<'de>,
        T: Deserialize<'de>,
    {
        Option::<T>::deserialize(d).map(Some)
    }
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct MemoryListParams {
    #[param(
        pattern = r"^(?!(.*/)?\.\.?(/|$))[A-Za-z0-9._@-]{1,100}(/[A-Za-z0-9._@-]{1,100})*$",
        max_length = 200
    )]
    pub namespace: Option<String>,
    #[param(pattern = r"^(fact|preference|summary|note)$")]
    pub kind: Option<String>,
    /// Records after this id (the previous page's `next_after`).
    #[param(pattern = r"^mem_[0-9a-f]{32}$")]
    pub after: Option<String>,
    /// 1..=1000, default 100.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// Include records whose expiry has passed.
    #[serde(default)]
    pub include_expired: bool,
}

#[derive(Serialize, ToSchema)]
pub struct MemoryPage {
    pub data: Vec<MemoryRecord>,
    pub next_after: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct MemoryDetail {
    #[serde(flatten)]
    pub record: MemoryRecord,
    /// Every version, oldest first.
    pub history: Vec<MemoryRecordVersion>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchMemories {
    /// Not blank; at most 10,000 bytes.
    #[schema(
        pattern = r"[^\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]",
        max_length = 10000
    )]
    pub query: String,
    /// One namespace to search; or use `namespaces`.
    #[schema(
        pattern = r"^(?!(.*/)?\.\.?(/|$))[A-Za-z0-9._@-]{1,100}(/[A-Za-z0-9._@-]{1,100})*$",
        max_length = 200
    )]
    pub namespace: Option<String>,
    /// Namespaces to search (patterned as `namespace`).
    #[serde(default)]
    pub namespaces: Vec<String>,
    /// 1..=100, default 10.
    #[schema(minimum = 1, maximum = 100)]
    pub limit: Option<usize>,
}

fn parse_id(raw: &str) -> Result<MemoryId, ApiError> {
    MemoryId::parse(raw).ok_or_else(|| ApiError::not_found("memory"))
}

/// The record, if this key may reach its namespace.
async fn visible(
    state: &AppState,
    principal: &Principal,
    id: &MemoryId,
) -> Result<MemoryRecord, ApiError> {
    state
        .store
        .get_memory(&principal.tenant, id)
        .await?
        .filter(|r| crate::identity::may_use_namespace(principal, &r.namespace))
        .ok_or_else(|| ApiError::not_found("memory"))
}

async fn write_one(
    service: &MemoryService,
    principal: &Principal,
    op: MemoryOp,
) -> Result<MemoryRecord, ApiError> {
    let written = service
        .store()
        .write_memories(
            &principal.tenant,
            vec![MemoryWrite {
                op,
                principal: principal.label(),
                run_id: None,
            }],
        )
        .await?;
    service.wait_indexed(written.log_id).await;
    written
        .records
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::internal("the store answered a write with no record"))
}

#[utoipa::path(post, path = "/v1/memories", request_body = CreateMemory, tag = "memories",
    responses((status = 201, body = MemoryRecord), (status = 403, body = crate::error::ErrorBody, description = "user_not_allowed: another user's namespace"),
    (status = 503, body = crate::error::ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    principal: Principal,
    Json(body): Json<CreateMemory>,
) -> Result<(StatusCode, axum::Json<MemoryRecord>), ApiError> {
    let service = super::memory_service(&state)?;
    validate_namespace(&body.namespace)?;
    crate::identity::require_namespace(&principal, &body.namespace)?;
    validate_content(&body.content)?;
    let kind = body.kind.unwrap_or_else(|| "fact".to_owned());
    validate_kind(&kind)?;
    if let Some(key) = &body.key {
        validate_key(key)?;
    }
    let metadata = body.metadata.unwrap_or_else(|| serde_json::json!({}));
    validate_metadata(&metadata)?;
    let embedding = service.embed_one(&body.content).await;
    let record = write_one(
        service,
        &principal,
        MemoryOp::Create {
            id: MemoryId::generate(),
            namespace: body.namespace,
            kind,
            key: body.key,
            content: body.content,
            metadata,
            source: None,
            expires_at: body.expires_at,
            embedding,
        },
    )
    .await?;
    Ok((StatusCode::CREATED, axum::Json(record)))
}

#[utoipa::path(get, path = "/v1/memories", tag = "memories", params(MemoryListParams),
    responses((status = 200, body = MemoryPage), (status = 400, body = crate::error::ErrorBody),
    (status = 403, body = crate::error::ErrorBody, description = "user_not_allowed: another user's namespace")))]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    Query(params): Query<MemoryListParams>,
) -> Result<axum::Json<MemoryPage>, ApiError> {
    let limit = params.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid("limit must be between 1 and 1000"));
    }
    if let Some(namespace) = &params.namespace {
        validate_namespace(namespace)?;
        crate::identity::require_namespace(&principal, namespace)?;
    }
    if let Some(kind) = &params.kind {
        validate_kind(kind)?;
    }
    let after = match params.after.as_deref() {
        None => None,
        Some(raw) => Some(
            MemoryId::parse(raw)
                .ok_or_else(|| ApiError::invalid("after must be a memory id (mem_…)"))?,
        ),
    };
    let data = state
        .store
        .list_memories(
            &principal.tenant,
            &MemoryQuery {
                namespace: params.namespace,
                kind: params.kind,
                after,
                limit,
                include_expired: params.include_expired,
                newest_first: false,
                visible_users: principal.acting_users(),
            },
        )
        .await?;
    let next_after = (data.len() as i64 == limit)
        .then(|| data.last().map(|r| r.id.to_string()))
        .flatten();
    Ok(axum::Json(MemoryPage { data, next_after }))
}

#[utoipa::path(get, path = "/v1/memories/{id}", tag = "memories", params(("id" = String, Path)),
    responses((status = 200, body = MemoryDetail), (status = 404, body = crate::error::ErrorBody)))]
pub async fn show(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<axum::Json<MemoryDetail>, ApiError> {
    let id = parse_id(&id)?;
    let record = visible(&state, &principal, &id).await?;
    let history = state.store.memory_history(&principal.tenant, &id).await?;
    Ok(axum::Json(MemoryDetail { record, history }))
}

#[utoipa::path(patch, path = "/v1/memories/{id}", tag = "memories", request_body = UpdateMemory, params(("id" = String, Path)),
    responses((status = 200, body = MemoryRecord), (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    Json(body): Json<UpdateMemory>,
) -> Result<axum::Json<MemoryRecord>, ApiError> {
    let service = super::memory_service(&state)?;
    let id = parse_id(&id)?;
    visible(&state, &principal, &id).await?;
    if body.content.is_none() && body.metadata.is_none() && body.expires_at.is_none() {
        return Err(ApiError::invalid(
            "nothing to change: give content, metadata or expires_at",
        ));
    }
    if let Some(content) = &body.content {
        validate_content(content)?;
    }
    if let Some(metadata) = &body.metadata {
        validate_metadata(metadata)?;
    }
    let embedding = match &body.content {
        Some(content) => service.embed_one(content).await,
        None => None,
    };
    let record = write_one(
        service,
        &principal,
        MemoryOp::Update {
            id,
            expected_version: body.expected_version,
            content: body.content,
            metadata: body.metadata,
            expires_at: body.expires_at,
            source: None,
            embedding,
        },
    )
    .await?;
    Ok(axum::Json(record))
}

#[utoipa::path(delete, path = "/v1/memories/{id}", tag = "memories", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = crate::error::ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let service = super::memory_service(&state)?;
    let id = parse_id(&id)?;
    visible(&state, &principal, &id).await?;
    write_one(
        service,
        &principal,
        MemoryOp::Delete {
            id,
            expected_version: None,
        },
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/v1/memories/search", request_body = SearchMemories, tag = "memories",
    responses((status = 200, body = SearchResults), (status = 400, body = crate::error::ErrorBody),
    (status = 403, body = crate::error::ErrorBody, description = "user_not_allowed: another user's namespace"),
    (status = 503, body = crate::error::ErrorBody)))]
pub async fn search(
    State(state): State<AppState>,
    principal: Principal,
    Json(body): Json<SearchMemories>,
) -> Result<axum::Json<SearchResults>, ApiError> {
    let service = super::memory_service(&state)?;
    let mut namespaces = body.namespaces;
    if let Some(namespace) = body.namespace {
        namespaces.push(namespace);
    }
    if namespaces.is_empty() {
        return Err(ApiError::invalid("give `namespace` or `namespaces`"));
    }
    if namespaces.len() > 32 {
        return Err(ApiError::invalid("at most 32 namespaces"));
    }
    for namespace in &namespaces {
        validate_namespace(namespace)?;
        crate::identity::require_namespace(&principal, namespace)?;
    }
    let limit = body.limit.unwrap_or(10);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::invalid("limit must be between 1 and 100"));
    }
    let results = service
        .search(
            &principal.tenant,
            &SearchRequest {
                namespaces,
                query: body.query,
                limit,
            },
        )
        .await?;
    Ok(axum::Json(results))
}
