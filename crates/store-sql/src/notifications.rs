//! Webhooks and the notification outbox. See
//! [`roster_store::notifications`].

use super::{Conn, Row};
use chrono::{DateTime, Utc};
use roster_core::run::{RunError, RunStatus};
use roster_core::{NotificationId, RunId, SessionId, TenantId, WebhookId};
use roster_store::notifications::{
    Attempt, AttemptOutcome, DueNotification, NewWebhook, Notification, NotificationQuery,
    NotificationStatus, Webhook,
};
use roster_store::{from_millis, millis, NewAuditEvent, StoreError};
use serde_json::json;

type Result<T> = std::result::Result<T, StoreError>;

const WEBHOOK_COLUMNS: &str = "id, url, description, created_by, created_at";
const NOTIFICATION_COLUMNS: &str = "id, webhook_id, run_id, event, status, attempts, next_attempt_at, last_error, created_at, delivered_at, body";
/// Longest run output a notification carries; a longer one is cut there.
const MAX_OUTPUT_BYTES: usize = 64 * 1024;

fn webhook(row: &Row<'_>) -> Result<Webhook> {
    Ok(Webhook {
        id: WebhookId::from_stored(row.get(0)?),
        url: row.get(1)?,
        description: row.get(2)?,
        created_by: row.get(3)?,
        created_at: row.time(4)?,
    })
}

fn notification(row: &Row<'_>) -> Result<Notification> {
    let status: String = row.get(4)?;
    let body: String = row.get(10)?;
    Ok(Notification {
        id: NotificationId::from_stored(row.get(0)?),
        webhook_id: WebhookId::from_stored(row.get(1)?),
        run_id: RunId::from_stored(row.get(2)?),
        event: row.get(3)?,
        status: NotificationStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("notification status `{status}`")))?,
        attempts: row.u32(5, "attempts")?,
        next_attempt_at: row.opt_time(6)?,
        last_error: row.get(7)?,
        created_at: row.time(8)?,
        delivered_at: row.opt_time(9)?,
        body: serde_json::from_str(&body).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        attempt_log: Vec::new(),
    })
}

/// How a run ended, for the notifications its finishing write adds.
pub(crate) struct Finished<'a> {
    pub run: &'a str,
    pub session: &'a SessionId,
    pub status: RunStatus,
    pub output: Option<&'a str>,
    pub error: Option<&'a RunError>,
    pub actor: Option<&'a str>,
    pub parent: Option<&'a str>,
    pub at: i64,
}

fn ids(raw: Option<String>) -> Result<Vec<String>> {
    raw.map_or(Ok(Vec::new()), |raw| {
        serde_json::from_str(&raw).map_err(|e| StoreError::Corrupt(e.to_string()))
    })
}

fn cut(text: &str, max: usize) -> (&str, bool) {
    if text.len() <= max {
        return (text, false);
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    (&text[..end], true)
}

/// Adds a `run.finished` notification for each live webhook the run or its
/// agent names, inside the transaction that finishes the run: a run that
/// finished is notified, one that did not is not. Returns how many.
pub(crate) async fn enqueue(
    c: &mut Conn<'_>,
    tenant: &TenantId,
    finished: &Finished<'_>,
) -> Result<usize> {
    let found: Option<(Option<String>, Option<String>, String, String)> = c
        .opt(
            crate::sql!(
                "SELECT r.notify, a.notify, a.id, a.name FROM runs r
                 JOIN sessions s ON s.id = r.session_id AND s.tenant_id = r.tenant_id
                 JOIN agents a ON a.id = s.agent_id AND a.tenant_id = s.tenant_id
                 WHERE r.id = $1 AND r.tenant_id = $2"
            ),
            crate::args![finished.run, tenant],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)),
        )
        .await?;
    let Some((run_notify, agent_notify, agent_id, agent_name)) = found else {
        return Ok(0);
    };
    if run_notify.is_none() && agent_notify.is_none() {
        return Ok(0);
    }
    let mut targets = ids(run_notify)?;
    for id in ids(agent_notify)? {
        if !targets.contains(&id) {
            targets.push(id);
        }
    }
    let (output, truncated) = match finished.output {
        Some(output) => {
            let (cut, truncated) = cut(output, MAX_OUTPUT_BYTES);
            (Some(cut), truncated)
        }
        None => (None, false),
    };
    let mut added = 0;
    for webhook in targets {
        let live: Option<String> = c
            .opt(
                crate::sql!(
                    "SELECT id FROM webhooks WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL"
                ),
                crate::args![tenant, webhook.as_str()],
                |row| row.get(0),
            )
            .await?;
        if live.is_none() {
            continue;
        }
        let id = NotificationId::generate();
        let body = json!({
            "id": id,
            "type": "run.finished",
            "created_at": from_millis(finished.at),
            "tenant_id": tenant,
            "webhook_id": webhook,
            "data": {
                "run": {
                    "id": finished.run,
                    "session_id": finished.session,
                    "agent_id": agent_id,
                    "agent": agent_name,
                    "status": finished.status,
                    "output": output,
                    "output_truncated": truncated,
                    "error": finished.error,
                    "actor": finished.actor,
                    "parent_run_id": finished.parent,
                    "finished_at": from_millis(finished.at),
                }
            }
        });
        c.exec(
            crate::sql!(
                "INSERT INTO notifications (id, tenant_id, webhook_id, run_id, event, body, status, attempts, next_attempt_at, created_at)
                 VALUES ($1, $2, $3, $4, 'run.finished', $5, 'pending', 0, $6, $6)"
            ),
            crate::args![
                &id,
                tenant,
                webhook.as_str(),
                finished.run,
                body.to_string().as_str(),
                finished.at
            ],
        )
        .await?;
        added += 1;
    }
    Ok(added)
}

