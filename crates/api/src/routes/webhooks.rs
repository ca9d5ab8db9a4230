//! `/v1/webhooks` and `/v1/notifications`: webhooks out. A webhook is a URL
//! Roster tells when runs finish, and a secret (shown once) each
//! notification is signed with: `X-Roster-Timestamp` (Unix seconds) and
//! `X-Roster-Signature` (`sha256=` + hex HMAC-SHA256 of `{timestamp}.{body}`),
//! the scheme a trigger checks on its deliveries. Runs, schedules and
//! agents name webhooks by id (`notify`). Notifications wait in a durable
//! outbox and are retried with backoff; every attempt is listed here.

use crate::auth::Principal;
use crate::error::ApiError;
use crate::extract::{Json, Path, Query};
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use roster_core::{NotificationId, RunId, WebhookId};
use roster_secrets::Secret;
use roster_store::notifications::{
    NewWebhook, Notification, NotificationQuery, NotificationStatus, Webhook,
};
use roster_store::NewAuditEvent;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhook {
    /// `http(s)://…`: where notifications are sent. The egress policy
    /// must allow its address (checked now and at every request).
    #[schema(min_length = 1, max_length = 2048)]
    pub url: String,
    /// What it is for.
    #[serde(default)]
    #[schema(max_length = 500)]
    pub description: String,
}

/// Fields to change.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateWebhook {
    /// A new URL, checked like a new webhook's; pending notifications go
    /// there.
    #[schema(min_length = 1, max_length = 2048)]
    pub url: Option<String>,
    #[schema(max_length = 500)]
    pub description: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct CreatedWebhook {
    #[serde(flatten)]
    pub webhook: Webhook,
    /// The signing secret. Shown only now: store it with the receiver.
    pub secret: String,
}

#[derive(Serialize, ToSchema)]
pub struct WebhookList {
    pub data: Vec<Webhook>,
}

#[derive(Serialize, ToSchema)]
pub struct NotificationList {
    pub data: Vec<Notification>,
    /// Pass as `before` for the next (older) page; absent on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_before: Option<NotificationId>,
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct NotificationParams {
    /// `pending`, `delivered` or `failed`.
    pub status: Option<String>,
    /// Older than this notification id.
    pub before: Option<String>,
    /// 1-200 (default 50).
    pub limit: Option<u32>,
}

fn query(
    params: &NotificationParams,
    webhook: Option<WebhookId>,
    run: Option<RunId>,
) -> Result<NotificationQuery, ApiError> {
    let limit = params.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::invalid("limit must be between 1 and 200"));
    }
    let status = match params.status.as_deref() {
        None => None,
        Some(raw) => Some(NotificationStatus::parse(raw).ok_or_else(|| {
            ApiError::invalid("status must be `pending`, `delivered` or `failed`")
        })?),
    };
    let before = match params.before.as_deref() {
        None => None,
        Some(raw) => Some(
            NotificationId::parse(raw)
                .ok_or_else(|| ApiError::invalid("before must be a notification id (ntf_…)"))?,
        ),
    };
    Ok(NotificationQuery {
        webhook,
        run,
        status,
        before,
        limit,
    })
}

/// One page of the tenant's notifications the query selects.
async fn page(
    state: &AppState,
    principal: &Principal,
    query: NotificationQuery,
) -> Result<NotificationList, ApiError> {
    let limit = query.limit;
    let data = state
        .store
        .list_notifications(&principal.tenant, query)
        .await?;
    let next_before = (data.len() == limit as usize)
        .then(|| data.last().map(|n| n.id.clone()))
        .flatten();
    Ok(NotificationList { data, next_before })
}

async fn find(state: &AppState, principal: &Principal, id: &str) -> Result<Webhook, ApiError> {
    let id = WebhookId::parse(id).ok_or_else(|| ApiError::not_found("webhook"))?;
    state
        .store
        .get_webhook(&principal.tenant, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("webhook"))
}

#[utoipa::path(post, path = "/v1/webhooks", tag = "webhooks", request_body = CreateWebhook,
    responses((status = 201, body = CreatedWebhook, description = "the webhook and its signing secret (shown once)"),
        (status = 400, body = crate::error::ErrorBody, description = "invalid_request: not an http(s) URL, credentials in it"),
        (status = 403, body = crate::error::ErrorBody, description = "egress_denied: the egress policy refuses its address"),
        (status = 503, body = crate::error::ErrorBody, description = "integrations_unavailable: no key to seal the secret with")))]
