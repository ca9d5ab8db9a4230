//! The runtime handle and its per-session scheduler.
//!
//! One worker task per session with work: it takes the session's next run
//! (an interrupted `running` one first, then `queued` ones in order), drives
//! it to its end, and exits when the queue is empty. That is what keeps one
//! active run per session without locks in the store.

use crate::bus::{Bus, LiveEvent};
use crate::error::RuntimeError;
use crate::runner;
use crate::tools::ToolRegistry;
use roster_core::event::RunEvent;
use roster_core::run::{Run, RunStatus};
use roster_core::{RunId, SessionId, TenantId};
use roster_models::Router;
use roster_store::{
    BusyPolicy, CreatedRun, DynStore, JournalWrite, NewRun, RunTransition, StoreError,
};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

pub struct RuntimeOptions {
    pub store: DynStore,
    pub router: Arc<Router>,
    pub tools: ToolRegistry,
}

/// An input for a session.
#[derive(Clone, Debug)]
pub struct Submission {
    pub input: String,
    pub idempotency_key: Option<String>,
    pub if_busy: BusyPolicy,
}

/// Largest accepted input, in bytes.
pub const MAX_INPUT_BYTES: usize = 1 << 20;

#[derive(Clone)]
pub struct Runtime {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) store: DynStore,
    pub(crate) router: Arc<Router>,
    pub(crate) tools: ToolRegistry,
    pub(crate) bus: Bus,
    /// Sessions with a live worker, and a wake-up count the worker checks
    /// before it exits, so an input that lands as it exits is not stranded.
    workers: Mutex<HashMap<(TenantId, SessionId), u64>>,
    cancels: Mutex<HashMap<RunId, CancellationToken>>,
}

impl Runtime {
    pub fn new(options: RuntimeOptions) -> Self {
        Self {
            inner: Arc::new(Inner {
                store: options.store,
                router: options.router,
                tools: options.tools,
                bus: Bus::default(),
                workers: Mutex::new(HashMap::new()),
                cancels: Mutex::new(HashMap::new()),
            }),
        }
    }

    pub fn store(&self) -> &DynStore {
        &self.inner.store
    }

    pub fn tools(&self) -> &ToolRegistry {
        &self.inner.tools
    }

    /// Accepts an input: the run is durably queued before this returns.
    pub async fn submit(
        &self,
        tenant: &TenantId,
        session: &SessionId,
        submission: Submission,
    ) -> Result<CreatedRun, RuntimeError> {
        if submission.input.trim().is_empty() {
            return Err(RuntimeError::Invalid("content must not be empty".into()));
        }
        if submission.input.len() > MAX_INPUT_BYTES {
            return Err(RuntimeError::Invalid(format!(
                "content is longer than {MAX_INPUT_BYTES} bytes"
            )));
        }
        let created = self
            .inner
            .store
            .create_run(
                tenant,
                NewRun {
                    session_id: session.clone(),
                    input: submission.input,
                    idempotency_key: submission.idempotency_key,
                    if_busy: submission.if_busy,
                },
            )
            .await?;
        if let CreatedRun::Created(run) = &created {
            self.inner.bus.open(&run.id);
            self.inner.kick(tenant, session);
        }
        Ok(created)
    }

