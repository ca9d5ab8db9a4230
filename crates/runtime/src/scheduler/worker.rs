//! The per-session worker: takes the session's runs one at a time, in
//! order, and drives each to its end; retries a run the store failed under
//! (resuming it from its journal), and exits when the queue is empty.

use super::Scheduler;
use crate::runner;
use roster_core::{RunId, SessionId, TenantId};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Delay before the worker retries its session's work after a store error,
/// doubling per consecutive failure up to [`MAX_RETRY_DELAY`]. It never gives
/// up: a run left `running` without a worker would strand its session (and
/// every waiting client) until the next start.
const RETRY_DELAY: Duration = Duration::from_millis(100);
const MAX_RETRY_DELAY: Duration = Duration::from_secs(30);
/// Most sessions one wake-up of the fair queue takes up.
const MAX_ADMITTED: u32 = 64;
/// Consecutive failures after which each further one is logged as an error.
const LOUD_AFTER: u32 = 5;

impl Scheduler {
    /// Makes sure a worker serves the session: starts one, or tells the live
    /// one to look at the queue again before it exits.
    pub(crate) fn kick(self: &Arc<Self>, tenant: &TenantId, session: &SessionId) {
        let key = (tenant.clone(), session.clone());
        let mut workers = self.workers.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(wakeups) = workers.get_mut(&key) {
            *wakeups += 1;
            return;
        }
        if self.halt.is_cancelled() {
            return;
        }
        workers.insert(key.clone(), 0);
        let inner = self.clone();
        let halt = self.halt.clone();
        self.tasks.spawn(async move {
            use futures::FutureExt;
            // A bug that panics must not leave the session marked as served
            // by a worker that is gone: nothing would ever run it again.
            let work = std::panic::AssertUnwindSafe(inner.clone().work(key.clone())).catch_unwind();
            tokio::select! {
                () = halt.cancelled() => {}
                outcome = work => {
                    if outcome.is_err() {
                        tracing::error!(session = %key.1, "the session's worker panicked; its runs resume at the next input or start");
                        inner.workers.lock().unwrap_or_else(|p| p.into_inner()).remove(&key);
                    }
                }
            }
        });
    }

    async fn work(self: Arc<Self>, key: (TenantId, SessionId)) {
        let (tenant, session) = &key;
        // Consecutive failures (a store error while executing a run or
        // reading the queue), and the run that failed last.
        let mut failures: u32 = 0;
        let mut failing: Option<RunId> = None;
        loop {
            let seen = self
                .workers
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&key)
                .copied();
            let error = match self.services.store.next_queued_run(tenant, session).await {
                Ok(Some(run)) => {
                    if failing.as_ref() != Some(&run.id) {
                        failures = 0;
                    }
                    // A token already here is a cancel that came first. It is
                    // kept across retries of the run, so a cancel is not lost.
                    let token = self
                        .cancels
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .entry(run.id.clone())
                        .or_default()
                        .clone();
                    self.services.bus.open(&run.id);
                    match runner::execute(&self.services, tenant, run.clone(), token).await {
                        Ok(runner::Outcome::Held) => {
                            if self.release_held(&run.id) {
                                // Cancelled meanwhile: taken again to end.
                                continue;
                            }
                            // A limit holds the session's next run: the
                            // worker leaves until a slot frees (a wake-up
                            // that came meanwhile sends it round again).
                            let mut workers =
                                self.workers.lock().unwrap_or_else(|p| p.into_inner());
                            if workers.get(&key).copied() == seen {
                                workers.remove(&key);
                                return;
                            }
                            continue;
                        }
                        Ok(runner::Outcome::Ended) => {
                            self.forget(&run.id);
                            // Its slot is free: the oldest runs a limit
                            // holds may start.
                            self.admit_waiting(Some(tenant)).await;
                            // A completed run may have queued extraction jobs.
                            self.kick_extraction();
                            failures = 0;
                            failing = None;
                            continue;
                        }
                        Err(e) => {
                            failing = Some(run.id.clone());
                            tracing::warn!(run = %run.id, error = %e, "run execution failed; it resumes from its journal");
                            e
                        }
                    }
                }
                Ok(None) => {
                    let mut workers = self.workers.lock().unwrap_or_else(|p| p.into_inner());
                    if workers.get(&key).copied() == seen {
                        workers.remove(&key);
                        return;
                    }
                    continue;
                }
                Err(e) => {
                    tracing::warn!(session = %session, error = %e, "cannot read the session's queue");
                    e.into()
                }
            };
            failures += 1;
            if failures >= LOUD_AFTER {
                tracing::error!(session = %session, failures, error = %error, "the session's work keeps failing; still retrying");
            }
            // Resuming replays the journal, so nothing done is done again.
            let delay = RETRY_DELAY
                .saturating_mul(2u32.saturating_pow(failures.saturating_sub(1).min(16)))
                .min(MAX_RETRY_DELAY);
            tokio::time::sleep(delay).await;
        }
    }

    /// Takes up the sessions whose next run a limit held and that may start
    /// now (of `tenant`, or of every tenant), oldest waiting first.
    pub(crate) async fn admit_waiting(self: &Arc<Self>, tenant: Option<&TenantId>) {
        match self
            .services
            .store
            .startable_held(tenant, MAX_ADMITTED)
            .await
        {
            Ok(sessions) => {
                for (tenant, session) in sessions {
                    self.kick(&tenant, &session);
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot read the runs waiting for a slot"),
        }
    }

    /// For a run a limit holds: drops its cancellation token, so a cancel
    /// from now on finds no worker and ends the queued run itself — unless
    /// a cancel already fired it (`true`: the worker takes the run again,
    /// and the runner ends it cancelled).
    fn release_held(&self, run: &RunId) -> bool {
        let mut cancels = self.cancels.lock().unwrap_or_else(|p| p.into_inner());
        if cancels
            .get(run)
            .is_some_and(CancellationToken::is_cancelled)
        {
            return true;
        }
        cancels.remove(run);
        false
    }

    /// Drops what the worker kept for a run it is done with.
    fn forget(&self, run: &RunId) {
        self.cancels
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(run);
        self.services.bus.close(run);
    }
}
