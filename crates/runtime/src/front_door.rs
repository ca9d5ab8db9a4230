//! The one front door for runs. Every way a run starts — the messages
//! endpoint, a retry, and each surface to come (the Responses API, A2A, an
//! MCP facade, schedules, webhooks, delegation) — calls
//! [`Runtime::start_run`] or [`Runtime::retry_run`] with a transport-free
//! [`Actor`]. They own what must hold for every one of them: the session as
//! the actor may see it, a live agent, the `invoke_agent` decision (audited)
//! before anything is queued, idempotency keys, busy-session behaviour, and
//! the submission. Surfaces parse, call, render.

use crate::error::RuntimeError;
use crate::scheduler::{Runtime, Submission};
use roster_core::actor::Actor;
use roster_core::agent::Agent;
use roster_core::run::Run;
use roster_core::{RunId, SessionId};
use roster_policy::{Decision, PolicyRequest, Resource};
use roster_store::{AgentRef, BusyPolicy, CreatedRun, Session};
use serde_json::json;

/// What starts a run in a session.
#[derive(Clone, Debug)]
pub struct RunRequest {
    /// The user's message.
    pub input: String,
    /// A retry with the same key returns the first run (1-255 characters).
    pub idempotency_key: Option<String>,
    /// What to do when the session has a run in progress; `None`: the
    /// agent's `if_busy`.
    pub if_busy: Option<BusyPolicy>,
    /// Webhooks (`whk_…`) told when the run finishes.
    pub notify: Vec<String>,
    /// Items, instructions for this run and the caller's own tools, from a
    /// surface that speaks items; `None`: one user message of `input`.
    pub turn: Option<roster_core::turn::Turn>,
}

impl Runtime {
    /// Starts a run in `session` for `actor`: the session must be one the
    /// actor may see, its agent not deleted, and the tenant's policies must
    /// let the actor invoke the agent — all before anything is queued.
    pub async fn start_run(
        &self,
        actor: &Actor,
        session: &SessionId,
        request: RunRequest,
    ) -> Result<CreatedRun, RuntimeError> {
        let session = self.session_for(actor, session).await?;
        let agent = self.live_agent(actor, &session).await?;
        self.may_invoke(actor, &agent, &session).await?;
        if let Some(key) = &request.idempotency_key {
            if !key.is_ascii() {
                return Err(RuntimeError::Invalid(
                    "Idempotency-Key must be ASCII".into(),
                ));
            }
            if key.is_empty() || key.len() > 255 {
                return Err(RuntimeError::Invalid(
                    "Idempotency-Key must be 1-255 characters".into(),
                ));
            }
        }
        self.check_webhooks(&actor.tenant, "notify", &request.notify)
            .await?;
        if let Some(turn) = &request.turn {
            self.check_turn(&actor.tenant, &agent, turn).await?;
        }
        self.submit(
            &actor.tenant,
            &session.id,
            Submission {
                input: request.input,
                idempotency_key: request.idempotency_key,
                if_busy: request.if_busy.unwrap_or(agent.config.if_busy),
                actor: Some(actor.label()),
                parent: None,
                notify: request.notify,
                turn: request.turn,
            },
        )
        .await
    }

    /// Starts a run in a new session of `agent` (for `user`): a first turn
    /// on a surface that makes its session per request. A run the front
    /// door refuses (policy, budget, input) takes its session with it, so a
    /// refused request leaves nothing behind but the audit of both.
    pub async fn start_first_run(
        &self,
        actor: &Actor,
        agent: &Agent,
        user: Option<&str>,
        request: RunRequest,
    ) -> Result<CreatedRun, RuntimeError> {
        let session = self
            .store()
            .create_session_for(&actor.tenant, &agent.id, agent.version, user)
            .await?;
        match self.start_run(actor, &session.id, request).await {
            Ok(created) => Ok(created),
            Err(refused) => {
                let audit = roster_store::NewAuditEvent {
                    actor: actor.label(),
                    action: "session.delete".into(),
                    resource: format!("session:{}", session.id),
                    decision: None,
                    detail: json!({"agent": session.agent_id, "reason": "its first run was refused"}),
                };
                if let Err(e) = self
                    .store()
                    .delete_session(&actor.tenant, &session.id, audit)
                    .await
                {
                    tracing::warn!(session = %session.id, error = %e, "cannot delete the session of a refused first run");
                }
                Err(refused)
            }
        }
    }

