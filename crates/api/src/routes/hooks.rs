//! `POST /v1/hooks/{id}`: a delivery to a trigger. No API key: the sender
//! proves it holds the trigger's secret.
//!
//! - `X-Roster-Timestamp`: Unix seconds; refused outside ±5 minutes of the
//!   server's clock, so a captured delivery cannot be replayed later.
//! - `X-Roster-Signature`: `sha256=` and the hex HMAC-SHA256, keyed with
//!   the secret, of `{timestamp}.{body}`.
//! - `X-Roster-Delivery` (optional): the sender's id of this delivery; a
//!   retry with the same id starts nothing more (200 with the first run).
//!   Without it the signature stands for the delivery, so an identical
//!   resend is also one delivery.
//!
//! The body must be JSON, at most 256 KiB. A refused delivery (bad or
//! missing signature, stale timestamp, too large, not JSON) starts nothing;
//! one for an existing trigger is recorded in its tenant's audit log. An
//! unknown hook answers as a bad signature does, so ids cannot be probed.
//! Each hook takes at most 10 deliveries a second (bursts of 20), refused
//! or not: past that, `429 rate_limited` with `Retry-After`.

use crate::codes::Code;
use crate::error::ApiError;
use crate::extract::Path;
use crate::AppState;
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use roster_core::TriggerId;
use roster_store::triggers::HookTarget;
use roster_store::NewAuditEvent;
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::Instant;
use utoipa::ToSchema;

/// Largest delivery body.
pub const MAX_HOOK_BYTES: usize = 256 * 1024;
/// How far a delivery's timestamp may be from the server's clock.
pub const TOLERANCE_SECS: i64 = 300;
const RATE_PER_SEC: f64 = 10.0;
const BURST: f64 = 20.0;
/// Hooks whose buckets are remembered; older ones are dropped past this.
const TRACKED_HOOKS: usize = 10_000;

#[derive(Serialize, ToSchema)]
pub struct HookAccepted {
    pub run_id: roster_core::RunId,
    pub session_id: roster_core::SessionId,
    /// The delivery id the run is recorded under.
    pub delivery: String,
    /// `false` when an earlier copy of this delivery started the run.
    pub started: bool,
}

#[utoipa::path(post, path = "/v1/hooks/{id}", tag = "triggers", security(),
    params(("id" = String, Path, description = "the trigger's id"),
        ("X-Roster-Timestamp" = String, Header, description = "Unix seconds when the delivery was signed"),
        ("X-Roster-Signature" = String, Header, description = "`sha256=` + hex HMAC-SHA256 of `{timestamp}.{body}` keyed with the trigger's secret"),
        ("X-Roster-Delivery" = Option<String>, Header, description = "the sender's delivery id (1-200 characters); a retry with it starts nothing more")),
    request_body(content = Object, description = "any JSON; the trigger's template makes the run's input from it"),
    responses((status = 202, body = HookAccepted, description = "a run started"),
        (status = 200, body = HookAccepted, description = "a retried delivery: the run its first copy started"),
        (status = 400, body = crate::error::ErrorBody, description = "the body is not JSON, or a header is malformed"),
        (status = 401, body = crate::error::ErrorBody, description = "invalid_signature: missing or wrong signature, stale timestamp, or no such hook"),
        (status = 403, body = crate::error::ErrorBody, description = "denied_by_policy, or the trigger's key was revoked"),
        (status = 404, body = crate::error::ErrorBody, description = "the trigger's session or agent is gone"),
        (status = 413, body = crate::error::ErrorBody),
        (status = 429, body = crate::error::ErrorBody, description = "rate_limited")))]
pub async fn deliver(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    if !admit(&id) {
        let mut refused =
            ApiError::new(Code::RateLimited, "too many deliveries to this hook").into_response();
        refused
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return Ok(refused);
    }
    let target = match TriggerId::parse(&id) {
        Some(tid) => state.store.hook_target(&tid).await?,
        None => None,
    };
    let Some(target) = target else {
        return Err(bad_signature());
    };
    let checked = check(&state, &target, &headers, body).await;
    let (payload, delivery) = match checked {
        Ok(ok) => ok,
        Err((error, reason)) => {
            record_refusal(&state, &target, &reason).await;
            return Err(error);
        }
    };
    let input = render(&target.trigger.template, &payload);
    if input.trim().is_empty() {
        let reason = "the template made an empty input from this payload";
        record_refusal(&state, &target, reason).await;
        return Err(ApiError::invalid(reason));
    }
    let (run, existed) = state
        .runtime
        .deliver_hook(&target, &delivery, input)
        .await?;
    Ok((
        if existed {
            StatusCode::OK
        } else {
            StatusCode::ACCEPTED
        },
        axum::Json(HookAccepted {
            run_id: run.id,
            session_id: run.session_id,
            delivery,
            started: !existed,
        }),
    )
        .into_response())
}

fn bad_signature() -> ApiError {
    ApiError::new(
        Code::InvalidSignature,
        "the delivery's signature is missing or wrong, its timestamp is outside the tolerance window, or there is no such hook",
    )
}

type Refusal = (ApiError, String);

