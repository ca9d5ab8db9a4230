//! Egress policy: where Roster may connect on a tenant's behalf.
//!
//! Owns: [`EgressPolicy`], the operator's allow-list plus the endpoints
//! Roster protects for itself (its own listener and database), and the
//! check every connection a tenant can configure passes — HTTP services,
//! Streamable-HTTP MCP servers, PostgreSQL and MySQL sources. The check
//! runs on the *resolved* address at connect time ([`EgressPolicy::resolve`],
//! and the reqwest resolvers built from it), so a name that resolves to a
//! public address at registration and to loopback later (DNS rebinding)
//! is still refused.
//!
//! Closed unless the allow-list names them: loopback, unspecified,
//! link-local (the cloud metadata service at 169.254.169.254), private,
//! unique-local, carrier-grade NAT, multicast, broadcast and reserved
//! ranges, and their IPv4-mapped, NAT64 and 6to4 forms. Roster's own
//! listener and database stay closed even when a broader allow entry
//! covers them: only an entry naming that exact address and port opens
//! one.
//!
//! Must never: do I/O beyond DNS resolution (and binding a throwaway UDP
//! socket to learn whether an address is this machine's), or let a
//! refused address through because a name or a literal form hid it.

mod classify;
mod policy;
#[cfg(feature = "reqwest")]
mod resolver;

pub use policy::EgressPolicy;
#[cfg(feature = "reqwest")]
pub use resolver::Resolver;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EgressError {
    /// The policy refuses the address; the message names it and how the
    /// operator allows it.
    #[error("{0}")]
    Denied(String),
    /// The host name has no address (or resolution failed).
    #[error("{0}")]
    Unresolved(String),
    /// An allow-list entry the policy cannot read.
    #[error("{0}")]
    Config(String),
}

impl EgressError {
    /// Stable code for the API.
    pub fn code(&self) -> &'static str {
        match self {
            EgressError::Denied(_) => "egress_denied",
            EgressError::Unresolved(_) => "host_unresolved",
            EgressError::Config(_) => "invalid_config",
        }
    }
}

/// The egress refusal somewhere in an error's chain: HTTP clients wrap
/// what their resolver returned in errors of their own.
pub fn find_in<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a EgressError> {
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(found) = e.downcast_ref::<EgressError>() {
            return Some(found);
        }
        current = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stable() {
        assert_eq!(EgressError::Denied(String::new()).code(), "egress_denied");
        assert_eq!(
            EgressError::Unresolved(String::new()).code(),
            "host_unresolved"
        );
        assert_eq!(EgressError::Config(String::new()).code(), "invalid_config");
    }

    #[test]
    fn a_refusal_is_found_inside_a_wrapping_error() {
        #[derive(Debug)]
        struct Wrapper(EgressError);
        impl std::fmt::Display for Wrapper {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("connect failed")
            }
        }
        impl std::error::Error for Wrapper {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let wrapped = Wrapper(EgressError::Denied("no".into()));
        assert_eq!(find_in(&wrapped), Some(&EgressError::Denied("no".into())));
        let io = std::io::Error::other("plain");
        assert_eq!(find_in(&io), None);
    }
}
