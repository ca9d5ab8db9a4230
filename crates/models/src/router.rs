//! The router: sends a request along a `ModelRoute`, retrying retryable
//! errors on each target and falling back to the next target, and reports
//! every attempt so the caller can write the usage ledger.
//!
//! Owns the retry/fallback decisions. Must never write the ledger itself or
//! keep state between calls.

use crate::error::ProviderError;
use crate::registry::ProviderRegistry;
use crate::request::{ChatRequest, ChatResponse, Usage};
use crate::retry::RetryPolicy;
use roster_core::route::{ModelRoute, RouteTarget};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One call to one target, successful or not.
#[derive(Clone, Debug, PartialEq)]
pub struct Attempt {
    pub provider: String,
    pub model: String,
    pub latency: Duration,
    pub usage: Option<Usage>,
    pub error: Option<ProviderError>,
}

#[derive(Clone, Debug)]
pub struct Router {
    registry: Arc<ProviderRegistry>,
    retry: RetryPolicy,
}

impl Router {
    pub fn new(registry: Arc<ProviderRegistry>, retry: RetryPolicy) -> Self {
        Self { registry, retry }
    }

    pub fn registry(&self) -> &Arc<ProviderRegistry> {
        &self.registry
    }

    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.retry
    }

    /// One pass through the route's targets, in order. Within a target,
    /// retryable errors are retried (provider's `max_retries`, else the
    /// policy's) after a backoff or the provider's `retry-after`; a
    /// `retry-after` beyond `max_delay` moves straight on. `BadRequest` and
    /// `ContextOverflow` are returned at once: another target would not fix
    /// the request. Everything else falls through to the next target; the
    /// last error is returned when all fail. [`Router::chat_patiently`]
    /// repeats such passes through an outage.
    ///
    /// Every attempt is reported to `on_attempt` as it finishes. Text already
    /// passed to `on_text` by an attempt that then failed is not taken back:
    /// a caller that streams should discard it when that attempt's report
    /// carries an error.
    pub async fn chat(
        &self,
        route: &ModelRoute,
        req: ChatRequest,
        on_text: &(dyn Fn(&str) + Send + Sync),
        on_attempt: &(dyn Fn(Attempt) + Send + Sync),
    ) -> Result<(ChatResponse, RouteTarget), ProviderError> {
        self.round(route, req, on_text, on_attempt)
            .await
            .map_err(|failure| failure.last)
    }

    /// [`Router::chat`], telling how a failed pass failed.
    pub(crate) async fn round(
        &self,
        route: &ModelRoute,
        mut req: ChatRequest,
        on_text: &(dyn Fn(&str) + Send + Sync),
        on_attempt: &(dyn Fn(Attempt) + Send + Sync),
    ) -> Result<(ChatResponse, RouteTarget), RoundFailure> {
        let mut failure = RoundFailure {
            last: ProviderError::BadRequest {
                message: "the route has no targets".to_owned(),
            },
            transient: None,
            attempts: 0,
            hopeless: false,
        };
        for target in &route.targets {
            let Some(provider) = self.registry.get(&target.provider) else {
                let error = ProviderError::UnknownProvider {
                    name: target.provider.clone(),
                };
                on_attempt(attempt(target, Duration::ZERO, Err(&error)));
                failure.last = error;
                continue;
            };
            let max_retries = provider.max_retries().unwrap_or(self.retry.max_retries);
            req.model.clone_from(&target.model);
            let mut retry = 0;
            loop {
                let mut in_flight = InFlight {
                    target,
                    started: Instant::now(),
                    on_attempt,
                    reported: false,
                };
                let result = provider.chat(&req, on_text).await;
                in_flight.reported = true;
                on_attempt(attempt(
                    target,
                    in_flight.started.elapsed(),
                    result.as_ref(),
                ));
                let error = match result {
                    Ok(response) => return Ok((response, target.clone())),
                    Err(error) => error,
                };
                failure.attempts += 1;
                // A wait through an outage logs each pass (`patience.rs`),
                // not each of its attempts.
                if error.is_retryable() {
                    tracing::debug!(target = %target, code = error.code(), retry, "model call failed");
                } else {
                    tracing::warn!(target = %target, code = error.code(), retry, "model call failed");
                }
                if matches!(
                    error,
                    ProviderError::BadRequest { .. } | ProviderError::ContextOverflow { .. }
                ) {
                    failure.last = error;
                    failure.hopeless = true;
                    return Err(failure);
                }
                if error.is_retryable() {
                    failure.transient = Some(error.clone());
                }
                let Some(wait) = self.retry.delay_after(&error, retry, max_retries) else {
                    failure.last = error;
                    break;
                };
                tokio::time::sleep(wait).await;
                retry += 1;
            }
        }
        Err(failure)
    }

    /// The patience of a call on `route`: the longest any of its targets'
    /// providers asks for, else the policy's.
    pub fn patience_for(&self, route: &ModelRoute) -> Duration {
        route
            .targets
            .iter()
            .filter_map(|t| self.registry.get(&t.provider)?.patience())
            .max()
            .unwrap_or(self.retry.patience)
    }
}

/// How one pass through a route failed.
#[derive(Debug)]
pub(crate) struct RoundFailure {
    /// The last target's error (what [`Router::chat`] returns).
    pub(crate) last: ProviderError,
    /// The last retryable error of the pass, if any target failed in a way
    /// that may pass: waiting is worth it only then.
    pub(crate) transient: Option<ProviderError>,
    /// Requests sent that failed.
    pub(crate) attempts: u32,
    /// The request itself is wrong: no wait or target can fix it.
    pub(crate) hopeless: bool,
}

/// Reports the attempt as `cancelled` if the caller drops the router's
/// future while a request is in flight, so the ledger still gets a row for a
/// call that was sent (and may be billed).
struct InFlight<'a> {
    target: &'a RouteTarget,
    started: Instant,
    on_attempt: &'a (dyn Fn(Attempt) + Send + Sync),
    reported: bool,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if !self.reported {
            (self.on_attempt)(attempt(
                self.target,
                self.started.elapsed(),
                Err(&ProviderError::Cancelled),
            ));
        }
    }
}

fn attempt(
    target: &RouteTarget,
    latency: Duration,
    result: Result<&ChatResponse, &ProviderError>,
) -> Attempt {
    Attempt {
        provider: target.provider.clone(),
        model: target.model.clone(),
        latency,
        usage: result.ok().map(|r| r.usage),
        error: result.err().cloned(),
    }
}
