//! The per-session worker: takes the session's runs one at a time, in
//! order, and drives each to its end; retries a run the store failed under
//! (resuming it from its journal), and exits when the queue is empty.

use super::Inner;
use crate::runner;
use roster_core::{RunId, SessionId, TenantId};
use std::sync::Arc;
use std::time::Duration;

/// Tries a worker gives its session's work (executing the next run, reading
/// the queue) when the store fails, with doubling delays from
/// [`RETRY_DELAY`], before it leaves it for the next input or start.
const EXECUTE_ATTEMPTS: u32 = 5;
const RETRY_DELAY: Duration = Duration::from_millis(100);

impl Inner {
    /// Makes sure a worker serves the session: starts one, or tells the live
    /// one to look at the queue again before it exits.
    pub(super) fn kick(self: &Arc<Self>, tenant: &TenantId, session: &SessionId) {
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
            tokio::select! {
                () = halt.cancelled() => {}
                () = inner.work(key) => {}
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
            let error = match self.store.next_queued_run(tenant, session).await {
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
                    self.bus.open(&run.id);
                    match runner::execute(&self, tenant, run.clone(), token).await {
                        Ok(()) => {
                            self.forget(&run.id);
                            failures = 0;
                            failing = None;
                            continue;
                        }
                        Err(e) => {
                            failing = Some(run.id.clone());
                            if failures + 1 >= EXECUTE_ATTEMPTS {
                                self.forget(&run.id);
                            }
                            tracing::warn!(run = %run.id, error = %e, "run execution failed");
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
            if failures >= EXECUTE_ATTEMPTS {
                tracing::error!(session = %session, error = %error, "the session's work keeps failing; leaving it for its next input or the next start");
                break;
            }
            // Resuming replays the journal, so nothing done is done again.
            tokio::time::sleep(RETRY_DELAY * 2u32.pow(failures - 1)).await;
        }
        self.workers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&key);
    }

    /// Drops what the worker kept for a run it is done with.
    fn forget(&self, run: &RunId) {
        self.cancels
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(run);
        self.bus.close(run);
    }
}