pub async fn create(
    State(state): State<AppState>,
    principal: Principal,
    Json(body): Json<CreateWebhook>,
) -> Result<(StatusCode, axum::Json<CreatedWebhook>), ApiError> {
    check_description(&body.description)?;
    let Some(integrations) = state.integrations.as_ref() else {
        return Err(ApiError::new(
            crate::codes::Code::IntegrationsUnavailable,
            "this server has no key to seal the webhook's secret with",
        ));
    };
    let url = checked(&integrations.egress, &body.url).await?;
    let secret = new_secret();
    let id = WebhookId::generate();
    let sealed = integrations.secrets.seal(
        &Secret::new(secret.clone()),
        &roster_notify::seal_context(&id),
    );
    let webhook = state
        .store
        .create_webhook(
            &principal.tenant,
            NewWebhook {
                id,
                url: url.clone(),
                description: body.description,
                secret_sealed: sealed,
                created_by: principal.label(),
            },
            NewAuditEvent {
                actor: principal.label(),
                action: "webhook.create".into(),
                resource: String::new(),
                decision: None,
                detail: json!({ "url": url }),
            },
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(CreatedWebhook { webhook, secret }),
    ))
}

#[utoipa::path(get, path = "/v1/webhooks", tag = "webhooks",
    responses((status = 200, body = WebhookList)))]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<axum::Json<WebhookList>, ApiError> {
    let data = state.store.list_webhooks(&principal.tenant).await?;
    Ok(axum::Json(WebhookList { data }))
}

#[utoipa::path(get, path = "/v1/webhooks/{id}", tag = "webhooks", params(("id" = String, Path)),
    responses((status = 200, body = Webhook), (status = 404, body = crate::error::ErrorBody)))]
pub async fn show(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<axum::Json<Webhook>, ApiError> {
    Ok(axum::Json(find(&state, &principal, &id).await?))
}

#[utoipa::path(patch, path = "/v1/webhooks/{id}", tag = "webhooks", params(("id" = String, Path)),
    request_body = UpdateWebhook,
    responses((status = 200, body = Webhook), (status = 400, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody, description = "egress_denied: the egress policy refuses the new address"),
        (status = 404, body = crate::error::ErrorBody),
        (status = 503, body = crate::error::ErrorBody, description = "integrations_unavailable: no egress policy to check the URL with")))]
pub async fn update(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    Json(body): Json<UpdateWebhook>,
) -> Result<axum::Json<Webhook>, ApiError> {
    let webhook = find(&state, &principal, &id).await?;
    let url = match &body.url {
        Some(raw) => {
            let Some(integrations) = state.integrations.as_ref() else {
                return Err(ApiError::new(
                    crate::codes::Code::IntegrationsUnavailable,
                    "this server has no egress policy to check the URL with",
                ));
            };
            checked(&integrations.egress, raw).await?
        }
        None => webhook.url.clone(),
    };
    let description = body.description.unwrap_or(webhook.description);
    check_description(&description)?;
    let audit = NewAuditEvent {
        actor: principal.label(),
        action: "webhook.update".into(),
        resource: format!("webhook:{}", webhook.id),
        decision: None,
        detail: json!({"url": url}),
    };
    state
        .store
        .update_webhook(&principal.tenant, &webhook.id, &url, &description, audit)
        .await?
        .map(axum::Json)
        .ok_or_else(|| ApiError::not_found("webhook"))
}

#[utoipa::path(delete, path = "/v1/webhooks/{id}", tag = "webhooks", params(("id" = String, Path)),
    responses((status = 204, description = "deleted; its pending notifications are not sent"),
        (status = 404, body = crate::error::ErrorBody)))]
pub async fn remove(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let webhook = find(&state, &principal, &id).await?;
    let audit = NewAuditEvent {
        actor: principal.label(),
        action: "webhook.delete".into(),
        resource: format!("webhook:{}", webhook.id),
        decision: None,
        detail: json!({"url": webhook.url}),
    };
    if state
        .store
        .delete_webhook(&principal.tenant, &webhook.id, audit)
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("webhook"))
    }
}

#[derive(Serialize, ToSchema)]
pub struct RotatedSecret {
    pub id: WebhookId,
    /// The new signing secret, shown only now; the old one stops working
    /// at once (notifications not yet sent are signed with the new one).
    pub secret: String,
}

#[utoipa::path(post, path = "/v1/webhooks/{id}/rotate-secret", tag = "webhooks", params(("id" = String, Path)),
    responses((status = 200, body = RotatedSecret), (status = 404, body = crate::error::ErrorBody),
        (status = 503, body = crate::error::ErrorBody, description = "integrations_unavailable: no key to seal the secret with")))]
