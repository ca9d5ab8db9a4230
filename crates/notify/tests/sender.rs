//! The sender against real receivers on loopback: a signed notification
//! arrives once and is recorded; a refusing or absent receiver is retried
//! with backoff and given up after the last attempt; addresses the egress
//! policy refuses are never reached, nor redirects followed.
#![allow(clippy::unwrap_used)]

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use roster_core::agent::{AgentConfig, NewAgent};
use roster_core::run::RunStatus;
use roster_core::{TenantId, WebhookId};
use roster_egress::EgressPolicy;
use roster_notify::{NotifyOptions, Sender};
use roster_secrets::{Secret, SecretBox};
use roster_store::notifications::{
    NewWebhook, Notification, NotificationQuery, NotificationStatus,
};
use roster_store::{CreatedRun, DynStore, JournalWrite, NewAuditEvent, NewRun, RunTransition};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const SECRET: &str = "whsec_test";

struct World {
    store: DynStore,
    secrets: SecretBox,
    tenant: TenantId,
    _dir: tempfile::TempDir,
}

async fn world() -> World {
    let dir = tempfile::tempdir().expect("dir");
    let store: DynStore = Arc::new(
        roster_store_sql::SqlStore::sqlite(&dir.path().join("roster.db"))
            .await
            .expect("store"),
    );
    let tenant = TenantId::generate();
    store.ensure_tenant(&tenant, "T").await.expect("tenant");
    let secrets = SecretBox::from_base64(&SecretBox::generate_key()).expect("key");
    World {
        store,
        secrets,
        tenant,
        _dir: dir,
    }
}

fn audit() -> NewAuditEvent {
    NewAuditEvent {
        actor: "test".into(),
        action: "webhook.create".into(),
        resource: String::new(),
        decision: None,
        detail: serde_json::json!({}),
    }
}

impl World {
    async fn webhook(&self, url: &str) -> WebhookId {
        let id = WebhookId::generate();
        let sealed = self
            .secrets
            .seal(&Secret::new(SECRET), &roster_notify::seal_context(&id));
        self.store
            .create_webhook(
                &self.tenant,
                NewWebhook {
                    id: id.clone(),
                    url: url.into(),
                    description: String::new(),
                    secret_sealed: sealed,
                    created_by: "test".into(),
                },
                audit(),
            )
            .await
            .expect("webhook")
            .id
    }

    /// A run naming `webhook`, finished: its notification is in the outbox.
    async fn finished_run(&self, webhook: &WebhookId) {
        let config: AgentConfig = serde_json::from_value(serde_json::json!({
            "instructions": "x", "model": "fake/model"
        }))
        .expect("config");
        let agent = self
            .store
            .create_agent(
                &self.tenant,
                NewAgent {
                    name: format!("a{}", &WebhookId::generate().as_str()[4..12]),
                    config,
                    memory_blocks: vec![],
                },
                "test",
            )
            .await
            .expect("agent");
        let session = self
            .store
            .create_session(&self.tenant, &agent.id, agent.version)
            .await
            .expect("session");
        let run = match self
            .store
            .create_run(
                &self.tenant,
                NewRun {
                    turn: Default::default(),
                    session_id: session.id.clone(),
                    input: "hi".into(),
                    idempotency_key: None,
                    if_busy: roster_store::BusyPolicy::Queue,
                    actor: Some("key:key_test".into()),
                    parent: None,
                    notify: vec![webhook.to_string()],
                },
            )
            .await
            .expect("run")
        {
            CreatedRun::Created(run) | CreatedRun::Existing(run) => run,
        };
        let mut finish = JournalWrite::new(run.id.clone(), session.id);
        finish.transition = Some(RunTransition::Finish {
            status: RunStatus::Completed,
            output: Some("all done".into()),
            error: None,
        });
        let committed = self
            .store
            .commit(&self.tenant, finish)
            .await
            .expect("finish");
        assert_eq!(committed.notifications, 1);
    }

