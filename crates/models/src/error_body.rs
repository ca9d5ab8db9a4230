//! Reading what a provider says when it refuses: error bodies in their
//! common JSON shapes (or plain text) and the `retry-after` headers.
//!
//! Owns no classification: each provider maps status + body to a
//! `ProviderError` itself. Must never quote more than a short prefix of a
//! body into a message.

use reqwest::header::HeaderMap;
use std::time::Duration;

/// Longest slice of a response body quoted in an error message.
const MAX_QUOTED: usize = 500;

/// The first `MAX_QUOTED` characters of a body, for error messages.
pub(crate) fn quote(body: &str) -> String {
    let body = body.trim();
    match body.char_indices().nth(MAX_QUOTED) {
        Some((cut, _)) => format!("{}...", &body[..cut]),
        None => body.to_owned(),
    }
}

/// The useful parts of an error body in any of the common shapes:
/// `{"error":{"message","type","code"}}`, `{"error":"..."}`,
/// `{"message":"..."}`, `{"detail":"..."}`, or plain text.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct ErrorBody {
    pub message: String,
    pub kind: Option<String>,
    pub code: Option<String>,
}

impl ErrorBody {
    pub(crate) fn parse(body: &str) -> Self {
        let Ok(value) = serde_json::from_str::<serde_json::Value>(body) else {
            return Self {
                message: quote(body),
                ..Self::default()
            };
        };
        Self::from_value(&value).unwrap_or_else(|| Self {
            message: quote(body),
            ..Self::default()
        })
    }

    pub(crate) fn from_value(value: &serde_json::Value) -> Option<Self> {
        let text = |v: Option<&serde_json::Value>| match v? {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Null => None,
            other => Some(other.to_string()),
        };
        let inner = value.get("error").unwrap_or(value);
        if let Some(message) = inner.as_str() {
            return Some(Self {
                message: quote(message),
                ..Self::default()
            });
        }
        let message = text(inner.get("message")).or_else(|| text(inner.get("detail")))?;
        Some(Self {
            message: quote(&message),
            kind: text(inner.get("type")),
            code: text(inner.get("code")),
        })
    }

    /// `STATUS: message` for the error's text.
    pub(crate) fn describe(&self, status: reqwest::StatusCode) -> String {
        if self.message.is_empty() {
            status.to_string()
        } else {
            format!("{status}: {}", self.message)
        }
    }
}

/// `retry-after-ms`, else `retry-after` as seconds or an HTTP date.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    // `try_from`: a value too large for a Duration (a hostile or broken
    // header) must not panic; it is treated as "wait longer than we will".
    if let Some(ms) = header("retry-after-ms").and_then(|v| v.parse::<f64>().ok()) {
        if ms.is_finite() && ms >= 0.0 {
            return Some(Duration::try_from_secs_f64(ms / 1000.0).unwrap_or(Duration::MAX));
        }
    }
    let value = header("retry-after")?;
    if let Ok(secs) = value.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0)
            .then(|| Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let wait = at.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(wait.to_std().unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, HeaderValue::from_str(v).expect("valid"));
        }
        map
    }

    #[test]
    fn absurd_retry_after_values_do_not_panic() {
        for (name, value) in [("retry-after", "1e30"), ("retry-after-ms", "1e300")] {
            assert_eq!(retry_after(&headers(&[(name, value)])), Some(Duration::MAX));
        }
    }

    #[test]
    fn retry_after_forms() {
        assert_eq!(
            retry_after(&headers(&[("retry-after", "3")])),
            Some(Duration::from_secs(3))
        );
        assert_eq!(
            retry_after(&headers(&[("retry-after-ms", "250"), ("retry-after", "9")])),
            Some(Duration::from_millis(250))
        );
        let past = "Wed, 21 Oct 2015 07:28:00 GMT";
        assert_eq!(
            retry_after(&headers(&[("retry-after", past)])),
            Some(Duration::ZERO)
        );
        let future = (chrono::Utc::now() + chrono::Duration::seconds(30)).to_rfc2822();
        let wait = retry_after(&headers(&[("retry-after", &future)])).expect("date");
        assert!(
            wait > Duration::from_secs(25) && wait <= Duration::from_secs(30),
            "{wait:?}"
        );
        assert_eq!(retry_after(&headers(&[("retry-after", "soon")])), None);
        assert_eq!(retry_after(&HeaderMap::new()), None);
    }

    #[test]
    fn error_body_shapes() {
        let b = ErrorBody::parse(r#"{"error":{"message":"m","type":"t","code":"c"}}"#);
        assert_eq!(
            (b.message.as_str(), b.kind.as_deref(), b.code.as_deref()),
            ("m", Some("t"), Some("c"))
        );
        let b = ErrorBody::parse(r#"{"error":{"message":"m","code":429}}"#);
        assert_eq!(b.code.as_deref(), Some("429"));
        assert_eq!(ErrorBody::parse(r#"{"error":"plain"}"#).message, "plain");
        assert_eq!(ErrorBody::parse(r#"{"detail":"d"}"#).message, "d");
        assert_eq!(
            ErrorBody::parse("<html>oops</html>").message,
            "<html>oops</html>"
        );
        let long = "x".repeat(2000);
        assert!(ErrorBody::parse(&long).message.len() < 600);
    }
}
