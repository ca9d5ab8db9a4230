//! Issuing and revoking API keys as use cases every surface calls. A key
//! never reaches further than the key that makes it: it holds at most its
//! maker's scopes and acts for at most its maker's users; each change is
//! stored with its audit event in the same transaction.

use crate::error::RuntimeError;
use crate::scheduler::Runtime;
use chrono::{DateTime, Utc};
use roster_core::actor::Actor;
use roster_core::record::validate_user_id;
use roster_core::{KeyId, TenantId};
use roster_store::{KeyInfo, NewAuditEvent, NewKey};
use serde_json::json;
use sha2::{Digest, Sha256};

/// What a caller asks of a new key, already parsed (scopes checked for
/// spelling); what it may have is decided here.
#[derive(Debug, Clone, Default)]
pub struct KeyRequest {
    pub name: String,
    /// `user` (the default) or `service`.
    pub kind: Option<String>,
    /// `None`: the maker's own scopes.
    pub scopes: Option<Vec<String>>,
    pub user: Option<String>,
    pub act_for: Option<Vec<String>>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// A key just made: the secret is shown this once, never stored.
#[derive(Debug, Clone)]
pub struct IssuedKey {
    pub secret: String,
    pub info: KeyInfo,
}

/// How a key is stored and looked up: its SHA-256, hex-encoded.
pub fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

impl Runtime {
    /// Makes a key in `tenant` (the actor's own, or any for the admin key;
    /// the caller resolved which).
    pub async fn create_key(
        &self,
        actor: &Actor,
        tenant: &TenantId,
        request: KeyRequest,
    ) -> Result<IssuedKey, RuntimeError> {
        // The limit holds for the name as sent, as the API document says.
        let too_long = request.name.chars().count() > 100;
        let name = request.name.trim();
        if name.is_empty() || too_long || name.chars().any(char::is_control) {
            return Err(RuntimeError::Invalid(
                "a key name is 1-100 characters, without control characters".into(),
            ));
        }
        let kind = request.kind.as_deref().unwrap_or("user");
        if kind != "user" && kind != "service" {
            return Err(RuntimeError::Invalid(
                "kind must be `user` or `service`".into(),
            ));
        }
        if request.expires_at.is_some_and(|at| at <= Utc::now()) {
            return Err(RuntimeError::Invalid(
                "expires_at must be in the future".into(),
            ));
        }
        let scopes = granted_scopes(actor, request.scopes)?;
        let (user, act_for) =
            new_key_identity(actor, kind, request.user.as_deref(), request.act_for)?;
        let secret = format!("rk_{}", hex::encode(rand::random::<[u8; 24]>()));
        let id = KeyId::generate();
        let info = self
            .store()
            .create_key(
                tenant,
                NewKey {
                    id: id.clone(),
                    name: name.to_owned(),
                    kind: kind.to_owned(),
                    key_hash: hash_key(&secret),
                    scopes: scopes.clone(),
                    user: user.clone(),
                    act_for: act_for.clone(),
                    expires_at: request.expires_at,
                },
                NewAuditEvent {
                    actor: actor.label(),
                    action: "key.create".into(),
                    resource: format!("key:{id}"),
                    decision: None,
                    detail: json!({
                        "name": name, "kind": kind, "scopes": scopes, "user": user,
                        "act_for": act_for, "expires_at": request.expires_at,
                        "by_tenant": actor.tenant,
                    }),
                },
            )
            .await?;
        Ok(IssuedKey { secret, info })
    }

