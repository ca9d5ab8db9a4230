//! The tenant's remote agents: registration (fetch and check the card,
//! check the egress policy for the card and the endpoint it names, seal
//! the credential, store with its audit event), a refresh of the card,
//! removal, and per remote what a call needs — its config, its opened
//! credential and an HTTP client for its endpoint — rebuilt whenever the
//! registration changed.

use crate::card::{parse_card, Card};
use crate::http::{self, MAX_CARD_BYTES};
use crate::spec::{RemoteConfig, RemoteInput, RemoteSecrets};
use crate::turn::Turns;
use crate::{A2aError, RemoteError, KIND};
use reqwest::header::HeaderMap;
use roster_core::TenantId;
use roster_egress::{EgressError, EgressPolicy};
use roster_secrets::{Secret, SecretBox};
use roster_store::{integration_event, DynStore, Integration, NewIntegration, StoreError};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Fetching a card never takes longer than this (or the registration's
/// timeout, when shorter).
const CARD_TIMEOUT: Duration = Duration::from_secs(30);

/// What a call needs of one registration.
pub(crate) struct Remote {
    pub id: String,
    updated_at: chrono::DateTime<chrono::Utc>,
    pub config: RemoteConfig,
    pub headers: HeaderMap,
    pub endpoint: url::Url,
    /// Made for the endpoint's port (its resolver is bound to it).
    pub client: reqwest::Client,
}

pub struct Remotes {
    store: DynStore,
    secrets: SecretBox,
    pub(crate) egress: Arc<EgressPolicy>,
    remotes: Mutex<HashMap<(TenantId, String), Arc<Remote>>>,
    pub(crate) turns: Turns,
}

/// The sealing context of a remote's credential: moved to another row, it
/// does not open.
pub fn secret_context(tenant: &TenantId, name: &str) -> String {
    format!("{tenant}/{KIND}/{name}")
}

/// An egress refusal that says which URL it was about.
fn egress_about(what: &str, url: &str, error: EgressError) -> EgressError {
    match error {
        EgressError::Denied(why) => EgressError::Denied(format!("{what} {url}: {why}")),
        EgressError::Unresolved(why) => EgressError::Unresolved(format!("{what} {url}: {why}")),
        other => other,
    }
}

fn read_config(stored: &Integration) -> Result<RemoteConfig, A2aError> {
    serde_json::from_value(stored.config.clone())
        .map_err(|e| A2aError::Invalid(format!("stored config of `{}`: {e}", stored.name)))
}

impl Remotes {
    pub fn new(store: DynStore, secrets: SecretBox, egress: Arc<EgressPolicy>) -> Arc<Self> {
        Arc::new(Self {
            store,
            secrets,
            egress,
            remotes: Mutex::new(HashMap::new()),
            turns: Turns::default(),
        })
    }

    pub(crate) fn store(&self) -> &DynStore {
        &self.store
    }

    /// Fetches and reads the card, then checks the endpoint it names
    /// against the egress policy: a card must not lead Roster somewhere
    /// the tenant could not send it directly.
    async fn fetch_card(
        &self,
        card_url: &url::Url,
        headers: &HeaderMap,
        timeout: Duration,
    ) -> Result<Card, A2aError> {
        let timeout = timeout.min(CARD_TIMEOUT);
        let fetched = tokio::time::timeout(
            timeout,
            http::get_json(&self.egress, card_url, headers, MAX_CARD_BYTES),
        )
        .await;
        let value = match fetched {
            Ok(Ok(value)) => value,
            Ok(Err(RemoteError::Egress(refused))) => {
                return Err(A2aError::Egress(egress_about(
                    "the agent card at",
                    card_url.as_str(),
                    refused,
                )))
            }
            Ok(Err(e)) => {
                return Err(A2aError::Unavailable(format!(
                    "cannot fetch the agent card at {card_url}: {e}"
                )))
            }
            Err(_) => {
                return Err(A2aError::Unavailable(format!(
                    "the agent card at {card_url} did not arrive within {timeout:?}"
                )))
            }
        };
        let card = parse_card(value).map_err(|e| match e {
            A2aError::InvalidCard(why) => A2aError::InvalidCard(format!("{card_url}: {why}")),
            other => other,
        })?;
        let endpoint = url::Url::parse(&card.endpoint)
            .map_err(|e| A2aError::InvalidCard(format!("{card_url}: endpoint: {e}")))?;
        // A name that does not resolve now may later: only a refusal of
        // the policy stops the registration; every call is checked again.
        match self.egress.check_url(&endpoint).await {
            Ok(()) | Err(EgressError::Unresolved(_)) => Ok(card),
            Err(refused) => Err(A2aError::Egress(egress_about(
                "the card's JSON-RPC endpoint",
                endpoint.as_str(),
                refused,
            ))),
        }
    }

    /// Registers a remote agent for `tenant` once its card is fetched and
    /// usable and the egress policy allows both the card's and the
    /// endpoint's addresses; the registration and its audit event (actor
    /// `actor`) are one write.
    pub async fn register(
        &self,
        tenant: &TenantId,
        input: RemoteInput,
        actor: &str,
    ) -> Result<Integration, A2aError> {
        let parts = input.into_parts()?;
        let headers = parts.secrets.header_map()?;
        let card = self
            .fetch_card(
                &parts.card_url,
                &headers,
                Duration::from_secs(parts.timeout_secs),
            )
            .await?;
        let config = RemoteConfig {
            url: parts.url,
            card_url: parts.card_url.to_string(),
            card,
            description: parts.description,
            headers: parts.secrets.headers.keys().cloned().collect(),
            timeout_secs: parts.timeout_secs,
        };
        let sealed = if parts.secrets.headers.is_empty() {
            None
        } else {
            let plain = serde_json::to_string(&parts.secrets)
                .map_err(|e| A2aError::Invalid(format!("cannot encode credentials: {e}")))?;
            Some(
                self.secrets
                    .seal(&Secret::new(plain), &secret_context(tenant, &parts.name)),
            )
        };
        let audit = integration_event(
            actor,
            KIND,
            "add",
            &parts.name,
            serde_json::json!({
                "url": config.url,
                "card_url": config.card_url,
                "endpoint": config.card.endpoint,
                "protocol_version": config.card.protocol_version,
                "card_name": config.card.name,
                "headers": config.headers,
            }),
        );
        let value = serde_json::to_value(&config)
            .map_err(|e| A2aError::Invalid(format!("cannot encode config: {e}")))?;
        let stored = self
            .store
            .create_integration(
                tenant,
                NewIntegration::new(KIND, &parts.name, value, sealed),
                audit,
            )
            .await
            .map_err(|e| match e {
                StoreError::Conflict(_) => A2aError::Store(StoreError::Conflict(format!(
                    "a remote agent named `{}` exists",
                    parts.name
                ))),
                other => A2aError::Store(other),
            })?;
        self.forget(tenant, &parts.name);
        Ok(stored)
    }

    /// Fetches the card again and stores what it says now (audited as
    /// `a2a.refresh`); the credential and every session's conversation stay.
    pub async fn refresh(
        &self,
        tenant: &TenantId,
        name: &str,
        actor: &str,
    ) -> Result<Integration, A2aError> {
        let (stored, mut config) = self.registration(tenant, name).await?;
        let secrets = self.open(tenant, &stored)?;
        let card_url = url::Url::parse(&config.card_url)
            .map_err(|e| A2aError::Invalid(format!("stored card URL of `{name}`: {e}")))?;
        let card = self
            .fetch_card(
                &card_url,
                &secrets.header_map()?,
                Duration::from_secs(config.timeout_secs),
            )
            .await?;
        let audit = integration_event(
            actor,
            KIND,
            "refresh",
            name,
            serde_json::json!({
                "endpoint": card.endpoint,
                "protocol_version": card.protocol_version,
                "card_name": card.name,
                "changed": card != config.card,
            }),
        );
        config.card = card;
        let value = serde_json::to_value(&config)
            .map_err(|e| A2aError::Invalid(format!("cannot encode config: {e}")))?;
        let updated = self
            .store
            .update_integration_config(tenant, KIND, name, value, audit)
            .await?
            .ok_or_else(|| A2aError::NotFound(format!("no remote agent `{name}`")))?;
        self.forget(tenant, name);
        Ok(updated)
    }

    /// The registration as stored, with its config.
    pub async fn registration(
        &self,
        tenant: &TenantId,
        name: &str,
    ) -> Result<(Integration, RemoteConfig), A2aError> {
        let stored = self
            .store
            .get_integration(tenant, KIND, name)
            .await?
            .ok_or_else(|| A2aError::NotFound(format!("no remote agent `{name}`")))?;
        let config = read_config(&stored)?;
        Ok((stored, config))
    }

    pub async fn list(
        &self,
        tenant: &TenantId,
    ) -> Result<Vec<(Integration, RemoteConfig)>, A2aError> {
        let mut out = Vec::new();
        for stored in self.store.list_integrations(tenant, KIND).await? {
            let config = read_config(&stored)?;
            out.push((stored, config));
        }
        Ok(out)
    }

    /// Removes a remote with every session's conversation with it, audited
    /// (actor `actor`).
    pub async fn remove(&self, tenant: &TenantId, name: &str, actor: &str) -> Result<(), A2aError> {
        let audit = integration_event(
            actor,
            KIND,
            "remove",
            name,
            serde_json::json!({ "name": name }),
        );
        let removed = self.store.delete_remote(tenant, KIND, name, audit).await?;
        self.forget(tenant, name);
        if removed {
            Ok(())
        } else {
            Err(A2aError::NotFound(format!("no remote agent `{name}`")))
        }
    }

    fn forget(&self, tenant: &TenantId, name: &str) {
        self.remotes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&(tenant.clone(), name.to_owned()));
    }

    fn open(&self, tenant: &TenantId, stored: &Integration) -> Result<RemoteSecrets, A2aError> {
        let Some(sealed) = &stored.sealed else {
            return Ok(RemoteSecrets::default());
        };
        let opened = self
            .secrets
            .open(sealed, &secret_context(tenant, &stored.name))
            .map_err(|e| A2aError::Secret(e.to_string()))?;
        serde_json::from_str(opened.expose())
            .map_err(|_| A2aError::Secret("sealed credentials are malformed".into()))
    }

    /// What a call to `name` needs, as registered now.
    pub(crate) async fn remote(
        &self,
        tenant: &TenantId,
        name: &str,
    ) -> Result<Arc<Remote>, A2aError> {
        let key = (tenant.clone(), name.to_owned());
        let (stored, config) = match self.registration(tenant, name).await {
            Ok(found) => found,
            Err(e) => {
                self.forget(tenant, name);
                return Err(e);
            }
        };
        if let Some(remote) = self
            .remotes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
        {
            if remote.id == stored.id && remote.updated_at == stored.updated_at {
                return Ok(remote.clone());
            }
        }
        let headers = self.open(tenant, &stored)?.header_map()?;
        let endpoint = url::Url::parse(&config.card.endpoint)
            .map_err(|e| A2aError::Invalid(format!("stored endpoint of `{name}`: {e}")))?;
        let client =
            http::client(&self.egress, http::port_of(&endpoint)).map_err(A2aError::Unavailable)?;
        let remote = Arc::new(Remote {
            id: stored.id,
            updated_at: stored.updated_at,
            config,
            headers,
            endpoint,
            client,
        });
        self.remotes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, remote.clone());
        Ok(remote)
    }
}