    fn sender(&self, allow: &[String], options: NotifyOptions) -> Arc<Sender> {
        Sender::new(
            self.store.clone(),
            self.secrets.clone(),
            Arc::new(EgressPolicy::new(allow).expect("policy")),
            options,
            Arc::new(tokio::sync::Notify::new()),
        )
    }

    async fn only(&self) -> Notification {
        let mut all = self
            .store
            .list_notifications(
                &self.tenant,
                NotificationQuery {
                    limit: 10,
                    ..NotificationQuery::default()
                },
            )
            .await
            .expect("list");
        assert_eq!(all.len(), 1, "{all:?}");
        all.remove(0)
    }
}

fn fast() -> NotifyOptions {
    NotifyOptions {
        max_attempts: 3,
        timeout: Duration::from_millis(500),
        retry_base: Duration::from_millis(1),
        max_retry: Duration::from_millis(1),
        ..NotifyOptions::default()
    }
}

type Seen = Arc<Mutex<Vec<(HeaderMap, Bytes)>>>;

/// A receiver answering each request with the next of `answers` (the
/// last one repeated), recording what it got.
async fn receiver(answers: Vec<u16>) -> (String, Seen) {
    let seen: Seen = Arc::default();
    let record = seen.clone();
    let answers = Arc::new(answers);
    let app = axum::Router::new().route(
        "/hook",
        post(move |headers: HeaderMap, body: Bytes| {
            let record = record.clone();
            let answers = answers.clone();
            async move {
                let mut seen = record.lock().unwrap();
                seen.push((headers, body));
                let i = (seen.len() - 1).min(answers.len() - 1);
                StatusCode::from_u16(answers[i]).unwrap()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (address.to_string(), seen)
}

#[tokio::test]
async fn a_notification_arrives_signed_and_is_recorded_as_delivered() {
    let w = world().await;
    let (address, seen) = receiver(vec![204]).await;
    let hook = w.webhook(&format!("http://{address}/hook")).await;
    w.finished_run(&hook).await;
    let sender = w.sender(std::slice::from_ref(&address), fast());
    assert_eq!(sender.drain().await.expect("drain"), 1);
    // Delivered: nothing more is sent.
    assert_eq!(sender.drain().await.expect("drain"), 0);

    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    let (headers, body) = &seen[0];
    let header = |name: &str| headers.get(name).unwrap().to_str().unwrap().to_owned();
    let timestamp: i64 = header("x-roster-timestamp").parse().unwrap();
    assert!((chrono::Utc::now().timestamp() - timestamp).abs() < 60);
    assert_eq!(
        header("x-roster-signature"),
        roster_notify::sign(SECRET, timestamp, body)
    );
    assert_eq!(header("x-roster-event"), "run.finished");
    let sent: serde_json::Value = serde_json::from_slice(body).unwrap();
    assert_eq!(sent["type"], "run.finished");
    assert_eq!(sent["data"]["run"]["status"], "completed");
    assert_eq!(sent["data"]["run"]["output"], "all done");
    assert_eq!(sent["data"]["run"]["actor"], "key:key_test");
    assert_eq!(header("x-roster-delivery"), sent["id"].as_str().unwrap());

    let n = w.only().await;
    assert_eq!((n.status, n.attempts), (NotificationStatus::Delivered, 1));
    assert_eq!(n.attempt_log.len(), 1);
    assert_eq!(n.attempt_log[0].status_code, Some(204));
    assert!(n.delivered_at.is_some());
}

#[tokio::test]
async fn a_refusing_receiver_is_retried_until_it_accepts() {
    let w = world().await;
    let (address, seen) = receiver(vec![500, 503, 200]).await;
    let hook = w.webhook(&format!("http://{address}/hook")).await;
    w.finished_run(&hook).await;
    let sender = w.sender(std::slice::from_ref(&address), fast());
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(5)).await;
        sender.drain().await.expect("drain");
    }
    assert_eq!(seen.lock().unwrap().len(), 3);
    let n = w.only().await;
    assert_eq!((n.status, n.attempts), (NotificationStatus::Delivered, 3));
    let codes: Vec<_> = n.attempt_log.iter().map(|a| a.status_code).collect();
    assert_eq!(codes, [Some(500), Some(503), Some(200)]);
    assert!(n.attempt_log[0]
        .error
        .as_deref()
        .unwrap()
        .contains("HTTP 500"));
    // Each attempt carries its number, so a receiver can tell retries.
    let attempts: Vec<String> = seen
        .lock()
        .unwrap()
        .iter()
        .map(|(h, _)| {
            h.get("x-roster-attempt")
                .unwrap()
                .to_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(attempts, ["1", "2", "3"]);
}

#[tokio::test]
async fn a_receiver_that_is_down_is_given_up_after_the_last_attempt() {
    let w = world().await;
    // A port nothing listens on.
    let address = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let hook = w.webhook(&format!("http://{address}/hook")).await;
    w.finished_run(&hook).await;
    let sender = w.sender(std::slice::from_ref(&address), fast());
    sender.drain().await.expect("drain");
    let n = w.only().await;
    assert_eq!((n.status, n.attempts), (NotificationStatus::Pending, 1));
    assert!(n.next_attempt_at.is_some());
    assert!(
        n.last_error.as_deref().unwrap().contains("cannot reach"),
        "{n:?}"
    );
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(5)).await;
        sender.drain().await.expect("drain");
    }
    let n = w.only().await;
    assert_eq!((n.status, n.attempts), (NotificationStatus::Failed, 3));
    assert_eq!(n.attempt_log.len(), 3);
    assert!(n.next_attempt_at.is_none());
}

#[tokio::test]
async fn the_egress_policy_is_checked_at_every_request() {
    let w = world().await;
    let (address, seen) = receiver(vec![200]).await;
    // Stored while allowed (or by an older policy): the sender checks
    // again and never connects.
    let hook = w.webhook(&format!("http://{address}/hook")).await;
    w.finished_run(&hook).await;
    let closed = w.sender(&[], fast());
    closed.drain().await.expect("drain");
    assert!(seen.lock().unwrap().is_empty());
    let n = w.only().await;
    let error = n.last_error.clone().unwrap();
    assert!(error.starts_with("egress_denied"), "{error}");

    // A name that resolves to loopback is refused the same way.
    let w = world().await;
    let port = address.rsplit(':').next().unwrap();
    let hook = w.webhook(&format!("http://localhost:{port}/hook")).await;
    w.finished_run(&hook).await;
    w.sender(&[], fast()).drain().await.expect("drain");
    assert!(seen.lock().unwrap().is_empty());
    let error = w.only().await.last_error.unwrap();
    assert!(error.contains("egress_denied"), "{error}");
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let w = world().await;
    let (target, target_seen) = receiver(vec![200]).await;
    let app = axum::Router::new().route(
        "/hook",
        post(move || {
            let to = format!("http://{target}/hook");
            async move { (StatusCode::TEMPORARY_REDIRECT, [("location", to)]) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let hook = w.webhook(&format!("http://{address}/hook")).await;
    w.finished_run(&hook).await;
    w.sender(std::slice::from_ref(&address), fast())
        .drain()
        .await
        .expect("drain");
    assert!(target_seen.lock().unwrap().is_empty());
    let n = w.only().await;
    assert_eq!(n.attempt_log[0].status_code, Some(307));
    assert!(
        n.last_error.unwrap().contains("redirects are not followed"),
        "redirect recorded"
    );
}

#[tokio::test]
async fn a_deleted_webhook_gets_nothing_more() {
    let w = world().await;
    let (address, seen) = receiver(vec![200]).await;
    let hook = w.webhook(&format!("http://{address}/hook")).await;
    w.finished_run(&hook).await;
    assert!(w
        .store
        .delete_webhook(&w.tenant, &hook, audit())
        .await
        .expect("delete"));
    assert_eq!(
        w.sender(&[address], fast()).drain().await.expect("drain"),
        0
    );
    assert!(seen.lock().unwrap().is_empty());
    let n = w.only().await;
    assert_eq!(n.status, NotificationStatus::Failed);
    assert_eq!(n.last_error.as_deref(), Some("the webhook was deleted"));
}
