//! `/v1/agents/{agent}/blocks`: people read and edit an agent's pinned
//! memory blocks. Listing shows the blocks of the agent's current version
//! with the agent's own values (for `user` and `session` blocks, the
//! template copies start from) and the copies of the caller's user (or of
//! the user or session `owner` names). `PATCH` sets one value or limit as a
//! new version of that row, recorded with the key's label and audited;
//! adding or removing a block stores a new agent version.
//!
//! Which row a request means is its `owner`: `agent`, `user:NAME` or
//! `session:ses_…`. Without one, a key bound to a user means its own copies
//! of `user` blocks, any other key the agent's rows. A user's copy is
//! reached only by keys that may act for that user (`403
//! user_not_allowed`), a session's only by keys that may use the session.
//! Editing the agent's rows needs `agents:write`; editing a copy needs
//! `memories:write` (it is that user's or session's memory).

use crate::auth::Principal;
use crate::error::ApiError;
use crate::extract::{Json, Path, Query};
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use roster_core::agent::{Agent, MAX_BLOCKS};
use roster_core::blocks::{effective_block, BlockDef, BlockOwner, BlockScope};
use roster_core::memory::{
    check_fits, MemoryBlock, MemoryBlockSpec, MemoryBlockVersion, MAX_BLOCK_LIMIT,
};
use roster_store::{BlockChange, BlockWrite, NewAuditEvent, Session};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct OwnerParams {
    /// `agent`, `user:NAME` or `session:ses_…`; see the module notes for
    /// the default.
    #[param(
        pattern = r"^(agent|user:(?!(.*/)?\.\.?(/|$))[A-Za-z0-9._@-]{1,100}|session:ses_[0-9a-f]{32})$"
    )]
    pub owner: Option<String>,
}

/// One block row as people see it.
#[derive(Serialize, ToSchema)]
pub struct BlockView {
    pub label: String,
    pub scope: BlockScope,
    /// `agent` (the agent's own value; for `user` and `session` blocks, the
    /// template), `user:NAME` or `session:ses_…`.
    pub owner: String,
    pub value: String,
    pub limit: u32,
    /// 0 for a copy not made yet: it holds the template until first edited.
    pub version: i64,
    pub updated_at: DateTime<Utc>,
}

