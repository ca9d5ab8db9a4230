//! The runtime handle and its per-session scheduler.
//!
//! One worker task per session with work: it takes the session's next run
//! (an interrupted `running` one first, then `queued` ones in order), drives
//! it to its end, and exits when the queue is empty. That is what keeps one
//! active run per session without locks in the store.
//!
//! Every worker is tracked, so [`Runtime::shutdown`] can stop them all the
//! way a crash would: mid-step, journaling nothing. The store then holds the
//! runs exactly as a killed process leaves them, and [`Runtime::recover`] in
//! the next runtime resumes them.

use crate::bus::{Bus, LiveEvent};
use crate::error::RuntimeError;
use crate::services::Services;
use crate::tools::ToolRegistry;

mod admission;
mod worker;
use roster_core::event::RunEvent;
use roster_core::run::{Run, RunStatus};
use roster_core::{RunId, SessionId, TenantId};
use roster_memory::MemoryService;
use roster_models::Router;
use roster_store::{
    BusyPolicy, CreatedRun, DynStore, JournalWrite, NewRun, RunTransition, StoreError,
};
use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub struct RuntimeOptions {
    pub store: DynStore,
    pub router: Arc<Router>,
    pub tools: ToolRegistry,
    /// Long-term memory; without it the memory record tools answer that
    /// long-term memory is not available, and nothing is recalled.
    pub memory: Option<Arc<MemoryService>>,
    /// How deep and wide agents may delegate to agents.
    pub delegation: roster_core::delegation::DelegationLimits,
}

/// An input for a session.
#[derive(Clone, Debug)]
pub struct Submission {
    pub input: String,
    pub idempotency_key: Option<String>,
    pub if_busy: BusyPolicy,
    /// Who submits it (`key:key_…`); recorded on the run.
    pub actor: Option<String>,
    /// The run that started it, for a delegated run.
    pub parent: Option<roster_store::RunParent>,
    /// Webhooks (`whk_…`) told when the run finishes; the caller checked
    /// they are the tenant's.
    pub notify: Vec<String>,
    /// Items, instructions and client tools beyond `input` (checked by the
    /// caller).
    pub turn: Option<roster_core::turn::Turn>,
}

/// Largest accepted input, in bytes.
pub const MAX_INPUT_BYTES: usize = 1 << 20;

#[derive(Clone)]
pub struct Runtime {
    pub(crate) inner: Arc<Scheduler>,
}

/// The scheduler's state: the services runs use, and its own bookkeeping.
pub(crate) struct Scheduler {
    pub(crate) services: Services,
    /// Sessions with a live worker, and a wake-up count the worker checks
    /// before it exits, so an input that lands as it exits is not stranded.
    workers: Mutex<HashMap<(TenantId, SessionId), u64>>,
    /// Cancellation of each run a worker is executing or about to take. A
    /// token is put here by whichever comes first: the worker taking the run
    /// or [`Runtime::cancel`] (already cancelled), so a cancel can never miss
    /// a run that is starting.
    cancels: Mutex<HashMap<RunId, CancellationToken>>,
    /// Fired by [`Runtime::shutdown`]: stops every worker without journaling.
    /// Distinct from the per-run tokens, whose firing journals `cancelled`.
    pub(crate) halt: CancellationToken,
    pub(crate) tasks: TaskTracker,
    /// The extraction worker is running; kicks it got (it looks at the
    /// queue again before exiting when this moved).
    pub(crate) extracting: std::sync::atomic::AtomicBool,
    pub(crate) extraction_wakeups: std::sync::atomic::AtomicU64,
}

