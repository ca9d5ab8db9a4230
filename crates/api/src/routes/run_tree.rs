//! `GET /v1/runs/{id}/tree`: a run and every run it started (agents it
//! asked and tasks it handed off), level by level, with each one's agent,
//! actor chain, status and model usage, and the sums over the tree.

use crate::auth::Principal;
use crate::error::ApiError;
use crate::extract::Path;
use crate::AppState;
use axum::extract::State;
use roster_core::run::{Run, RunError, RunStatus};
use roster_core::{AgentId, RunId, SessionId, TenantId};
use roster_store::{AgentRef, RunUsage};
use serde::Serialize;
use std::collections::HashMap;
use utoipa::ToSchema;

/// Most runs one tree answer lists; a deeper or wider tree is cut
/// (`truncated`).
const MAX_NODES: usize = 1_000;

/// A run the tree's root started, directly or not.
#[derive(Serialize, ToSchema, Clone)]
pub struct ChildRun {
    pub id: RunId,
    pub status: RunStatus,
    pub session_id: SessionId,
    /// The agent that ran it (its name; its id if it was deleted).
    pub agent: String,
    /// `call` (the parent waited for its answer) or `hand_off`.
    pub mode: String,
}

#[derive(Serialize, ToSchema)]
pub struct RunNode {
    pub id: RunId,
    pub status: RunStatus,
    pub session_id: SessionId,
    pub agent: String,
    /// `root`, `call` or `hand_off`.
    pub mode: String,
    /// Who started it, hop by hop (`key:… > agent:coordinator`).
    pub actor: Option<String>,
    pub depth: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<RunError>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Its own model calls, charged to its own agent.
    pub usage: RunUsage,
    /// The runs it started, oldest first, each a node like this one.
    #[schema(no_recursion)]
    pub children: Vec<RunNode>,
}

#[derive(Serialize, ToSchema)]
pub struct RunTree {
    pub root: RunNode,
    /// Runs in the tree.
    pub runs: usize,
    /// Model usage summed over the tree.
    pub total: RunUsage,
    /// More than the listed runs exist (at most 1,000 are listed).
    pub truncated: bool,
}

/// Names agents by id, once per answer.
#[derive(Default)]
pub(crate) struct AgentNames(HashMap<SessionId, String>);

impl AgentNames {
    pub(crate) async fn of(
        &mut self,
        state: &AppState,
        tenant: &TenantId,
        session: &SessionId,
    ) -> Result<String, ApiError> {
        if let Some(name) = self.0.get(session) {
            return Ok(name.clone());
        }
        let agent: Option<AgentId> = state
            .store
            .get_session(tenant, session)
            .await?
            .map(|s| s.agent_id);
        let name = match agent {
            Some(id) => match state
                .store
                .get_agent(tenant, &AgentRef::Id(id.clone()))
                .await?
            {
                Some(agent) => agent.name,
                None => id.to_string(),
            },
            None => String::new(),
        };
        self.0.insert(session.clone(), name.clone());
        Ok(name)
    }
}

pub(crate) fn mode(run: &Run) -> &'static str {
    match (&run.parent_run_id, &run.deliver_to) {
        (None, _) => "root",
        (Some(_), Some(_)) => "hand_off",
        (Some(_), None) => "call",
    }
}

/// The runs `run` started, for its detail.
pub(crate) async fn children_of(
    state: &AppState,
    tenant: &TenantId,
    run: &RunId,
) -> Result<Vec<ChildRun>, ApiError> {
    let mut names = AgentNames::default();
    let mut out = Vec::new();
    for child in state
        .store
        .child_runs(tenant, std::slice::from_ref(run))
        .await?
    {
        out.push(ChildRun {
            agent: names.of(state, tenant, &child.session_id).await?,
            mode: mode(&child).to_owned(),
            id: child.id,
            status: child.status,
            session_id: child.session_id,
        });
    }
    Ok(out)
}

