//! The tenant's HTTP services: registration (import the document, settle
//! base URL, hosts and credentials, check the egress policy, store with
//! its audit event), and per service its HTTP clients — one per
//! destination port, each resolving through the egress policy — replaced
//! when the registration changes.

use crate::import::{import, Operation};
use crate::spec::{HttpSecrets, HttpServiceConfig, HttpServiceInput};
use crate::tool::exposed_name;
use crate::{HttpError, KIND};
use roster_core::TenantId;
use roster_egress::EgressPolicy;
use roster_secrets::{Secret, SecretBox};
use roster_store::{integration_event, DynStore, Integration, NewIntegration, StoreError};
use roster_tool::ToolOutput;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub(crate) struct Service {
    id: String,
    updated_at: chrono::DateTime<chrono::Utc>,
    pub config: HttpServiceConfig,
    pub secret: Option<String>,
    pub egress: Arc<EgressPolicy>,
    /// One client per destination port: a resolver knows the name it
    /// resolves, never the port, and the policy judges both.
    clients: Mutex<HashMap<u16, reqwest::Client>>,
}

impl Service {
    /// The client for requests to `port`.
    pub(crate) fn client(&self, port: u16) -> Result<reqwest::Client, String> {
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(client) = clients.get(&port) {
            return Ok(client.clone());
        }
        let client = crate::call::client(
            &self.egress,
            port,
            Duration::from_secs(self.config.timeout_secs),
        )
        .map_err(|e| format!("cannot build an HTTP client: {e}"))?;
        clients.insert(port, client.clone());
        Ok(client)
    }
}

pub struct HttpServices {
    store: DynStore,
    secrets: SecretBox,
    egress: Arc<EgressPolicy>,
    services: Mutex<HashMap<(TenantId, String), Arc<Service>>>,
}

/// The sealing context of a service's credential: moved to another row, it
/// does not open.
pub fn secret_context(tenant: &TenantId, name: &str) -> String {
    format!("{tenant}/{KIND}/{name}")
}

impl HttpServices {
    pub fn new(store: DynStore, secrets: SecretBox, egress: Arc<EgressPolicy>) -> Arc<Self> {
        Arc::new(Self {
            store,
            secrets,
            egress,
            services: Mutex::new(HashMap::new()),
        })
    }

    /// Imports the document and stores the service with its audit event
    /// (actor `actor`), once the egress policy allows its base URL's
    /// address. Returns the stored registration and the operations left
    /// out, with why.
    pub async fn register(
        &self,
        tenant: &TenantId,
        input: HttpServiceInput,
        actor: &str,
    ) -> Result<(Integration, Vec<String>), HttpError> {
        roster_tool::check_integration_name(&input.name).map_err(HttpError::Invalid)?;
        let imported = import(&input.spec)?;
        let settled = input.settle(&imported.servers)?;
        let mut operations = imported.operations;
        if let Some(wanted) = &input.operations {
            let unknown: Vec<&String> = wanted
                .iter()
                .filter(|id| !operations.iter().any(|op| &op.id == *id))
                .collect();
            if !unknown.is_empty() {
                let known: Vec<&str> = operations.iter().map(|op| op.id.as_str()).collect();
                return Err(HttpError::Invalid(format!(
                    "the document has no operation {}; it has: {}",
                    unknown
                        .iter()
                        .map(|s| format!("`{s}`"))
                        .collect::<Vec<_>>()
                        .join(", "),
                    known.join(", ")
                )));
            }
            operations.retain(|op| wanted.contains(&op.id));
        }
        let mut names: BTreeMap<String, &str> = BTreeMap::new();
        for op in &operations {
            let name = exposed_name(&input.name, &op.id);
            if let Some(other) = names.insert(name.clone(), &op.id) {
                return Err(HttpError::Invalid(format!(
                    "operations `{other}` and `{}` would both be the tool `{name}`; rename one operationId or leave one out with `operations`",
                    op.id
                )));
            }
        }
        // A name that does not resolve now may later: only a refusal of the
        // policy stops the registration; every connection is checked again.
        match self.egress.check_url(&settled.base_url).await {
            Ok(()) | Err(roster_egress::EgressError::Unresolved(_)) => {}
            Err(refused) => return Err(HttpError::Egress(refused)),
        }
        let (auth, secret) = match settled.auth {
            Some((auth, secret)) => (Some(auth), Some(secret)),
            None => (None, None),
        };
        let config = HttpServiceConfig {
            title: imported.title,
            version: imported.version,
            base_url: settled.base_url.to_string(),
            allow_hosts: settled.allow_hosts,
            auth,
            operations,
            timeout_secs: settled.timeout_secs,
            max_response_bytes: settled.max_response_bytes,
        };
        let sealed = match &secret {
            Some(secret) => {
                let plain = serde_json::to_string(secret)
                    .map_err(|e| HttpError::Invalid(format!("cannot encode credentials: {e}")))?;
                Some(
                    self.secrets
                        .seal(&Secret::new(plain), &secret_context(tenant, &input.name)),
                )
            }
            None => None,
        };
        let audit = integration_event(
            actor,
            KIND,
            "add",
            &input.name,
            serde_json::json!({
                "base_url": config.base_url,
                "allow_hosts": config.allow_hosts,
                "auth": config.auth,
                "operations": config.operations.iter().map(|op| op.id.as_str()).collect::<Vec<_>>(),
            }),
        );
        let stored = self
            .store
            .create_integration(
                tenant,
                NewIntegration::new(
                    KIND,
                    &input.name,
                    serde_json::to_value(&config)
                        .map_err(|e| HttpError::Invalid(format!("cannot encode config: {e}")))?,
                    sealed,
                ),
                audit,
            )
            .await
            .map_err(|e| match e {
                StoreError::Conflict(_) => HttpError::Store(StoreError::Conflict(format!(
                    "an HTTP service named `{}` exists",
                    input.name
                ))),
                other => HttpError::Store(other),
            })?;
        self.forget(tenant, &input.name);
        Ok((stored, imported.skipped))
    }

