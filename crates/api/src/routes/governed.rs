//! Policy checks the API makes itself, before it hands work to the
//! runtime.

use crate::auth::Principal;
use crate::error::ApiError;
use crate::AppState;
use roster_core::agent::Agent;
use roster_policy::{Action, Actor, Decision, PolicyRequest, Resource};
use roster_runtime::governance::Subject;
use roster_store::Session;
use serde_json::json;

/// `invoke_agent`: may this key start a run of `agent`? Decided before the
/// run is queued; a refusal queues nothing.
pub(crate) async fn may_invoke(
    state: &AppState,
    principal: &Principal,
    agent: &Agent,
    session: &Session,
) -> Result<(), ApiError> {
    let key_id = principal.key_id.to_string();
    let user = session
        .user
        .clone()
        .unwrap_or_else(|| principal.key_name.clone());
    let request = PolicyRequest {
        tenant: principal.tenant.as_str(),
        actor: Actor::User {
            id: &key_id,
            name: &principal.key_name,
            kind: &principal.kind,
        },
        action: Action::InvokeAgent,
        resource: Resource::Agent { name: &agent.name },
        user: &user,
        arguments: None,
        facts: None,
    };
    let decision = state
        .runtime
        .governance()
        .decide(
            &principal.tenant,
            &request,
            Subject {
                actor: &principal.label(),
                resource: &format!("agent:{}", agent.name),
                at: json!({ "session": session.id }),
            },
        )
        .await?;
    match decision {
        Decision::Allow { .. } => Ok(()),
        Decision::Deny { reason, .. } => {
            Err(ApiError::new(crate::codes::Code::DeniedByPolicy, reason))
        }
        Decision::NeedsApproval { reason, .. } => Err(ApiError::new(
            crate::codes::Code::DeniedByPolicy,
            format!("{reason}: approval applies to tool calls, not to invoking an agent"),
        )),
    }
}
