//! Long-term memory records: facts, preferences and summaries an agent
//! keeps for months, in namespaces, found by search rather than pinned.
//!
//! A record carries where it came from (provenance) and every change to it
//! is kept as a version, so what an agent "knows" can always be explained
//! and corrected.

use crate::{AgentId, MemoryId, RunId, SessionId, ValidationError};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Longest record text, in characters: a record is a fact, not a document.
pub const MAX_RECORD_CHARS: usize = 10_000;
/// Largest metadata object, serialised, in bytes.
pub const MAX_METADATA_BYTES: usize = 16 * 1024;
pub const MAX_NAMESPACE_BYTES: usize = 200;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MemoryRecord {
    pub id: MemoryId,
    /// Path inside the tenant, e.g. `agents/helper` or `users/alice`.
    pub namespace: String,
    pub content: String,
    /// `fact`, `preference`, `summary` or `note`.
    pub kind: String,
    /// Unique within the namespace when set: the record a strategy keeps
    /// updating (e.g. one summary per session).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[schema(value_type = Object)]
    pub metadata: serde_json::Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<Provenance>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
}

impl MemoryRecord {
    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_some_and(|t| t <= now)
    }
}

/// Where a record came from: the session items it was learned from.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Provenance {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<AgentId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_id: Option<SessionId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_id: Option<RunId>,
    /// First and last item `seq` of the session the record is based on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_seq: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to_seq: Option<i64>,
}

/// One entry of a record's history: its state after the change.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MemoryRecordVersion {
    pub version: i64,
    pub content: String,
    #[schema(value_type = Object)]
    pub metadata: serde_json::Value,
    /// `create`, `update` or `delete`.
    pub operation: String,
    /// Who made the change: `key:…` for an API key, `agent:…` for an agent.
    pub principal: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_id: Option<RunId>,
    pub created_at: DateTime<Utc>,
}

pub const RECORD_KINDS: &[&str] = &["fact", "preference", "summary", "note"];

pub fn validate_kind(kind: &str) -> Result<(), ValidationError> {
    if RECORD_KINDS.contains(&kind) {
        Ok(())
    } else {
        Err(ValidationError::new(
            "kind",
            format!("must be one of {}", RECORD_KINDS.join(", ")),
        ))
    }
}

pub fn validate_content(content: &str) -> Result<(), ValidationError> {
    if content.trim().is_empty() {
        return Err(ValidationError::new("content", "must not be empty"));
    }
    let chars = content.chars().count();
    if chars > MAX_RECORD_CHARS {
        return Err(ValidationError::new(
            "content",
            format!("is {chars} characters; a memory record holds at most {MAX_RECORD_CHARS}"),
        ));
    }
    Ok(())
}

pub fn validate_metadata(metadata: &serde_json::Value) -> Result<(), ValidationError> {
    if !metadata.is_object() {
        return Err(ValidationError::new("metadata", "must be a JSON object"));
    }
    if metadata.to_string().len() > MAX_METADATA_BYTES {
        return Err(ValidationError::new(
            "metadata",
            format!("is larger than {MAX_METADATA_BYTES} bytes"),
        ));
    }
    Ok(())
}

/// A namespace is a `/`-separated path of plain segments, so it can sit in
/// a URL query, a CLI argument and a filter term without escaping.
pub fn validate_namespace(namespace: &str) -> Result<(), ValidationError> {
    let segment_ok = |s: &str| {
        !s.is_empty()
            && s.len() <= 100
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'@'))
            && s != "."
            && s != ".."
    };
    if namespace.is_empty()
        || namespace.len() > MAX_NAMESPACE_BYTES
        || !namespace.split('/').all(segment_ok)
    {
        return Err(ValidationError::new(
            "namespace",
            format!(
                "must be a path like `agents/helper`: segments of letters, digits, '-', '_', '.' or '@' separated by '/', at most {MAX_NAMESPACE_BYTES} bytes"
            ),
        ));
    }
    Ok(())
}

/// A session's user id fills `{user}` in namespace templates, so it is one
/// plain namespace segment.
pub fn validate_user_id(user: &str) -> Result<(), ValidationError> {
    if user.contains('/') || validate_namespace(user).is_err() || user.len() > 100 {
        return Err(ValidationError::new(
            "user",
            "must be 1-100 characters of letters, digits, '-', '_', '.' or '@'",
        ));
    }
    Ok(())
}

pub fn validate_key(key: &str) -> Result<(), ValidationError> {
    if key.is_empty() || key.len() > 200 || key.chars().any(char::is_control) {
        return Err(ValidationError::new(
            "key",
            "must be 1-200 bytes without control characters",
        ));
    }
    Ok(())
}

/// What a namespace template may refer to: `{agent}` (the agent's name),
/// `{user}` (the session's user) and `{session}` (the session id).
#[derive(Clone, Copy, Debug)]
pub struct NamespaceVars<'a> {
    pub agent: &'a str,
    pub user: Option<&'a str>,
    pub session: &'a str,
}

/// The user a namespace belongs to: `users/NAME` and every path under it
/// are NAME's, and only NAME's sessions and keys (or keys allowed to act
/// for NAME) reach them.
pub fn namespace_owner(namespace: &str) -> Option<&str> {
    let mut segments = namespace.split('/');
    match (segments.next(), segments.next()) {
        (Some("users"), Some(user)) if !user.is_empty() => Some(user),
        _ => None,
    }
}