async fn create(
    c: &mut Conn<'_>,
    tenant: &TenantId,
    new: &NewWebhook,
    audit: &NewAuditEvent,
) -> Result<Webhook> {
    c.exec(
        crate::sql!(
            "INSERT INTO webhooks (id, tenant_id, url, description, secret_sealed, created_by, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)"
        ),
        crate::args![
            &new.id,
            tenant,
            new.url.as_str(),
            new.description.as_str(),
            new.secret_sealed.as_str(),
            new.created_by.as_str(),
            millis(Utc::now())
        ],
    )
    .await?;
    let mut audit = audit.clone();
    audit.resource = format!("webhook:{}", new.id);
    super::audit::append(c, tenant, std::slice::from_ref(&audit)).await?;
    get(c, tenant, &new.id)
        .await?
        .ok_or_else(|| StoreError::NotFound("webhook".into()))
}

async fn get(c: &mut Conn<'_>, tenant: &TenantId, id: &WebhookId) -> Result<Option<Webhook>> {
    Ok(c.opt(
        crate::sql!("SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL"),
        crate::args![tenant, id],
        webhook,
    )
    .await?)
}

async fn delete(
    c: &mut Conn<'_>,
    tenant: &TenantId,
    id: &WebhookId,
    audit: &NewAuditEvent,
) -> Result<bool> {
    let now = millis(Utc::now());
    let n = c
        .exec(
            crate::sql!("UPDATE webhooks SET deleted_at = $3 WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL"),
            crate::args![tenant, id, now],
        )
        .await?;
    if n == 0 {
        return Ok(false);
    }
    c.exec(
        crate::sql!(
            "UPDATE notifications SET status = 'failed', next_attempt_at = NULL, leased_until = NULL,
             last_error = 'the webhook was deleted' WHERE tenant_id = $1 AND webhook_id = $2 AND status = 'pending'"
        ),
        crate::args![tenant, id],
    )
    .await?;
    super::audit::append(c, tenant, std::slice::from_ref(audit)).await?;
    Ok(true)
}

async fn update(
    c: &mut Conn<'_>,
    tenant: &TenantId,
    id: &WebhookId,
    url: &str,
    description: &str,
    audit: &NewAuditEvent,
) -> Result<Option<Webhook>> {
    let n = c
        .exec(
            crate::sql!("UPDATE webhooks SET url = $3, description = $4 WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL"),
            crate::args![tenant, id, url, description],
        )
        .await?;
    if n == 0 {
        return Ok(None);
    }
    super::audit::append(c, tenant, std::slice::from_ref(audit)).await?;
    get(c, tenant, id).await
}

async fn set_secret(
    c: &mut Conn<'_>,
    tenant: &TenantId,
    id: &WebhookId,
    sealed: &str,
    audit: &NewAuditEvent,
) -> Result<bool> {
    let n = c
        .exec(
            crate::sql!("UPDATE webhooks SET secret_sealed = $3 WHERE tenant_id = $1 AND id = $2 AND deleted_at IS NULL"),
            crate::args![tenant, id, sealed],
        )
        .await?;
    if n > 0 {
        super::audit::append(c, tenant, std::slice::from_ref(audit)).await?;
    }
    Ok(n > 0)
}

