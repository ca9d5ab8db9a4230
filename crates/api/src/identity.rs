//! Who a key acts for, and what that lets it reach.
//!
//! - A `user` key is bound to one user when it is made (`user`), or to none.
//!   It acts as that user only: its sessions are that user's, and it cannot
//!   name another. A user key without a user acts for no user.
//! - A `service` key acts for the users it names per request (a session's
//!   `user`, a `users/NAME` namespace, a block copy's owner): any user, or
//!   only those in its `act_for` list.
//! - The admin key acts for anyone.
//!
//! A session that belongs to a user, its items, runs, events and files, and
//! the records of `users/NAME` namespaces, are reached only by keys that may
//! act for that user; to any other key they do not exist (`not_found`), as
//! another tenant's objects. Naming another user outright (creating a
//! session for them, writing their namespace) answers `403
//! user_not_allowed`. Sessions without a user belong to the tenant, as
//! before users were bound to keys.

use crate::auth::Principal;
use crate::error::ApiError;
use roster_core::record::{namespace_owner, validate_user_id};

impl Principal {
    /// Whether this key may act for `user`.
    pub fn may_act_for(&self, user: &str) -> bool {
        roster_core::actor::may_act_for(
            self.is_admin,
            &self.kind,
            self.user.as_deref(),
            self.act_for.as_deref(),
            user,
        )
    }

    /// The users this key may act for; `None`: anyone.
    pub fn acting_users(&self) -> Option<Vec<String>> {
        self.actor().acting_users()
    }

    /// Whether this is a tenant's manager key: a `user` key bound to no
    /// user that may manage keys. It acts for no user itself, but issues
    /// the keys of the tenant's users and services.
    pub fn manages_identities(&self) -> bool {
        self.actor().manages_identities()
    }

    /// The user this key is bound to (a `user` key's own).
    pub fn bound_user(&self) -> Option<&str> {
        if self.kind == "user" && !self.is_admin {
            self.user.as_deref()
        } else {
            None
        }
    }
}

/// `403 user_not_allowed`: this key named a user it may not act for.
pub(crate) fn user_not_allowed(principal: &Principal, user: &str) -> ApiError {
    roster_runtime::user_not_allowed(&principal.actor(), user).into()
}

/// Fails unless this key may act for `user`.
pub(crate) fn require_user(principal: &Principal, user: &str) -> Result<(), ApiError> {
    if principal.may_act_for(user) {
        Ok(())
    } else {
        Err(user_not_allowed(principal, user))
    }
}

/// The user a new session works for: a user key's own (naming another is
/// refused); for a service key or the admin key, the one it names, if any.
pub fn session_user(
    principal: &Principal,
    requested: Option<&str>,
) -> Result<Option<String>, ApiError> {
    if let Some(user) = requested {
        validate_user_id(user)?;
        require_user(principal, user)?;
        return Ok(Some(user.to_owned()));
    }
    Ok(principal.bound_user().map(str::to_owned))
}

/// Whether this key may reach records of `namespace`.
pub(crate) fn may_use_namespace(principal: &Principal, namespace: &str) -> bool {
    namespace_owner(namespace).is_none_or(|user| principal.may_act_for(user))
}

/// Fails with `user_not_allowed` when `namespace` is another user's.
pub fn require_namespace(principal: &Principal, namespace: &str) -> Result<(), ApiError> {
    match namespace_owner(namespace) {
        Some(user) => require_user(principal, user),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use roster_core::{KeyId, TenantId};
    use std::sync::Arc;

    fn key(kind: &str, user: Option<&str>, act_for: Option<&[&str]>) -> Principal {
        Principal {
            tenant: TenantId::default_tenant(),
            key_id: KeyId::generate(),
            key_name: "k".into(),
            kind: kind.into(),
            is_admin: false,
            scopes: None,
            user: user.map(str::to_owned),
            act_for: act_for.map(|users| {
                users
                    .iter()
                    .map(|u| (*u).to_owned())
                    .collect::<Arc<[String]>>()
            }),
        }
    }

    #[test]
    fn who_a_key_acts_for() {
        let ann = key("user", Some("ann"), None);
        assert!(ann.may_act_for("ann") && !ann.may_act_for("bob"));
        let nobody = key("user", None, None);
        assert!(!nobody.may_act_for("ann"));
        assert_eq!(nobody.acting_users(), Some(vec![]));
        let service = key("service", None, None);
        assert!(service.may_act_for("anyone"));
        let narrow = key("service", None, Some(&["ann", "bob"]));
        assert!(narrow.may_act_for("bob") && !narrow.may_act_for("carol"));
        let admin = Principal {
            is_admin: true,
            ..key("user", None, None)
        };
        assert!(admin.may_act_for("carol") && admin.acting_users().is_none());
    }

    #[test]
    fn sessions_take_the_keys_user() {
        let ann = key("user", Some("ann"), None);
        assert_eq!(session_user(&ann, None).ok(), Some(Some("ann".into())));
        assert_eq!(
            session_user(&ann, Some("ann")).ok(),
            Some(Some("ann".into()))
        );
        let err = session_user(&ann, Some("bob")).expect_err("another user");
        assert_eq!(
            (err.status(), err.code),
            (
                axum::http::StatusCode::FORBIDDEN,
                crate::codes::Code::UserNotAllowed
            )
        );
        let service = key("service", None, Some(&["bob"]));
        assert_eq!(session_user(&service, None).ok(), Some(None));
        assert_eq!(
            session_user(&service, Some("bob")).ok(),
            Some(Some("bob".into()))
        );
        assert!(session_user(&service, Some("ann")).is_err());
        assert!(session_user(&key("user", None, None), Some("ann")).is_err());
        assert!(session_user(&service, Some("b/ob")).is_err_and(|e| e.code == "invalid_request"));
    }

    #[test]
    fn namespaces_of_users_need_their_user() {
        let ann = key("user", Some("ann"), None);
        assert!(may_use_namespace(&ann, "users/ann/notes"));
        assert!(may_use_namespace(&ann, "agents/helper"));
        assert!(!may_use_namespace(&ann, "users/bob"));
        assert!(require_namespace(&ann, "users/bob").is_err());
    }
}
