//! Human decisions on approval requests, as a use case every surface calls
//! (the approvals endpoints today; a chat integration or an A2A surface
//! later): the request as the actor may see it, the rule that someone else
//! decides unless the policy says `@self_approval`, the decision and its
//! audit event in one write, and the paused run woken.

use crate::error::RuntimeError;
use crate::scheduler::Runtime;
use roster_core::actor::Actor;
use roster_store::{Approval, ApprovalDecision, NewAuditEvent, StoreError};
use serde_json::json;

impl Runtime {
    /// Approves or denies a pending request for `actor`. A request whose
    /// session belongs to a user the actor may not act for does not exist
    /// for it; one its own key (or any key of its session's user) asked for
    /// is refused unless the policy that asked allows self-approval.
    pub async fn decide_approval(
        &self,
        actor: &Actor,
        id: &str,
        decision: ApprovalDecision,
        note: Option<&str>,
    ) -> Result<Approval, RuntimeError> {
        if note.is_some_and(|n| n.len() > 4096) {
            return Err(RuntimeError::Invalid("a note is at most 4096 bytes".into()));
        }
        let found = self
            .store()
            .get_approval(&actor.tenant, id)
            .await?
            .ok_or(RuntimeError::NotFound("approval"))?;
        let session = match self.session_for(actor, &found.session_id).await {
            Err(RuntimeError::NotFound(_)) => return Err(RuntimeError::NotFound("approval")),
            other => other?,
        };
        let same_user = actor
            .bound_user()
            .is_some_and(|user| session.user.as_deref() == Some(user));
        if same_user || requester(&found.actor) == Some(actor.label().as_str()) {
            let compiled = self.governance().policies(&actor.tenant).await?;
            let allowed = compiled
                .as_ref()
                .is_ok_and(|policies| policies.allows_self_approval(&found.policies));
            if !allowed {
                return Err(RuntimeError::SelfApproval);
            }
        }
        let (verb, verdict) = match decision {
            ApprovalDecision::Approve => ("approve", "allow"),
            ApprovalDecision::Deny => ("deny", "deny"),
        };
        let decided = self
            .store()
            .decide_approval(
                &actor.tenant,
                id,
                decision,
                &actor.label(),
                note,
                NewAuditEvent {
                    actor: actor.label(),
                    action: format!("approval.{verb}"),
                    resource: format!("approval:{id}"),
                    decision: Some(verdict.into()),
                    detail: json!({
                        "run": found.run_id, "tool": found.tool, "call_id": found.call_id,
                        "agent": found.agent, "note": note,
                    }),
                },
            )
            .await
            .map_err(|e| match e {
                StoreError::Conflict(message) => RuntimeError::NotPending(message),
                other => other.into(),
            })?;
        self.resume(&actor.tenant, &decided.session_id);
        Ok(decided)
    }
}

/// The key that started the run asking, from its actor chain (`key:… >
/// agent:… > tool:…`), if a key did.
pub(crate) fn requester(actor: &str) -> Option<&str> {
    actor
        .split('>')
        .next()
        .map(str::trim)
        .filter(|hop| hop.starts_with("key:"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn requester_is_the_first_key_of_the_chain() {
        assert_eq!(
            super::requester("key:key_1 > agent:clerk > tool:pay"),
            Some("key:key_1")
        );
        assert_eq!(super::requester("system > agent:clerk"), None);
        assert_eq!(super::requester(""), None);
    }
}
