//! The policy as a reqwest DNS resolver. reqwest asks a resolver for a
//! name only (never the port), so each resolver is bound to the port its
//! client connects to: port-specific allow entries and Roster's own
//! endpoints are judged exactly. URLs whose host is an IP literal never
//! reach a resolver; callers check those with
//! [`EgressPolicy::check_literal`].

use crate::EgressPolicy;
use std::sync::Arc;

/// Resolves names for a client that connects to `port` only, returning
/// just the addresses the policy allows (or its refusal).
#[derive(Clone, Debug)]
pub struct Resolver {
    policy: Arc<EgressPolicy>,
    port: u16,
}

impl Resolver {
    pub fn new(policy: Arc<EgressPolicy>, port: u16) -> Self {
        Self { policy, port }
    }
}

impl reqwest::dns::Resolve for Resolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let (policy, port, host) = (self.policy.clone(), self.port, name.as_str().to_owned());
        Box::pin(async move {
            let found = policy.resolve(&host, port).await?;
            let addrs: reqwest::dns::Addrs = Box::new(found.into_iter());
            Ok(addrs)
        })
    }
}