impl Runtime {
    pub fn new(options: RuntimeOptions) -> Self {
        let mut tools = options.tools;
        Self {
            inner: Arc::new_cyclic(|scheduler| {
                tools.add_provider(Arc::new(crate::tools::agents::AgentTools::new(
                    scheduler.clone(),
                )));
                Scheduler {
                    services: Services {
                        scheduler: scheduler.clone(),
                        delegation: options.delegation,
                        governance: crate::governance::Governance::new(options.store.clone()),
                        store: options.store,
                        memory: options.memory,
                        router: options.router,
                        tools,
                        bus: Bus::default(),
                        block_locks: crate::caches::BlockLocks::default(),
                        immutable: crate::caches::Immutable::default(),
                        outbox: Arc::new(tokio::sync::Notify::new()),
                    },
                    workers: Mutex::new(HashMap::new()),
                    cancels: Mutex::new(HashMap::new()),
                    halt: CancellationToken::new(),
                    tasks: TaskTracker::new(),
                    extracting: std::sync::atomic::AtomicBool::new(false),
                    extraction_wakeups: std::sync::atomic::AtomicU64::new(0),
                }
            }),
        }
    }

    pub fn store(&self) -> &DynStore {
        &self.inner.services.store
    }

    /// The tenants' policies and the decisions they make.
    pub fn governance(&self) -> &crate::governance::Governance {
        &self.inner.services.governance
    }

    pub fn tools(&self) -> &ToolRegistry {
        &self.inner.services.tools
    }

    pub fn memory(&self) -> Option<&Arc<MemoryService>> {
        self.inner.services.memory.as_ref()
    }

    /// Names of the model providers this server has configured.
    pub fn providers(&self) -> Vec<String> {
        self.inner.services.router.registry().names()
    }

    /// Accepts an input: the run is durably queued before this returns.
    pub async fn submit(
        &self,
        tenant: &TenantId,
        session: &SessionId,
        submission: Submission,
    ) -> Result<CreatedRun, RuntimeError> {
        self.inner.check_running()?;
        // Items in place of one message: what the model will read of them
        // is what must fit.
        let items_text = submission
            .turn
            .as_ref()
            .filter(|t| !t.items.is_empty())
            .map(|t| crate::turn_text(&t.items));
        let input = items_text.as_deref().unwrap_or(&submission.input);
        if input.trim().is_empty() && items_text.is_none() {
            return Err(RuntimeError::Invalid("content must not be empty".into()));
        }
        if input.len() > MAX_INPUT_BYTES {
            return Err(RuntimeError::Invalid(format!(
                "content is longer than {MAX_INPUT_BYTES} bytes"
            )));
        }
        self.inner.check_input(tenant, session, input).await?;
        let stops_earlier = submission.if_busy.stops_earlier_runs();
        let created = self
            .inner
            .services
            .store
            .create_run(
                tenant,
                NewRun {
                    session_id: session.clone(),
                    input: submission.input,
                    idempotency_key: submission.idempotency_key,
                    if_busy: submission.if_busy,
                    actor: submission.actor,
                    parent: submission.parent,
                    notify: submission.notify,
                    turn: submission.turn,
                },
            )
            .await?;
        if let CreatedRun::Created(run) = &created {
            self.inner.services.bus.open(&run.id);
            if stops_earlier {
                self.stop_interrupted(tenant, session, &run.id).await?;
            }
            self.inner.kick(tenant, session);
        }
        Ok(created)
    }