    /// Revokes `key`, which the caller found visible to the actor. The admin
    /// key is replaced by restarting with a new one, never revoked here.
    pub async fn revoke_key(&self, actor: &Actor, key: &KeyInfo) -> Result<KeyInfo, RuntimeError> {
        if key.is_admin {
            return Err(RuntimeError::Conflict(
                "the admin key is not revoked through the API: restart the server with a new ROSTER_ADMIN_KEY to replace it".into(),
            ));
        }
        Ok(self
            .store()
            .revoke_key(
                &key.tenant_id,
                &key.id,
                NewAuditEvent {
                    actor: actor.label(),
                    action: "key.revoke".into(),
                    resource: format!("key:{}", key.id),
                    decision: None,
                    detail: json!({ "name": key.name, "by_tenant": actor.tenant }),
                },
            )
            .await?)
    }
}

/// A scoped key may hand out at most what it holds; without a request, a
/// new key gets its maker's scopes.
fn granted_scopes(
    actor: &Actor,
    requested: Option<Vec<String>>,
) -> Result<Option<Vec<String>>, RuntimeError> {
    match (&actor.scopes, requested) {
        (Some(own), None) => Ok(Some(own.clone())),
        (Some(_), Some(requested)) => {
            if let Some(beyond) = requested.iter().find(|s| !actor.has_scope(s)) {
                return Err(RuntimeError::InsufficientScope(format!(
                    "a key cannot grant `{beyond}`, which it does not hold"
                )));
            }
            Ok(Some(requested))
        }
        (None, requested) => Ok(requested),
    }
}

/// `user_not_allowed`: this key named a user it may not act for.
pub fn user_not_allowed(actor: &Actor, user: &str) -> RuntimeError {
    let message = match (actor.kind.as_str(), actor.user.as_deref()) {
        ("service", _) => format!(
            "this service key may act only for the users of its act_for list, not for `{user}`"
        ),
        (_, Some(own)) => format!("this key acts for user `{own}`; it cannot act for `{user}`"),
        (_, None) => format!(
            "this key is not bound to a user, so it cannot act for `{user}`; use a key made with `user`, or a service key"
        ),
    };
    RuntimeError::UserNotAllowed(message)
}

fn require_user(actor: &Actor, user: &str) -> Result<(), RuntimeError> {
    if actor.may_act_for(user) {
        Ok(())
    } else {
        Err(user_not_allowed(actor, user))
    }
}

/// Who a new key acts for, within what its maker may: a user key for one
/// of the maker's users (or none), a service key for at most the maker's
/// users, so no key can make a key that reaches further.
fn new_key_identity(
    actor: &Actor,
    kind: &str,
    user: Option<&str>,
    act_for: Option<Vec<String>>,
) -> Result<(Option<String>, Option<Vec<String>>), RuntimeError> {
    if let Some(user) = user {
        validate_user_id(user).map_err(|e| RuntimeError::Invalid(e.to_string()))?;
    }
    for user in act_for.iter().flatten() {
        validate_user_id(user)
            .map_err(|e| RuntimeError::Invalid(format!("act_for: {}", e.message)))?;
    }
    match kind {
        "service" => {
            if user.is_some() {
                return Err(RuntimeError::Invalid(
                    "a service key is not bound to a user: name the users it may act for in `act_for`".into(),
                ));
            }
            let limit = if actor.manages_identities() {
                None
            } else {
                actor.acting_users()
            };
            let act_for = match (limit, act_for) {
                (None, requested) => requested,
                (Some(own), None) => Some(own),
                (Some(_), Some(requested)) => {
                    if let Some(beyond) = requested.iter().find(|u| !actor.may_act_for(u)) {
                        return Err(user_not_allowed(actor, beyond));
                    }
                    Some(requested)
                }
            };
            Ok((None, act_for.map(dedup)))
        }
        _ => {
            if act_for.is_some() {
                return Err(RuntimeError::Invalid(
                    "act_for is for service keys; a user key acts for its own `user`".into(),
                ));
            }
            if let Some(user) = user {
                if !actor.manages_identities() {
                    require_user(actor, user)?;
                }
            }
            Ok((user.map(str::to_owned), None))
        }
    }
}

fn dedup(mut users: Vec<String>) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    users.retain(|u| seen.insert(u.clone()));
    users
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(kind: &str, user: Option<&str>, act_for: Option<&[&str]>) -> Actor {
        Actor {
            tenant: TenantId::default_tenant(),
            key_id: KeyId::generate(),
            key_name: "k".into(),
            kind: kind.into(),
            is_admin: false,
            scopes: None,
            user: user.map(str::to_owned),
            act_for: act_for.map(|users| users.iter().map(|u| (*u).to_owned()).collect()),
        }
    }

    #[test]
    fn new_keys_reach_no_further_than_their_maker() {
        let ann = key("user", Some("ann"), None);
        assert!(new_key_identity(&ann, "user", Some("ann"), None).is_ok());
        assert!(new_key_identity(&ann, "user", Some("bob"), None).is_err());
        assert_eq!(
            new_key_identity(&ann, "service", None, None).ok(),
            Some((None, Some(vec!["ann".to_owned()])))
        );
        assert!(new_key_identity(&ann, "service", None, Some(vec!["bob".into()])).is_err());
        let service = key("service", None, None);
        assert_eq!(
            new_key_identity(&service, "service", None, None).ok(),
            Some((None, None))
        );
        assert!(new_key_identity(&service, "service", Some("x"), None).is_err());
        assert!(new_key_identity(&service, "user", None, Some(vec!["x".into()])).is_err());
        // A tenant's manager key acts for no user, yet issues their keys.
        let manager = key("user", None, None);
        assert!(!manager.may_act_for("ann"));
        assert_eq!(
            new_key_identity(&manager, "user", Some("ann"), None).ok(),
            Some((Some("ann".to_owned()), None))
        );
        assert_eq!(
            new_key_identity(&manager, "service", None, None).ok(),
            Some((None, None))
        );
        let clerk = Actor {
            scopes: Some(vec!["sessions:write".to_owned()]),
            ..key("user", None, None)
        };
        assert!(new_key_identity(&clerk, "user", Some("ann"), None).is_err());
        assert_eq!(
            new_key_identity(
                &service,
                "service",
                None,
                Some(vec!["a".into(), "a".into()])
            )
            .ok(),
            Some((None, Some(vec!["a".to_owned()])))
        );
    }

    #[test]
    fn a_scoped_key_grants_at_most_its_scopes() {
        let clerk = Actor {
            scopes: Some(vec!["sessions:write".to_owned()]),
            ..key("user", None, None)
        };
        assert_eq!(
            granted_scopes(&clerk, None).ok(),
            Some(Some(vec!["sessions:write".to_owned()]))
        );
        assert!(granted_scopes(&clerk, Some(vec!["sessions:read".into()])).is_ok());
        assert!(matches!(
            granted_scopes(&clerk, Some(vec!["keys:write".into()])),
            Err(RuntimeError::InsufficientScope(_))
        ));
    }
}