    pub async fn registration(
        &self,
        tenant: &TenantId,
        name: &str,
    ) -> Result<(Integration, HttpServiceConfig), HttpError> {
        let stored = self
            .store
            .get_integration(tenant, KIND, name)
            .await?
            .ok_or_else(|| HttpError::NotFound(format!("no HTTP service `{name}`")))?;
        let config = serde_json::from_value(stored.config.clone())
            .map_err(|e| HttpError::Invalid(format!("stored config of `{name}`: {e}")))?;
        Ok((stored, config))
    }

    pub async fn list(
        &self,
        tenant: &TenantId,
    ) -> Result<Vec<(Integration, HttpServiceConfig)>, HttpError> {
        let mut out = Vec::new();
        for stored in self.store.list_integrations(tenant, KIND).await? {
            let config = serde_json::from_value(stored.config.clone()).map_err(|e| {
                HttpError::Invalid(format!("stored config of `{}`: {e}", stored.name))
            })?;
            out.push((stored, config));
        }
        Ok(out)
    }

    /// Removes a service, audited (actor `actor`).
    pub async fn remove(
        &self,
        tenant: &TenantId,
        name: &str,
        actor: &str,
    ) -> Result<(), HttpError> {
        let removed = self
            .store
            .remove_integration(tenant, KIND, name, actor)
            .await?;
        self.forget(tenant, name);
        if removed {
            Ok(())
        } else {
            Err(HttpError::NotFound(format!("no HTTP service `{name}`")))
        }
    }

    fn forget(&self, tenant: &TenantId, name: &str) {
        self.services
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&(tenant.clone(), name.to_owned()));
    }

    pub(crate) async fn service(
        &self,
        tenant: &TenantId,
        name: &str,
    ) -> Result<Arc<Service>, HttpError> {
        let key = (tenant.clone(), name.to_owned());
        let (stored, config) = match self.registration(tenant, name).await {
            Ok(found) => found,
            Err(e) => {
                self.forget(tenant, name);
                return Err(e);
            }
        };
        if let Some(service) = self
            .services
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
        {
            if service.id == stored.id && service.updated_at == stored.updated_at {
                return Ok(service.clone());
            }
        }
        let secret = match &stored.sealed {
            Some(sealed) => {
                let opened = self
                    .secrets
                    .open(sealed, &secret_context(tenant, name))
                    .map_err(|e| HttpError::Secret(e.to_string()))?;
                let secret: HttpSecrets = serde_json::from_str(opened.expose())
                    .map_err(|_| HttpError::Secret("sealed credentials are malformed".into()))?;
                Some(secret.value)
            }
            None => None,
        };
        let service = Arc::new(Service {
            id: stored.id,
            updated_at: stored.updated_at,
            config,
            secret,
            egress: self.egress.clone(),
            clients: Mutex::new(HashMap::new()),
        });
        self.services
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, service.clone());
        Ok(service)
    }

    /// Calls one operation of a service; errors are results the model reads.
    pub async fn call(
        &self,
        tenant: &TenantId,
        name: &str,
        operation: &str,
        arguments: &serde_json::Value,
    ) -> ToolOutput {
        let service = match self.service(tenant, name).await {
            Ok(service) => service,
            Err(e) => return ToolOutput::error(e.to_string()),
        };
        let Some(op) = service
            .config
            .operations
            .iter()
            .find(|op| op.id == operation)
        else {
            return ToolOutput::error(format!(
                "HTTP service `{name}` has no operation `{operation}`"
            ));
        };
        crate::call::call(&service, op, arguments).await
    }

    /// The operations of a service, for resolving an agent's entry.
    pub(crate) async fn operations(
        &self,
        tenant: &TenantId,
        name: &str,
    ) -> Result<(HttpServiceConfig, Vec<Operation>), HttpError> {
        let service = self.service(tenant, name).await?;
        Ok((service.config.clone(), service.config.operations.clone()))
    }
}