    /// `if_busy: interrupt` or `rollback`: cancels the session's unfinished
    /// runs that the store marked, in the transaction that stored `by`, as
    /// interrupted by it. A retried request (same idempotency key, an
    /// `Existing` run) marks nothing, so it cancels nothing; `by` waits
    /// behind the cancelled runs only until they have closed their tool
    /// calls.
    async fn stop_interrupted(
        &self,
        tenant: &TenantId,
        session: &SessionId,
        by: &RunId,
    ) -> Result<(), RuntimeError> {
        let interrupted: Vec<Run> = self
            .inner
            .services
            .store
            .list_runs(tenant, session)
            .await?
            .into_iter()
            .filter(|r| r.interrupted_by.as_ref() == Some(by) && !r.status.is_finished())
            .collect();
        // Queued ones are marked cancelled before any is waited for, so the
        // worker that takes one while an earlier one closes never starts it.
        for older in interrupted.iter().filter(|r| r.status == RunStatus::Queued) {
            self.inner.cancel_early(&older.id);
        }
        for older in interrupted {
            match self.cancel(tenant, &older.id).await {
                // It finished on its own meanwhile: nothing to interrupt.
                Ok(_) | Err(RuntimeError::AlreadyFinished(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Cancels a queued or running run and returns it as it ended.
    ///
    /// A run being executed is stopped by its runner, which closes every tool
    /// call left without a result before it journals `cancelled`. A queued
    /// run is finished here without ever starting. A `running` run no worker
    /// here executes (interrupted by a crash, not yet resumed) is handed to a
    /// worker that will find it cancelled, so its history is closed the same
    /// way.
    pub async fn cancel(&self, tenant: &TenantId, run_id: &RunId) -> Result<Run, RuntimeError> {
        self.inner.check_running()?;
        let run = self
            .inner
            .services
            .store
            .get_run(tenant, run_id)
            .await?
            .ok_or(RuntimeError::NotFound("run"))?;
        if run.status.is_finished() {
            return Err(RuntimeError::AlreadyFinished(run_id.to_string()));
        }
        let executing = {
            let mut cancels = self.inner.cancels.lock().unwrap_or_else(|p| p.into_inner());
            match cancels.entry(run_id.clone()) {
                Entry::Occupied(token) => {
                    token.get().cancel();
                    true
                }
                Entry::Vacant(slot) => {
                    // A worker that takes the run from now on finds it cancelled
                    // and never starts it.
                    slot.insert(CancellationToken::new()).cancel();
                    false
                }
            }
        };
        if !executing {
            if run.status == RunStatus::Queued {
                let result = self.finish_queued(tenant, &run).await;
                self.inner
                    .cancels
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(run_id);
                result?;
            } else {
                if run.status == RunStatus::AwaitingApproval {
                    // Its open requests are withdrawn; the runner ends it.
                    self.inner
                        .services
                        .store
                        .cancel_approvals(tenant, run_id)
                        .await?;
                }
                // A `running` run with no worker here (interrupted, not yet
                // resumed) goes through the runner, which closes its calls.
                // Unless it finished while we looked: then there is nothing
                // to reopen.
                let now = self.inner.services.store.get_run(tenant, run_id).await?;
                if now.is_some_and(|r| !r.status.is_finished()) {
                    self.inner.services.bus.open(&run.id);
                    self.inner.kick(tenant, &run.session_id);
                }
            }
        }
        let ended = self.wait(tenant, run_id, Duration::from_secs(30)).await?;
        if ended.status.is_finished() {
            // A cancel that found the run already finishing leaves its token.
            self.inner
                .cancels
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(run_id);
        }
        self.cancel_children(tenant, run_id).await;
        Ok(ended)
    }

    /// Cancels the unfinished runs `parent` started (agents it called or
    /// handed tasks to), and theirs in turn.
    async fn cancel_children(&self, tenant: &TenantId, parent: &RunId) {
        let children = match self
            .inner
            .services
            .store
            .child_runs(tenant, std::slice::from_ref(parent))
            .await
        {
            Ok(children) => children,
            Err(e) => {
                tracing::warn!(run = %parent, error = %e, "cannot list the runs a cancelled run started");
                return;
            }
        };
        for child in children.iter().filter(|c| !c.status.is_finished()) {
            match Box::pin(self.cancel(tenant, &child.id)).await {
                Ok(_) | Err(RuntimeError::AlreadyFinished(_)) => {}
                Err(e) => {
                    tracing::warn!(run = %child.id, error = %e, "cannot cancel a run its cancelled parent started");
                }
            }
        }
    }

    /// Journals `cancelled` for a run that never started.
    async fn finish_queued(&self, tenant: &TenantId, run: &Run) -> Result<(), RuntimeError> {
        let mut write = JournalWrite::new(run.id.clone(), run.session_id.clone());
        write.transition = Some(RunTransition::Finish {
            status: RunStatus::Cancelled,
            output: None,
            error: None,
        });
        match self.inner.services.store.commit(tenant, write).await {
            Ok(committed) => {
                self.inner.services.publish(tenant, &run.id, &committed);
                self.inner.services.bus.close(&run.id);
                Ok(())
            }
            // It finished meanwhile: the caller reports how.
            Err(StoreError::Conflict(_)) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Woken each time a commit adds notifications to the outbox: what the
    /// notification sender waits on between polls.
    pub fn outbox_wakeup(&self) -> Arc<tokio::sync::Notify> {
        self.inner.services.outbox.clone()
    }

    /// Has the sessions whose next run a limit holds, and that may start
    /// now, taken up, every `every` (besides the wake-ups when a run of
    /// their tenant ends here): the fair queue moves even when a slot frees
    /// where no wake-up reaches. Stops with the runtime.
    pub fn start_queue_sweep(&self, every: Duration) {
        self.inner.every(every, |inner| async move {
            inner.admit_waiting(None).await;
        });
    }

    /// Takes up `tenant`'s sessions whose next run a limit holds and that
    /// may start now (after its limits were raised, say).
    pub async fn admit_waiting(&self, tenant: &TenantId) {
        self.inner.admit_waiting(Some(tenant)).await;
    }

    /// Live events of a run active in this process, if it is.
    pub fn subscribe(&self, run: &RunId) -> Option<broadcast::Receiver<LiveEvent>> {
        self.inner.services.bus.subscribe(run)
    }

    /// [`Runtime::subscribe`], with the text the run's model call in
    /// flight has streamed so far.
    pub fn subscribe_with_text(
        &self,
        run: &RunId,
    ) -> Option<(broadcast::Receiver<LiveEvent>, crate::LiveText)> {
        self.inner.services.bus.subscribe_with_text(run)
    }

    /// Waits until the run has finished (or `limit` passes) and returns it.
    pub async fn wait(
        &self,
        tenant: &TenantId,
        run_id: &RunId,
        limit: Duration,
    ) -> Result<Run, RuntimeError> {
        self.wait_for(tenant, run_id, limit, RunStatus::is_finished)
            .await
    }

    /// Like [`Runtime::wait`], but also returns when the run stops to wait
    /// for a human's approval.
    pub async fn wait_settled(
        &self,
        tenant: &TenantId,
        run_id: &RunId,
        limit: Duration,
    ) -> Result<Run, RuntimeError> {
        self.wait_for(tenant, run_id, limit, |status| {
            status.is_finished() || status == RunStatus::AwaitingApproval
        })
        .await
    }

    async fn wait_for(
        &self,
        tenant: &TenantId,
        run_id: &RunId,
        limit: Duration,
        settled: fn(RunStatus) -> bool,
    ) -> Result<Run, RuntimeError> {
        let deadline = tokio::time::Instant::now() + limit;
        let mut live = self.subscribe(run_id);
        loop {
            let run = self
                .inner
                .services
                .store
                .get_run(tenant, run_id)
                .await?
                .ok_or(RuntimeError::NotFound("run"))?;
            if settled(run.status) || tokio::time::Instant::now() >= deadline {
                return Ok(run);
            }
            match live.as_mut() {
                Some(rx) => loop {
                    match tokio::time::timeout_at(deadline, rx.recv()).await {
                        Ok(Ok(LiveEvent {
                            event: RunEvent::RunFinished { .. } | RunEvent::ApprovalRequested { .. },
                            ..
                        })) => break,
                        Ok(Ok(_)) => continue,
                        Ok(Err(broadcast::error::RecvError::Lagged(_))) => break,
                        Ok(Err(broadcast::error::RecvError::Closed)) => {
                            live = None;
                            break;
                        }
                        Err(_) => break,
                    }
                },
                None => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    /// Lets a session's worker take up a run a decision moved back to
    /// `running`.
    pub fn resume(&self, tenant: &TenantId, session: &SessionId) {
        self.inner.kick(tenant, session);
    }

    /// Denies approval requests past their expiry every `every`, resuming
    /// their runs; stops with the runtime.
    pub fn start_approval_expiry(&self, every: Duration) {
        self.inner.every(every, |inner| async move {
            match inner.services.store.expire_approvals(chrono::Utc::now()).await {
                Ok(expired) => {
                    for (tenant, approval) in expired {
                        tracing::info!(approval = %approval.id, run = %approval.run_id, "approval request expired; the call is denied");
                        inner.kick(&tenant, &approval.session_id);
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot expire approval requests"),
            }
        });
    }

    /// Resumes every unfinished run after a start; returns how many.
    pub async fn recover(&self) -> Result<usize, RuntimeError> {
        self.inner.check_running()?;
        let runs = self.inner.services.store.unfinished_runs().await?;
        // A crash came between storing an interrupting input and stopping
        // the runs it interrupts: they are cancelled before any worker takes
        // them (a queued one ends unstarted, a running one closes its calls).
        for (tenant, run) in runs.iter().filter(|(_, r)| r.interrupted_by.is_some()) {
            self.inner.cancel_early(&run.id);
            if run.status == RunStatus::AwaitingApproval {
                self.inner
                    .services
                    .store
                    .cancel_approvals(tenant, &run.id)
                    .await?;
            }
        }
        for (tenant, run) in &runs {
            self.inner.services.bus.open(&run.id);
            self.inner.kick(tenant, &run.session_id);
        }
        if !runs.is_empty() {
            tracing::info!(runs = runs.len(), "resuming unfinished runs");
        }
        // Extraction jobs queued before a stop.
        self.inner.kick_extraction();
        Ok(runs.len())
    }

    /// Stops every worker at once, the way a crash would, and returns when
    /// they are gone. Work in flight (a model call, a tool call) is dropped
    /// mid-way and nothing more is journaled: no `cancelled`, no results.
    /// Unfinished runs stay `queued` or `running` in the store for the next
    /// runtime's [`Runtime::recover`]. Afterwards this runtime refuses new
    /// work with [`RuntimeError::ShuttingDown`].
    ///
    /// A store write already handed to the store when the worker is dropped
    /// may still land; like a crash right after the write, recovery copes.
    pub async fn shutdown(&self) {
        {
            // Workers start under this lock after checking `halt`: none can
            // start unseen by the wait below.
            let _workers = self.inner.workers.lock().unwrap_or_else(|p| p.into_inner());
            self.inner.halt.cancel();
        }
        self.inner.tasks.close();
        self.inner.tasks.wait().await;
        self.inner.services.bus.close_all();
    }
}

impl Scheduler {
    /// Runs `work` every `every` until the runtime stops.
    fn every<F, Fut>(self: &Arc<Self>, every: Duration, work: F)
    where
        F: Fn(Arc<Scheduler>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let inner = self.clone();
        let halt = self.halt.clone();
        self.tasks.spawn(async move {
            loop {
                tokio::select! {
                    () = halt.cancelled() => return,
                    () = tokio::time::sleep(every) => {}
                }
                work(inner.clone()).await;
            }
        });
    }

    /// Cancels `run`'s token, making one if no worker holds it yet: a worker
    /// that takes the run from now on finds it cancelled (a queued run ends
    /// unstarted), one executing it stops.
    fn cancel_early(&self, run: &RunId) {
        self.cancels
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(run.clone())
            .or_default()
            .cancel();
    }

    pub(super) fn check_running(&self) -> Result<(), RuntimeError> {
        if self.halt.is_cancelled() {
            Err(RuntimeError::ShuttingDown)
        } else {
            Ok(())
        }
    }
}
