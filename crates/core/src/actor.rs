//! Who asks for an action, independent of how the request arrived (HTTP,
//! a protocol surface, a schedule, another agent): the tenant, the key,
//! its kind and scopes, and the users it may act for. Use cases take an
//! [`Actor`]; each surface turns its own credentials into one.

use crate::{KeyId, TenantId};

/// The principal behind a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actor {
    pub tenant: TenantId,
    pub key_id: KeyId,
    pub key_name: String,
    /// `user` or `service`.
    pub kind: String,
    /// The default tenant's admin key: acts for anyone.
    pub is_admin: bool,
    /// `None`: every scope of its tenant.
    pub scopes: Option<Vec<String>>,
    /// A `user` key's user.
    pub user: Option<String>,
    /// The users a `service` key may act for; `None`: any.
    pub act_for: Option<Vec<String>>,
}

impl Actor {
    /// How this actor appears in runs, journals and audit records.
    pub fn label(&self) -> String {
        format!("key:{}", self.key_id)
    }

    /// The user this actor is bound to (a `user` key's own).
    pub fn bound_user(&self) -> Option<&str> {
        if self.kind == "user" && !self.is_admin {
            self.user.as_deref()
        } else {
            None
        }
    }

    /// Whether this actor may reach what belongs to `owner` (a session's
    /// user): anything without one, else only what it may act for.
    pub fn may_reach(&self, owner: Option<&str>) -> bool {
        owner.is_none_or(|user| self.may_act_for(user))
    }

    /// Whether this actor may act for `user`: the admin key for anyone, a
    /// service key for the users of its list (any without one), a user key
    /// for its own user only.
    pub fn may_act_for(&self, user: &str) -> bool {
        may_act_for(
            self.is_admin,
            &self.kind,
            self.user.as_deref(),
            self.act_for.as_deref(),
            user,
        )
    }

    /// Whether this actor's scopes cover `scope` (`area:read|write`); a key
    /// without scopes holds them all.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes
            .as_deref()
            .is_none_or(|held| scope_covers(held, scope))
    }

    /// The users this actor may act for; `None`: anyone.
    pub fn acting_users(&self) -> Option<Vec<String>> {
        if self.is_admin {
            return None;
        }
        if self.kind == "service" {
            return self.act_for.clone();
        }
        Some(self.user.iter().cloned().collect())
    }

    /// Whether this is a tenant's manager key: a `user` key bound to no
    /// user that may manage keys. It acts for no user itself, but issues
    /// the keys of the tenant's users and services.
    pub fn manages_identities(&self) -> bool {
        self.is_admin
            || (self.kind == "user" && self.user.is_none() && self.has_scope("keys:write"))
    }
}

/// Whether the scopes `held` cover `scope`: the scope itself, or for a
/// `read` scope the same area's `write`.
pub fn scope_covers(held: &[String], scope: &str) -> bool {
    let Some((area, level)) = scope.split_once(':') else {
        return false;
    };
    held.iter()
        .any(|h| h == scope || (level == "read" && h.strip_prefix(area) == Some(":write")))
}

/// [`Actor::may_act_for`] over the parts, for callers holding them in
/// another shape.
pub fn may_act_for(
    is_admin: bool,
    kind: &str,
    own: Option<&str>,
    act_for: Option<&[String]>,
    user: &str,
) -> bool {
    if is_admin {
        return true;
    }
    if kind == "service" {
        return act_for.is_none_or(|users| users.iter().any(|u| u == user));
    }
    own == Some(user)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn actor(kind: &str, user: Option<&str>, act_for: Option<&[&str]>) -> Actor {
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
    fn whom_an_actor_acts_for() {
        let ann = actor("user", Some("ann"), None);
        assert!(ann.may_act_for("ann") && !ann.may_act_for("bob"));
        assert!(!actor("user", None, None).may_act_for("ann"));
        assert!(actor("service", None, None).may_act_for("anyone"));
        let narrow = actor("service", None, Some(&["ann"]));
        assert!(narrow.may_act_for("ann") && !narrow.may_act_for("bob"));
        let admin = Actor {
            is_admin: true,
            ..actor("user", None, None)
        };
        assert!(admin.may_act_for("carol"));
        assert!(ann.label().starts_with("key:key_"));
        assert!(ann.may_reach(None) && ann.may_reach(Some("ann")) && !ann.may_reach(Some("bob")));
    }
}
