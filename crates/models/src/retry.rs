//! The retry policy of the router: how often to retry a retryable error on
//! one target, and how long to wait in between (exponential backoff with
//! jitter, or the provider's `retry-after`).
//!
//! Owns only arithmetic. Must never sleep or call a provider itself.

use crate::error::ProviderError;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::time::Duration;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries per target (so `max_retries + 1` attempts), unless the
    /// provider's own configuration says otherwise.
    pub max_retries: u32,
    pub base_delay: Duration,
    /// No backoff is longer; a `retry-after` longer than this is not waited
    /// for: the router moves on to the next target instead.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 2,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(10),
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
}
