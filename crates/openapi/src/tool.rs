//! Operations as Roster tools, and the provider that resolves an agent's
//! `http:NAME` and `http:NAME/OPERATION` entries into them.

use crate::import::Operation;
use crate::manager::HttpServices;
use crate::{HttpError, KIND};
use async_trait::async_trait;
use roster_core::TenantId;
use roster_tool::{DynTool, ProviderError, Tool, ToolCallContext, ToolOutput, ToolProvider};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::Duration;

/// The name the model sees: `SERVICE__OPERATION`, in the providers'
/// alphabet, cut to their 64 characters with a hash keeping it unique.
pub fn exposed_name(service: &str, operation: &str) -> String {
    let clean: String = operation
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let name = format!("{service}__{clean}");
    if name.len() <= 64 {
        return name;
    }
    let hash = hex::encode(&Sha256::digest(operation.as_bytes())[..3]);
    let keep = 64 - service.len() - 2 - 1 - hash.len();
    format!("{service}__{}_{hash}", &clean[..keep])
}

pub struct HttpTool {
    services: Arc<HttpServices>,
    tenant: TenantId,
    service: String,
    operation: Operation,
    name: String,
    timeout: Duration,
    max_output_bytes: usize,
}

#[async_trait]
impl Tool for HttpTool {
    fn name(&self) -> &str {
        &self.name
    }

    fn description(&self) -> &str {
        &self.operation.description
    }

    fn parameters(&self) -> serde_json::Value {
        self.operation.input_schema.clone()
    }

    fn policy_kind(&self) -> &str {
        "http"
    }

    fn policy_server(&self) -> &str {
        &self.service
    }

    fn idempotent(&self) -> bool {
        self.operation.idempotent()
    }

    fn timeout(&self) -> Duration {
        // The client's own timeout gives the clearer message.
        self.timeout + Duration::from_secs(2)
    }

    fn max_output_bytes(&self) -> usize {
        self.max_output_bytes
    }

    async fn call(&self, ctx: &ToolCallContext, arguments: serde_json::Value) -> ToolOutput {
        debug_assert_eq!(ctx.tenant, self.tenant);
        self.services
            .call(&self.tenant, &self.service, &self.operation.id, &arguments)
            .await
    }
}

/// Resolves `http:` entries for the runtime.
pub struct HttpProvider {
    services: Arc<HttpServices>,
}

impl HttpProvider {
    pub fn new(services: Arc<HttpServices>) -> Arc<Self> {
        Arc::new(Self { services })
    }
}

fn parse_entry(entry: &str) -> Result<(&str, Option<&str>), ProviderError> {
    let (service, operation) = match entry.split_once('/') {
        Some((service, operation)) => (service, Some(operation)),
        None => (entry, None),
    };
    roster_tool::check_integration_name(service).map_err(ProviderError::Unknown)?;
    if operation.is_some_and(str::is_empty) {
        return Err(ProviderError::Unknown(format!(
            "`http:{entry}` names no operation after the `/`"
        )));
    }
    Ok((service, operation))
}

fn provider_error(e: HttpError) -> ProviderError {
    match e {
        HttpError::NotFound(m) | HttpError::Invalid(m) => ProviderError::Unknown(m),
        other => ProviderError::Unavailable(other.to_string()),
    }
}

#[async_trait]
impl ToolProvider for HttpProvider {
    fn scheme(&self) -> &str {
        KIND
    }

    async fn check(&self, tenant: &TenantId, entry: &str) -> Result<(), ProviderError> {
        let (service, operation) = parse_entry(entry)?;
        let (_, config) = self
            .services
            .registration(tenant, service)
            .await
            .map_err(provider_error)?;
        if let Some(operation) = operation {
            if !config.operations.iter().any(|op| op.id == operation) {
                return Err(ProviderError::Unknown(format!(
                    "HTTP service `{service}` has no operation `{operation}`"
                )));
            }
        }
        Ok(())
    }

    async fn resolve(&self, tenant: &TenantId, entry: &str) -> Result<Vec<DynTool>, ProviderError> {
        let (service, only) = parse_entry(entry)?;
        let (config, operations) = self
            .services
            .operations(tenant, service)
            .await
            .map_err(provider_error)?;
        let mut out: Vec<DynTool> = Vec::new();
        for operation in operations {
            if only.is_some_and(|o| o != operation.id) {
                continue;
            }
            out.push(Arc::new(HttpTool {
                services: self.services.clone(),
                tenant: tenant.clone(),
                service: service.to_owned(),
                name: exposed_name(service, &operation.id),
                operation,
                timeout: Duration::from_secs(config.timeout_secs),
                // The body is cut at the service's limit; the rest is the status line.
                max_output_bytes: config.max_response_bytes as usize + 512,
            }));
        }
        if let Some(only) = only {
            if out.is_empty() {
                return Err(ProviderError::Unknown(format!(
                    "HTTP service `{service}` has no operation `{only}`"
                )));
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_the_providers_rules_and_stay_unique() {
        assert_eq!(exposed_name("crm", "listContacts"), "crm__listContacts");
        assert_eq!(exposed_name("crm", "contacts.list"), "crm__contacts_list");
        let a = exposed_name("crm", &format!("{}A", "x".repeat(80)));
        let b = exposed_name("crm", &format!("{}B", "x".repeat(80)));
        assert!(a.len() <= 64 && b.len() <= 64);
        assert_ne!(a, b);
        assert!(roster_tool::is_valid_tool_name(&a));
    }
}
