//! The retry policy of the router: how often to retry a retryable error on
//! one target, how long to wait in between (exponential backoff with
//! jitter, or the provider's `retry-after`), and how long a call keeps
//! going through an outage (its patience) and when it tries next.
//!
//! Owns only arithmetic. Must never sleep or call a provider itself.

use crate::error::ProviderError;
use crate::patience::Outage;
use chrono::{DateTime, Utc};
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::time::Duration;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries per target (so `max_retries + 1` attempts), unless the
    /// provider's own configuration says otherwise.
    pub max_retries: u32,
    pub base_delay: Duration,
    /// No backoff is longer; within a pass through the route, a
    /// `retry-after` longer than this is not waited for: the router moves on
    /// to the next target instead.
    pub max_delay: Duration,
    /// How long a call keeps trying through an outage, counted from its
    /// first failure, unless a provider of the route asks for longer
    /// (`ModelProvider::patience`). Zero: one pass, then the error.
    pub patience: Duration,
}

/// Ten minutes: long enough for a provider's usual incident or a rate
/// limit's window, short enough that a person still cares about the answer.
pub const DEFAULT_PATIENCE: Duration = Duration::from_secs(600);

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 2,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(30),
            patience: DEFAULT_PATIENCE,
        }
    }
}

impl RetryPolicy {
    /// The wait before retry number `retry` (0 for the first retry):
    /// `base_delay * 2^retry`, capped at `max_delay`, of which the second half
    /// is random.
    pub fn backoff(&self, retry: u32) -> Duration {
        let factor = 2u32.saturating_pow(retry.min(20));
        let full = self.base_delay.saturating_mul(factor).min(self.max_delay);
        let half = full / 2;
        half + half.mul_f64(jitter())
    }

    /// How long to wait before retrying after `error`, or `None` when the
    /// error must not be retried on this target (not retryable, or a
    /// `retry-after` beyond `max_delay`). `retry` counts retries already made.
    pub(crate) fn delay_after(
        &self,
        error: &ProviderError,
        retry: u32,
        max_retries: u32,
    ) -> Option<Duration> {
        if !error.is_retryable() || retry >= max_retries {
            return None;
        }
        match error {
            ProviderError::RateLimited {
                retry_after: Some(wait),
                ..
            } => (*wait <= self.max_delay).then_some(*wait),
            _ => Some(self.backoff(retry)),
        }
    }
}

impl RetryPolicy {
    /// When a call whose pass through the route failed should try again:
    /// after a backoff that grows with the passes made (`outage.rounds`),
    /// or later if the provider's `retry-after` says so; never after the
    /// patience ends (the last attempt is made then). `None`: give up now,
    /// because the error is not one that passes, the patience is spent, or
    /// the provider asks to wait beyond it.
    pub fn next_attempt(&self, outage: &Outage, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if !outage.last_error.is_retryable() || now >= outage.gives_up_at {
            return None;
        }
        let mut wait = self.backoff(outage.rounds.saturating_sub(1));
        if let ProviderError::RateLimited {
            retry_after: Some(asked),
            ..
        } = &outage.last_error
        {
            let asked_until = chrono::Duration::from_std(*asked)
                .ok()
                .and_then(|d| now.checked_add_signed(d));
            if asked_until.is_none_or(|at| at > outage.gives_up_at) {
                return None;
            }
            wait = wait.max(*asked);
        }
        let at = chrono::Duration::from_std(wait)
            .ok()
            .and_then(|d| now.checked_add_signed(d))
            .unwrap_or(outage.gives_up_at);
        Some(at.min(outage.gives_up_at))
    }
}

/// A number in `[0, 1)`, different on every call. Jitter only spreads
/// retries out; it need not be a good random number.
fn jitter() -> f64 {
    let bits = RandomState::new().hash_one(std::time::SystemTime::now());
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let policy = RetryPolicy {
            max_retries: 5,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(500),
            patience: Duration::ZERO,
        };
        for _ in 0..50 {
            let first = policy.backoff(0);
            assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100));
            let third = policy.backoff(2);
            assert!(third >= Duration::from_millis(200) && third <= Duration::from_millis(400));
            assert!(policy.backoff(30) <= Duration::from_millis(500));
        }
    }

    #[test]
    fn retry_after_is_honoured_up_to_max_delay() {
        let policy = RetryPolicy::default();
        let limited = |secs| ProviderError::RateLimited {
            retry_after: Some(Duration::from_secs(secs)),
            message: String::new(),
        };
        assert_eq!(
            policy.delay_after(&limited(3), 0, 2),
            Some(Duration::from_secs(3))
        );
        assert_eq!(policy.delay_after(&limited(60), 0, 2), None);
        assert_eq!(
            policy.delay_after(&limited(1), 2, 2),
            None,
            "retries exhausted"
        );
        let bad = ProviderError::BadRequest {
            message: String::new(),
        };
        assert_eq!(policy.delay_after(&bad, 0, 2), None);
    }

    #[test]
    fn next_attempt_backs_off_honours_retry_after_and_stops_at_the_patience() {
        let policy = RetryPolicy {
            max_retries: 0,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(8),
            patience: Duration::from_secs(60),
        };
        let since = Utc::now();
        let transient = ProviderError::Transient {
            message: String::new(),
        };
        let mut outage = Outage::begin(since, policy.patience, transient);
        outage.rounds = 1;
        let first = policy.next_attempt(&outage, since).expect("waits");
        assert!(first >= since + chrono::Duration::milliseconds(500));
        assert!(first <= since + chrono::Duration::seconds(1));
        outage.rounds = 10;
        let capped = policy.next_attempt(&outage, since).expect("waits");
        assert!(capped <= since + chrono::Duration::seconds(8));

        // Near the end, the last attempt is made when the patience ends.
        let late = since + chrono::Duration::seconds(59);
        assert_eq!(policy.next_attempt(&outage, late), Some(outage.gives_up_at));
        assert_eq!(policy.next_attempt(&outage, outage.gives_up_at), None);

        outage.last_error = ProviderError::RateLimited {
            retry_after: Some(Duration::from_secs(20)),
            message: String::new(),
        };
        let asked = policy.next_attempt(&outage, since).expect("waits");
        assert_eq!(asked, since + chrono::Duration::seconds(20));
        outage.last_error = ProviderError::RateLimited {
            retry_after: Some(Duration::from_secs(61)),
            message: String::new(),
        };
        assert_eq!(
            policy.next_attempt(&outage, since),
            None,
            "past the patience"
        );

        outage.last_error = ProviderError::Auth {
            message: String::new(),
        };
        assert_eq!(policy.next_attempt(&outage, since), None, "not transient");
    }
}
