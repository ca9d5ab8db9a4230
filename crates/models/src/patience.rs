//! Patience: a model call that keeps going through a provider outage.
//! Passes through the route (each with the router's quick retries and
//! fallbacks) are repeated with a growing, jittered backoff, honouring
//! `retry-after`, until a target answers or the patience, counted from the
//! call's first failure, runs out.
//!
//! The wait between passes belongs to the caller ([`Pause`]): the runtime
//! records it durably and shows it before it sleeps, and stops waiting by
//! dropping the call. The [`Outage`] is plain data, so a caller that
//! restarts can hand back the one it recorded and the clock goes on where
//! it was. Owns no clock but the wall clock's `now`, and never the store.

use crate::error::ProviderError;
use crate::request::{ChatRequest, ChatResponse};
use crate::router::{Attempt, Router};
use chrono::{DateTime, Utc};
use roster_core::route::{ModelRoute, RouteTarget};
use std::sync::Mutex;
use std::time::Duration;

/// A model call's failures since it first failed.
#[derive(Clone, Debug, PartialEq)]
pub struct Outage {
    /// When the call first failed (wall clock: a caller persists it).
    pub since: DateTime<Utc>,
    /// When the patience runs out.
    pub gives_up_at: DateTime<Utc>,
    /// Failed requests so far, on every target.
    pub attempts: u32,
    /// Failed passes through the route so far.
    pub rounds: u32,
    /// The error the wait is for: the last retryable one of the last pass.
    pub last_error: ProviderError,
    /// When the next pass starts.
    pub next_attempt_at: DateTime<Utc>,
}

impl Outage {
    /// The outage of a call that first failed at `since` with `error`.
    pub fn begin(since: DateTime<Utc>, patience: Duration, error: ProviderError) -> Self {
        let gives_up_at = chrono::Duration::from_std(patience)
            .ok()
            .and_then(|d| since.checked_add_signed(d))
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        Self {
            since,
            gives_up_at,
            attempts: 0,
            rounds: 0,
            last_error: error,
            next_attempt_at: since,
        }
    }
}

/// The caller's part of a wait between passes.
#[async_trait::async_trait]
pub trait Pause: Send {
    /// The route failed for now and is tried again at
    /// `outage.next_attempt_at`: return when it is time. Return `false` to
    /// stop (the call then fails with [`ProviderError::Cancelled`]).
    async fn pause(&mut self, outage: &Outage) -> bool;
}

/// A [`Pause`] that only sleeps.
pub struct Sleep;

#[async_trait::async_trait]
impl Pause for Sleep {
    async fn pause(&mut self, outage: &Outage) -> bool {
        sleep_until(outage.next_attempt_at).await;
        true
    }
}

/// Sleeps until the wall clock reaches `at` (at once if it has).
pub async fn sleep_until(at: DateTime<Utc>) {
    let wait = (at - Utc::now()).to_std().unwrap_or(Duration::ZERO);
    tokio::time::sleep(wait).await;
}

impl Router {
    /// Like [`Router::chat`], but a call whose pass fails in a way that
    /// may pass (connection refused, 5xx, timeout, 429) waits and tries
    /// again, for `patience` from its first failure. `outage` carries an
    /// earlier wait of this same call (a restart resumes it: it first
    /// pauses until its `next_attempt_at`) and ends holding the last one.
    /// Errors no wait can fix (bad request, context overflow, auth, an
    /// unknown provider on every target) are returned at once.
    #[allow(clippy::too_many_arguments)]
    pub async fn chat_patiently(
        &self,
        route: &ModelRoute,
        req: ChatRequest,
        on_text: &(dyn Fn(&str) + Send + Sync),
        on_attempt: &(dyn Fn(Attempt) + Send + Sync),
        patience: Duration,
        outage: &mut Option<Outage>,
        pause: &mut dyn Pause,
    ) -> Result<(ChatResponse, RouteTarget), ProviderError> {
        if let Some(resumed) = outage.as_ref() {
            if resumed.next_attempt_at > Utc::now() && !pause.pause(resumed).await {
                return Err(ProviderError::Cancelled);
            }
        }
        loop {
            let first_failure: Mutex<Option<DateTime<Utc>>> = Mutex::new(None);
            let failed_in_round = std::sync::atomic::AtomicU32::new(0);
            let noting = |a: Attempt| {
                if a.error.is_some() {
                    let mut first = first_failure.lock().unwrap_or_else(|p| p.into_inner());
                    first.get_or_insert_with(Utc::now);
                    failed_in_round.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                on_attempt(a);
            };
            let failure = match self.round(route, req.clone(), on_text, &noting).await {
                Ok(answer) => {
                    // A pass that failed before it got through (a retry
                    // within the pass) failed during the outage too.
                    if let Some(current) = outage.as_mut() {
                        current.attempts = current
                            .attempts
                            .saturating_add(failed_in_round.into_inner());
                    }
                    return Ok(answer);
                }
                Err(failure) => failure,
            };
            if failure.hopeless {
                return Err(failure.last);
            }
            let Some(error) = failure.transient else {
                return Err(failure.last);
            };
            let now = Utc::now();
            let started = first_failure
                .into_inner()
                .unwrap_or_else(|p| p.into_inner())
                .unwrap_or(now);
            let current =
                outage.get_or_insert_with(|| Outage::begin(started, patience, error.clone()));
            current.attempts = current.attempts.saturating_add(failure.attempts);
            current.rounds = current.rounds.saturating_add(1);
            current.last_error = error;
            let Some(at) = self.retry_policy().next_attempt(current, now) else {
                tracing::warn!(
                    error = %current.last_error,
                    attempts = current.attempts,
                    since = %current.since,
                    "model provider unavailable; giving up"
                );
                return Err(current.last_error.clone());
            };
            current.next_attempt_at = at;
            tracing::warn!(
                error = %current.last_error,
                attempts = current.attempts,
                next_attempt_at = %at,
                gives_up_at = %current.gives_up_at,
                "model provider unavailable; waiting to try again"
            );
            if !pause.pause(current).await {
                return Err(ProviderError::Cancelled);
            }
        }
    }
}