pub async fn rotate_secret(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<axum::Json<RotatedSecret>, ApiError> {
    let webhook = find(&state, &principal, &id).await?;
    let Some(integrations) = state.integrations.as_ref() else {
        return Err(ApiError::new(
            crate::codes::Code::IntegrationsUnavailable,
            "this server has no key to seal the webhook's secret with",
        ));
    };
    let secret = new_secret();
    let sealed = integrations.secrets.seal(
        &Secret::new(secret.clone()),
        &roster_notify::seal_context(&webhook.id),
    );
    let audit = NewAuditEvent {
        actor: principal.label(),
        action: "webhook.rotate_secret".into(),
        resource: format!("webhook:{}", webhook.id),
        decision: None,
        detail: json!({}),
    };
    if !state
        .store
        .set_webhook_secret(&principal.tenant, &webhook.id, &sealed, audit)
        .await?
    {
        return Err(ApiError::not_found("webhook"));
    }
    Ok(axum::Json(RotatedSecret {
        id: webhook.id,
        secret,
    }))
}

/// The URL as it will be stored, or why it may not be.
async fn checked(egress: &roster_egress::EgressPolicy, raw: &str) -> Result<String, ApiError> {
    roster_notify::check_target(egress, raw.trim())
        .await
        .map(|url| url.to_string())
        .map_err(|e| match e {
            roster_notify::NotifyError::InvalidUrl(why) => ApiError::invalid(why),
            roster_notify::NotifyError::Egress(e) => e.into(),
        })
}

fn check_description(description: &str) -> Result<(), ApiError> {
    if description.chars().count() > 500 {
        return Err(ApiError::invalid(
            "`description` is longer than 500 characters",
        ));
    }
    Ok(())
}

fn new_secret() -> String {
    format!("whsec_{}", roster_secrets::SecretBox::generate_key())
}

#[utoipa::path(get, path = "/v1/webhooks/{id}/notifications", tag = "webhooks",
    params(("id" = String, Path), NotificationParams),
    responses((status = 200, body = NotificationList), (status = 400, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody)))]
pub async fn notifications(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    Query(params): Query<NotificationParams>,
) -> Result<axum::Json<NotificationList>, ApiError> {
    let webhook = find(&state, &principal, &id).await?;
    let query = query(&params, Some(webhook.id), None)?;
    Ok(axum::Json(page(&state, &principal, query).await?))
}

#[utoipa::path(get, path = "/v1/notifications/{id}", tag = "webhooks", params(("id" = String, Path)),
    responses((status = 200, body = Notification), (status = 404, body = crate::error::ErrorBody)))]
pub async fn show_notification(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<axum::Json<Notification>, ApiError> {
    let id = NotificationId::parse(&id).ok_or_else(|| ApiError::not_found("notification"))?;
    state
        .store
        .get_notification(&principal.tenant, &id)
        .await?
        .map(axum::Json)
        .ok_or_else(|| ApiError::not_found("notification"))
}

#[utoipa::path(post, path = "/v1/notifications/{id}/resend", tag = "webhooks", params(("id" = String, Path)),
    responses((status = 200, body = Notification, description = "pending again, due now (unchanged if it was pending)"),
        (status = 404, body = crate::error::ErrorBody),
        (status = 409, body = crate::error::ErrorBody, description = "conflict: its webhook was deleted")))]
pub async fn resend(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<axum::Json<Notification>, ApiError> {
    let id = NotificationId::parse(&id).ok_or_else(|| ApiError::not_found("notification"))?;
    let found = state
        .store
        .get_notification(&principal.tenant, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("notification"))?;
    if state
        .store
        .get_webhook(&principal.tenant, &found.webhook_id)
        .await?
        .is_none()
    {
        return Err(ApiError::new(
            crate::codes::Code::Conflict,
            "its webhook was deleted; nothing to send it to",
        ));
    }
    let audit = NewAuditEvent {
        actor: principal.label(),
        action: "notification.resend".into(),
        resource: format!("notification:{id}"),
        decision: None,
        detail: json!({"webhook": found.webhook_id, "run": found.run_id}),
    };
    let resent = state
        .store
        .resend_notification(&principal.tenant, &id, audit)
        .await?
        .ok_or_else(|| ApiError::not_found("notification"))?;
    state.runtime.outbox_wakeup().notify_one();
    Ok(axum::Json(resent))
}

#[utoipa::path(get, path = "/v1/runs/{id}/notifications", tag = "runs",
    params(("id" = String, Path), NotificationParams),
    responses((status = 200, body = NotificationList, description = "the notifications the run's end sent, with every attempt"),
        (status = 400, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn of_run(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    Query(params): Query<NotificationParams>,
) -> Result<axum::Json<NotificationList>, ApiError> {
    let run = super::runs::find(&state, &principal, &id).await?;
    let query = query(&params, None, Some(run.id))?;
    Ok(axum::Json(page(&state, &principal, query).await?))
}
