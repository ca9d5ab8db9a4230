//! The turn's model call, waiting out provider outages.
//!
//! The router repeats passes through the route while the provider fails
//! transiently (`Router::chat_patiently`); between passes this module's
//! pause journals the wait on the run (when it began, the next attempt,
//! when the patience ends, the last error) with the failed attempts' ledger
//! rows and a `waiting` event, then sleeps. The run stays `running`: it
//! holds its session and resumes on its own. A cancel drops the call, and
//! with it the sleep. After a crash the runner hands the stored wait back
//! to the router, which sleeps until the planned attempt and keeps the
//! patience clock where it was.

use super::RunState;
use crate::error::RuntimeError;
use roster_core::event::RunEvent;
use roster_core::ledger::NewLedgerEntry;
use roster_core::route::{ModelRoute, RouteTarget};
use roster_core::run::{RunError, RunWait, WAITING_FOR_PROVIDER};
use roster_models::{Attempt, ChatRequest, ChatResponse, Outage, Pause, ProviderError};
use roster_store::{StoreError, WaitWrite};
use std::sync::Mutex;

/// How the turn's model call ended.
pub(super) enum Called {
    /// The run was cancelled meanwhile.
    Cancelled,
    /// Failed for good: no wait could fix it, or the patience ran out.
    Failed(RunError),
    Answered {
        response: ChatResponse,
        target: RouteTarget,
        /// The run had waited: the answer's commit ends the wait.
        waited: bool,
    },
}

impl RunState<'_> {
    /// Calls the model for step `n`, waiting out outages; returns how it
    /// ended and the ledger rows of the attempts not yet journaled.
    pub(super) async fn call_patiently(
        &mut self,
        route: &ModelRoute,
        request: ChatRequest,
        n: i64,
    ) -> Result<(Called, Vec<NewLedgerEntry>), RuntimeError> {
        let services = self.services;
        let run_id = self.run.id.clone();
        let cancel = self.cancel.clone();
        // A stored wait is always the pending model call's: an answer or the
        // run's end clears it.
        let mut outage = self.run.waiting.as_ref().map(outage_of);
        let patience = services.router.patience_for(route);
        let attempts: Mutex<Vec<Attempt>> = Mutex::new(Vec::new());
        // The pieces the answer streams in, kept with it so a replay of the
        // run streams it the same way (see `RunEvent::Item::chunks`).
        let chunks: Mutex<Vec<u32>> = Mutex::new(Vec::new());
        let on_text = |delta: &str| {
            chunks
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(u32::try_from(delta.len()).unwrap_or(u32::MAX));
            services.bus.publish(
                &run_id,
                crate::LiveEvent {
                    seq: None,
                    event: RunEvent::TextDelta {
                        step: n,
                        delta: delta.to_owned(),
                    },
                },
            );
        };
        let on_attempt = |a: Attempt| {
            if a.error.is_some() {
                // Whatever that attempt streamed will not be the answer.
                chunks.lock().unwrap_or_else(|p| p.into_inner()).clear();
                services.bus.publish(
                    &run_id,
                    crate::LiveEvent {
                        seq: None,
                        event: RunEvent::TextReset { step: n },
                    },
                );
            }
            attempts.lock().unwrap_or_else(|p| p.into_inner()).push(a);
        };
        let pending = std::mem::take(&mut self.pending_ledger);
        let mut pause = RunPause {
            state: &*self,
            step: n,
            attempts: &attempts,
            pending,
            failed: None,
            resumed: self.run.waiting.clone().map(|w| RunWait { step: n, ..w }),
        };
        let outcome = tokio::select! {
            result = services.router.chat_patiently(
                route, request, &on_text, &on_attempt, patience, &mut outage, &mut pause,
            ) => Some(result),
            () = cancel.cancelled() => None,
        };
        let RunPause {
            pending, failed, ..
        } = pause;
        self.pending_ledger = pending;
        if let Some(error) = failed {
            return Err(error.into());
        }
        let ledger = attempts
            .into_inner()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|a| self.ledger_entry(a, n))
            .collect();
        let called = match outcome {
            None | Some(Err(ProviderError::Cancelled)) => Called::Cancelled,
            Some(Err(error)) => Called::Failed(failure(&error, outage.as_ref())),
            Some(Ok((response, target))) => {
                self.run.waiting = None;
                let chunks = chunks.into_inner().unwrap_or_else(|p| p.into_inner());
                let streamed: u64 = chunks.iter().map(|&n| u64::from(n)).sum();
                self.text_chunks = if streamed == response.text.len() as u64 {
                    chunks
                } else {
                    Vec::new()
                };
                Called::Answered {
                    response,
                    target,
                    waited: outage.is_some(),
                }
            }
        };
        Ok((called, ledger))
    }
}

