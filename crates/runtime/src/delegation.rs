//! The front door for runs one agent's run starts for another agent: a
//! synchronous call (`ask_NAME`) or a hand-off (`hand_off`). It decides
//! what [`Runtime::start_run`] decides for a person — a live agent, the
//! `invoke_agent` decision (the caller agent is the principal) with its
//! audit, idempotency, submission — plus what only delegation has: the
//! depth and fan-out limits, the delegate session, and the actor chain.
//!
//! Exactly once: the child run's idempotency key is the caller's tool call
//! (`call:{run}:{call id}`), looked up under the caller's run before anything
//! else. A caller that crashed mid-call retries the call (the agent tools
//! are idempotent) and finds the child it started, still running or done.

use crate::error::RuntimeError;
use crate::scheduler::{Runtime, Submission};
use roster_core::agent::Agent;
use roster_core::run::Run;
use roster_core::{SessionId, TenantId};
use roster_store::{AgentRef, BusyPolicy, CreatedRun, RunParent, StoreError};
use roster_tool::ToolCallContext;

/// One delegation, as the caller's tool call asks for it.
pub struct Delegation<'a> {
    pub call: &'a ToolCallContext,
    /// The callee agent's name.
    pub callee: &'a str,
    pub input: String,
    /// A hand-off: its own session, and its result delivered to the
    /// caller's session as a new input when it ends.
    pub hand_off: bool,
}

impl Runtime {
    /// Starts (or finds, for a retried call) the child run a tool call
    /// asks for. Every refusal is an error the caller's model reads.
    pub async fn delegate(&self, d: Delegation<'_>) -> Result<Run, RuntimeError> {
        let tenant = &d.call.tenant;
        let store = self.store();
        let key = format!("call:{}:{}", d.call.run_id, d.call.call_id);
        if let Some(existing) = store.find_child_run(tenant, &d.call.run_id, &key).await? {
            return Ok(existing);
        }
        let parent = store
            .get_run(tenant, &d.call.run_id)
            .await?
            .ok_or(RuntimeError::NotFound("run"))?;
        let caller = store
            .get_agent(tenant, &AgentRef::Id(d.call.agent_id.clone()))
            .await?
            .ok_or(RuntimeError::AgentDeleted)?;
        let limits = self.inner.services.delegation;
        let depth = parent.depth + 1;
        if depth > limits.max_depth {
            return Err(RuntimeError::Denied(format!(
                "delegation refused: this run is already {} hop(s) from where the work started, the most allowed is {}; answer with what you have",
                parent.depth, limits.max_depth
            )));
        }
        let callee = store
            .get_agent(tenant, &AgentRef::Name(d.callee.to_owned()))
            .await?
            .ok_or_else(|| {
                RuntimeError::Invalid(format!("there is no agent named `{}`", d.callee))
            })?;
        let chain = format!(
            "{} > agent:{}",
            parent.actor.as_deref().unwrap_or("unknown"),
            caller.name
        );
        self.may_delegate(tenant, &caller, &callee, &chain, &d.call.session_id)
            .await?;
        let session = if d.hand_off {
            let user = self
                .store()
                .get_session(tenant, &d.call.session_id)
                .await?
                .and_then(|s| s.user);
            store
                .create_session_for(tenant, &callee.id, callee.version, user.as_deref())
                .await?
        } else {
            store
                .delegate_session(tenant, &d.call.session_id, &callee.id, callee.version)
                .await?
        };
        let created = self
            .submit(
                tenant,
                &session.id,
                Submission {
                    turn: Default::default(),
                    input: d.input,
                    idempotency_key: Some(key),
                    if_busy: BusyPolicy::Queue,
                    actor: Some(chain),
                    parent: Some(RunParent {
                        run_id: parent.id.clone(),
                        depth,
                        deliver_to: d.hand_off.then(|| d.call.session_id.clone()),
                        max_siblings: Some(limits.max_children),
                        caller_waits: !d.hand_off,
                    }),
                    notify: Vec::new(),
                },
            )
            .await
            .map_err(|e| match e {
                RuntimeError::Store(StoreError::LimitReached(why)) => {
                    RuntimeError::Denied(format!("delegation refused: {why}"))
                }
                other => other,
            })?;
        Ok(match created {
            CreatedRun::Created(run) | CreatedRun::Existing(run) => run,
        })
    }

    /// `invoke_agent` with the calling agent as the principal, decided and
    /// audited like a person's.
    async fn may_delegate(
        &self,
        tenant: &TenantId,
        caller: &Agent,
        callee: &Agent,
        chain: &str,
        session: &SessionId,
    ) -> Result<(), RuntimeError> {
        let user = self
            .store()
            .get_session(tenant, session)
            .await?
            .and_then(|s| s.user)
            .unwrap_or_default();
        self.decide_invoke(
            tenant,
            roster_policy::Actor::Agent { name: &caller.name },
            callee,
            &user,
            chain,
            serde_json::json!({ "session": session }),
        )
        .await
    }
}
