//! When the OpenAI embedder retries a failed request and how long it waits:
//! exponential backoff with jitter, or the server's `retry-after`.
//!
//! Owns only the arithmetic and the reading of `retry-after` headers. Must
//! never sleep or send a request itself.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::time::Duration;

use reqwest::header::HeaderMap;

use crate::error::EmbedError;

/// How often and how patiently one `embed` call retries a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries per request, so at most `max_retries + 1` attempts.
    pub max_retries: u32,
    /// First backoff; doubles on every retry.
    pub base_delay: Duration,
    /// Cap of the backoff, and the longest `retry-after` waited for: a longer
    /// one fails the call at once with `RateLimited`, because a caller that
    /// can wait that long (an indexer) is better placed to do so than a
    /// request stuck inside one `embed` call.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 3,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(20),
        }
    }
}

impl RetryPolicy {
    /// Never retry: for callers that do their own.
    pub fn none() -> RetryPolicy {
        RetryPolicy {
            max_retries: 0,
            ..RetryPolicy::default()
        }
    }

    /// The wait before retry number `retry` (0 for the first) after `error`,
    /// or `None` when the error is final. Timeouts are final: a request that
    /// already used the whole timeout would make the call several times as
    /// long if repeated.
    pub(crate) fn delay_after(&self, error: &EmbedError, retry: u32) -> Option<Duration> {
        if retry >= self.max_retries {
            return None;
        }
        match error {
            EmbedError::RateLimited {
                retry_after: Some(wait),
            } => (*wait <= self.max_delay).then_some(*wait),
            EmbedError::RateLimited { retry_after: None } | EmbedError::Transport(_) => {
                Some(self.backoff(retry))
            }
            EmbedError::Http { status, .. } if *status >= 500 || *status == 408 => {
                Some(self.backoff(retry))
            }
            _ => None,
        }
    }

    /// `base_delay * 2^retry` capped at `max_delay`, its second half random so
    /// that clients rejected together do not come back together.
    fn backoff(&self, retry: u32) -> Duration {
        let full = self
            .base_delay
            .saturating_mul(2u32.saturating_pow(retry.min(20)))
            .min(self.max_delay);
        let half = full / 2;
        half + half.mul_f64(jitter())
    }
}

/// A number in `[0, 1)`, different on every call; spreading retries out needs
/// no better randomness than the per-process hash seed and the clock.
fn jitter() -> f64 {
    let bits = RandomState::new().hash_one(std::time::SystemTime::now());
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

/// The server's requested wait: `retry-after-ms` (OpenAI sends it), else
/// `retry-after` in seconds. The HTTP-date form is not read; backoff then
/// applies, which is only less polite.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let number = |name: &str| {
        headers
            .get(name)?
            .to_str()
            .ok()?
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite() && *v >= 0.0)
    };
    // `try_from`: an absurd value must not panic; it means "longer than we
    // will wait", which Duration::MAX says.
    let as_duration = |secs: f64| Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX);
    if let Some(ms) = number("retry-after-ms") {
        return Some(as_duration(ms / 1000.0));
    }
    number("retry-after").map(as_duration)
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_retries: 3,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(300),
        }
    }

    #[test]
    fn backoff_grows_is_capped_and_stops() {
        let p = policy();
        let err = EmbedError::Transport("reset".into());
        let first = p.delay_after(&err, 0).expect("retry");
        assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100));
        let third = p.delay_after(&err, 2).expect("retry");
        assert!(third >= Duration::from_millis(150) && third <= Duration::from_millis(300));
        assert_eq!(p.delay_after(&err, 3), None);
    }

    #[test]
    fn only_transient_errors_are_retried() {
        let p = policy();
        let http = |status| EmbedError::Http {
            status,
            message: String::new(),
        };
        assert!(p.delay_after(&http(503), 0).is_some());
        assert!(p.delay_after(&http(400), 0).is_none());
        assert!(p.delay_after(&http(401), 0).is_none());
        assert!(p.delay_after(&EmbedError::Timeout, 0).is_none());
        assert!(p
            .delay_after(&EmbedError::InvalidResponse(String::new()), 0)
            .is_none());
    }

    #[test]
    fn retry_after_is_honoured_up_to_the_cap() {
        let p = policy();
        let limited = |ms| EmbedError::RateLimited {
            retry_after: Some(Duration::from_millis(ms)),
        };
        assert_eq!(
            p.delay_after(&limited(250), 0),
            Some(Duration::from_millis(250))
        );
        assert_eq!(p.delay_after(&limited(5000), 0), None);
    }

    #[test]
    fn reads_both_retry_after_headers() {
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert("retry-after", HeaderValue::from_static("2"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(2)));
        h.insert("retry-after-ms", HeaderValue::from_static("150"));
        assert_eq!(retry_after(&h), Some(Duration::from_millis(150)));
        let mut h = HeaderMap::new();
        h.insert("retry-after", HeaderValue::from_static("1e300"));
        assert_eq!(retry_after(&h), Some(Duration::MAX));
        h.insert("retry-after", HeaderValue::from_static("-1"));
        assert_eq!(retry_after(&h), None);
    }
}