/// Journals each wait of one model call, then sleeps through it.
struct RunPause<'s, 'a> {
    state: &'s RunState<'a>,
    step: i64,
    attempts: &'s Mutex<Vec<Attempt>>,
    /// Ledger rows waiting for the next commit (the first wait takes them).
    pending: Vec<NewLedgerEntry>,
    /// A journal write failed: the call stops and the run resumes later.
    failed: Option<StoreError>,
    /// The wait found stored when the run resumed, shown as it was.
    resumed: Option<RunWait>,
}

#[async_trait::async_trait]
impl Pause for RunPause<'_, '_> {
    async fn pause(&mut self, outage: &Outage) -> bool {
        let state = self.state;
        let failed: Vec<Attempt> =
            std::mem::take(&mut *self.attempts.lock().unwrap_or_else(|p| p.into_inner()));
        let mut write = state.journal();
        write.ledger = std::mem::take(&mut self.pending);
        write
            .ledger
            .extend(failed.iter().map(|a| state.ledger_entry(a, self.step)));
        let wait = match self.resumed.take() {
            // The stored error reads best as it was stored.
            Some(stored) if stored.rounds == outage.rounds => RunWait {
                next_attempt_at: outage.next_attempt_at,
                ..stored
            },
            _ => wait_of(outage, self.step),
        };
        write.wait = Some(WaitWrite::Set(wait.clone()));
        write.events = vec![RunEvent::Waiting { wait }];
        match state.services.store.commit(state.tenant, write).await {
            Ok(committed) => state
                .services
                .publish(state.tenant, &state.run.id, &committed),
            Err(error) => {
                self.failed = Some(error);
                return false;
            }
        }
        roster_models::sleep_until(outage.next_attempt_at).await;
        true
    }
}

/// The stored form of a wait.
fn wait_of(outage: &Outage, step: i64) -> RunWait {
    RunWait {
        waiting_for: WAITING_FOR_PROVIDER.to_owned(),
        step,
        since: outage.since,
        next_attempt_at: outage.next_attempt_at,
        gives_up_at: outage.gives_up_at,
        attempts: outage.attempts,
        rounds: outage.rounds,
        last_error: RunError::new(outage.last_error.code(), outage.last_error.to_string()),
    }
}

/// A stored wait as the router's outage, to resume it.
fn outage_of(wait: &RunWait) -> Outage {
    let last_error = ProviderError::from_stored(&wait.last_error.code, &wait.last_error.message)
        .unwrap_or_else(|| ProviderError::Transient {
            message: wait.last_error.message.clone(),
        });
    Outage {
        since: wait.since,
        gives_up_at: wait.gives_up_at,
        attempts: wait.attempts,
        rounds: wait.rounds,
        last_error,
        next_attempt_at: wait.next_attempt_at,
    }
}

/// The run's error for a call that failed for good; after a wait it says
/// how long the provider kept failing and how to try again.
fn failure(error: &ProviderError, outage: Option<&Outage>) -> RunError {
    let Some(outage) = outage else {
        return RunError::new(error.code(), error.to_string());
    };
    let spent = (chrono::Utc::now() - outage.since).num_seconds().max(0);
    RunError::new(
        error.code(),
        format!(
            "{error} (the provider kept failing for {}m{:02}s over {} attempts; the run can be retried from its journal: `roster run retry` or POST /v1/runs/{{id}}/retry)",
            spent / 60,
            spent % 60,
            outage.attempts
        ),
    )
}
