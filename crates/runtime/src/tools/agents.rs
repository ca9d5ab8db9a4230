//! Other agents as tools. An agent whose tools list `agent:researcher` gets
//! `ask_researcher {input}`, which runs the researcher in a delegate session
//! (one per caller session and callee, so it keeps its context across
//! calls) and returns its final answer, and `hand_off {agent, task}`, which
//! starts a task and returns at once; the task's result arrives in the
//! caller's session as a new input. Both go through [`Runtime::delegate`].
//!
//! They are external tools to the runner (journaled `started` before the
//! call) and idempotent: a retried call finds the child run it started.

use crate::delegation::Delegation;
use crate::scheduler::{Runtime, Scheduler};
use crate::RuntimeError;
use async_trait::async_trait;
use roster_core::delegation::{ask_tool_name, AGENT_SCHEME, HAND_OFF_TOOL};
use roster_core::run::{Run, RunStatus};
use roster_core::TenantId;
use roster_store::AgentRef;
use roster_tool::{
    DynTool, ProviderError, ResolvedEntries, Tool, ToolCallContext, ToolOutput, ToolProvider,
};
use serde_json::{json, Value};
use std::sync::{Arc, Weak};
use std::time::Duration;

/// How long a caller waits for a callee's answer. Long, because the callee
/// may wait for a person's approval; the callee's own limits (steps,
/// approval expiry) end it sooner.
const CALL_TIMEOUT: Duration = Duration::from_secs(24 * 60 * 60);
/// Longest description of a callee taken from its instructions.
const DESCRIPTION_CHARS: usize = 300;

/// The provider of `agent:NAME` entries.
pub struct AgentTools {
    scheduler: Weak<Scheduler>,
}

impl AgentTools {
    pub(crate) fn new(scheduler: Weak<Scheduler>) -> Self {
        Self { scheduler }
    }

    fn runtime(&self) -> Result<Runtime, ProviderError> {
        self.scheduler
            .upgrade()
            .map(|inner| Runtime { inner })
            .ok_or_else(|| ProviderError::Unavailable("the runtime is stopping".into()))
    }

    async fn callee(
        &self,
        tenant: &TenantId,
        name: &str,
    ) -> Result<roster_core::agent::Agent, ProviderError> {
        roster_core::agent::validate_agent_name(name)
            .map_err(|e| ProviderError::Unknown(format!("agent name: {}", e.message)))?;
        self.runtime()?
            .store()
            .get_agent(tenant, &AgentRef::Name(name.to_owned()))
            .await
            .map_err(|e| ProviderError::Unavailable(e.to_string()))?
            .ok_or_else(|| ProviderError::Unknown(format!("there is no agent named `{name}`")))
    }
}

#[async_trait]
impl ToolProvider for AgentTools {
    fn scheme(&self) -> &str {
        AGENT_SCHEME
    }

    async fn check(&self, tenant: &TenantId, entry: &str) -> Result<(), ProviderError> {
        self.callee(tenant, entry).await.map(|_| ())
    }

    async fn resolve(&self, tenant: &TenantId, entry: &str) -> Result<Vec<DynTool>, ProviderError> {
        let entries = [entry.to_owned()];
        let mut resolved = self.resolve_all(tenant, &entries).await;
        match resolved.failed.pop() {
            Some((_, e)) => Err(e),
            None => Ok(resolved.tools),
        }
    }

    async fn resolve_all(&self, tenant: &TenantId, entries: &[String]) -> ResolvedEntries {
        let mut out = ResolvedEntries::default();
        let mut callees = Vec::new();
        for entry in entries {
            match self.callee(tenant, entry).await {
                Ok(agent) => callees.push(agent),
                Err(e) => out.failed.push((entry.clone(), e)),
            }
        }
        if callees.is_empty() {
            return out;
        }
        let names: Vec<String> = callees.iter().map(|a| a.name.clone()).collect();
        for agent in callees {
            out.tools.push(Arc::new(AskAgent {
                name: ask_tool_name(&agent.name),
                description: format!(
                    "Ask agent `{}` and wait for its answer. It remembers what you asked it earlier in this conversation. About it: {}",
                    agent.name,
                    about(&agent)
                ),
                callee: agent.name,
                scheduler: self.scheduler.clone(),
            }));
        }
        out.tools.push(Arc::new(HandOff {
            callees: names,
            scheduler: self.scheduler.clone(),
        }));
        out
    }
}

/// What the model is told about a callee: its description, or the start of
/// its instructions.
fn about(agent: &roster_core::agent::Agent) -> String {
    let text = if agent.config.description.trim().is_empty() {
        agent.config.instructions.trim()
    } else {
        agent.config.description.trim()
    };
    if text.is_empty() {
        return "(no description)".to_owned();
    }
    let mut cut: String = text.chars().take(DESCRIPTION_CHARS).collect();
    if cut.len() < text.len() {
        cut.push('…');
    }
    cut
}