async fn with_attempts(
    c: &mut Conn<'_>,
    tenant: &TenantId,
    mut list: Vec<Notification>,
) -> Result<Vec<Notification>> {
    for n in &mut list {
        n.attempt_log = c
            .all(
                crate::sql!(
                    "SELECT n, started_at, duration_ms, status_code, error FROM notification_attempts
                     WHERE notification_id = $1 AND tenant_id = $2 ORDER BY n"
                ),
                crate::args![&n.id, tenant],
                |row| {
                    Ok(Attempt {
                        n: row.u32(0, "n")?,
                        started_at: row.time(1)?,
                        duration_ms: u64::try_from(row.get::<i64>(2)?).unwrap_or(0),
                        status_code: row
                            .get::<Option<i64>>(3)?
                            .and_then(|s| u16::try_from(s).ok()),
                        error: row.get(4)?,
                    })
                },
            )
            .await?;
    }
    Ok(list)
}

async fn list(
    c: &mut Conn<'_>,
    tenant: &TenantId,
    q: &NotificationQuery,
) -> Result<Vec<Notification>> {
    let found = c
        .all(
            crate::sql!(
                "SELECT {NOTIFICATION_COLUMNS} FROM notifications
                 WHERE tenant_id = $1 AND ($2 IS NULL OR webhook_id = $2) AND ($3 IS NULL OR run_id = $3)
                   AND ($4 IS NULL OR status = $4) AND ($5 IS NULL OR id < $5)
                 ORDER BY id DESC LIMIT $6"
            ),
            crate::args![
                tenant,
                q.webhook.as_ref(),
                q.run.as_ref(),
                q.status.map(NotificationStatus::as_str),
                q.before.as_ref(),
                i64::from(q.limit)
            ],
            notification,
        )
        .await?;
    with_attempts(c, tenant, found).await
}

async fn one(
    c: &mut Conn<'_>,
    tenant: &TenantId,
    id: &NotificationId,
) -> Result<Option<Notification>> {
    let found = c
        .opt(
            crate::sql!(
                "SELECT {NOTIFICATION_COLUMNS} FROM notifications WHERE tenant_id = $1 AND id = $2"
            ),
            crate::args![tenant, id],
            notification,
        )
        .await?;
    Ok(with_attempts(c, tenant, found.into_iter().collect())
        .await?
        .pop())
}

async fn claim(
    c: &mut Conn<'_>,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
    limit: u32,
) -> Result<Vec<DueNotification>> {
    let now = millis(now);
    let due = c
        .all(
            crate::sql!(
                "SELECT n.tenant_id, n.id, n.webhook_id, w.url, w.secret_sealed, n.event, n.body, n.attempts
                 FROM notifications n JOIN webhooks w ON w.id = n.webhook_id AND w.tenant_id = n.tenant_id
                 WHERE n.status = 'pending' AND n.next_attempt_at <= $1
                   AND (n.leased_until IS NULL OR n.leased_until < $1)
                 ORDER BY n.next_attempt_at LIMIT $2 FOR UPDATE OF n SKIP LOCKED"
            ),
            crate::args![now, i64::from(limit)],
            |row| {
                Ok(DueNotification {
                    tenant: TenantId::from_stored(row.get(0)?),
                    id: NotificationId::from_stored(row.get(1)?),
                    webhook_id: WebhookId::from_stored(row.get(2)?),
                    url: row.get(3)?,
                    secret_sealed: row.get(4)?,
                    event: row.get(5)?,
                    body: row.get(6)?,
                    attempts: row.u32(7, "attempts")?,
                })
            },
        )
        .await?;
    for d in &due {
        c.exec(
            crate::sql!(
                "UPDATE notifications SET leased_until = $3 WHERE id = $1 AND tenant_id = $2"
            ),
            crate::args![&d.id, &d.tenant, millis(lease_until)],
        )
        .await?;
    }
    Ok(due)
}