impl BlockView {
    fn of(block: MemoryBlock, scope: BlockScope) -> Self {
        Self {
            label: block.label,
            scope,
            owner: block.owner.to_string(),
            value: block.value,
            limit: block.limit,
            version: block.version,
            updated_at: block.updated_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct BlockList {
    /// The agent's version these blocks are of.
    pub version: i64,
    pub data: Vec<BlockView>,
}

#[derive(Serialize, ToSchema)]
pub struct BlockDetail {
    #[serde(flatten)]
    pub block: BlockView,
    /// Every version of this row, oldest first, with who made it.
    pub history: Vec<MemoryBlockVersion>,
}

/// Fields to change; at least one of `value` and `limit`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetBlock {
    pub value: Option<String>,
    /// Characters, 1..=100000; the value must fit.
    #[schema(minimum = 1, maximum = 100000)]
    pub limit: Option<u32>,
    /// Refuse the change (409) unless the row is at this version.
    pub expected_version: Option<i64>,
}

/// Whose copies a request is about.
struct Selection {
    /// `owner=agent`: the agent's rows even for `user`/`session` blocks.
    agent_only: bool,
    user: Option<String>,
    session: Option<Session>,
    /// The request named a user or session itself (not a key's default).
    named: bool,
}

impl Selection {
    /// The row of `def` a request for one block means; naming a user or
    /// session whose copy `def` cannot have is refused rather than taken
    /// to mean the agent's shared value.
    fn owner_of_one(&self, def: &BlockDef) -> Result<BlockOwner, ApiError> {
        let owner = self.owner(def);
        if self.named && (owner.is_agent() || owner == BlockOwner::Shared) {
            let has = match def.scope {
                BlockScope::Agent => "one value shared by all users and sessions",
                BlockScope::User => "one copy per user",
                BlockScope::Session => "one copy per session: name the session",
                BlockScope::Shared => {
                    "one value, the tenant's, shared by every agent that attaches it"
                }
            };
            return Err(ApiError::invalid(format!(
                "block `{}` has {has} (scope {}); there is no copy of the one named",
                def.label,
                def.scope.as_str()
            )));
        }
        Ok(owner)
    }

    /// The row of `def` this selection means.
    fn owner(&self, def: &BlockDef) -> BlockOwner {
        match (self.agent_only, def.scope, &self.session, &self.user) {
            (_, BlockScope::Shared, _, _) => BlockOwner::Shared,
            (true, _, _, _) | (_, BlockScope::Agent, _, _) => BlockOwner::Agent,
            (_, scope, Some(session), _) => {
                BlockOwner::for_session(scope, session.user.as_deref(), &session.id)
            }
            (_, BlockScope::User, None, Some(user)) => BlockOwner::User(user.clone()),
            _ => BlockOwner::Agent,
        }
    }
}

async fn select(
    state: &AppState,
    principal: &Principal,
    agent: &Agent,
    owner: Option<&str>,
) -> Result<Selection, ApiError> {
    let mut selection = Selection {
        agent_only: false,
        user: None,
        session: None,
        named: owner.is_some_and(|o| o != "agent"),
    };
    match owner.map(BlockOwner::parse).transpose()? {
        None => selection.user = principal.bound_user().map(str::to_owned),
        Some(BlockOwner::Agent | BlockOwner::Shared) => selection.agent_only = true,
        Some(BlockOwner::User(user)) => {
            crate::identity::require_user(principal, &user)?;
            selection.user = Some(user);
        }
        Some(BlockOwner::Session(id)) => {
            let session = super::sessions::find(state, principal, id.as_str()).await?;
            if session.agent_id != agent.id {
                return Err(ApiError::not_found("session"));
            }
            selection.user = session.user.clone();
            selection.session = Some(session);
        }
    }
    Ok(selection)
}

fn block_def<'a>(agent: &'a Agent, label: &str) -> Result<&'a BlockDef, ApiError> {
    agent
        .config
        .block(label)
        .ok_or_else(|| ApiError::not_found("memory block"))
}

/// The rows `owners` hold of this agent's blocks.
async fn rows(
    state: &AppState,
    principal: &Principal,
    agent: &Agent,
    owners: &[BlockOwner],
) -> Result<Vec<MemoryBlock>, ApiError> {
    Ok(state
        .store
        .memory_blocks_of(&principal.tenant, &agent.id, owners)
        .await?)
}

#[utoipa::path(get, path = "/v1/agents/{agent}/blocks", tag = "agents",
    params(("agent" = String, Path, description = "id or name"), OwnerParams),
    responses((status = 200, body = BlockList), (status = 400, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody, description = "user_not_allowed"),
        (status = 404, body = crate::error::ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    Path(agent): Path<String>,
    Query(params): Query<OwnerParams>,
) -> Result<axum::Json<BlockList>, ApiError> {
    let agent = super::agents::find(&state, &principal, &agent).await?;
    let selection = select(&state, &principal, &agent, params.owner.as_deref()).await?;
    let mut owners = vec![BlockOwner::Agent];
    for def in &agent.config.memory_blocks {
        let owner = selection.owner(def);
        if !owners.contains(&owner) {
            owners.push(owner);
        }
    }
    let found = rows(&state, &principal, &agent, &owners).await?;
    let mut data = Vec::new();
    for def in &agent.config.memory_blocks {
        let copy = selection.owner(def);
        for row in found.iter().filter(|r| r.label == def.label) {
            let shared = def.scope == BlockScope::Shared;
            if (row.owner.is_agent() && !shared) || row.owner == copy {
                data.push(BlockView::of(row.clone(), def.scope));
            }
        }
    }
    data.sort_by(|a, b| (&a.label, &a.owner).cmp(&(&b.label, &b.owner)));
    Ok(axum::Json(BlockList {
        version: agent.version,
        data,
    }))
}

#[utoipa::path(get, path = "/v1/agents/{agent}/blocks/{label}", tag = "agents",
    params(("agent" = String, Path, description = "id or name"), ("label" = String, Path), OwnerParams),
    responses((status = 200, body = BlockDetail), (status = 400, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody, description = "user_not_allowed"),
        (status = 404, body = crate::error::ErrorBody)))]
