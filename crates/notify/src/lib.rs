//! Notifications (webhooks out): telling another system that a run has
//! finished.
//!
//! Owns: the [`Sender`] that drains the store's outbox (rows the
//! transaction finishing a run added), the signature it puts on each
//! request ([`sign`], the same scheme a trigger checks on deliveries in),
//! the backoff between attempts ([`retry_delay`]), and the check a webhook
//! URL passes before it is stored ([`check_target`]).
//!
//! A receiver that is slow or down never slows a run: runs only add rows
//! to the outbox, and the sender works apart from them, each request in
//! its own task, at most [`NotifyOptions::concurrency`] at once, each cut
//! off at [`NotifyOptions::timeout`]. Every request goes through the
//! egress policy at connect time (DNS rebinding included) and follows no
//! redirect. Delivery is at least once: a sender that dies mid-request
//! leaves the row leased, and it is sent again when the lease ends; the
//! receiver deduplicates by `X-Roster-Delivery`.
//!
//! Must never: block on a receiver while holding a store transaction, or
//! send to an address the egress policy refuses.

use futures::StreamExt;
use hmac::{Hmac, Mac};
use roster_core::WebhookId;
use roster_egress::EgressPolicy;
use roster_secrets::SecretBox;
use roster_store::notifications::{Attempt, AttemptOutcome, DueNotification};
use roster_store::DynStore;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, Semaphore};

/// Longest URL accepted.
pub const MAX_URL_BYTES: usize = 2048;
/// Most of a refusing receiver's answer kept with the attempt.
const ERROR_EXCERPT_BYTES: usize = 300;

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// Not an http(s) URL Roster will send to; the message says why.
    #[error("{0}")]
    InvalidUrl(String),
    #[error(transparent)]
    Egress(#[from] roster_egress::EgressError),
}

/// How the sender works.
#[derive(Clone, Debug)]
pub struct NotifyOptions {
    /// Attempts before a notification is given up (`failed`).
    pub max_attempts: u32,
    /// Longest one request may take, connecting included.
    pub timeout: Duration,
    /// Wait before the second attempt; each later wait is three times the
    /// one before, up to `max_retry`.
    pub retry_base: Duration,
    pub max_retry: Duration,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// How often the outbox is read when nothing wakes the sender.
    pub poll: Duration,
}

impl Default for NotifyOptions {
    fn default() -> Self {
        Self {
            max_attempts: 8,
            timeout: Duration::from_secs(10),
            retry_base: Duration::from_secs(10),
            max_retry: Duration::from_secs(3600),
            concurrency: 16,
            poll: Duration::from_secs(1),
        }
    }
}

/// The context a webhook's secret is sealed in.
pub fn seal_context(id: &WebhookId) -> String {
    format!("webhook:{id}")
}

/// `sha256=` and the hex HMAC-SHA256 of `{timestamp}.{body}` keyed with
/// `secret`: what `X-Roster-Signature` carries.
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    // A key of any length is accepted by HMAC; this cannot fail.
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// The wait after attempt `n` (1 for the first) failed.
pub fn retry_delay(options: &NotifyOptions, n: u32) -> Duration {
    let factor = 3u32.saturating_pow(n.saturating_sub(1).min(20));
    options
        .retry_base
        .saturating_mul(factor)
        .min(options.max_retry)
}

/// Checks a webhook URL before it is stored: `http` or `https`, a host, no
/// credentials in it, and an address the egress policy allows now (it is
/// checked again at every request).
pub async fn check_target(egress: &EgressPolicy, raw: &str) -> Result<url::Url, NotifyError> {
    if raw.len() > MAX_URL_BYTES {
        return Err(NotifyError::InvalidUrl(format!(
            "the URL is longer than {MAX_URL_BYTES} bytes"
        )));
    }
    let url = url::Url::parse(raw)
        .map_err(|e| NotifyError::InvalidUrl(format!("`{raw}` is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(NotifyError::InvalidUrl(format!(
            "the URL must be http or https, not `{}`",
            url.scheme()
        )));
    }
    if url.host().is_none() {
        return Err(NotifyError::InvalidUrl("the URL has no host".into()));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(NotifyError::InvalidUrl(
            "the URL must not carry credentials; the signature proves the sender".into(),
        ));
    }
    if url.fragment().is_some() {
        return Err(NotifyError::InvalidUrl(
            "the URL must not have a #fragment".into(),
        ));
    }
    egress.check_url(&url).await?;
    Ok(url)
}