    /// Refuses a list of webhooks that is malformed or names one the tenant
    /// does not have (`field` names the list in the message).
    pub async fn check_webhooks(
        &self,
        tenant: &roster_core::TenantId,
        field: &str,
        ids: &[String],
    ) -> Result<(), RuntimeError> {
        roster_core::limits::validate_notify(field, ids)
            .map_err(|e| RuntimeError::Invalid(e.to_string()))?;
        for id in ids {
            let known = match roster_core::WebhookId::parse(id) {
                Some(id) => self.store().get_webhook(tenant, &id).await?.is_some(),
                None => false,
            };
            if !known {
                return Err(RuntimeError::Invalid(format!(
                    "{field}: there is no webhook `{id}` (register one with POST /v1/webhooks)"
                )));
            }
        }
        Ok(())
    }

    /// Sends a failed run back to its session's queue for `actor`. Policy
    /// may have changed since the run started, and another key may be the
    /// one asking: `invoke_agent` is decided again, for this actor.
    pub async fn retry_run(&self, actor: &Actor, run: &RunId) -> Result<Run, RuntimeError> {
        let found = self
            .store()
            .get_run(&actor.tenant, run)
            .await?
            .ok_or(RuntimeError::NotFound("run"))?;
        let session = match self.session_for(actor, &found.session_id).await {
            Err(RuntimeError::NotFound(_)) => return Err(RuntimeError::NotFound("run")),
            other => other?,
        };
        let agent = self.live_agent(actor, &session).await?;
        self.may_invoke(actor, &agent, &session).await?;
        self.retry(&actor.tenant, run, &actor.label()).await
    }

    /// The session as `actor` may see it: another user's session does not
    /// exist for it.
    pub async fn session_for(
        &self,
        actor: &Actor,
        session: &SessionId,
    ) -> Result<Session, RuntimeError> {
        self.store()
            .get_session(&actor.tenant, session)
            .await?
            .filter(|s| actor.may_reach(s.user.as_deref()))
            .ok_or(RuntimeError::NotFound("session"))
    }

    /// The session's agent, unless it was deleted: the history stays
    /// readable, but no new run starts.
    pub async fn live_agent(
        &self,
        actor: &Actor,
        session: &Session,
    ) -> Result<Agent, RuntimeError> {
        self.store()
            .get_agent(&actor.tenant, &AgentRef::Id(session.agent_id.clone()))
            .await?
            .ok_or(RuntimeError::AgentDeleted)
    }

    /// `invoke_agent`: may `actor` start a run of `agent`? Decided (and
    /// audited) before the run is queued; a refusal queues nothing.
    async fn may_invoke(
        &self,
        actor: &Actor,
        agent: &Agent,
        session: &Session,
    ) -> Result<(), RuntimeError> {
        let key_id = actor.key_id.to_string();
        let user = session
            .user
            .clone()
            .unwrap_or_else(|| actor.key_name.clone());
        self.decide_invoke(
            &actor.tenant,
            roster_policy::Actor::User {
                id: &key_id,
                name: &actor.key_name,
                kind: &actor.kind,
            },
            agent,
            &user,
            &actor.label(),
            json!({ "session": session.id }),
        )
        .await
    }