pub async fn show(
    State(state): State<AppState>,
    principal: Principal,
    Path((agent, label)): Path<(String, String)>,
    Query(params): Query<OwnerParams>,
) -> Result<axum::Json<BlockDetail>, ApiError> {
    let agent = super::agents::find(&state, &principal, &agent).await?;
    let selection = select(&state, &principal, &agent, params.owner.as_deref()).await?;
    let def = block_def(&agent, &label)?;
    let owner = selection.owner_of_one(def)?;
    let block = current(&state, &principal, &agent, def, &owner).await?;
    let history = state
        .store
        .block_history(&principal.tenant, &agent.id, &owner, &def.label)
        .await?;
    Ok(axum::Json(BlockDetail {
        block: BlockView::of(block, def.scope),
        history,
    }))
}

/// The row `owner` has of `def`, or the template as its copy not yet made.
async fn current(
    state: &AppState,
    principal: &Principal,
    agent: &Agent,
    def: &BlockDef,
    owner: &BlockOwner,
) -> Result<MemoryBlock, ApiError> {
    let mut owners = vec![BlockOwner::Agent];
    if !owner.is_agent() {
        owners.push(owner.clone());
    }
    let found = rows(state, principal, agent, &owners).await?;
    effective_block(&found, &def.label, owner).ok_or_else(|| ApiError::not_found("memory block"))
}

#[utoipa::path(patch, path = "/v1/agents/{agent}/blocks/{label}", tag = "agents", request_body = SetBlock,
    params(("agent" = String, Path, description = "id or name"), ("label" = String, Path), OwnerParams),
    responses((status = 200, body = BlockView), (status = 400, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody, description = "insufficient_scope or user_not_allowed"),
        (status = 404, body = crate::error::ErrorBody),
        (status = 409, body = crate::error::ErrorBody, description = "conflict: the row changed (expected_version)")))]
pub async fn set(
    State(state): State<AppState>,
    principal: Principal,
    Path((agent, label)): Path<(String, String)>,
    Query(params): Query<OwnerParams>,
    Json(body): Json<SetBlock>,
) -> Result<axum::Json<BlockView>, ApiError> {
    let agent = super::agents::find(&state, &principal, &agent).await?;
    let selection = select(&state, &principal, &agent, params.owner.as_deref()).await?;
    let def = block_def(&agent, &label)?;
    let owner = selection.owner_of_one(def)?;
    let needed = if owner.is_agent() || owner == BlockOwner::Shared {
        "agents:write"
    } else {
        "memories:write"
    };
    if !principal.has_scope(needed) {
        return Err(ApiError::new(
            crate::codes::Code::InsufficientScope,
            format!("this key's scopes do not include `{needed}`"),
        ));
    }
    if body.value.is_none() && body.limit.is_none() {
        return Err(ApiError::invalid("nothing to change: give value or limit"));
    }
    if body.limit.is_some_and(|l| l == 0 || l > MAX_BLOCK_LIMIT) {
        return Err(ApiError::invalid(format!(
            "limit must be between 1 and {MAX_BLOCK_LIMIT}"
        )));
    }
    let block = current(&state, &principal, &agent, def, &owner).await?;
    if body.expected_version.is_some_and(|v| v != block.version) {
        return Err(ApiError::new(
            crate::codes::Code::Conflict,
            format!(
                "memory block `{label}` of {owner} is at version {}, not {}",
                block.version,
                body.expected_version.unwrap_or_default()
            ),
        ));
    }
    let value = body.value.unwrap_or_else(|| block.value.clone());
    let limit = body.limit.unwrap_or(block.limit);
    check_fits(&def.label, &value, limit)?;
    let audit = NewAuditEvent {
        actor: principal.label(),
        action: "block.set".into(),
        resource: format!("agent:{}/block:{}", agent.name, def.label),
        decision: None,
        // The value stays out of the log: a copy is one user's memory.
        detail: json!({
            "agent": agent.id, "owner": owner.to_string(), "version": block.version + 1,
            "limit": limit, "chars": value.chars().count(),
        }),
    };
    let written = state
        .store
        .set_memory_block(
            &principal.tenant,
            BlockWrite {
                agent_id: agent.id.clone(),
                label: def.label.clone(),
                owner,
                expected_version: block.version,
                value,
                limit,
                operation: "set".into(),
                principal: principal.label(),
            },
            audit,
        )
        .await?;
    Ok(axum::Json(BlockView::of(written, def.scope)))
}