/// Drains the outbox. See the crate docs.
pub struct Sender {
    store: DynStore,
    secrets: SecretBox,
    egress: Arc<EgressPolicy>,
    options: NotifyOptions,
    wake: Arc<Notify>,
    /// One client per port: the egress resolver checks addresses at the
    /// port it was made for.
    clients: Mutex<HashMap<u16, reqwest::Client>>,
    slots: Arc<Semaphore>,
}

impl Sender {
    pub fn new(
        store: DynStore,
        secrets: SecretBox,
        egress: Arc<EgressPolicy>,
        options: NotifyOptions,
        wake: Arc<Notify>,
    ) -> Arc<Self> {
        let slots = Arc::new(Semaphore::new(options.concurrency.max(1)));
        Arc::new(Self {
            store,
            secrets,
            egress,
            options,
            wake,
            clients: Mutex::new(HashMap::new()),
            slots,
        })
    }

    /// Runs until the task is aborted.
    pub fn spawn(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let sender = self.clone();
        tokio::spawn(async move {
            loop {
                let started = match sender.pass().await {
                    Ok(n) => n,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot read the notification outbox");
                        0
                    }
                };
                if started > 0 && sender.slots.available_permits() > 0 {
                    continue;
                }
                tokio::select! {
                    () = sender.wake.notified() => {}
                    () = tokio::time::sleep(sender.options.poll) => {}
                }
            }
        })
    }

    /// Claims as many due notifications as there are free slots and starts
    /// sending each in its own task; returns how many it started.
    pub async fn pass(self: &Arc<Self>) -> Result<usize, roster_store::StoreError> {
        let free = self.slots.available_permits();
        if free == 0 {
            return Ok(0);
        }
        let now = chrono::Utc::now();
        // Long enough for the request and the write after it; a sender that
        // died meanwhile leaves it to be sent again after this.
        let lease = chrono::Duration::from_std(self.options.timeout * 2 + Duration::from_secs(30))
            .unwrap_or_else(|_| chrono::Duration::minutes(5));
        let due = self
            .store
            .claim_notifications(now, now + lease, u32::try_from(free).unwrap_or(u32::MAX))
            .await?;
        let started = due.len();
        for notification in due {
            let Ok(permit) = self.slots.clone().acquire_owned().await else {
                break;
            };
            let sender = self.clone();
            tokio::spawn(async move {
                sender.send(notification).await;
                drop(permit);
                sender.wake.notify_one();
            });
        }
        Ok(started)
    }

    /// Sends every due notification now and waits for the answers (tests and
    /// benchmarks); returns how many were tried.
    pub async fn drain(self: &Arc<Self>) -> Result<usize, roster_store::StoreError> {
        let now = chrono::Utc::now();
        let due = self
            .store
            .claim_notifications(now, now + chrono::Duration::minutes(5), 1000)
            .await?;
        let n = due.len();
        futures::stream::iter(due)
            .for_each_concurrent(self.options.concurrency.max(1), |d| self.send(d))
            .await;
        Ok(n)
    }

    fn client(&self, port: u16) -> Result<reqwest::Client, String> {
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(client) = clients.get(&port) {
            return Ok(client.clone());
        }
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(roster_egress::Resolver::new(self.egress.clone(), port))
            .no_proxy()
            .timeout(self.options.timeout)
            .connect_timeout(self.options.timeout)
            .user_agent(concat!("roster/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build an HTTP client: {e}"))?;
        clients.insert(port, client.clone());
        Ok(client)
    }

    async fn send(&self, due: DueNotification) {
        let n = due.attempts + 1;
        let started_at = chrono::Utc::now();
        let clock = Instant::now();
        let (status_code, error) = match self.request(&due, n).await {
            Ok(code) => (Some(code), None),
            Err((code, why)) => (code, Some(why)),
        };
        let delivered = error.is_none();
        let attempt = Attempt {
            n,
            started_at,
            duration_ms: u64::try_from(clock.elapsed().as_millis()).unwrap_or(u64::MAX),
            status_code,
            error,
        };
        let outcome = if delivered {
            AttemptOutcome::Delivered
        } else if n >= self.options.max_attempts {
            AttemptOutcome::GaveUp
        } else {
            let wait = chrono::Duration::from_std(retry_delay(&self.options, n))
                .unwrap_or_else(|_| chrono::Duration::hours(1));
            AttemptOutcome::RetryAt(chrono::Utc::now() + wait)
        };
        if let Err(e) = self
            .store
            .record_attempt(&due.tenant, &due.id, attempt, outcome)
            .await
        {
            // The lease runs out and the notification is sent again.
            tracing::warn!(notification = %due.id, error = %e, "cannot record a notification attempt");
        }
    }

    /// One request: `Ok` with the status when the receiver answered 2xx, else its status
    /// (if it answered) and why it does not count.
    async fn request(&self, due: &DueNotification, n: u32) -> Result<u16, (Option<u16>, String)> {
        let fail = |why: String| (None, why);
        let url = url::Url::parse(&due.url).map_err(|e| fail(format!("bad URL: {e}")))?;
        // IP literals are connected to without the resolver.
        self.egress
            .check_literal(&url)
            .map_err(|e| fail(format!("{}: {e}", e.code())))?;
        let secret = self
            .secrets
            .open(&due.secret_sealed, &seal_context(&due.webhook_id))
            .map_err(|e| fail(format!("cannot open the webhook's secret: {e}")))?;
        let port = url.port_or_known_default().unwrap_or(443);
        let client = self.client(port).map_err(fail)?;
        let timestamp = chrono::Utc::now().timestamp();
        let signature = sign(secret.expose(), timestamp, due.body.as_bytes());
        let response = client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("X-Roster-Event", due.event.as_str())
            .header("X-Roster-Delivery", due.id.as_str())
            .header("X-Roster-Attempt", n.to_string())
            .header("X-Roster-Timestamp", timestamp.to_string())
            .header("X-Roster-Signature", signature)
            .body(due.body.clone())
            .send()
            .await
            .map_err(|e| {
                fail(match roster_egress::find_in(&e) {
                    Some(refused) => format!("{}: {refused}", refused.code()),
                    None if e.is_timeout() => {
                        format!("no answer within {} ms", self.options.timeout.as_millis())
                    }
                    None => format!("cannot reach the receiver: {}", error_chain(&e)),
                })
            })?;
        let status = response.status();
        if status.is_success() {
            return Ok(status.as_u16());
        }
        let code = Some(status.as_u16());
        if status.is_redirection() {
            let to = response
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("nowhere");
            return Err((
                code,
                format!("HTTP {status}: redirects are not followed (to {to})"),
            ));
        }
        let excerpt = excerpt(response).await;
        Err((code, format!("HTTP {status}{excerpt}")))
    }
}

