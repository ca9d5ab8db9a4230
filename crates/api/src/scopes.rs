//! API key scopes: `AREA:read` or `AREA:write` (write includes read), each
//! area a family of endpoints. A key without scopes has them all.

use axum::http::Method;

/// Every area, with the first path segments under `/v1` that belong to it.
pub const AREAS: &[(&str, &[&str])] = &[
    ("agents", &["agents", "models"]),
    (
        "sessions",
        &[
            "sessions",
            "runs",
            "responses",
            "conversations",
            "chat",
            "a2a",
        ],
    ),
    ("schedules", &["schedules", "triggers"]),
    ("webhooks", &["webhooks", "notifications"]),
    ("limits", &["limits"]),
    ("memories", &["memories"]),
    ("knowledge", &["knowledge", "index"]),
    ("tools", &["tools", "mcp", "sources", "remotes"]),
    ("ledger", &["ledger", "budgets"]),
    ("policies", &["policies"]),
    ("approvals", &["approvals"]),
    ("audit", &["audit"]),
    ("keys", &["keys"]),
    ("tenants", &["tenants"]),
];

/// What a key bound to a user may do when it was made without scopes: talk
/// to agents in its user's sessions, keep its user's memories, search the
/// tenant's knowledge, see its tools, and decide approval requests it may
/// see (never its own run's, see the approvals rule). Not
/// manage keys, agents, integrations or policies, nor read the tenant's
/// audit log and ledger: those would reach other users.
pub const USER_KEY_DEFAULT: &[&str] = &[
    "agents:read",
    "sessions:write",
    "memories:write",
    "knowledge:read",
    "tools:read",
    "approvals:write",
];

/// The scopes a key holds: those it was made with, or for a key bound to a
/// user and made without any, [`USER_KEY_DEFAULT`]; `None` is every scope.
/// Decided when the key is used, so keys made before the default existed
/// hold it too.
pub fn effective(
    stored: Option<Vec<String>>,
    kind: &str,
    user: Option<&str>,
    is_admin: bool,
) -> Option<Vec<String>> {
    match stored {
        None if kind == "user" && user.is_some() && !is_admin => {
            Some(USER_KEY_DEFAULT.iter().map(|s| (*s).to_owned()).collect())
        }
        stored => stored,
    }
}

/// What a request needs.
#[derive(Debug, PartialEq, Eq)]
pub struct Access {
    pub area: &'static str,
    pub write: bool,
}

/// The scope a request to `path` needs, if it is under an area. Searches
/// (POST of a query) are reads. `path` is as the `/v1` router sees it,
/// with or without that prefix.
pub fn needed(method: &Method, path: &str) -> Option<Access> {
    let rest = path.strip_prefix("/v1").unwrap_or(path).strip_prefix('/')?;
    let first = rest.split('/').next()?;
    let area = AREAS
        .iter()
        .find(|(_, segments)| segments.contains(&first))?
        .0;
    let is_search = rest.ends_with("/search") || rest.ends_with("/schema");
    // Editing one block row: the agent's own needs `agents:write`, a user's
    // or session's copy `memories:write`; the handler knows which it is.
    let is_block_edit = method == Method::PATCH && is_block_path(rest);
    let write = !(method == Method::GET || method == Method::HEAD || is_search || is_block_edit);
    Some(Access { area, write })
}

/// `agents/{agent}/blocks/{label}`.
fn is_block_path(rest: &str) -> bool {
    let segments: Vec<&str> = rest.split('/').collect();
    matches!(segments.as_slice(), ["agents", _, "blocks", _])
}

/// Whether `held` covers `scope`.
pub fn covers(held: &[String], scope: &str) -> bool {
    roster_core::actor::scope_covers(held, scope)
}

/// Checks requested scopes: each `AREA:read|write` of a known area;
/// duplicates dropped, order kept.
pub fn parse(requested: &[String]) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    for scope in requested {
        let valid = scope.split_once(':').is_some_and(|(area, level)| {
            AREAS.iter().any(|(a, _)| *a == area) && (level == "read" || level == "write")
        });
        if !valid {
            let areas: Vec<&str> = AREAS.iter().map(|(a, _)| *a).collect();
            return Err(format!(
                "unknown scope `{scope}`: scopes are AREA:read or AREA:write, AREA one of {}",
                areas.join(", ")
            ));
        }
        if !out.contains(scope) {
            out.push(scope.clone());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_of_a_user_hold_the_users_default_unless_made_with_scopes() {
        let held = effective(None, "user", Some("ada"), false).expect("default");
        assert!(covers(&held, "sessions:write") && covers(&held, "memories:read"));
        for beyond in [
            "keys:read",
            "audit:read",
            "ledger:read",
            "policies:write",
            "agents:write",
            "tools:write",
        ] {
            assert!(!covers(&held, beyond), "{beyond}");
        }
        assert!(parse(&held).is_ok(), "every default scope is a real one");
        let chosen = vec!["agents:write".to_owned()];
        assert_eq!(
            effective(Some(chosen.clone()), "user", Some("ada"), false),
            Some(chosen)
        );
        assert_eq!(effective(None, "user", None, false), None);
        assert_eq!(effective(None, "service", None, false), None);
        assert_eq!(effective(None, "user", Some("ada"), true), None);
    }

    #[test]
    fn requests_map_to_areas() {
        assert_eq!(
            needed(&Method::POST, "/v1/sessions/ses_1/messages"),
            Some(Access {
                area: "sessions",
                write: true
            })
        );
        assert_eq!(
            needed(&Method::GET, "/v1/runs/run_1"),
            Some(Access {
                area: "sessions",
                write: false
            })
        );
        assert_eq!(
            needed(&Method::POST, "/v1/memories/search"),
            Some(Access {
                area: "memories",
                write: false
            })
        );
        assert_eq!(
            needed(&Method::DELETE, "/keys/key_1"),
            Some(Access {
                area: "keys",
                write: true
            })
        );
        assert_eq!(needed(&Method::GET, "/v1/nothing"), None);
        // A block edit is decided by its handler (agent row or copy).
        assert_eq!(
            needed(&Method::PATCH, "/v1/agents/helper/blocks/human"),
            Some(Access {
                area: "agents",
                write: false
            })
        );
        for (method, path) in [
            (Method::PATCH, "/v1/agents/helper"),
            (Method::POST, "/v1/agents/helper/blocks"),
            (Method::DELETE, "/v1/agents/helper/blocks/human"),
        ] {
            assert_eq!(
                needed(&method, path),
                Some(Access {
                    area: "agents",
                    write: true
                }),
                "{method} {path}"
            );
        }
    }

    #[test]
    fn write_covers_read_only_of_its_area() {
        let held = vec!["agents:write".to_owned(), "ledger:read".to_owned()];
        assert!(covers(&held, "agents:read"));
        assert!(covers(&held, "agents:write"));
        assert!(covers(&held, "ledger:read"));
        assert!(!covers(&held, "ledger:write"));
        assert!(!covers(&held, "keys:read"));
    }

    #[test]
    fn unknown_scopes_are_refused() {
        assert!(parse(&["agents:read".into(), "agents:read".into()]).is_ok_and(|s| s.len() == 1));
        assert!(parse(&["agents:admin".into()]).is_err());
        assert!(parse(&["wizards:read".into()]).is_err());
        assert!(parse(&["agents".into()]).is_err());
    }
}
