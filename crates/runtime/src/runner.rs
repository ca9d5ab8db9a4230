//! The runner: executes one run by asking the state machine what to do,
//! doing it, and journaling the result before asking again.
//!
//! Resumption after a crash is the same code path: the machine is rebuilt by
//! replaying the completed steps, so a completed model call is never re-sent
//! and a completed tool call never re-run. A tool step found `started` but not
//! completed is re-run only if its tool is idempotent; otherwise it gets an
//! `interrupted` error result the model can see.

use crate::context::{history, system_prompt, MAX_CONTEXT_ITEMS};
use crate::error::RuntimeError;
use crate::scheduler::Inner;
use crate::tools::{truncate_output, ToolCallContext, ToolKind};
use crate::LiveEvent;
use roster_core::agent::Agent;
use roster_core::event::RunEvent;
use roster_core::item::{ItemContent, ToolCall};
use roster_core::ledger::NewLedgerEntry;
use roster_core::machine::{replay, Action, ModelReply, RunMachine, StepOutput, ToolOutcome};
use roster_core::run::{Run, RunError, RunStatus, StepKind, StepStatus};
use roster_core::TenantId;
use roster_models::{Attempt, ChatRequest, ToolSpec};
use roster_store::{BlockWrite, JournalWrite, RunTransition, Session, StepWrite, StoreError};
use serde_json::json;
use std::collections::HashMap;
use std::sync::Mutex;
use tokio_util::sync::CancellationToken;

struct RunState<'a> {
    inner: &'a Inner,
    tenant: &'a TenantId,
    run: Run,
    session: Session,
    agent: Agent,
    machine: RunMachine,
    next_step: i64,
    /// Tool steps found started after a crash, to re-run under the same number.
    resumed: HashMap<String, i64>,
    /// Ledger rows of failed attempts waiting for the next commit.
    pending_ledger: Vec<NewLedgerEntry>,
    cancel: CancellationToken,
}

pub(crate) async fn execute(
    inner: &Inner,
    tenant: &TenantId,
    run: Run,
    cancel: CancellationToken,
) -> Result<(), RuntimeError> {
    let store = &inner.store;
    let session = store
        .get_session(tenant, &run.session_id)
        .await?
        .ok_or(RuntimeError::NotFound("session"))?;
    let agent = store
        .get_agent_version(tenant, &session.agent_id, run.agent_version)
        .await?;
    let Some(agent) = agent else {
        return finish_without_agent(inner, tenant, &run).await;
    };
    if run.status == RunStatus::Queued {
        let mut start = JournalWrite::new(run.id.clone(), run.session_id.clone());
        start.transition = Some(RunTransition::Start);
        match store.commit(tenant, start).await {
            Ok(committed) => inner.publish(&run.id, &committed.events),
            // Cancelled while queued.
            Err(StoreError::Conflict(_)) => return Ok(()),
            Err(e) => return Err(e.into()),
        }
    }
    let steps = store.list_steps(tenant, &run.id).await?;
    let completed: Vec<StepOutput> = steps
        .iter()
        .filter(|s| s.status == StepStatus::Completed)
        .filter_map(|s| s.output.clone())
        .map(serde_json::from_value)
        .collect::<Result<_, _>>()
        .map_err(|e| StoreError::Corrupt(format!("journal of run {}: {e}", run.id)))?;
    let machine = replay(agent.config.max_steps, &completed);
    let next_step = steps.last().map_or(1, |s| s.n + 1);
    let mut state = RunState {
        inner,
        tenant,
        run,
        session,
        agent,
        machine,
        next_step,
        resumed: HashMap::new(),
        pending_ledger: Vec::new(),
        cancel,
    };
    for step in steps
        .iter()
        .filter(|s| s.status == StepStatus::Started && s.kind == StepKind::ToolCall)
    {
        state.resolve_interrupted(step.n, &step.input).await?;
    }
    state.drive().await
}