/// Blocks to remove and add, checked against the agent's current version
/// (the store checks again against the version current when it writes).
pub(crate) fn check_change(
    agent: &Agent,
    added: &[MemoryBlockSpec],
    removed: &[String],
) -> Result<(), ApiError> {
    for (i, label) in removed.iter().enumerate() {
        block_def(agent, label)?;
        if removed[..i].contains(label) {
            return Err(ApiError::invalid(format!(
                "memory block `{label}` is removed twice"
            )));
        }
    }
    for (i, spec) in added.iter().enumerate() {
        spec.validate()?;
        let kept = agent.config.block(&spec.label).is_some() && !removed.contains(&spec.label);
        if kept || added[..i].iter().any(|s| s.label == spec.label) {
            return Err(ApiError::new(
                crate::codes::Code::Conflict,
                format!("the agent already has a memory block `{}`", spec.label),
            ));
        }
    }
    let count = (agent.config.memory_blocks.len() + added.len()).saturating_sub(removed.len());
    if count > MAX_BLOCKS {
        return Err(ApiError::invalid(format!(
            "at most {MAX_BLOCKS} memory blocks per agent"
        )));
    }
    Ok(())
}

#[utoipa::path(post, path = "/v1/agents/{agent}/blocks", tag = "agents", request_body = MemoryBlockSpec,
    params(("agent" = String, Path, description = "id or name")),
    responses((status = 201, body = Agent, description = "the agent's new version"),
        (status = 400, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody),
        (status = 409, body = crate::error::ErrorBody, description = "conflict: the agent has a block of that label")))]
pub async fn add(
    State(state): State<AppState>,
    principal: Principal,
    Path(agent): Path<String>,
    Json(spec): Json<MemoryBlockSpec>,
) -> Result<(StatusCode, axum::Json<Agent>), ApiError> {
    let agent = super::agents::find(&state, &principal, &agent).await?;
    check_change(&agent, std::slice::from_ref(&spec), &[])?;
    let change = BlockChange {
        add: vec![spec],
        ..BlockChange::default()
    };
    let updated = state
        .store
        .change_agent_blocks(&principal.tenant, &agent.id, change, &principal.label())
        .await?;
    Ok((StatusCode::CREATED, axum::Json(updated)))
}

#[utoipa::path(delete, path = "/v1/agents/{agent}/blocks/{label}", tag = "agents",
    params(("agent" = String, Path, description = "id or name"), ("label" = String, Path)),
    responses((status = 200, body = Agent, description = "the agent's new version, without the block"),
        (status = 404, body = crate::error::ErrorBody)))]
pub async fn remove(
    State(state): State<AppState>,
    principal: Principal,
    Path((agent, label)): Path<(String, String)>,
    Query(params): Query<OwnerParams>,
) -> Result<axum::Json<Agent>, ApiError> {
    // The block leaves the agent, so every user's and session's copy goes
    // with it: a request naming one copy meant something else.
    if let Some(owner) = params.owner.as_deref().filter(|o| *o != "agent") {
        return Err(ApiError::invalid(format!(
            "removing a block removes it from the agent and every copy; `owner={owner}` names one copy: to empty it, PATCH it with that owner and an empty value"
        )));
    }
    let agent = super::agents::find(&state, &principal, &agent).await?;
    check_change(&agent, &[], std::slice::from_ref(&label))?;
    let change = BlockChange {
        remove: vec![label],
        ..BlockChange::default()
    };
    Ok(axum::Json(
        state
            .store
            .change_agent_blocks(&principal.tenant, &agent.id, change, &principal.label())
            .await?,
    ))
}
