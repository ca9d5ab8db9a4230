//! What a tenant registers as a remote agent: the part stored as plain
//! config (where the card is, what it said, the names of the credential's
//! headers), and the credential (a bearer token, headers) that is only
//! ever stored sealed and never shown again.

use crate::card::Card;
use crate::A2aError;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Longest a call may be given, whatever the registration says.
pub const MAX_TIMEOUT_SECS: u64 = 3_600;
/// Remote agents think (and may call models of their own): longer than an
/// MCP tool's default.
pub const DEFAULT_TIMEOUT_SECS: u64 = 120;
/// Longest description a registration may give the tool.
pub const MAX_DESCRIPTION_CHARS: usize = 2_000;

/// Headers Roster sets itself on every request.
const RESERVED_HEADERS: &[&str] = &[
    "a2a-version",
    "accept",
    "connection",
    "content-length",
    "content-type",
    "host",
    "transfer-encoding",
];

/// A registration request (API body, CLI flags). Holds plaintext secrets.
#[derive(Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RemoteInput {
    /// `[a-z0-9_-]`, at most 32 characters, no `__`; the tool is
    /// `ask_remote_NAME`.
    #[schema(pattern = r"^(?!_)(?!.*__)(?!.*_$)[a-z0-9_-]{1,32}$")]
    pub name: String,
    /// The agent's card (a URL ending in `.json`), or the agent's base URL,
    /// whose card is at `/.well-known/agent-card.json` under it.
    #[schema(pattern = r"^https?://[^\s/?#]+[^\s]*$")]
    pub url: String,
    /// Sent as `Authorization: Bearer …` (stored encrypted, never shown).
    #[serde(default)]
    pub bearer_token: Option<String>,
    /// Other headers to send, e.g. an API key (stored encrypted, never shown).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// The tool's description for models, instead of the card's.
    #[serde(default)]
    pub description: Option<String>,
    /// Longest one call may take, in seconds (default 120).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 3600)]
    pub timeout_secs: Option<u64>,
}

impl std::fmt::Debug for RemoteInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteInput")
            .field("name", &self.name)
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// The stored config: no secret values, only the names of the headers
/// sent from sealed values.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RemoteConfig {
    /// The URL given at registration.
    pub url: String,
    /// Where the card was fetched.
    pub card_url: String,
    /// What the card said when it was last fetched.
    pub card: Card,
    /// The registration's own description of the tool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Names of the headers sent from sealed values (`Authorization` for a
    /// bearer token).
    #[serde(default)]
    pub headers: Vec<String>,
    pub timeout_secs: u64,
}

/// The sealed part: every credential as the header it is sent as.
#[derive(Clone, Default, Serialize, Deserialize)]
pub(crate) struct RemoteSecrets {
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

impl RemoteSecrets {
    /// The headers as a request carries them, marked sensitive so they
    /// never appear in logs.
    pub(crate) fn header_map(&self) -> Result<HeaderMap, A2aError> {
        let mut map = HeaderMap::new();
        for (name, value) in &self.headers {
            let key = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| A2aError::Invalid(format!("invalid header name `{name}`")))?;
            let mut value = HeaderValue::from_str(value).map_err(|_| {
                A2aError::Invalid(format!(
                    "the value of header `{name}` has characters a header cannot carry"
                ))
            })?;
            value.set_sensitive(true);
            map.insert(key, value);
        }
        Ok(map)
    }
}

/// What a registration is, once checked: its name, the URL given, the
/// card's URL, and the rest of the config to complete with the card.
pub(crate) struct Parts {
    pub name: String,
    pub url: String,
    pub card_url: url::Url,
    pub description: Option<String>,
    pub timeout_secs: u64,
    pub secrets: RemoteSecrets,
}