    /// Cancels a queued or running run and returns it as it ended.
    pub async fn cancel(&self, tenant: &TenantId, run_id: &RunId) -> Result<Run, RuntimeError> {
        let run = self
            .inner
            .store
            .get_run(tenant, run_id)
            .await?
            .ok_or(RuntimeError::NotFound("run"))?;
        if run.status.is_finished() {
            return Err(RuntimeError::AlreadyFinished(run_id.to_string()));
        }
        let token = self
            .inner
            .cancels
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(run_id)
            .cloned();
        match token {
            Some(token) => token.cancel(),
            None => {
                let mut write = JournalWrite::new(run.id.clone(), run.session_id.clone());
                write.transition = Some(RunTransition::Finish {
                    status: RunStatus::Cancelled,
                    output: None,
                    error: None,
                });
                match self.inner.store.commit(tenant, write).await {
                    Ok(committed) => {
                        self.inner.publish(&run.id, &committed.events);
                        self.inner.bus.close(&run.id);
                    }
                    // It finished or started meanwhile: fall through and report.
                    Err(StoreError::Conflict(_)) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        self.wait(tenant, run_id, Duration::from_secs(30)).await
    }

    /// Live events of a run active in this process, if it is.
    pub fn subscribe(&self, run: &RunId) -> Option<broadcast::Receiver<LiveEvent>> {
        self.inner.bus.subscribe(run)
    }

    /// Waits until the run has finished (or `limit` passes) and returns it.
    pub async fn wait(
        &self,
        tenant: &TenantId,
        run_id: &RunId,
        limit: Duration,
    ) -> Result<Run, RuntimeError> {
        let deadline = tokio::time::Instant::now() + limit;
        let mut live = self.subscribe(run_id);
        loop {
            let run = self
                .inner
                .store
                .get_run(tenant, run_id)
                .await?
                .ok_or(RuntimeError::NotFound("run"))?;
            if run.status.is_finished() || tokio::time::Instant::now() >= deadline {
                return Ok(run);
            }
            match live.as_mut() {
                Some(rx) => loop {
                    match tokio::time::timeout_at(deadline, rx.recv()).await {
                        Ok(Ok(LiveEvent {
                            event: RunEvent::RunFinished { .. },
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

    /// Resumes every unfinished run after a start; returns how many.
    pub async fn recover(&self) -> Result<usize, RuntimeError> {
        let runs = self.inner.store.unfinished_runs().await?;
        for (tenant, run) in &runs {
            self.inner.bus.open(&run.id);
            self.inner.kick(tenant, &run.session_id);
        }
        if !runs.is_empty() {
            tracing::info!(runs = runs.len(), "resuming unfinished runs");
        }
        Ok(runs.len())
    }
}

impl Inner {
    pub(crate) fn publish(&self, run: &RunId, events: &[roster_core::event::SequencedEvent]) {
        for e in events {
            self.bus.publish(
                run,
                LiveEvent {
                    seq: Some(e.seq),
                    event: e.event.clone(),
                },
            );
        }
    }

    fn kick(self: &Arc<Self>, tenant: &TenantId, session: &SessionId) {
        let key = (tenant.clone(), session.clone());
        let mut workers = self.workers.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(wakeups) = workers.get_mut(&key) {
            *wakeups += 1;
            return;
        }
        workers.insert(key.clone(), 0);
        let inner = self.clone();
        tokio::spawn(async move { inner.work(key).await });
    }

    async fn work(self: Arc<Self>, key: (TenantId, SessionId)) {
        let (tenant, session) = &key;
        let mut last_failed: Option<RunId> = None;
        loop {
            let seen = self
                .workers
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&key)
                .copied();
            match self.store.next_queued_run(tenant, session).await {
                Ok(Some(run)) => {
                    if last_failed.as_ref() == Some(&run.id) {
                        tracing::error!(run = %run.id, "run keeps failing to execute; leaving it for the next start");
                        break;
                    }
                    let token = CancellationToken::new();
                    self.cancels
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(run.id.clone(), token.clone());
                    self.bus.open(&run.id);
                    let result = runner::execute(&self, tenant, run.clone(), token).await;
                    self.cancels
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .remove(&run.id);
                    match result {
                        Ok(()) => last_failed = None,
                        Err(e) => {
                            tracing::error!(run = %run.id, error = %e, "run execution failed");
                            last_failed = Some(run.id.clone());
                        }
                    }
                    self.bus.close(&run.id);
                }
                Ok(None) => {
                    let mut workers = self.workers.lock().unwrap_or_else(|p| p.into_inner());
                    if workers.get(&key).copied() == seen {
                        workers.remove(&key);
                        return;
                    }
                }
                Err(e) => {
                    tracing::error!(session = %session, error = %e, "cannot read the session's queue");
                    break;
                }
            }
        }
        self.workers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&key);
    }
}