async fn record(
    c: &mut Conn<'_>,
    tenant: &TenantId,
    id: &NotificationId,
    attempt: &Attempt,
    outcome: &AttemptOutcome,
) -> Result<()> {
    c.exec(
        crate::sql!(
            // Not for a notification deleted meanwhile (with its session).
            "INSERT INTO notification_attempts (notification_id, n, tenant_id, started_at, duration_ms, status_code, error)
             SELECT $1, $2, $3, $4, $5, $6, $7 WHERE EXISTS (SELECT 1 FROM notifications WHERE id = $1 AND tenant_id = $3)
             ON CONFLICT (notification_id, n) DO NOTHING"
        ),
        crate::args![
            id,
            i64::from(attempt.n),
            tenant,
            millis(attempt.started_at),
            i64::try_from(attempt.duration_ms).unwrap_or(i64::MAX),
            attempt.status_code.map(i64::from),
            attempt.error.as_deref()
        ],
    )
    .await?;
    let (status, next, delivered) = match outcome {
        AttemptOutcome::Delivered => ("delivered", None, Some(millis(attempt.started_at))),
        AttemptOutcome::RetryAt(at) => ("pending", Some(millis(*at)), None),
        AttemptOutcome::GaveUp => ("failed", None, None),
    };
    // Only a pending one moves: a webhook deleted meanwhile keeps its note.
    c.exec(
        crate::sql!(
            "UPDATE notifications SET status = $3, attempts = $4, next_attempt_at = $5, delivered_at = $6,
             last_error = $7, leased_until = NULL WHERE id = $1 AND tenant_id = $2 AND status = 'pending'"
        ),
        crate::args![
            id,
            tenant,
            status,
            i64::from(attempt.n),
            next,
            delivered,
            attempt.error.as_deref()
        ],
    )
    .await?;
    Ok(())
}

async fn resend(
    c: &mut Conn<'_>,
    tenant: &TenantId,
    id: &NotificationId,
    audit: &NewAuditEvent,
) -> Result<Option<Notification>> {
    let n = c
        .exec(
            crate::sql!(
                "UPDATE notifications SET status = 'pending', next_attempt_at = $3, leased_until = NULL
                 WHERE tenant_id = $1 AND id = $2 AND status <> 'pending'
                   AND webhook_id IN (SELECT id FROM webhooks WHERE tenant_id = $1 AND deleted_at IS NULL)"
            ),
            crate::args![tenant, id, millis(Utc::now())],
        )
        .await?;
    if n > 0 {
        super::audit::append(c, tenant, std::slice::from_ref(audit)).await?;
    }
    one(c, tenant, id).await
}

crate::store_impl! {
    impl roster_store::notifications::NotificationStore {
        write create_webhook(tenant: &TenantId, webhook: NewWebhook, audit: NewAuditEvent) -> Webhook =
            |c| create(c, &tenant, &webhook, &audit).await;
        read get_webhook(tenant: &TenantId, id: &WebhookId) -> Option<Webhook> = |c| get(c, &tenant, &id).await;
        read list_webhooks(tenant: &TenantId) -> Vec<Webhook> = |c| c.all(
            crate::sql!("SELECT {WEBHOOK_COLUMNS} FROM webhooks WHERE tenant_id = $1 AND deleted_at IS NULL ORDER BY id"),
            crate::args![&tenant], webhook).await;
        write delete_webhook(tenant: &TenantId, id: &WebhookId, audit: NewAuditEvent) -> bool =
            |c| delete(c, &tenant, &id, &audit).await;
        write update_webhook(tenant: &TenantId, id: &WebhookId, url: &str, description: &str, audit: NewAuditEvent) -> Option<Webhook> =
            |c| update(c, &tenant, &id, &url, &description, &audit).await;
        write set_webhook_secret(tenant: &TenantId, id: &WebhookId, secret_sealed: &str, audit: NewAuditEvent) -> bool =
            |c| set_secret(c, &tenant, &id, &secret_sealed, &audit).await;
        read list_notifications(tenant: &TenantId, query: NotificationQuery) -> Vec<Notification> =
            |c| list(c, &tenant, &query).await;
        read get_notification(tenant: &TenantId, id: &NotificationId) -> Option<Notification> =
            |c| one(c, &tenant, &id).await;
        write claim_notifications(now: DateTime<Utc>, lease_until: DateTime<Utc>, limit: u32) -> Vec<DueNotification> =
            |c| claim(c, now, lease_until, limit).await;
        write record_attempt(tenant: &TenantId, id: &NotificationId, attempt: Attempt, outcome: AttemptOutcome) -> () =
            |c| record(c, &tenant, &id, &attempt, &outcome).await;
        write resend_notification(tenant: &TenantId, id: &NotificationId, audit: NewAuditEvent) -> Option<Notification> =
            |c| resend(c, &tenant, &id, &audit).await;
    }
}
