//! What a tenant registers as an HTTP service: the document, where to send
//! requests, which hosts may be reached, and the credentials (stored only
//! sealed, never shown again).

use crate::import::Operation;
use crate::HttpError;
use serde::{Deserialize, Serialize};

pub const DEFAULT_TIMEOUT_SECS: u64 = 30;
pub const MAX_TIMEOUT_SECS: u64 = 600;
pub const DEFAULT_MAX_RESPONSE_BYTES: u32 = 64 * 1024;
pub const MAX_MAX_RESPONSE_BYTES: u32 = 4 * 1024 * 1024;

/// Credentials as given at registration.
#[derive(Clone, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum AuthInput {
    /// `Authorization: Bearer TOKEN`.
    Bearer { token: String },
    /// An API key sent in the named header.
    ApiKey { header: String, value: String },
}

/// How requests are authenticated, as stored and shown: no secret values.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Auth {
    Bearer,
    ApiKey { header: String },
}

/// A registration request (API body, CLI flags). Holds plaintext secrets.
#[derive(Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpServiceInput {
    /// `[a-z0-9_-]`, at most 32 characters, no `__`.
    #[schema(pattern = r"^(?!_)(?!.*__)(?!.*_$)[a-z0-9_-]{1,32}$")]
    pub name: String,
    /// The OpenAPI 3.0 or 3.1 document: JSON or YAML text, or a JSON object.
    #[schema(value_type = Object)]
    pub spec: serde_json::Value,
    /// Where requests go; the document's first server when absent.
    #[serde(default)]
    pub base_url: Option<String>,
    /// Hosts requests (and redirects) may reach; the base URL's host when
    /// absent. The base URL's host must be one of them.
    #[serde(default)]
    pub allow_hosts: Option<Vec<String>>,
    /// Stored encrypted.
    #[serde(default)]
    pub auth: Option<AuthInput>,
    /// Only these operations (by operationId) become tools; all when absent.
    #[serde(default)]
    pub operations: Option<Vec<String>>,
    /// Longest one call may take, in seconds (default 30).
    #[serde(default)]
    pub timeout_secs: Option<u64>,
    /// Longest response body shown to the model (default 64 KiB).
    #[serde(default)]
    pub max_response_bytes: Option<u32>,
}

impl std::fmt::Debug for HttpServiceInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpServiceInput")
            .field("name", &self.name)
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

/// The stored config: no secret values.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HttpServiceConfig {
    /// The document's title and version.
    pub title: String,
    pub version: String,
    pub base_url: String,
    pub allow_hosts: Vec<String>,
    pub auth: Option<Auth>,
    pub operations: Vec<Operation>,
    pub timeout_secs: u64,
    pub max_response_bytes: u32,
}

/// The sealed part: the token or key value.
#[derive(Clone, Serialize, Deserialize)]
pub struct HttpSecrets {
    pub value: String,
}

fn check_header_name(name: &str) -> Result<(), HttpError> {
    if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
        return Err(HttpError::Invalid(format!("invalid header name `{name}`")));
    }
    Ok(())
}

fn check_header_value(what: &str, value: &str) -> Result<(), HttpError> {
    if value.is_empty() || reqwest::header::HeaderValue::from_str(value).is_err() {
        return Err(HttpError::Invalid(format!(
            "the {what} is empty or has characters a header cannot carry"
        )));
    }
    Ok(())
}

/// A host as compared against the allow-list: lower case, without a port.
pub(crate) fn host_of(url: &url::Url) -> Option<String> {
    url.host_str().map(|h| h.to_ascii_lowercase())
}

/// A registration's checked settings, apart from the document.
pub(crate) struct Settled {
    pub base_url: url::Url,
    pub allow_hosts: Vec<String>,
    pub auth: Option<(Auth, HttpSecrets)>,
    pub timeout_secs: u64,
    pub max_response_bytes: u32,
}

impl HttpServiceInput {
    /// Checks everything but the document; returns the parts to store.
    pub(crate) fn settle(&self, document_servers: &[String]) -> Result<Settled, HttpError> {
        roster_tool::check_integration_name(&self.name).map_err(HttpError::Invalid)?;
        let base = match (&self.base_url, document_servers.first()) {
            (Some(base), _) => base.clone(),
            (None, Some(server)) => server.clone(),
            (None, None) => {
                return Err(HttpError::Invalid(
                    "the document names no server URL; give base_url".into(),
                ))
            }
        };
        let base_url = url::Url::parse(&base).map_err(|e| {
            HttpError::Invalid(format!(
                "base URL `{base}` is not an absolute URL ({e}); give base_url"
            ))
        })?;
        if !matches!(base_url.scheme(), "http" | "https") {
            return Err(HttpError::Invalid(
                "base URL must be http:// or https://".into(),
            ));
        }
        if base_url.query().is_some() || base_url.fragment().is_some() {
            return Err(HttpError::Invalid(
                "base URL must not carry a query or fragment".into(),
            ));
        }
        let base_host =
            host_of(&base_url).ok_or_else(|| HttpError::Invalid("base URL has no host".into()))?;
        let allow_hosts: Vec<String> = match &self.allow_hosts {
            Some(hosts) => hosts
                .iter()
                .map(|h| h.trim().to_ascii_lowercase())
                .collect(),
            None => vec![base_host.clone()],
        };
        if allow_hosts
            .iter()
            .any(|h| h.is_empty() || h.contains('/') || h.contains(':') && !h.starts_with('['))
        {
            return Err(HttpError::Invalid(
                "allow_hosts lists host names without scheme, port or path".into(),
            ));
        }
        if !allow_hosts.contains(&base_host) {
            return Err(HttpError::Invalid(format!(
                "the base URL's host `{base_host}` is not in allow_hosts"
            )));
        }
        let auth = match &self.auth {
            None => None,
            Some(AuthInput::Bearer { token }) => {
                check_header_value("bearer token", token)?;
                Some((
                    Auth::Bearer,
                    HttpSecrets {
                        value: token.clone(),
                    },
                ))
            }
            Some(AuthInput::ApiKey { header, value }) => {
                check_header_name(header)?;
                check_header_value("API key", value)?;
                Some((
                    Auth::ApiKey {
                        header: header.clone(),
                    },
                    HttpSecrets {
                        value: value.clone(),
                    },
                ))
            }
        };
        let timeout_secs = self.timeout_secs.unwrap_or(DEFAULT_TIMEOUT_SECS);
        if !(1..=MAX_TIMEOUT_SECS).contains(&timeout_secs) {
            return Err(HttpError::Invalid(format!(
                "timeout_secs must be between 1 and {MAX_TIMEOUT_SECS}"
            )));
        }
        let max_response_bytes = self
            .max_response_bytes
            .unwrap_or(DEFAULT_MAX_RESPONSE_BYTES);
        if !(256..=MAX_MAX_RESPONSE_BYTES).contains(&max_response_bytes) {
            return Err(HttpError::Invalid(format!(
                "max_response_bytes must be between 256 and {MAX_MAX_RESPONSE_BYTES}"
            )));
        }
        Ok(Settled {
            base_url,
            allow_hosts,
            auth,
            timeout_secs,
            max_response_bytes,
        })
    }
}