/// The start of a refusing receiver's answer, for the attempt's record.
async fn excerpt(response: reqwest::Response) -> String {
    let mut stream = response.bytes_stream();
    let mut body = Vec::new();
    while let Some(Ok(chunk)) = stream.next().await {
        body.extend_from_slice(&chunk);
        if body.len() >= ERROR_EXCERPT_BYTES {
            break;
        }
    }
    body.truncate(ERROR_EXCERPT_BYTES);
    let text = String::from_utf8_lossy(&body);
    let text = text.trim();
    if text.is_empty() {
        String::new()
    } else {
        format!(": {text}")
    }
}

fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_the_hmac_of_timestamp_and_body() {
        // HMAC-SHA256("key", "1.{}"), computed independently with Python's
        // hmac module.
        assert_eq!(
            sign("key", 1, b"{}"),
            "sha256=1ba6b8171186efc613e8bcc0cbdab2748f24984d7c5a84faa2637afa0e40d224"
        );
    }

    #[test]
    fn retries_wait_three_times_longer_each_time_up_to_the_cap() {
        let options = NotifyOptions {
            retry_base: Duration::from_secs(10),
            max_retry: Duration::from_secs(100),
            ..NotifyOptions::default()
        };
        assert_eq!(retry_delay(&options, 1), Duration::from_secs(10));
        assert_eq!(retry_delay(&options, 2), Duration::from_secs(30));
        assert_eq!(retry_delay(&options, 3), Duration::from_secs(90));
        assert_eq!(retry_delay(&options, 4), Duration::from_secs(100));
        assert_eq!(retry_delay(&options, 400), Duration::from_secs(100));
    }

    #[tokio::test]
    async fn targets_are_checked_before_they_are_stored() {
        let closed = EgressPolicy::new::<&str>(&[]).expect("policy");
        for (url, why) in [
            ("ftp://example.com/x", "http or https"),
            ("not a url", "not a URL"),
            ("https://user:pw@example.com/", "credentials"),
            ("http://127.0.0.1:9/hook", "127.0.0.1"),
            ("http://169.254.169.254/latest", "169.254.169.254"),
            ("http://[::1]:80/", "::1"),
            ("http://localhost:8080/", "localhost"),
        ] {
            let error = check_target(&closed, url).await.expect_err(url).to_string();
            assert!(error.contains(why), "{url}: {error}");
        }
        let open = EgressPolicy::new(&["127.0.0.1:9"]).expect("policy");
        assert!(check_target(&open, "http://127.0.0.1:9/hook").await.is_ok());
    }
}