impl RunState<'_> {
    async fn drive(&mut self) -> Result<(), RuntimeError> {
        loop {
            if self.cancel.is_cancelled() {
                return self.finish(RunStatus::Cancelled, None, None).await;
            }
            match self.machine.next_action() {
                Action::CallModel => self.model_step().await?,
                Action::CallTools(calls) => self.tool_steps(calls).await?,
                Action::Complete(output) => {
                    return self.finish(RunStatus::Completed, Some(output), None).await
                }
                Action::Fail(error) => {
                    return self.finish(RunStatus::Failed, None, Some(error)).await
                }
            }
        }
    }

    fn journal(&self) -> JournalWrite {
        JournalWrite::new(self.run.id.clone(), self.run.session_id.clone())
    }

    async fn commit(&mut self, mut write: JournalWrite) -> Result<(), RuntimeError> {
        write.ledger.append(&mut self.pending_ledger);
        let committed = self.inner.store.commit(self.tenant, write).await?;
        self.inner.publish(&self.run.id, &committed.events);
        Ok(())
    }

    fn ledger_entry(&self, attempt: &Attempt, step: i64) -> NewLedgerEntry {
        let usage = attempt.usage.unwrap_or_default();
        NewLedgerEntry {
            provider: attempt.provider.clone(),
            model: attempt.model.clone(),
            tokens_in: i64::from(usage.input_tokens),
            tokens_out: i64::from(usage.output_tokens),
            latency_ms: i64::try_from(attempt.latency.as_millis()).unwrap_or(i64::MAX),
            outcome: attempt.error.as_ref().map_or("ok", |e| e.code()).to_owned(),
            error: attempt.error.as_ref().map(ToString::to_string),
            agent_id: Some(self.agent.id.to_string()),
            session_id: Some(self.session.id.to_string()),
            run_id: Some(self.run.id.to_string()),
            step: Some(step),
        }
    }

    fn tool_specs(&self) -> Vec<ToolSpec> {
        let registry = &self.inner.tools;
        self.agent
            .config
            .tools
            .iter()
            .filter_map(|name| registry.get(name))
            .map(|t| t.spec.clone())
            .collect()
    }

    async fn model_step(&mut self) -> Result<(), RuntimeError> {
        let n = self.next_step;
        let store = &self.inner.store;
        let route = match self.agent.config.route() {
            Ok(route) => route,
            Err(e) => {
                self.machine
                    .on_model_failure(RunError::new("invalid_route", e.to_string()));
                return Ok(());
            }
        };
        let blocks = store
            .list_memory_blocks(self.tenant, &self.agent.id)
            .await?;
        let system = system_prompt(&self.agent.config.instructions, &blocks);
        let tools = self.tool_specs();
        let tail = store
            .tail_items(self.tenant, &self.session.id, MAX_CONTEXT_ITEMS)
            .await?;
        let messages = history(&tail, self.agent.config.context_tokens, &system, &tools);
        let context_items = messages.len();
        let request = ChatRequest {
            model: String::new(),
            system,
            messages,
            tools,
            max_tokens: None,
            stream: true,
        };

        let attempts: Mutex<Vec<Attempt>> = Mutex::new(Vec::new());
        let bus = &self.inner.bus;
        let run_id = self.run.id.clone();
        let on_text = |delta: &str| {
            bus.publish(
                &run_id,
                LiveEvent {
                    seq: None,
                    event: RunEvent::TextDelta {
                        step: n,
                        delta: delta.to_owned(),
                    },
                },
            );
        };
        let on_attempt = |a: Attempt| attempts.lock().unwrap_or_else(|p| p.into_inner()).push(a);
        let outcome = tokio::select! {
            result = self.inner.router.chat(&route, request, &on_text, &on_attempt) => Some(result),
            () = self.cancel.cancelled() => None,
        };
        let attempts = attempts.into_inner().unwrap_or_else(|p| p.into_inner());
        let ledger: Vec<NewLedgerEntry> =
            attempts.iter().map(|a| self.ledger_entry(a, n)).collect();
        match outcome {
            None => {
                self.pending_ledger.extend(ledger);
                Ok(())
            }
            Some(Err(error)) => {
                self.pending_ledger.extend(ledger);
                self.machine
                    .on_model_failure(RunError::new(error.code(), error.to_string()));
                Ok(())
            }
            Some(Ok((response, target))) => {
                let reply = ModelReply {
                    text: response.text,
                    tool_calls: unique_call_ids(response.tool_calls, n),
                    route: target.to_string(),
                };
                let mut write = self.journal();
                write.step = Some(StepWrite::Completed {
                    n,
                    kind: StepKind::ModelCall,
                    input: json!({ "route": target.to_string(), "context_items": context_items }),
                    output: serde_json::to_value(StepOutput::ModelCall(reply.clone()))
                        .map_err(|e| RuntimeError::Invalid(e.to_string()))?,
                });
                write.events = reply
                    .tool_calls
                    .iter()
                    .map(|c| RunEvent::ToolCall {
                        step: n,
                        call_id: c.id.clone(),
                        name: c.name.clone(),
                        arguments: c.arguments.clone(),
                    })
                    .collect();
                write.items = vec![ItemContent::AssistantMessage {
                    text: reply.text.clone(),
                    tool_calls: reply.tool_calls.clone(),
                }];
                write.ledger = ledger;
                self.commit(write).await?;
                self.machine.on_model_reply(&reply);
                self.next_step += 1;
                Ok(())
            }
        }
    }

    async fn tool_steps(&mut self, calls: Vec<ToolCall>) -> Result<(), RuntimeError> {
        let mut numbered = Vec::with_capacity(calls.len());
        for call in calls {
            let n = match self.resumed.remove(&call.id) {
                Some(n) => n,
                None => {
                    self.next_step += 1;
                    self.next_step - 1
                }
            };
            numbered.push((n, call));
        }
        let this = &*self;
        let results =
            futures::future::join_all(numbered.iter().map(|(n, call)| this.tool_step(*n, call)))
                .await;
        for result in results {
            if let Some(outcome) = result? {
                self.machine.on_tool_outcome(&outcome);
            }
        }
        Ok(())
    }

    /// Runs one tool call and journals its result; `None` when cancelled.
    async fn tool_step(
        &self,
        n: i64,
        call: &ToolCall,
    ) -> Result<Option<ToolOutcome>, RuntimeError> {
        let allowed = self.agent.config.tools.iter().any(|t| t == &call.name);
        let tool = self.inner.tools.get(&call.name).filter(|_| allowed);
        let arguments = parse_arguments(&call.arguments);
        let (text, is_error, block_write) = match (tool, arguments) {
            (None, _) => (
                format!(
                    "unknown tool `{}`; available tools: {}",
                    call.name,
                    self.agent.config.tools.join(", ")
                ),
                true,
                None,
            ),
            (Some(_), Err(message)) => (message, true, None),
            (Some(tool), Ok(arguments)) => match &tool.kind {
                ToolKind::Memory(memory) => match memory.parse(arguments) {
                    Err(message) => (message, true, None),
                    Ok(edit) => return self.memory_step(n, call, edit).await.map(Some),
                },
                ToolKind::External(external) => {
                    if !self.started_already(n) {
                        let mut started = self.journal();
                        started.step = Some(StepWrite::Started {
                            n,
                            kind: StepKind::ToolCall,
                            input: json!({ "call": call }),
                        });
                        let committed = self.inner.store.commit(self.tenant, started).await?;
                        self.inner.publish(&self.run.id, &committed.events);
                    }
                    let ctx = self.call_context();
                    let output = tokio::select! {
                        out = tokio::time::timeout(external.timeout(), external.call(&ctx, arguments)) => out,
                        () = self.cancel.cancelled() => return Ok(None),
                    };
                    match output {
                        Ok(out) => (
                            truncate_output(out.text, external.max_output_bytes()),
                            out.is_error,
                            None,
                        ),
                        Err(_) => (
                            format!(
                                "tool `{}` timed out after {:?}",
                                call.name,
                                external.timeout()
                            ),
                            true,
                            None,
                        ),
                    }
                }
            },
        };
        let outcome = ToolOutcome {
            call_id: call.id.clone(),
            name: call.name.clone(),
            output: text,
            is_error,
        };
        self.commit_tool_result(n, call, &outcome, block_write)
            .await?;
        Ok(Some(outcome))
    }

    fn started_already(&self, _n: i64) -> bool {
        false
    }

    fn call_context(&self) -> ToolCallContext {
        ToolCallContext {
            tenant: self.tenant.clone(),
            agent_id: self.agent.id.clone(),
            session_id: self.session.id.clone(),
            run_id: self.run.id.clone(),
        }
    }

    async fn commit_tool_result(
        &self,
        n: i64,
        call: &ToolCall,
        outcome: &ToolOutcome,
        block: Option<BlockWrite>,
    ) -> Result<(), StoreError> {
        let mut write = self.journal();
        write.step = Some(StepWrite::Completed {
            n,
            kind: StepKind::ToolCall,
            input: json!({ "call": call }),
            output: serde_json::to_value(StepOutput::ToolCall(outcome.clone()))
                .map_err(|e| StoreError::Corrupt(e.to_string()))?,
        });
        write.events = vec![RunEvent::ToolResult {
            step: n,
            call_id: call.id.clone(),
            name: call.name.clone(),
            output: outcome.output.clone(),
            is_error: outcome.is_error,
        }];
        write.items = vec![ItemContent::ToolResult {
            call_id: call.id.clone(),
            name: call.name.clone(),
            output: outcome.output.clone(),
            is_error: outcome.is_error,
        }];
        write.block_write = block;
        let committed = self.inner.store.commit(self.tenant, write).await?;
        self.inner.publish(&self.run.id, &committed.events);
        Ok(())
    }

    /// Applies a memory edit and its result in one commit, retrying when a
    /// concurrent run of the same agent changed the block first.
    async fn memory_step(
        &self,
        n: i64,
        call: &ToolCall,
        edit: roster_core::memory::BlockEdit,
    ) -> Result<ToolOutcome, RuntimeError> {
        const ATTEMPTS: usize = 8;
        for _ in 0..ATTEMPTS {
            let blocks = self
                .inner
                .store
                .list_memory_blocks(self.tenant, &self.agent.id)
                .await?;
            let outcome = |output: String, is_error| ToolOutcome {
                call_id: call.id.clone(),
                name: call.name.clone(),
                output,
                is_error,
            };
            let Some(block) = blocks.iter().find(|b| b.label == edit.label()) else {
                let labels: Vec<&str> = blocks.iter().map(|b| b.label.as_str()).collect();
                let result = outcome(
                    format!(
                        "no memory block `{}`; blocks: {}",
                        edit.label(),
                        labels.join(", ")
                    ),
                    true,
                );
                self.commit_tool_result(n, call, &result, None).await?;
                return Ok(result);
            };
            let value = match edit.apply(&block.value, block.limit) {
                Ok(value) => value,
                Err(message) => {
                    let result = outcome(message, true);
                    self.commit_tool_result(n, call, &result, None).await?;
                    return Ok(result);
                }
            };
            let result = outcome(
                format!(
                    "block `{}` updated (version {})",
                    block.label,
                    block.version + 1
                ),
                false,
            );
            let write = BlockWrite {
                agent_id: self.agent.id.clone(),
                label: block.label.clone(),
                expected_version: block.version,
                value,
                operation: edit.operation().to_owned(),
                principal: format!("agent:{}", self.agent.id),
            };
            match self.commit_tool_result(n, call, &result, Some(write)).await {
                Ok(()) => return Ok(result),
                Err(StoreError::Conflict(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(RuntimeError::Invalid(format!(
            "memory block `{}` kept changing; gave up after {ATTEMPTS} tries",
            edit.label()
        )))
    }

    /// A tool step that was started but never completed: the process died
    /// while the tool ran. Re-run it only if that is safe.
    async fn resolve_interrupted(
        &mut self,
        n: i64,
        input: &serde_json::Value,
    ) -> Result<(), RuntimeError> {
        let call: ToolCall = serde_json::from_value(input["call"].clone()).map_err(|e| {
            StoreError::Corrupt(format!("started step {n} of run {}: {e}", self.run.id))
        })?;
        let idempotent = matches!(self.inner.tools.get(&call.name).map(|t| &t.kind), Some(ToolKind::External(t)) if t.idempotent());
        if idempotent {
            self.resumed.insert(call.id.clone(), n);
            return Ok(());
        }
        let outcome = ToolOutcome {
            call_id: call.id.clone(),
            name: call.name.clone(),
            output: format!(
                "interrupted: the runtime stopped while `{}` was running, and it was not retried because it is not idempotent; its effect is unknown",
                call.name
            ),
            is_error: true,
        };
        self.commit_tool_result(n, &call, &outcome, None).await?;
        self.machine.on_tool_outcome(&outcome);
        Ok(())
    }

    async fn finish(
        &mut self,
        status: RunStatus,
        output: Option<String>,
        error: Option<RunError>,
    ) -> Result<(), RuntimeError> {
        let mut write = self.journal();
        let reason = match status {
            RunStatus::Cancelled => "the run was cancelled",
            _ => "the run stopped",
        };
        write.items = self
            .machine
            .dangling_calls()
            .into_iter()
            .map(|call| ItemContent::ToolResult {
                call_id: call.id,
                name: call.name,
                output: format!("not executed: {reason} before this call completed"),
                is_error: true,
            })
            .collect();
        write.transition = Some(RunTransition::Finish {
            status,
            output,
            error,
        });
        self.commit(write).await
    }
}

/// Models sometimes repeat or omit call ids; results are matched by id, so
/// every call of a reply gets a unique one.
fn unique_call_ids(calls: Vec<ToolCall>, step: i64) -> Vec<ToolCall> {
    let mut seen = std::collections::HashSet::new();
    calls
        .into_iter()
        .enumerate()
        .map(|(i, mut call)| {
            if call.id.trim().is_empty() || !seen.insert(call.id.clone()) {
                call.id = format!("call_{step}_{i}");
                seen.insert(call.id.clone());
            }
            call
        })
        .collect()
}

fn parse_arguments(raw: &str) -> Result<serde_json::Value, String> {
    if raw.trim().is_empty() {
        return Ok(json!({}));
    }
    match serde_json::from_str::<serde_json::Value>(raw) {
        Ok(value @ serde_json::Value::Object(_)) => Ok(value),
        Ok(_) => Err("tool arguments must be a JSON object".into()),
        Err(e) => Err(format!("tool arguments are not valid JSON ({e}); send a JSON object matching the tool's schema")),
    }
}

async fn finish_without_agent(
    inner: &Inner,
    tenant: &TenantId,
    run: &Run,
) -> Result<(), RuntimeError> {
    let mut write = JournalWrite::new(run.id.clone(), run.session_id.clone());
    write.transition = Some(RunTransition::Finish {
        status: RunStatus::Failed,
        output: None,
        error: Some(RunError::new(
            "agent_not_found",
            "the agent version this session is pinned to no longer exists",
        )),
    });
    let committed = inner.store.commit(tenant, write).await?;
    inner.publish(&run.id, &committed.events);
    Ok(())
}