/// The delivery's JSON and its id, or why it is refused (the error the
/// sender gets, the reason recorded).
async fn check(
    state: &AppState,
    target: &HookTarget,
    headers: &HeaderMap,
    body: Body,
) -> Result<(Value, String), Refusal> {
    let bytes = axum::body::to_bytes(body, MAX_HOOK_BYTES)
        .await
        .map_err(|_| {
            (
                ApiError::new(
                    Code::PayloadTooLarge,
                    format!("a delivery is at most {MAX_HOOK_BYTES} bytes"),
                ),
                "body too large".to_owned(),
            )
        })?;
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    let refuse = |why: &str| (bad_signature(), why.to_owned());
    let timestamp = header("x-roster-timestamp").ok_or_else(|| refuse("no timestamp"))?;
    let signed_at: i64 = timestamp
        .parse()
        .map_err(|_| refuse("the timestamp is not Unix seconds"))?;
    let now = chrono::Utc::now().timestamp();
    if (now - signed_at).abs() > TOLERANCE_SECS {
        return Err(refuse("the timestamp is outside the tolerance window"));
    }
    let signature = header("x-roster-signature")
        .and_then(|s| s.strip_prefix("sha256="))
        .and_then(|hexed| hex::decode(hexed).ok())
        .ok_or_else(|| refuse("no signature, or not `sha256=<hex>`"))?;
    let Some(integrations) = state.integrations.as_ref() else {
        return Err(refuse("the server cannot open trigger secrets"));
    };
    let secret = integrations
        .secrets
        .open(
            &target.secret_sealed,
            &super::triggers::seal_context(&target.trigger.id),
        )
        .map_err(|_| refuse("the trigger's secret cannot be opened"))?;
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.expose().as_bytes())
        .map_err(|_| refuse("the trigger's secret is unusable"))?;
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(&bytes);
    // Constant time: the comparison says nothing about how close a guess was.
    mac.verify_slice(&signature)
        .map_err(|_| refuse("the signature does not match"))?;
    let payload: Value = serde_json::from_slice(&bytes).map_err(|e| {
        (
            ApiError::new(
                Code::MalformedJson,
                format!("a delivery's body must be JSON: {e}"),
            ),
            "the body is not JSON".to_owned(),
        )
    })?;
    let delivery = match header("x-roster-delivery") {
        Some(id) if !id.is_empty() && id.len() <= 200 && id.is_ascii() => id.to_owned(),
        Some(_) => {
            return Err((
                ApiError::invalid("X-Roster-Delivery must be 1-200 ASCII characters"),
                "malformed delivery id".to_owned(),
            ))
        }
        None => format!("sig:{}", hex::encode(&signature)),
    };
    Ok((payload, delivery))
}

/// A refused delivery in the trigger's tenant's audit log (bounded by the
/// hook's rate limit). A failure to record is logged, not sent back.
async fn record_refusal(state: &AppState, target: &HookTarget, reason: &str) {
    let event = NewAuditEvent {
        actor: "hook".into(),
        action: "trigger.delivery_refused".into(),
        resource: format!("trigger:{}", target.trigger.id),
        decision: Some("deny".into()),
        detail: json!({ "reason": reason }),
    };
    if let Err(e) = state.store.append_audit(&target.tenant, vec![event]).await {
        tracing::warn!(trigger = %target.trigger.id, error = %e, "cannot record a refused delivery");
    }
}

/// Token buckets per hook id, in this process.
fn admit(id: &str) -> bool {
    static BUCKETS: OnceLock<Mutex<HashMap<String, (f64, Instant)>>> = OnceLock::new();
    let mut buckets = BUCKETS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let now = Instant::now();
    if buckets.len() >= TRACKED_HOOKS && !buckets.contains_key(id) {
        // Full buckets carry no state worth keeping.
        buckets.retain(|_, (tokens, at)| {
            *tokens + now.duration_since(*at).as_secs_f64() * RATE_PER_SEC < BURST
        });
    }
    let (tokens, at) = buckets.entry(id.to_owned()).or_insert((BURST, now));
    *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * RATE_PER_SEC).min(BURST);
    *at = now;
    if *tokens >= 1.0 {
        *tokens -= 1.0;
        true
    } else {
        false
    }
}

/// The run's input: `{{payload}}` is the whole JSON, `{{payload.a.b}}` the
/// value at that path (strings as they are, other values as JSON, absent
/// values empty). Anything else stays as written.
pub fn render(template: &str, payload: &Value) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            out.push_str(&rest[start..]);
            return out;
        };
        let name = after[..end].trim();
        match name
            .strip_prefix("payload")
            .filter(|p| p.is_empty() || p.starts_with('.'))
        {
            Some(path) => out.push_str(&value_at(payload, path)),
            None => out.push_str(&rest[start..start + 2 + end + 2]),
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

fn value_at(payload: &Value, path: &str) -> String {
    let mut at = payload;
    for key in path.split('.').filter(|k| !k.is_empty()) {
        let next = match at {
            Value::Object(map) => map.get(key),
            Value::Array(items) => key.parse::<usize>().ok().and_then(|i| items.get(i)),
            _ => None,
        };
        match next {
            Some(v) => at = v,
            None => return String::new(),
        }
    }
    match at {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_take_values_from_the_payload() {
        let payload = json!({"issue": {"title": "Disk full", "labels": ["ops", "p1"], "n": 7}});
        assert_eq!(
            render("New issue: {{payload.issue.title}} ({{ payload.issue.labels.1 }}, #{{payload.issue.n}})", &payload),
            "New issue: Disk full (p1, #7)"
        );
        assert_eq!(
            render("{{payload.missing}}|{{other}}", &payload),
            "|{{other}}"
        );
        assert_eq!(
            render("all: {{payload}}", &json!({"a": 1})),
            r#"all: {"a":1}"#
        );
        assert_eq!(render("open {{payload", &payload), "open {{payload");
    }

    #[test]
    fn a_hook_takes_its_burst_then_its_rate() {
        let id = format!("trg_test_{}", std::process::id());
        let admitted = (0..30).filter(|_| admit(&id)).count();
        assert!((20..=21).contains(&admitted), "{admitted}");
    }
}