impl RemoteInput {
    /// Checks the request and splits it into what is stored plainly and
    /// the sealed credential.
    pub(crate) fn into_parts(self) -> Result<Parts, A2aError> {
        roster_tool::check_integration_name(&self.name).map_err(A2aError::Invalid)?;
        let given = url::Url::parse(self.url.trim())
            .map_err(|e| A2aError::Invalid(format!("invalid url `{}`: {e}", self.url)))?;
        if !matches!(given.scheme(), "http" | "https") || given.host().is_none() {
            return Err(A2aError::Invalid(
                "url must be an http:// or https:// URL with a host".into(),
            ));
        }
        if !given.username().is_empty() || given.password().is_some() {
            return Err(A2aError::Invalid(
                "url must not carry credentials; give them as bearer_token or headers (stored encrypted)".into(),
            ));
        }
        let mut headers = BTreeMap::new();
        for (name, value) in self.headers {
            let lower = name.to_ascii_lowercase();
            if RESERVED_HEADERS.contains(&lower.as_str()) {
                return Err(A2aError::Invalid(format!(
                    "header `{name}` is set by Roster itself"
                )));
            }
            if headers
                .keys()
                .any(|k: &String| k.eq_ignore_ascii_case(&name))
            {
                return Err(A2aError::Invalid(format!("header `{name}` is given twice")));
            }
            headers.insert(name, value);
        }
        if let Some(token) = self.bearer_token {
            let token = token.trim();
            if token.is_empty() {
                return Err(A2aError::Invalid("bearer_token is empty".into()));
            }
            if headers
                .keys()
                .any(|k| k.eq_ignore_ascii_case("authorization"))
            {
                return Err(A2aError::Invalid(
                    "give bearer_token or an Authorization header, not both".into(),
                ));
            }
            headers.insert("Authorization".into(), format!("Bearer {token}"));
        }
        let secrets = RemoteSecrets { headers };
        // Refused now rather than at the first call.
        secrets.header_map()?;
        let description = match self.description.map(|d| d.trim().to_owned()) {
            Some(d) if d.is_empty() => None,
            Some(d) if d.chars().count() > MAX_DESCRIPTION_CHARS => {
                return Err(A2aError::Invalid(format!(
                    "description is longer than {MAX_DESCRIPTION_CHARS} characters"
                )))
            }
            other => other,
        };
        let timeout_secs = self.timeout_secs.unwrap_or(DEFAULT_TIMEOUT_SECS);
        if !(1..=MAX_TIMEOUT_SECS).contains(&timeout_secs) {
            return Err(A2aError::Invalid(format!(
                "timeout_secs must be between 1 and {MAX_TIMEOUT_SECS}"
            )));
        }
        Ok(Parts {
            name: self.name,
            card_url: crate::card::card_url(&given),
            url: given.to_string(),
            description,
            timeout_secs,
            secrets,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(url: &str) -> RemoteInput {
        RemoteInput {
            name: "billing".into(),
            url: url.into(),
            bearer_token: None,
            headers: BTreeMap::new(),
            description: None,
            timeout_secs: None,
        }
    }

    fn refused(input: RemoteInput) -> String {
        match input.into_parts() {
            Err(A2aError::Invalid(why)) => why,
            Err(other) => panic!("not Invalid: {other}"),
            Ok(_) => panic!("accepted"),
        }
    }

    #[test]
    fn a_registration_splits_into_config_and_a_sealed_credential() {
        let mut given = input("https://agents.example/billing");
        given.bearer_token = Some(" tok ".into());
        given.headers.insert("X-Team".into(), "ops".into());
        let parts = given.into_parts().expect("parts");
        assert_eq!(
            parts.card_url.as_str(),
            "https://agents.example/billing/.well-known/agent-card.json"
        );
        assert_eq!(parts.timeout_secs, DEFAULT_TIMEOUT_SECS);
        assert_eq!(parts.secrets.headers["Authorization"], "Bearer tok");
        let map = parts.secrets.header_map().expect("headers");
        assert!(map["authorization"].is_sensitive());
        assert_eq!(map["x-team"], "ops");
    }

    #[test]
    fn bad_registrations_say_what_is_wrong() {
        let mut bad = input("http://h/");
        bad.name = "Bad Name".into();
        assert!(refused(bad).contains("invalid name"));
        assert!(refused(input("ftp://h/")).contains("http://"));
        assert!(refused(input("nonsense")).contains("invalid url"));
        assert!(refused(input("http://u:p@h/")).contains("must not carry credentials"));
        let mut both = input("http://h/");
        both.bearer_token = Some("t".into());
        both.headers.insert("authorization".into(), "x".into());
        assert!(refused(both).contains("not both"));
        let mut reserved = input("http://h/");
        reserved.headers.insert("A2A-Version".into(), "9".into());
        assert!(refused(reserved).contains("set by Roster"));
        let mut twice = input("http://h/");
        twice.headers.insert("X-K".into(), "1".into());
        twice.headers.insert("x-k".into(), "2".into());
        assert!(refused(twice).contains("given twice"));
        let mut broken = input("http://h/");
        broken.headers.insert("X-K".into(), "a\nb".into());
        assert!(refused(broken).contains("cannot carry"));
        let mut bad_name = input("http://h/");
        bad_name.headers.insert("X K".into(), "1".into());
        assert!(refused(bad_name).contains("invalid header name"));
        let mut slow = input("http://h/");
        slow.timeout_secs = Some(0);
        assert!(refused(slow).contains("timeout_secs"));
        let mut wordy = input("http://h/");
        wordy.description = Some("w".repeat(MAX_DESCRIPTION_CHARS + 1));
        assert!(refused(wordy).contains("description"));
        let mut empty = input("http://h/");
        empty.bearer_token = Some("  ".into());
        assert!(refused(empty).contains("empty"));
    }

    #[test]
    fn debug_never_shows_a_credential() {
        let mut given = input("http://h/");
        given.bearer_token = Some("tok-secret".into());
        given.headers.insert("X-Key".into(), "key-secret".into());
        let shown = format!("{given:?}");
        assert!(!shown.contains("secret"), "{shown}");
    }
}