#[utoipa::path(get, path = "/v1/runs/{id}/tree", tag = "runs", params(("id" = String, Path)),
    responses((status = 200, body = RunTree, description = "the run and every run it started, with statuses, actor chains and model usage"),
        (status = 404, body = crate::error::ErrorBody)))]
pub async fn tree(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<axum::Json<RunTree>, ApiError> {
    let root = super::runs::find(&state, &principal, &id).await?;
    let tenant = &principal.tenant;
    // Level by level: one query per level, however wide.
    let mut runs: Vec<Run> = vec![root.clone()];
    let mut level = vec![root.id.clone()];
    let mut truncated = false;
    while !level.is_empty() {
        let next = state.store.child_runs(tenant, &level).await?;
        if runs.len() + next.len() > MAX_NODES {
            truncated = true;
            runs.extend(next.into_iter().take(MAX_NODES - runs.len()));
            break;
        }
        level = next.iter().map(|r| r.id.clone()).collect();
        runs.extend(next);
    }
    let ids: Vec<RunId> = runs.iter().map(|r| r.id.clone()).collect();
    let mut usage: HashMap<RunId, RunUsage> = HashMap::new();
    for chunk in ids.chunks(500) {
        for u in state.store.run_usage(tenant, chunk).await? {
            usage.insert(u.run_id.clone(), u);
        }
    }
    let mut names = AgentNames::default();
    let mut nodes: HashMap<RunId, RunNode> = HashMap::new();
    let mut children: HashMap<RunId, Vec<RunId>> = HashMap::new();
    let mut total = empty_usage(&root.id);
    for run in &runs {
        let own = usage
            .remove(&run.id)
            .unwrap_or_else(|| empty_usage(&run.id));
        total.model_calls += own.model_calls;
        total.tokens_in += own.tokens_in;
        total.tokens_out += own.tokens_out;
        total.cost_micros += own.cost_micros;
        if let Some(parent) = &run.parent_run_id {
            if run.id != root.id {
                children
                    .entry(parent.clone())
                    .or_default()
                    .push(run.id.clone());
            }
        }
        nodes.insert(
            run.id.clone(),
            RunNode {
                id: run.id.clone(),
                status: run.status,
                session_id: run.session_id.clone(),
                agent: names.of(&state, tenant, &run.session_id).await?,
                mode: mode(run).to_owned(),
                actor: run.actor.clone(),
                depth: run.depth,
                error: run.error.clone(),
                created_at: run.created_at,
                finished_at: run.finished_at,
                usage: own,
                children: Vec::new(),
            },
        );
    }
    let count = nodes.len();
    let root =
        assemble(&root.id, &mut nodes, &children).ok_or_else(|| ApiError::not_found("run"))?;
    Ok(axum::Json(RunTree {
        root,
        runs: count,
        total,
        truncated,
    }))
}

fn empty_usage(run: &RunId) -> RunUsage {
    RunUsage {
        run_id: run.clone(),
        model_calls: 0,
        tokens_in: 0,
        tokens_out: 0,
        cost_micros: 0,
    }
}

/// Builds the node of `id` with its children, oldest first. Iterative, so
/// a deep tree cannot overflow the stack.
fn assemble(
    id: &RunId,
    nodes: &mut HashMap<RunId, RunNode>,
    children: &HashMap<RunId, Vec<RunId>>,
) -> Option<RunNode> {
    // Post-order: a node is finished once all its children are.
    let mut order = Vec::new();
    let mut stack = vec![id.clone()];
    while let Some(next) = stack.pop() {
        if let Some(kids) = children.get(&next) {
            stack.extend(kids.iter().cloned());
        }
        order.push(next);
    }
    for parent in order.iter().rev() {
        let kids: Vec<RunNode> = children
            .get(parent)
            .map(|kids| kids.iter().filter_map(|k| nodes.remove(k)).collect())
            .unwrap_or_default();
        if let Some(node) = nodes.get_mut(parent) {
            node.children = kids;
        }
    }
    nodes.remove(id)
}