    /// The `invoke_agent` decision for `principal` (a key's holder or a
    /// calling agent), audited as `chain`; anything but allow refuses.
    pub(crate) async fn decide_invoke(
        &self,
        tenant: &roster_core::TenantId,
        principal: roster_policy::Actor<'_>,
        agent: &Agent,
        user: &str,
        chain: &str,
        at: serde_json::Value,
    ) -> Result<(), RuntimeError> {
        let request = PolicyRequest {
            tenant: tenant.as_str(),
            actor: principal,
            action: roster_policy::Action::InvokeAgent,
            resource: Resource::Agent { name: &agent.name },
            user,
            arguments: None,
            facts: None,
        };
        let decision = self
            .governance()
            .decide(
                tenant,
                &request,
                crate::governance::Subject {
                    actor: chain,
                    resource: &format!("agent:{}", agent.name),
                    at,
                },
            )
            .await?;
        match decision {
            Decision::Allow { .. } => Ok(()),
            Decision::Deny { reason, .. } => Err(RuntimeError::Denied(reason)),
            Decision::NeedsApproval { reason, .. } => Err(RuntimeError::Denied(format!(
                "{reason}: approval applies to tool calls, not to invoking an agent"
            ))),
        }
    }

    /// What the front door decides for a person's message, for a run a
    /// key's standing order starts (a schedule's firing, a trigger's
    /// delivery): the key still valid, the session (if named) one it may
    /// see, the agent live, `invoke_agent` allowed (decided and audited as
    /// `chain`). `Ok(user new sessions work for)`, or why not.
    pub(crate) async fn may_act_for(
        &self,
        tenant: &roster_core::TenantId,
        key_id: &roster_core::KeyId,
        agent: &roster_core::AgentId,
        session: Option<&SessionId>,
        chain: &str,
        at: serde_json::Value,
    ) -> Result<Result<Option<String>, Refusal>, RuntimeError> {
        let store = self.store();
        let gone = |why: &str| {
            Ok(Err(Refusal {
                reason: why.to_owned(),
                lasting: true,
            }))
        };
        let Some(key) = store.key_info(tenant, key_id).await? else {
            return gone("the key that made it no longer exists");
        };
        if key.revoked_at.is_some() {
            return gone("the key that made it was revoked");
        }
        if key.expires_at.is_some_and(|t| t <= chrono::Utc::now()) {
            return gone("the key that made it has expired");
        }
        let actor = Actor {
            tenant: tenant.clone(),
            key_id: key.id.clone(),
            key_name: key.name.clone(),
            kind: key.kind.clone(),
            is_admin: key.is_admin,
            scopes: key.scopes.clone(),
            user: key.user.clone(),
            act_for: key.act_for.clone(),
        };
        let session = match session {
            Some(id) => match self.session_for(&actor, id).await {
                Ok(session) => Some(session),
                Err(RuntimeError::NotFound(_)) => return gone("its session no longer exists"),
                Err(e) => return Err(e),
            },
            None => None,
        };
        let Some(agent) = store
            .get_agent(tenant, &AgentRef::Id(agent.clone()))
            .await?
        else {
            return gone("its agent was deleted");
        };
        let user = match &session {
            Some(s) => s.user.clone(),
            None => actor.bound_user().map(str::to_owned),
        };
        let decided_as = user.clone().unwrap_or_else(|| actor.key_name.clone());
        match self
            .decide_invoke(
                tenant,
                roster_policy::Actor::User {
                    id: actor.key_id.as_str(),
                    name: &actor.key_name,
                    kind: &actor.kind,
                },
                &agent,
                &decided_as,
                chain,
                at,
            )
            .await
        {
            Ok(()) => Ok(Ok(user)),
            // A policy may change: the next time is decided again.
            Err(RuntimeError::Denied(reason)) => Ok(Err(Refusal {
                reason,
                lasting: false,
            })),
            Err(e) => Err(e),
        }
    }
}

/// Why a standing order's run may not start.
pub(crate) struct Refusal {
    pub(crate) reason: String,
    /// It will not pass by itself (the key or agent is gone).
    pub(crate) lasting: bool,
}
