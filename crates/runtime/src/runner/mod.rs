//! The runner: executes one run by asking the state machine what to do,
//! doing it, and journaling the result before asking again.
//!
//! Resumption after a crash is the same code path: the machine is rebuilt by
//! replaying the completed steps, so a completed model call is never re-sent
//! and a completed tool call never re-run. A tool step found `started` but not
//! completed is re-run only if its tool is idempotent; otherwise it gets an
//! `interrupted` error result the model can see.

mod blocks;
mod cache;
mod fold;
mod recall_step;
mod tool_step;
mod wait;

pub(crate) use blocks::session_blocks;
pub(crate) use fold::{item_cap, transcript};
use wait::Called;

use crate::context::{fixed_tokens, history, system_prompt, MAX_CONTEXT_ITEMS};
use crate::error::RuntimeError;
use crate::model_call::{Admission, CallFor, ModelCall};
use crate::services::Services;
use roster_core::agent::Agent;
use roster_core::event::RunEvent;
use roster_core::item::{Item, ItemContent, ToolCall};
use roster_core::ledger::NewLedgerEntry;
use roster_core::machine::{replay, Action, ModelCallInput, ModelReply, RunMachine, StepOutput};
use roster_core::run::{Run, RunError, RunStatus, StepKind, StepStatus};
use roster_core::tokens::estimate_tokens;
use roster_core::turn::TurnToolChoice;
use roster_core::TenantId;
use roster_models::{Attempt, ChatRequest, ToolChoice, ToolSpec};
use roster_store::{JournalWrite, RunTransition, Session, StepWrite, StoreError};
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use tokio_util::sync::CancellationToken;

struct RunState<'a> {
    services: &'a Services,
    tenant: &'a TenantId,
    run: Run,
    session: Session,
    agent: Agent,
    machine: RunMachine,
    next_step: i64,
    /// Step numbers already given to tool calls (call id -> step number):
    /// planned when the model asked for them, or found started after a crash.
    resumed: HashMap<String, i64>,
    /// Step numbers whose `started` row is already journaled.
    started: HashSet<i64>,
    /// Ledger rows of failed attempts waiting for the next commit.
    pending_ledger: Vec<NewLedgerEntry>,
    cancel: CancellationToken,
    /// The run's final status is journaled.
    finished: bool,
    /// The session tail, read once and kept current.
    window: cache::Window,
    /// Long-term memory records recalled for this run's input, read once.
    recalled: Option<Vec<roster_core::record::MemoryRecord>>,
    /// Knowledge passages recalled for this run's input, read once.
    passages: Option<Vec<roster_core::knowledge::Passage>>,
    /// The session's running summary, read once and kept current.
    summary: Option<Option<roster_store::SessionSummary>>,
    /// A fold failed in this run: trim instead of trying every step.
    fold_failed: bool,
    /// The tools this run may call, resolved from the agent's entries.
    tools: crate::tools::ResolvedTools,
    /// Calls refused for arguments that fail the tool's schema.
    invalid_calls: std::sync::atomic::AtomicU32,
    /// Calls of the current batch that wait for approval.
    pauses: Mutex<Vec<(ToolCall, roster_store::NewApproval)>>,
    /// The run waits for approval: the runner stops without finishing it.
    awaiting: bool,
    /// A call of this batch found its approval still pending.
    rewait: std::sync::atomic::AtomicBool,
    /// The routing policy's decision per target (`provider/model`), for
    /// the ledger rows of this run's model calls.
    route_decisions: HashMap<String, roster_core::ledger::RouteDecision>,
    /// The pieces the last answer's text streamed in, for its commit.
    text_chunks: Vec<u32>,
}

/// How [`execute`] left a run.
pub(crate) enum Outcome {
    /// Finished, waiting for approval, or gone: the session's worker moves on.
    Ended,
    /// A limit on runs at once holds it: still queued, with its reason.
    Held,
}

