//! Changes to a tenant's policies as use cases every surface calls: a
//! document is checked with the tenant's others (so ids and conflicts are
//! caught) before it is stored, and each change writes its audit event in
//! the same transaction.

use crate::error::RuntimeError;
use crate::scheduler::Runtime;
use roster_core::actor::Actor;
use roster_policy::TenantPolicies;
use roster_store::{NewAuditEvent, PolicyDocument};
use serde_json::json;

/// Largest policy document, in bytes.
pub const MAX_POLICY_BYTES: usize = 64 * 1024;
/// Most policy documents a tenant holds.
pub const MAX_POLICY_DOCUMENTS: usize = 10_000;

fn check_name(name: &str) -> Result<(), RuntimeError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    if ok {
        Ok(())
    } else {
        Err(RuntimeError::Invalid(
            "a policy name is 1-64 letters, digits, `-`, `_` or `.`".into(),
        ))
    }
}

impl Runtime {
    /// Creates or replaces the tenant's policy document `name`; `true` when
    /// it was created.
    pub async fn put_policy(
        &self,
        actor: &Actor,
        name: &str,
        text: &str,
    ) -> Result<(PolicyDocument, bool), RuntimeError> {
        check_name(name)?;
        if text.len() > MAX_POLICY_BYTES {
            return Err(RuntimeError::InvalidPolicy(format!(
                "a policy document is at most {MAX_POLICY_BYTES} bytes"
            )));
        }
        let snapshot = self.store().policies(&actor.tenant).await?;
        let created = !snapshot.documents.iter().any(|d| d.name == name);
        if created && snapshot.documents.len() >= MAX_POLICY_DOCUMENTS {
            return Err(RuntimeError::InvalidPolicy(format!(
                "a tenant holds at most {MAX_POLICY_DOCUMENTS} policy documents"
            )));
        }
        // The whole set as it would be, so ids and conflicts are checked too.
        let documents = snapshot
            .documents
            .iter()
            .filter(|d| d.name != name)
            .map(|d| (d.name.as_str(), d.text.as_str()))
            .chain(std::iter::once((name, text)));
        TenantPolicies::compile(documents)
            .map_err(|e| RuntimeError::InvalidPolicy(e.to_string()))?;
        let stored = self
            .store()
            .put_policy(
                &actor.tenant,
                name,
                text,
                snapshot.revision,
                NewAuditEvent {
                    actor: actor.label(),
                    action: "policy.put".into(),
                    resource: format!("policy:{name}"),
                    decision: None,
                    detail: json!({ "text": text, "created": created }),
                },
            )
            .await?;
        Ok((stored, created))
    }

    /// Deletes the tenant's policy document `name`.
    pub async fn delete_policy(&self, actor: &Actor, name: &str) -> Result<(), RuntimeError> {
        let deleted = self
            .store()
            .delete_policy(
                &actor.tenant,
                name,
                NewAuditEvent {
                    actor: actor.label(),
                    action: "policy.delete".into(),
                    resource: format!("policy:{name}"),
                    decision: None,
                    detail: json!({}),
                },
            )
            .await?;
        if deleted {
            Ok(())
        } else {
            Err(RuntimeError::NotFound("policy"))
        }
    }
}