fn runtime_of(scheduler: &Weak<Scheduler>) -> Option<Runtime> {
    scheduler.upgrade().map(|inner| Runtime { inner })
}

/// A refusal or failure, in words the caller's model can act on.
fn refusal(callee: &str, e: &RuntimeError) -> ToolOutput {
    ToolOutput::error(match e {
        RuntimeError::Denied(reason) => format!("not allowed to ask `{callee}`: {reason}"),
        RuntimeError::Invalid(reason) => reason.clone(),
        RuntimeError::AgentDeleted => "your own agent was deleted".to_owned(),
        other => format!("could not start agent `{callee}`: {other}"),
    })
}

/// `ask_NAME {input}`.
struct AskAgent {
    name: String,
    description: String,
    callee: String,
    scheduler: Weak<Scheduler>,
}

#[async_trait]
impl Tool for AskAgent {
    fn name(&self) -> &str {
        &self.name
    }

    fn description(&self) -> &str {
        &self.description
    }

    fn parameters(&self) -> Value {
        json!({
            "type": "object",
            "properties": {
                "input": {
                    "type": "string",
                    "description": "What you ask of it, with everything it needs to know."
                }
            },
            "required": ["input"],
            "additionalProperties": false
        })
    }

    fn idempotent(&self) -> bool {
        true
    }

    fn timeout(&self) -> Duration {
        CALL_TIMEOUT
    }

    fn policy_kind(&self) -> &str {
        AGENT_SCHEME
    }

    fn policy_server(&self) -> &str {
        &self.callee
    }

    async fn call(&self, ctx: &ToolCallContext, arguments: Value) -> ToolOutput {
        let Some(runtime) = runtime_of(&self.scheduler) else {
            return ToolOutput::error("the runtime is stopping");
        };
        let input = arguments
            .get("input")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let child = match runtime
            .delegate(Delegation {
                call: ctx,
                callee: &self.callee,
                input,
                hand_off: false,
            })
            .await
        {
            Ok(run) => run,
            Err(e) => return refusal(&self.callee, &e),
        };
        match finished(&runtime, &ctx.tenant, &child).await {
            Ok(run) => answer(&self.callee, &run),
            Err(e) => ToolOutput::error(format!("lost track of agent `{}`: {e}", self.callee)),
        }
    }
}

/// Waits for a child run to end, however long (the caller's timeout and
/// cancellation bound it).
async fn finished(runtime: &Runtime, tenant: &TenantId, run: &Run) -> Result<Run, RuntimeError> {
    let mut run = run.clone();
    while !run.status.is_finished() {
        run = runtime
            .wait(tenant, &run.id, Duration::from_secs(60 * 60))
            .await?;
    }
    Ok(run)
}

fn answer(callee: &str, run: &Run) -> ToolOutput {
    match run.status {
        RunStatus::Completed => ToolOutput::ok(run.output.clone().unwrap_or_default()),
        RunStatus::Failed => ToolOutput::error(format!(
            "agent `{callee}` failed (run {}): {}",
            run.id,
            run.error
                .as_ref()
                .map_or("no reason given", |e| e.message.as_str())
        )),
        _ => ToolOutput::error(format!(
            "agent `{callee}`'s run {} was cancelled before it answered",
            run.id
        )),
    }
}

/// `hand_off {agent, task}`.
struct HandOff {
    callees: Vec<String>,
    scheduler: Weak<Scheduler>,
}

#[async_trait]
impl Tool for HandOff {
    fn name(&self) -> &str {
        HAND_OFF_TOOL
    }

    fn description(&self) -> &str {
        "Hand a task to another agent and go on without waiting. Its result arrives later in this conversation as a new message that starts with [hand-off result]."
    }

    fn parameters(&self) -> Value {
        json!({
            "type": "object",
            "properties": {
                "agent": {"type": "string", "enum": self.callees, "description": "The agent to hand the task to."},
                "task": {"type": "string", "description": "The task, with everything the agent needs to know."}
            },
            "required": ["agent", "task"],
            "additionalProperties": false
        })
    }

    fn idempotent(&self) -> bool {
        true
    }

    fn policy_kind(&self) -> &str {
        AGENT_SCHEME
    }

    async fn call(&self, ctx: &ToolCallContext, arguments: Value) -> ToolOutput {
        let Some(runtime) = runtime_of(&self.scheduler) else {
            return ToolOutput::error("the runtime is stopping");
        };
        let agent = arguments
            .get("agent")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if !self.callees.iter().any(|c| c == agent) {
            return ToolOutput::error(format!(
                "you can hand tasks only to: {}",
                self.callees.join(", ")
            ));
        }
        let task = arguments
            .get("task")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        match runtime
            .delegate(Delegation {
                call: ctx,
                callee: agent,
                input: task,
                hand_off: true,
            })
            .await
        {
            Ok(run) => ToolOutput::ok(format!(
                "Handed off to `{agent}` as run {}. Its result will arrive in this conversation as a new message when it is done; do not wait for it.",
                run.id
            )),
            Err(e) => refusal(agent, &e),
        }
    }
}