pub(crate) async fn execute(
    services: &Services,
    tenant: &TenantId,
    run: Run,
    cancel: CancellationToken,
) -> Result<Outcome, RuntimeError> {
    let store = &services.store;
    let session = services
        .session_of(tenant, &run.session_id)
        .await?
        .ok_or(RuntimeError::NotFound("session"))?;
    let agent = services
        .agent_version(tenant, &session.agent_id, run.agent_version)
        .await?;
    let Some(agent) = agent else {
        finish_without_agent(services, tenant, &run).await?;
        return Ok(Outcome::Ended);
    };
    if run.status == RunStatus::Queued {
        let mut start = JournalWrite::new(run.id.clone(), run.session_id.clone());
        start.transition = Some(if cancel.is_cancelled() {
            // Cancelled before it started: it ends without adding anything.
            RunTransition::Finish {
                status: RunStatus::Cancelled,
                output: None,
                error: None,
            }
        } else {
            RunTransition::Start
        });
        let cancelled = cancel.is_cancelled();
        match store.commit(tenant, start).await {
            Ok(committed) if committed.held.is_some() => return Ok(Outcome::Held),
            Ok(committed) => services.publish(tenant, &run.id, &committed),
            // Cancelled while queued.
            Err(StoreError::Conflict(_)) => return Ok(Outcome::Ended),
            Err(e) => return Err(e.into()),
        }
        if cancelled {
            return Ok(Outcome::Ended);
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
    let tools = services.tools.resolve(tenant, &agent.config.tools).await;
    let mut state = RunState {
        services,
        tenant,
        run,
        session,
        agent,
        machine,
        next_step,
        resumed: HashMap::new(),
        started: HashSet::new(),
        pending_ledger: Vec::new(),
        cancel,
        finished: false,
        window: cache::Window::default(),
        recalled: None,
        passages: None,
        summary: None,
        fold_failed: false,
        tools,
        invalid_calls: std::sync::atomic::AtomicU32::new(0),
        pauses: Mutex::new(Vec::new()),
        awaiting: false,
        rewait: std::sync::atomic::AtomicBool::new(false),
        route_decisions: HashMap::new(),
        text_chunks: Vec::new(),
    };
    for step in steps
        .iter()
        .filter(|s| s.status == StepStatus::Started && s.kind == StepKind::ToolCall)
    {
        state.resolve_interrupted(step.n, &step.input).await?;
    }
    state.drive().await?;
    Ok(Outcome::Ended)
}

impl RunState<'_> {
    async fn drive(&mut self) -> Result<(), RuntimeError> {
        loop {
            if self.finished || self.awaiting {
                return Ok(());
            }
            if self.cancel.is_cancelled() {
                return self.finish(RunStatus::Cancelled, None, None).await;
            }
            match self.machine.next_action() {
                Action::CallModel => self.model_step().await?,
                Action::CallTools(calls) => {
                    // The caller's own tools are its to run: the run ends
                    // with them unanswered once the rest are done.
                    let (theirs, ours): (Vec<_>, Vec<_>) = calls
                        .into_iter()
                        .partition(|c| self.is_client_tool(&c.name));
                    if !ours.is_empty() {
                        self.tool_steps(ours).await?;
                    } else if !theirs.is_empty() {
                        let output = self.machine.last_text().to_owned();
                        return self.finish(RunStatus::Completed, Some(output), None).await;
                    }
                }
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
        // A finished run's items reach the search index at the indexer's
        // next poll, batched with other runs' (`conversation_search` waits
        // for it to catch up): waking it per turn cost an index commit per
        // turn under `roster bench`.
        let committed = self.services.store.commit(self.tenant, write).await?;
        self.window.append(&committed.items, window_limit());
        self.services.publish(self.tenant, &self.run.id, &committed);
        Ok(())
    }

    /// The governed model call, over this runtime's governance and router.
    pub(super) fn model_call(&self) -> ModelCall<'_> {
        ModelCall {
            governance: &self.services.governance,
            router: &self.services.router,
        }
    }

    /// Whom a model call of step `step` is for (`user` and `chain` from
    /// [`Self::actor_and_user`]).
    pub(super) fn call_for<'a>(&'a self, user: &'a str, chain: &'a str, step: i64) -> CallFor<'a> {
        CallFor {
            tenant: self.tenant,
            agent_id: &self.agent.id,
            agent: &self.agent.name,
            user,
            actor: chain,
            at: json!({ "run": self.run.id, "step": step }),
            session_id: Some(self.session.id.to_string()),
            run_id: Some(self.run.id.to_string()),
            step: Some(step),
        }
    }

    /// The ledger row of one attempt of this run's step `step`.
    fn ledger_entry(&self, attempt: &Attempt, step: i64) -> NewLedgerEntry {
        let (actor, user) = self.actor_and_user();
        let chain = format!("{actor} > agent:{}", self.agent.name);
        self.model_call().ledger_entry(
            attempt,
            &self.call_for(&user, &chain, step),
            &self.route_decisions,
        )
    }

    /// Who started the run (`unknown` for runs from before actors were
    /// recorded), and who the work is for (the session's user, else that).
    pub(super) fn actor_and_user(&self) -> (String, String) {
        let actor = self
            .run
            .actor
            .clone()
            .unwrap_or_else(|| "unknown".to_owned());
        let user = self.session.user.clone().unwrap_or_else(|| actor.clone());
        (actor, user)
    }

    /// Admits a model call of step `n` on `route` (budget, then routing
    /// policy): the allowed route, or why nothing may be sent. The refused
    /// targets' ledger rows wait in `pending_ledger` for the step's commit.
    pub(super) async fn admit_call(
        &mut self,
        route: &roster_core::route::ModelRoute,
        n: i64,
    ) -> Result<Result<roster_core::route::ModelRoute, RunError>, RuntimeError> {
        let (actor, user) = self.actor_and_user();
        let chain = format!("{actor} > agent:{}", self.agent.name);
        let admission = self
            .model_call()
            .admit(route, &self.call_for(&user, &chain, n))
            .await?;
        Ok(match admission {
            Admission::Admitted(admitted) => {
                self.pending_ledger.extend(admitted.refused);
                self.route_decisions.extend(admitted.decisions);
                Ok(admitted.route)
            }
            Admission::Refused {
                code,
                message,
                ledger,
            } => {
                self.pending_ledger.extend(ledger);
                Err(RunError::new(code, message))
            }
        })
    }

    /// Whether `name` is one of the tools this run's caller runs itself.
    fn is_client_tool(&self, name: &str) -> bool {
        self.run
            .turn
            .as_ref()
            .is_some_and(|t| t.is_client_tool(name))
            && self.tools.get(name).is_none()
    }

    /// The agent's instructions, then the run's own.
    fn instructions(&self) -> std::borrow::Cow<'_, str> {
        match self
            .run
            .turn
            .as_ref()
            .and_then(|t| t.instructions.as_deref())
        {
            Some(extra) if !extra.trim().is_empty() => {
                format!("{}\n\n{extra}", self.agent.config.instructions).into()
            }
            _ => self.agent.config.instructions.as_str().into(),
        }
    }

    fn tool_specs(&self) -> Vec<ToolSpec> {
        // The request said the model may call no tool in this run.
        if self.run.turn.as_ref().and_then(|t| t.tool_choice) == Some(TurnToolChoice::None) {
            return Vec::new();
        }
        let labels: Vec<&str> = self
            .agent
            .config
            .memory_blocks
            .iter()
            .map(|b| b.label.as_str())
            .collect();
        let mut specs = self.tools.specs_for(&labels);
        if let Some(turn) = &self.run.turn {
            specs.extend(
                turn.client_tools
                    .iter()
                    .filter(|t| self.tools.get(&t.name).is_none())
                    .map(|t| ToolSpec {
                        name: t.name.clone(),
                        description: t.description.clone(),
                        parameters: t.parameters.clone(),
                    }),
            );
        }
        specs
    }

    /// One model step, in phases: admit (budget and route policy, before
    /// anything costs), prepare the context (recall, fold, history), call
    /// through the route with patience, and record the answer.
    async fn model_step(&mut self) -> Result<(), RuntimeError> {
        let admitted_at = self.next_step;
        let refused_from = self.pending_ledger.len();
        let Some(route) = self.admit(admitted_at).await? else {
            return Ok(());
        };
        // The ledger rows of targets admission refused belong to the call,
        // which is the step after a fold's summary when one is journaled
        // first (the admission's audit rows name the step the run was at
        // when admitted).
        let mut refused: Vec<NewLedgerEntry> = self.pending_ledger.drain(refused_from..).collect();
        let (request, context) = self.prepare().await?;
        let n = self.next_step;
        for entry in &mut refused {
            entry.step = Some(n);
        }
        self.pending_ledger.append(&mut refused);
        let (called, ledger) = self.call_patiently(&route, request, n).await?;
        match called {
            Called::Cancelled => {
                self.pending_ledger.extend(ledger);
                Ok(())
            }
            Called::Failed(error) => {
                self.pending_ledger.extend(ledger);
                self.machine.on_model_failure(error);
                Ok(())
            }
            Called::Answered {
                response,
                target,
                waited,
            } => {
                let reply = ModelReply {
                    text: response.text,
                    tool_calls: unique_call_ids(response.tool_calls, n),
                    route: target.to_string(),
                };
                let input = ModelCallInput {
                    route: target.to_string(),
                    actors: vec![
                        self.actor_and_user().0,
                        format!("agent:{}", self.agent.name),
                    ],
                    ..context
                };
                self.record(n, input, reply, ledger, waited).await
            }
        }
    }

    /// The route this step may use, or `None` when the run cannot call a
    /// model now (bad route, budget spent, route denied; the machine is
    /// told why). Decided before recall and folding, so a refused turn
    /// pays for neither.
    async fn admit(
        &mut self,
        n: i64,
    ) -> Result<Option<roster_core::route::ModelRoute>, RuntimeError> {
        let asked = self.run.turn.as_ref().and_then(|t| t.route.as_deref());
        let route = match asked.map_or_else(
            || self.agent.config.route(),
            |r| roster_core::route::ModelRoute::parse(r, &[]),
        ) {
            Ok(route) => route,
            Err(e) => {
                self.machine
                    .on_model_failure(RunError::new("invalid_route", e.to_string()));
                return Ok(None);
            }
        };
        match self.admit_call(&route, n).await? {
            Ok(route) => Ok(Some(route)),
            Err(refusal) => {
                self.machine.on_model_failure(refusal);
                Ok(None)
            }
        }
    }

    /// The request for this step (instructions, pinned blocks, recalled
    /// records and passages, the summary and as much history as fits) and
    /// what the journal says of its context (`route` and `actors` are
    /// filled in once the call is answered).
    async fn prepare(&mut self) -> Result<(ChatRequest, ModelCallInput), RuntimeError> {
        let blocks = self.pinned_blocks().await?;
        let recalled = self.recalled().await;
        let passages = self.recalled_passages().await;
        let tools = self.tool_specs();
        let tail = match self.window.items() {
            Some(tail) => tail,
            None => {
                let tail = self
                    .services
                    .store
                    .tail_items(self.tenant, &self.session.id, MAX_CONTEXT_ITEMS)
                    .await?;
                self.window.set_items(tail.clone());
                tail
            }
        };
        let budget = self.agent.config.context_tokens;
        let instructions = self.instructions().into_owned();
        let bare = system_prompt(&instructions, &blocks, &recalled, &passages, None);
        let summary_tokens = self
            .summary()
            .await?
            .map_or(0, |s| estimate_tokens(&s.text));
        let history_budget = budget
            .saturating_sub(fixed_tokens(&bare, &tools))
            .saturating_sub(summary_tokens);
        self.fold_if_needed(&tail, history_budget).await?;
        let summary = self.summary().await?;
        let through = summary.as_ref().map_or(0, |s| s.through_seq);
        let system = system_prompt(
            &instructions,
            &blocks,
            &recalled,
            &passages,
            summary.as_ref(),
        );
        let visible: Vec<Item> = tail.into_iter().filter(|i| i.seq > through).collect();
        let messages = history(&visible, budget, &system, &tools);
        let context = ModelCallInput {
            route: String::new(),
            actors: Vec::new(),
            context_items: messages.len(),
            recalled: recalled.iter().map(|r| r.id.to_string()).collect(),
            passages: passages.iter().map(|p| p.citation.clone()).collect(),
            summary_through: through,
        };
        // Only the run's first call is held to `required`: forced on every
        // step, the model could never give its answer.
        let asked = self.run.turn.as_ref().and_then(|t| t.tool_choice);
        let tool_choice = match asked {
            _ if self.machine.model_calls() > 0 || tools.is_empty() => ToolChoice::Auto,
            Some(TurnToolChoice::Required) => ToolChoice::Required,
            Some(TurnToolChoice::Auto) => ToolChoice::Auto,
            Some(TurnToolChoice::None) | None => self.agent.config.tool_choice,
        };
        let request = ChatRequest {
            tool_choice,
            model: String::new(),
            system,
            messages,
            tools,
            max_tokens: None,
            stream: true,
        };
        Ok((request, context))
    }

    /// Journals an answered model call in one commit: the step, its ledger
    /// rows, the assistant message, the `started` rows of the tool calls
    /// it asked for that act outside the store, and the run's end when the
    /// answer is final.
    async fn record(
        &mut self,
        n: i64,
        input: ModelCallInput,
        reply: ModelReply,
        ledger: Vec<NewLedgerEntry>,
        waited: bool,
    ) -> Result<(), RuntimeError> {
        let mut write = self.journal();
        write.text_chunks = std::mem::take(&mut self.text_chunks);
        write.steps.push(StepWrite::Completed {
            n,
            kind: StepKind::ModelCall,
            input: serde_json::to_value(&input)
                .map_err(|e| RuntimeError::Invalid(e.to_string()))?,
            output: serde_json::to_value(StepOutput::ModelCall(reply.clone()))
                .map_err(|e| RuntimeError::Invalid(e.to_string()))?,
        });
        // Number the calls now, and journal the `started` rows of those
        // that act outside the store in this same commit: the row still
        // lands before the tool runs, without its own fsync.
        let mut planned = Vec::with_capacity(reply.tool_calls.len());
        for (offset, call) in (1..).zip(&reply.tool_calls) {
            let step = n + offset;
            if self.runs_outside_the_store(call) {
                write.steps.push(StepWrite::Started {
                    n: step,
                    kind: StepKind::ToolCall,
                    input: json!({ "call": call, "actors": self.actor_chain(&call.name) }),
                });
            }
            planned.push((call.id.clone(), step));
        }
        if waited {
            write.wait = Some(roster_store::WaitWrite::Clear);
            write.events.push(RunEvent::WaitEnded { step: n });
        }
        write
            .events
            .extend(reply.tool_calls.iter().map(|c| RunEvent::ToolCall {
                step: n,
                call_id: c.id.clone(),
                name: c.name.clone(),
                arguments: c.arguments.clone(),
            }));
        write.items = vec![ItemContent::AssistantMessage {
            text: reply.text.clone(),
            tool_calls: reply.tool_calls.clone(),
        }];
        write.ledger = ledger;
        // A final answer ends the run in the same commit.
        let finishes = reply.tool_calls.is_empty() && !self.cancel.is_cancelled();
        if finishes {
            write.transition = Some(RunTransition::Finish {
                status: RunStatus::Completed,
                output: Some(reply.text.clone()),
                error: None,
            });
            write.memory_jobs = self.extraction_jobs();
        }
        self.commit(write).await?;
        for (call_id, step) in planned {
            self.resumed.insert(call_id, step);
        }
        self.started.extend(
            reply
                .tool_calls
                .iter()
                .zip(1..)
                .filter(|(call, _)| self.runs_outside_the_store(call))
                .map(|(_, offset)| n + offset)
                .collect::<Vec<_>>(),
        );
        self.next_step = n + 1 + i64::try_from(reply.tool_calls.len()).unwrap_or(0);
        self.machine.on_model_reply(&reply);
        self.finished = finishes;
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
        for call in self.machine.dangling_calls() {
            if status == RunStatus::Completed && self.is_client_tool(&call.name) {
                // The caller answers it in its next input.
                continue;
            }
            let output = format!("not executed: {reason} before this call completed");
            let step = self.resumed.get(&call.id).copied();
            // A call whose `started` row is journaled gets it completed, so
            // the finished run shows no step still in flight.
            if let Some(n) = step.filter(|n| self.started.contains(n)) {
                let outcome = roster_core::machine::ToolOutcome {
                    call_id: call.id.clone(),
                    name: call.name.clone(),
                    output: output.clone(),
                    is_error: true,
                };
                write.steps.push(StepWrite::Completed {
                    n,
                    kind: StepKind::ToolCall,
                    input: json!({ "call": call }),
                    output: serde_json::to_value(StepOutput::ToolCall(outcome))
                        .map_err(|e| RuntimeError::Invalid(e.to_string()))?,
                });
            }
            write.events.push(RunEvent::ToolResult {
                step: step.unwrap_or(self.next_step),
                call_id: call.id.clone(),
                name: call.name.clone(),
                output: output.clone(),
                is_error: true,
            });
            write.items.push(ItemContent::ToolResult {
                call_id: call.id,
                name: call.name,
                output,
                is_error: true,
            });
        }
        if status == RunStatus::Completed {
            write.memory_jobs = self.extraction_jobs();
        }
        write.transition = Some(RunTransition::Finish {
            status,
            output,
            error,
        });
        self.commit(write).await
    }

    /// One extraction job per memory strategy of the agent, created with
    /// the run's completion.
    fn extraction_jobs(&self) -> Vec<roster_store::NewMemoryJob> {
        if self.services.memory.is_none() {
            return Vec::new();
        }
        (0..self.agent.config.memory.strategies.len())
            .map(|strategy| roster_store::NewMemoryJob {
                id: format!("job_{}", uuid_like(&self.run.id, strategy)),
                agent_id: self.agent.id.clone(),
                agent_version: self.agent.version,
                strategy: i64::try_from(strategy).unwrap_or(i64::MAX),
            })
            .collect()
    }
}

