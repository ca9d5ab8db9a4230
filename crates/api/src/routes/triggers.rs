//! `/v1/triggers`: webhooks in. A trigger gives another system a URL
//! (`POST /v1/hooks/{id}`) and a secret, shown once, to sign deliveries
//! with; each delivery's JSON becomes a run's input through the trigger's
//! template. See `hooks.rs` for what a delivery must carry.

use crate::auth::Principal;
use crate::error::ApiError;
use crate::extract::{Json, Path};
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use roster_core::TriggerId;
use roster_secrets::Secret;
use roster_store::triggers::{NewTrigger, Trigger};
use roster_store::NewAuditEvent;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

/// Longest template, in bytes.
const MAX_TEMPLATE_BYTES: usize = 20_000;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTrigger {
    /// The agent (id or name).
    pub agent: String,
    /// The run's input: `{{payload}}` is the delivered JSON, `{{payload.a.b}}`
    /// one value of it (text as is, anything else as JSON; absent: empty).
    #[schema(min_length = 1)]
    pub template: String,
    /// A session of the agent every delivery goes to; unset, each delivery
    /// starts a new session.
    pub session: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct TriggerView {
    #[serde(flatten)]
    pub trigger: Trigger,
    /// The agent's name.
    pub agent: String,
    /// Where deliveries go (a path on this server).
    pub url: String,
}

#[derive(Serialize, ToSchema)]
pub struct CreatedTrigger {
    #[serde(flatten)]
    pub view: TriggerView,
    /// The signing secret. Shown only now: store it with the sender.
    pub secret: String,
}

#[derive(Serialize, ToSchema)]
pub struct TriggerList {
    pub data: Vec<TriggerView>,
}

/// The context a trigger's secret is sealed in: a sealed value copied to
/// another trigger does not open.
pub(crate) fn seal_context(id: &TriggerId) -> String {
    format!("trigger:{id}")
}

async fn view(
    state: &AppState,
    principal: &Principal,
    trigger: Trigger,
) -> Result<TriggerView, ApiError> {
    let agent = super::agents::name_of(state, principal, &trigger.agent_id).await?;
    Ok(TriggerView {
        url: format!("/v1/hooks/{}", trigger.id),
        agent,
        trigger,
    })
}

async fn find(state: &AppState, principal: &Principal, id: &str) -> Result<Trigger, ApiError> {
    let id = TriggerId::parse(id).ok_or_else(|| ApiError::not_found("trigger"))?;
    state
        .store
        .get_trigger(&principal.tenant, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("trigger"))
}

#[utoipa::path(post, path = "/v1/triggers", tag = "triggers", request_body = CreateTrigger,
    responses((status = 201, body = CreatedTrigger, description = "the trigger, its hook URL and its secret (shown once)"),
        (status = 400, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody),
        (status = 503, body = crate::error::ErrorBody, description = "integrations_unavailable: no key to seal the secret with")))]
pub async fn create(
    State(state): State<AppState>,
    principal: Principal,
    Json(body): Json<CreateTrigger>,
) -> Result<(StatusCode, axum::Json<CreatedTrigger>), ApiError> {
    let agent = super::agents::find(&state, &principal, &body.agent).await?;
    if body.template.trim().is_empty() {
        return Err(ApiError::invalid("`template` must not be empty"));
    }
    if body.template.len() > MAX_TEMPLATE_BYTES {
        return Err(ApiError::invalid(format!(
            "`template` is longer than {MAX_TEMPLATE_BYTES} bytes"
        )));
    }
    let session_id = match body.session.as_deref() {
        Some(raw) => {
            let session = super::sessions::find(&state, &principal, raw).await?;
            if session.agent_id != agent.id {
                return Err(ApiError::invalid(format!(
                    "session {raw} belongs to another agent"
                )));
            }
            Some(session.id)
        }
        None => None,
    };
    let Some(integrations) = state.integrations.as_ref() else {
        return Err(ApiError::new(
            crate::codes::Code::IntegrationsUnavailable,
            "this server has no key to seal the trigger's secret with",
        ));
    };
    // The id is chosen here so the secret is sealed to it.
    let secret = format!("whsec_{}", roster_secrets::SecretBox::generate_key());
    let draft = TriggerId::generate();
    let sealed = integrations
        .secrets
        .seal(&Secret::new(secret.clone()), &seal_context(&draft));
    let trigger = state
        .store
        .create_trigger(
            &principal.tenant,
            NewTrigger {
                id: draft,
                agent_id: agent.id.clone(),
                template: body.template,
                session_id,
                secret_sealed: sealed,
                created_by: principal.label(),
                key_id: principal.key_id.clone(),
            },
            NewAuditEvent {
                actor: principal.label(),
                action: "trigger.create".into(),
                resource: String::new(),
                decision: None,
                detail: json!({"agent": agent.name}),
            },
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(CreatedTrigger {
            view: view(&state, &principal, trigger).await?,
            secret,
        }),
    ))
}

#[utoipa::path(get, path = "/v1/triggers", tag = "triggers",
    responses((status = 200, body = TriggerList)))]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<axum::Json<TriggerList>, ApiError> {
    let mut data = Vec::new();
    for trigger in state.store.list_triggers(&principal.tenant).await? {
        data.push(view(&state, &principal, trigger).await?);
    }
    Ok(axum::Json(TriggerList { data }))
}

#[utoipa::path(get, path = "/v1/triggers/{id}", tag = "triggers", params(("id" = String, Path)),
    responses((status = 200, body = TriggerView), (status = 404, body = crate::error::ErrorBody)))]
pub async fn show(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<axum::Json<TriggerView>, ApiError> {
    let trigger = find(&state, &principal, &id).await?;
    Ok(axum::Json(view(&state, &principal, trigger).await?))
}

#[utoipa::path(delete, path = "/v1/triggers/{id}", tag = "triggers", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = crate::error::ErrorBody)))]
pub async fn remove(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let trigger = find(&state, &principal, &id).await?;
    let audit = NewAuditEvent {
        actor: principal.label(),
        action: "trigger.delete".into(),
        resource: format!("trigger:{}", trigger.id),
        decision: None,
        detail: json!({}),
    };
    if state
        .store
        .delete_trigger(&principal.tenant, &trigger.id, audit)
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("trigger"))
    }
}