/// Fills a namespace template. `None` when the namespace does not apply to
/// this session: it names `{user}` and the session has none, or it resolves
/// under another user's `users/NAME` (a template may not reach past the
/// session's own user, even by naming one literally).
pub fn resolve_namespace(template: &str, vars: &NamespaceVars<'_>) -> Option<String> {
    if template.contains("{user}") && vars.user.is_none() {
        return None;
    }
    let resolved = template
        .replace("{agent}", vars.agent)
        .replace("{user}", vars.user.unwrap_or_default())
        .replace("{session}", vars.session);
    match namespace_owner(&resolved) {
        Some(owner) if Some(owner) != vars.user => None,
        _ => Some(resolved),
    }
}

/// Where a session's own write to `namespace` lands. A namespace no user
/// owns is read by every session of the agent, so a user's session writing
/// there would hand what one user said to all the others: unless the agent
/// shares user memories (`share`), such a write goes under the user's own
/// `users/NAME/…` instead. Sessions without a user, namespaces a user owns
/// and namespaces of this session itself are left as they are. `None` when
/// the private form would be longer than a namespace may be.
pub fn own_namespace(namespace: &str, vars: &NamespaceVars<'_>, share: bool) -> Option<String> {
    let this_session = namespace.split('/').any(|segment| segment == vars.session);
    match vars.user {
        Some(user) if !share && !this_session && namespace_owner(namespace).is_none() => {
            let private = format!("users/{user}/{namespace}");
            (private.len() <= MAX_NAMESPACE_BYTES).then_some(private)
        }
        _ => Some(namespace.to_owned()),
    }
}

/// Checks a template by resolving it with sample values.
pub fn validate_namespace_template(template: &str) -> Result<(), ValidationError> {
    let unknown = template
        .split('{')
        .skip(1)
        .filter_map(|rest| rest.split_once('}').map(|(name, _)| name))
        .find(|name| !matches!(*name, "agent" | "user" | "session"));
    if let Some(name) = unknown {
        return Err(ValidationError::new(
            "namespace",
            format!("unknown placeholder `{{{name}}}`; use {{agent}}, {{user}} or {{session}}"),
        ));
    }
    validate_namespace(
        &template
            .replace("{agent}", "agent")
            .replace("{user}", "user")
            .replace("{session}", "ses_0"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_users_writes_stay_their_own_unless_the_agent_shares_them() {
        let ada = NamespaceVars {
            agent: "helper",
            user: Some("ada"),
            session: "ses_1",
        };
        let own = |ns: &str, share: bool| own_namespace(ns, &ada, share);
        assert_eq!(
            own("agents/helper", false).as_deref(),
            Some("users/ada/agents/helper")
        );
        assert_eq!(own("agents/helper", true).as_deref(), Some("agents/helper"));
        assert_eq!(own("users/ada", false).as_deref(), Some("users/ada"));
        assert_eq!(
            own("sessions/ses_1", false).as_deref(),
            Some("sessions/ses_1")
        );
        assert_eq!(own(&"a".repeat(195), false), None, "too long");
        let nobody = NamespaceVars { user: None, ..ada };
        assert_eq!(
            own_namespace("agents/helper", &nobody, false).as_deref(),
            Some("agents/helper")
        );
    }

    #[test]
    fn namespaces() {
        for ok in ["agents/helper", "users/ada@example.com", "shared", "a/b/c"] {
            assert!(validate_namespace(ok).is_ok(), "{ok}");
        }
        for bad in ["", "/x", "x/", "a//b", "a b", "../x", "ü", &"a".repeat(201)] {
            assert!(validate_namespace(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn templates_resolve_and_skip_missing_users() {
        let vars = NamespaceVars {
            agent: "helper",
            user: None,
            session: "ses_1",
        };
        assert_eq!(
            resolve_namespace("agents/{agent}", &vars).as_deref(),
            Some("agents/helper")
        );
        assert_eq!(resolve_namespace("users/{user}", &vars), None);
        assert_eq!(resolve_namespace("users/bob", &vars), None, "no user");
        let ada = NamespaceVars {
            user: Some("ada"),
            ..vars
        };
        assert_eq!(
            resolve_namespace("users/{user}/notes", &ada).as_deref(),
            Some("users/ada/notes")
        );
        assert_eq!(resolve_namespace("users/bob", &ada), None, "another user's");
        assert_eq!(resolve_namespace("users/bob/x", &ada), None);
        assert_eq!(
            resolve_namespace("usersbob", &ada).as_deref(),
            Some("usersbob")
        );
        assert_eq!(namespace_owner("users"), None);
        assert_eq!(namespace_owner("users/ada/x"), Some("ada"));
        assert_eq!(namespace_owner("agents/users"), None);
        assert!(validate_namespace_template("users/{user}/notes").is_ok());
        assert!(validate_namespace_template("x/{tenant}").is_err());
        assert!(validate_namespace_template("x//{agent}").is_err());
    }

    #[test]
    fn content_limits() {
        assert!(validate_content("  ").is_err());
        assert!(validate_content("Ada prefers tea").is_ok());
        assert!(validate_content(&"x".repeat(MAX_RECORD_CHARS + 1)).is_err());
        assert!(validate_metadata(&serde_json::json!([1])).is_err());
        assert!(validate_metadata(&serde_json::json!({"a": 1})).is_ok());
    }
}