/// A job id unique per run and strategy, stable across a retried commit.
fn uuid_like(run: &roster_core::RunId, strategy: usize) -> String {
    format!("{}_{strategy}", run.as_str().trim_start_matches("run_"))
}

fn window_limit() -> usize {
    usize::try_from(MAX_CONTEXT_ITEMS).unwrap_or(usize::MAX)
}

/// Models sometimes repeat or omit call ids; results are matched by id, so
/// every call of a reply gets a unique one.
fn unique_call_ids(calls: Vec<ToolCall>, step: i64) -> Vec<ToolCall> {
    let mut seen: HashSet<String> = HashSet::new();
    let mut out = Vec::with_capacity(calls.len());
    for (i, mut call) in calls.into_iter().enumerate() {
        if call.id.trim().is_empty() || seen.contains(&call.id) {
            // A made-up id must not collide with one the model sent either.
            let mut id = format!("call_{step}_{i}");
            let mut k = 0;
            while seen.contains(&id) {
                k += 1;
                id = format!("call_{step}_{i}_{k}");
            }
            call.id = id;
        }
        seen.insert(call.id.clone());
        out.push(call);
    }
    out
}

async fn finish_without_agent(
    services: &Services,
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
    let committed = services.store.commit(tenant, write).await?;
    services.publish(tenant, &run.id, &committed);
    Ok(())
}
