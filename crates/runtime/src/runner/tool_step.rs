//! Tool steps: executing a batch of tool calls, journaling each result, the
//! memory tools' versioned edits, and tool steps a crash interrupted.

use super::RunState;
use crate::error::RuntimeError;
use crate::tools::{truncate_output, ToolCallContext, ToolKind};
use roster_core::event::RunEvent;
use roster_core::item::{ItemContent, ToolCall};
use roster_core::machine::{StepOutput, ToolOutcome};
use roster_core::run::StepKind;
use roster_store::{BlockWrite, MemoryWrite, StepWrite, StoreError};
use serde_json::json;

/// Tool calls with arguments that fail their schema allowed in one run.
pub(crate) const MAX_INVALID_CALLS: u32 = 3;

/// Tries of a memory edit that keeps losing its version check.
const ATTEMPTS: usize = 8;
/// Attempts of an edit of a shared block (see `memory_step`).
const SHARED_ATTEMPTS: usize = 64;

impl RunState<'_> {
    pub(super) async fn tool_steps(&mut self, calls: Vec<ToolCall>) -> Result<(), RuntimeError> {
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
        // Every journaled outcome reaches the machine, even if a sibling failed.
        let mut first_error = None;
        for result in results {
            match result {
                Ok(Some(outcome)) => self.machine.on_tool_outcome(&outcome),
                // Paused for approval: no outcome until a human decides.
                Ok(None) => {}
                Err(e) => first_error = first_error.or(Some(e)),
            }
        }
        let pauses = std::mem::take(
            &mut *self
                .pauses
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        let rewait = self
            .rewait
            .swap(false, std::sync::atomic::Ordering::Relaxed);
        if (!pauses.is_empty() || rewait) && first_error.is_none() {
            self.await_approval(pauses).await?;
        }
        if self
            .invalid_calls
            .load(std::sync::atomic::Ordering::Relaxed)
            >= MAX_INVALID_CALLS
        {
            self.machine
                .on_model_failure(roster_core::run::RunError::new(
                    "invalid_tool_arguments",
                    format!(
                        "the model called tools with invalid arguments {MAX_INVALID_CALLS} times"
                    ),
                ));
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Runs one tool call and journals its result (an error result when the
    /// run is cancelled while the tool runs).
    /// Journals the run's move to `awaiting_approval` with its requests;
    /// the runner stops here until a decision resumes the run.
    async fn await_approval(
        &mut self,
        pauses: Vec<(ToolCall, roster_store::NewApproval)>,
    ) -> Result<(), RuntimeError> {
        let mut write = self.journal();
        write.transition = Some(roster_store::RunTransition::AwaitApproval);
        write.events = pauses
            .iter()
            .map(|(call, approval)| RunEvent::ApprovalRequested {
                step: approval.step,
                call_id: call.id.clone(),
                name: call.name.clone(),
                approval: approval.id.clone(),
                reason: approval.reason.clone(),
            })
            .collect();
        write.approvals = pauses.into_iter().map(|(_, a)| a).collect();
        let committed = self.services.store.commit(self.tenant, write).await?;
        self.services.publish(self.tenant, &self.run.id, &committed);
        self.awaiting = true;
        Ok(())
    }

    /// Runs one tool call and journals its result; `None` when the call
    /// waits for a human's approval instead.
    async fn tool_step(
        &self,
        n: i64,
        call: &ToolCall,
    ) -> Result<Option<ToolOutcome>, RuntimeError> {
        let tool = self.tools.get(&call.name);
        let arguments = parse_arguments(&call.arguments);
        let (text, is_error, block_write) = match (tool, arguments) {
            (None, _) => (self.unknown_tool(&call.name), true, None),
            (Some(_), Err(message)) => (message, true, None),
            (Some(tool), Ok(arguments)) => match (&tool.kind, tool.check_arguments(&arguments)) {
                (ToolKind::Memory(memory), _) => {
                    match self.authorize_call(n, call, tool, &arguments).await? {
                        Verdict::Pause => return Ok(None),
                        Verdict::Refuse(refusal) => (refusal, true, None),
                        Verdict::Go => match memory.parse(arguments) {
                            Err(message) => (message, true, None),
                            Ok(edit) => return self.memory_step(n, call, edit).await.map(Some),
                        },
                    }
                }
                (ToolKind::Recall(recall), _) => {
                    match self.authorize_call(n, call, tool, &arguments).await? {
                        Verdict::Pause => return Ok(None),
                        Verdict::Refuse(refusal) => (refusal, true, None),
                        Verdict::Go => match recall.parse(arguments) {
                            Err(message) => (message, true, None),
                            Ok(parsed) => return self.recall_step(n, call, parsed).await.map(Some),
                        },
                    }
                }
                (ToolKind::External(_), Err(message)) => {
                    (self.invalid_arguments(message), true, None)
                }
                (ToolKind::External(external), Ok(())) => {
                    match self.authorize_call(n, call, tool, &arguments).await? {
                        Verdict::Go => {}
                        Verdict::Pause => return Ok(None),
                        Verdict::Refuse(refusal) => {
                            let outcome = ToolOutcome {
                                call_id: call.id.clone(),
                                name: call.name.clone(),
                                output: refusal,
                                is_error: true,
                            };
                            self.commit_tool_result(n, call, &outcome, None).await?;
                            return Ok(Some(outcome));
                        }
                    }
                    if !self.started_already(n) {
                        let mut started = self.journal();
                        started.steps.push(StepWrite::Started {
                            n,
                            kind: StepKind::ToolCall,
                            input: json!({ "call": call, "actors": self.actor_chain(&call.name) }),
                        });
                        let committed = self.services.store.commit(self.tenant, started).await?;
                        self.services.publish(self.tenant, &self.run.id, &committed);
                    }
                    let ctx = self.call_context(call);
                    let output = tokio::select! {
                        out = tokio::time::timeout(external.timeout(), external.call(&ctx, arguments)) => Some(out),
                        () = self.cancel.cancelled() => None,
                    };
                    match output {
                        Some(Ok(out)) => (
                            truncate_output(out.text, external.max_output_bytes()),
                            out.is_error,
                            None,
                        ),
                        Some(Err(_)) => (
                            format!(
                                "tool `{}` timed out after {:?}",
                                call.name,
                                external.timeout()
                            ),
                            true,
                            None,
                        ),
                        // Its step is started: complete it, so neither the
                        // journal nor the history keeps a call without a result.
                        None => (
                            format!(
                                "cancelled: the run was cancelled while `{}` was running; its effect is unknown",
                                call.name
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

    fn started_already(&self, n: i64) -> bool {
        self.started.contains(&n)
    }

    /// Whether `call` will run as an external tool (and so needs a `started`
    /// row before it runs).
    pub(super) fn runs_outside_the_store(&self, call: &ToolCall) -> bool {
        let Some(tool) = self.tools.get(&call.name) else {
            return false;
        };
        matches!(tool.kind, ToolKind::External(_))
            && parse_arguments(&call.arguments).is_ok_and(|a| tool.check_arguments(&a).is_ok())
    }

    /// Counts a call refused for its arguments; past the bound the run
    /// stops, so a model that keeps getting them wrong cannot loop.
    fn invalid_arguments(&self, message: String) -> String {
        let count = self
            .invalid_calls
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            + 1;
        if count >= MAX_INVALID_CALLS {
            format!("{message}. This was invalid call {count} of {MAX_INVALID_CALLS} allowed in a run; the run stops here.")
        } else {
            message
        }
    }

    /// What the model is told when it calls a tool this run does not have.
    fn unknown_tool(&self, name: &str) -> String {
        let mut text = format!(
            "unknown tool `{name}`; available tools: {}",
            self.tools.names().join(", ")
        );
        if !self.tools.unavailable.is_empty() {
            text.push_str(&format!(
                "; unavailable in this run: {}",
                self.tools.unavailable.join("; ")
            ));
        }
        text
    }

    /// Who acts in a tool call, outermost first: the key that started the
    /// run, the agent, the tool.
    pub(super) fn actor_chain(&self, tool: &str) -> Vec<String> {
        vec![
            self.run
                .actor
                .clone()
                .unwrap_or_else(|| "unknown".to_owned()),
            format!("agent:{}", self.agent.name),
            format!("tool:{tool}"),
        ]
    }

    /// Puts a call to the tenant's policies before it runs. A call a
    /// human already decided on (this run resuming) follows the decision.
    async fn authorize_call(
        &self,
        n: i64,
        call: &ToolCall,
        tool: &crate::tools::RegisteredTool,
        arguments: &serde_json::Value,
    ) -> Result<Verdict, RuntimeError> {
        if let Some(approval) = self
            .services
            .store
            .approval_for_call(self.tenant, &self.run.id, &call.id)
            .await?
        {
            if approval.status == "pending" {
                // Another request of this batch is still open: wait again.
                self.rewait
                    .store(true, std::sync::atomic::Ordering::Relaxed);
            }
            return Ok(decided(&approval, call));
        }
        // A query reads its SQL source: that is `read_source` too.
        if let (ToolKind::External(t), Some(source)) =
            (&tool.kind, arguments.get("source").and_then(|s| s.as_str()))
        {
            if t.policy_kind() == "sql" {
                if let Err(reason) = self
                    .may(
                        roster_policy::Action::ReadSource,
                        roster_policy::Resource::Source {
                            name: source,
                            kind: "sql",
                        },
                        &format!("source:{source}"),
                    )
                    .await?
                {
                    return Ok(Verdict::Refuse(format!(
                        "reading source `{source}` is denied by policy: {reason}. The call was not made."
                    )));
                }
            }
        }
        let governance = &self.services.governance;
        let compiled = governance.policies(self.tenant).await?;
        if !crate::governance::governed(&compiled, roster_policy::Action::CallTool) {
            return Ok(Verdict::Go);
        }
        let (kind, server, facts) = match &tool.kind {
            ToolKind::External(t) => (
                t.policy_kind().to_owned(),
                t.policy_server().to_owned(),
                t.policy_facts(arguments),
            ),
            _ => ("builtin".to_owned(), String::new(), serde_json::Map::new()),
        };
        let (_, user) = self.actor_and_user();
        let request = roster_policy::PolicyRequest {
            tenant: self.tenant.as_str(),
            actor: roster_policy::Actor::Agent {
                name: &self.agent.name,
            },
            action: roster_policy::Action::CallTool,
            resource: roster_policy::Resource::Tool {
                name: &call.name,
                kind: &kind,
                server: &server,
            },
            user: &user,
            arguments: arguments.as_object(),
            facts: Some(&facts),
        };
        let chain = self.actor_chain(&call.name).join(" > ");
        let decision = governance
            .decide_in(
                self.tenant,
                &compiled,
                &request,
                crate::governance::Subject {
                    actor: &chain,
                    resource: &format!("tool:{}", call.name),
                    at: json!({ "run": self.run.id, "step": n, "call_id": call.id }),
                },
            )
            .await?;
        Ok(match decision {
            roster_policy::Decision::Allow { .. } => Verdict::Go,
            roster_policy::Decision::Deny { reason, .. } => Verdict::Refuse(format!(
                "denied by policy: {reason}. The call was not made."
            )),
            roster_policy::Decision::NeedsApproval { reason, policies } => {
                let ttl = chrono::Duration::from_std(governance.approval_ttl())
                    .unwrap_or(chrono::Duration::MAX);
                let approval = roster_store::NewApproval {
                    id: roster_store::approval_id(),
                    step: n,
                    call_id: call.id.clone(),
                    agent: self.agent.name.clone(),
                    tool: call.name.clone(),
                    arguments: arguments.clone(),
                    reason,
                    policies,
                    actor: chain,
                    expires_at: chrono::Utc::now()
                        .checked_add_signed(ttl)
                        .unwrap_or(chrono::DateTime::<chrono::Utc>::MAX_UTC),
                };
                self.pauses
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push((call.clone(), approval));
                Verdict::Pause
            }
        })
    }

    fn call_context(&self, call: &ToolCall) -> ToolCallContext {
        ToolCallContext {
            tenant: self.tenant.clone(),
            agent_id: self.agent.id.clone(),
            session_id: self.session.id.clone(),
            run_id: self.run.id.clone(),
            call_id: call.id.clone(),
        }
    }

    async fn commit_tool_result(
        &self,
        n: i64,
        call: &ToolCall,
        outcome: &ToolOutcome,
        block: Option<BlockWrite>,
    ) -> Result<(), StoreError> {
        self.commit_tool_result_with(n, call, outcome, block, Vec::new())
            .await
            .map(|_| ())
    }

    /// Journals a tool's result together with the state it changes (a block
    /// edit, memory records); returns the search log position of the
    /// records (0 if none).
    pub(super) async fn commit_tool_result_with(
        &self,
        n: i64,
        call: &ToolCall,
        outcome: &ToolOutcome,
        block: Option<BlockWrite>,
        memory_writes: Vec<MemoryWrite>,
    ) -> Result<i64, StoreError> {
        let mut write = self.journal();
        write.steps.push(StepWrite::Completed {
            n,
            kind: StepKind::ToolCall,
            input: json!({ "call": call, "actors": self.actor_chain(&call.name) }),
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
        write.memory_writes = memory_writes;
        let committed = self.services.store.commit(self.tenant, write).await?;
        self.window.append(&committed.items, super::window_limit());
        self.services.publish(self.tenant, &self.run.id, &committed);
        Ok(committed.memories.log_id)
    }

    /// Applies a memory edit and its result in one commit. Edits of one block
    /// take turns within this process; one that still loses the version
    /// check (another node edited the block) is retried, and after
    /// [`ATTEMPTS`] the model is told its edit did not land.
    async fn memory_step(
        &self,
        n: i64,
        call: &ToolCall,
        edit: roster_core::memory::BlockEdit,
    ) -> Result<ToolOutcome, RuntimeError> {
        let owner = self.edited_owner(edit.label());
        let shared = owner == roster_core::blocks::BlockOwner::Shared;
        // A shared block is one row for every agent of the tenant: its edits
        // in this process take one lock, whichever agent makes them, so they
        // land one after the other, none refused as a conflict.
        let lock_agent = if shared {
            roster_core::AgentId::from_stored(self.tenant.to_string())
        } else {
            self.agent.id.clone()
        };
        let _turn = self
            .services
            .block_locks
            .of(self.tenant, &lock_agent, edit.label(), &owner)
            .lock()
            .await;
        // Across processes (several nodes) edits of one row meet as version
        // conflicts: a shared block's are retried longer, backing off, so
        // an append lands however many agents write at once.
        let attempts = if shared { SHARED_ATTEMPTS } else { ATTEMPTS };
        for attempt in 0..attempts {
            if attempt > 0 && shared {
                let backoff = 2u64 << attempt.min(6);
                tokio::time::sleep(std::time::Duration::from_millis(backoff)).await;
            }
            let outcome = |output: String, is_error| ToolOutcome {
                call_id: call.id.clone(),
                name: call.name.clone(),
                output,
                is_error,
            };
            let Some(block) = self.session_block(edit.label()).await? else {
                let labels = self.block_labels();
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
                    // A replace whose `old` is gone (another edit changed
                    // the block) gets the value as it is now, to retry on.
                    let message = if matches!(edit, roster_core::memory::BlockEdit::Replace { .. })
                    {
                        format!(
                            "{message}. The block now reads (version {}):\n{}",
                            block.version, block.value
                        )
                    } else {
                        message
                    };
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
                owner: block.owner.clone(),
                expected_version: block.version,
                value,
                limit: block.limit,
                operation: edit.operation().to_owned(),
                // A shared block's history says which agent, and for whom.
                principal: if shared {
                    self.actor_chain(&call.name)[..2].join(" > ")
                } else {
                    format!("agent:{}", self.agent.id)
                },
            };
            match self.commit_tool_result(n, call, &result, Some(write)).await {
                Ok(()) => return Ok(result),
                Err(StoreError::Conflict(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        let result = ToolOutcome {
            call_id: call.id.clone(),
            name: call.name.clone(),
            output: format!(
                "memory block `{}` kept changing under other edits; yours was not applied. Read the block again and retry",
                edit.label()
            ),
            is_error: true,
        };
        self.commit_tool_result(n, call, &result, None).await?;
        Ok(result)
    }

    /// A tool step that was started but never completed: the process died
    /// while the tool ran. Re-run it only if that is safe.
    pub(super) async fn resolve_interrupted(
        &mut self,
        n: i64,
        input: &serde_json::Value,
    ) -> Result<(), RuntimeError> {
        let call: ToolCall = serde_json::from_value(input["call"].clone()).map_err(|e| {
            StoreError::Corrupt(format!("started step {n} of run {}: {e}", self.run.id))
        })?;
        let idempotent = matches!(self.tools.get(&call.name).map(|t| &t.kind), Some(ToolKind::External(t)) if t.idempotent());
        // A call that stopped for approval never ran: it goes on as decided.
        let awaited = self
            .services
            .store
            .approval_for_call(self.tenant, &self.run.id, &call.id)
            .await?
            .is_some();
        if idempotent || awaited {
            self.resumed.insert(call.id.clone(), n);
            self.started.insert(n);
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
}

/// What the runner does with a call after the policies were asked.
pub(super) enum Verdict {
    Go,
    /// Not run; the text is the call's error result.
    Refuse(String),
    /// Waits for a human's approval.
    Pause,
}

/// A call a human decided on.
fn decided(approval: &roster_store::Approval, call: &ToolCall) -> Verdict {
    let note = approval
        .note
        .as_deref()
        .filter(|n| !n.trim().is_empty())
        .map(|n| format!(": {n}"))
        .unwrap_or_default();
    match approval.status.as_str() {
        "approved" => Verdict::Go,
        // Still undecided (another call of the run was decided first).
        "pending" => Verdict::Pause,
        "denied" => Verdict::Refuse(format!(
            "a human denied this call to `{}`{note}. The call was not made.",
            call.name
        )),
        "expired" => Verdict::Refuse(format!(
            "nobody approved this call to `{}` before its approval request expired at {}; the call was not made.",
            call.name, approval.expires_at
        )),
        other => Verdict::Refuse(format!(
            "the approval request for `{}` was {other}; the call was not made.",
            call.name
        )),
    }
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
