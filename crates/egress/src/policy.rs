//! The policy: the operator's allow-list, Roster's own endpoints, the check
//! of one resolved address, and resolution that keeps only what passes.

use crate::classify::restricted;
use crate::EgressError;
use ipnet::IpNet;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

/// One allow-list entry.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Rule {
    /// An address or a range, on any port or one.
    Net { net: IpNet, port: Option<u16> },
    /// Every address a host name resolves to, when a URL names it.
    Host { name: String, port: Option<u16> },
}

/// An endpoint of Roster itself.
#[derive(Clone, Debug)]
struct Protected {
    what: String,
    /// `None`: any address of this machine (a listener on 0.0.0.0).
    ip: Option<IpAddr>,
    port: u16,
}

/// Where connections a tenant configures may go. The default allows every
/// public address and nothing else.
#[derive(Clone, Debug, Default)]
pub struct EgressPolicy {
    rules: Vec<Rule>,
    protected: Vec<Protected>,
}

/// A host as compared with allow entries: lower case, no trailing dot, no
/// IPv6 brackets.
fn normalize(host: &str) -> String {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .trim_end_matches('.')
        .to_ascii_lowercase()
}

fn parse_port(text: &str, entry: &str) -> Result<u16, EgressError> {
    text.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(|| {
        EgressError::Config(format!("egress allow entry `{entry}`: bad port `{text}`"))
    })
}

fn host_net(ip: IpAddr) -> IpNet {
    IpNet::from(ip)
}

fn parse_rule(entry: &str) -> Result<Rule, EgressError> {
    let text = entry.trim();
    let bad = |why: &str| EgressError::Config(format!("egress allow entry `{entry}`: {why}"));
    if text.is_empty() {
        return Err(bad("empty"));
    }
    // `[v6]`, `[v6]:port`, `[v6/len]:port`.
    if let Some(rest) = text.strip_prefix('[') {
        let (inside, after) = rest.split_once(']').ok_or_else(|| bad("no closing `]`"))?;
        let net = IpNet::from_str(inside)
            .or_else(|_| IpAddr::from_str(inside).map(host_net))
            .map_err(|_| bad("not an IPv6 address or range"))?;
        let port = match after.strip_prefix(':') {
            Some(port) => Some(parse_port(port, entry)?),
            None if after.is_empty() => None,
            None => return Err(bad("unexpected text after `]`")),
        };
        return Ok(Rule::Net { net, port });
    }
    if let Ok(net) = IpNet::from_str(text) {
        return Ok(Rule::Net { net, port: None });
    }
    if let Ok(ip) = IpAddr::from_str(text) {
        return Ok(Rule::Net {
            net: host_net(ip),
            port: None,
        });
    }
    // `a.b.c.d:port`, `a.b.c.d/len:port`, `name:port`.
    let (head, port) = match text.rsplit_once(':') {
        Some((head, port)) if !head.contains(':') => (head, Some(parse_port(port, entry)?)),
        Some(_) => {
            return Err(bad(
                "an IPv6 address with a port is written `[ADDRESS]:PORT`",
            ))
        }
        None => (text, None),
    };
    if let Ok(net) = IpNet::from_str(head) {
        return Ok(Rule::Net { net, port });
    }
    if let Ok(ip) = IpAddr::from_str(head) {
        return Ok(Rule::Net {
            net: host_net(ip),
            port,
        });
    }
    let name = normalize(head);
    let valid = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if !valid {
        return Err(bad(
            "not an address, a range (10.0.0.0/8), or a host name, each with an optional :PORT",
        ));
    }
    Ok(Rule::Host { name, port })
}

/// Why `ip` is closed by default: that it belongs to this machine (other
/// than loopback), or its range.
fn closed_class(ip: IpAddr, local: impl Fn(IpAddr) -> bool) -> Option<&'static str> {
    // Said first whatever its range: an operator reading the refusal should
    // know that allowing it opens this machine itself.
    if !ip.is_loopback() && !ip.is_unspecified() && local(ip) {
        return Some("an address of this machine");
    }
    restricted(ip)
}

/// Whether `ip` is an address of this machine: only those can be bound.
fn is_local(ip: IpAddr) -> bool {
    std::net::UdpSocket::bind(SocketAddr::new(ip, 0)).is_ok()
}

impl EgressPolicy {
    /// The operator's allow-list: addresses (`127.0.0.1`, `[::1]`), ranges
    /// (`10.20.0.0/16`) and host names (`db.internal`), each optionally
    /// with `:PORT`.
    pub fn new<S: AsRef<str>>(allow: &[S]) -> Result<Self, EgressError> {
        let rules = allow
            .iter()
            .map(|entry| parse_rule(entry.as_ref()))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            rules,
            protected: Vec::new(),
        })
    }

    /// Keeps tenants off an endpoint of Roster itself; `ip: None` means any
    /// address of this machine at `port`.
    pub fn protect(&mut self, what: &str, ip: Option<IpAddr>, port: u16) {
        self.protected.push(Protected {
            what: what.to_owned(),
            ip: ip.map(|ip| ip.to_canonical()),
            port,
        });
    }

    /// Keeps tenants off Roster's own listener: a listener on an
    /// unspecified address answers on every address of this machine.
    pub fn protect_listener(&mut self, address: SocketAddr) {
        let ip = (!address.ip().is_unspecified()).then(|| address.ip());
        self.protect("Roster's own listener", ip, address.port());
    }

    /// Keeps tenants off a service Roster itself uses (its database), at
    /// every address `host` resolves to; a service on this machine may
    /// listen on any of its addresses, so all of them are kept off.
    pub async fn protect_host(
        &mut self,
        what: &str,
        host: &str,
        port: u16,
    ) -> Result<(), EgressError> {
        for address in lookup(host, port).await? {
            let ip = address.ip().to_canonical();
            let local = ip.is_loopback() || is_local(ip);
            self.protect(what, (!local).then_some(ip), port);
        }
        Ok(())
    }

    fn exact_entry(&self, ip: IpAddr, port: u16) -> bool {
        self.rules.iter().any(|rule| {
            matches!(rule, Rule::Net { net, port: Some(p) }
                if *p == port && net.prefix_len() == net.max_prefix_len() && net.addr().to_canonical() == ip)
        })
    }

    fn allows(&self, host: Option<&str>, ip: IpAddr, port: u16) -> bool {
        let host = host.map(normalize);
        self.rules.iter().any(|rule| match rule {
            Rule::Net { net, port: p } => {
                p.is_none_or(|p| p == port) && (net.contains(&ip) || net.contains(&to_mapped(ip)))
            }
            Rule::Host { name, port: p } => {
                p.is_none_or(|p| p == port) && host.as_deref() == Some(name.as_str())
            }
        })
    }

    /// Checks one address Roster is about to connect to; `host` is the name
    /// it came from, if any (host-name entries apply to it).
    pub fn check(&self, host: Option<&str>, address: SocketAddr) -> Result<(), EgressError> {
        let ip = address.ip().to_canonical();
        let port = address.port();
        let shown = SocketAddr::new(ip, port);
        let target = match host {
            Some(host) if normalize(host) != normalize(&ip.to_string()) => {
                format!("`{shown}` (an address of `{host}`)")
            }
            _ => format!("`{shown}`"),
        };
        if let Some(own) = self
            .protected
            .iter()
            .find(|p| p.port == port && p.ip.map_or_else(|| is_local(ip), |own| own == ip))
        {
            if self.exact_entry(ip, port) {
                return Ok(());
            }
            return Err(EgressError::Denied(format!(
                "{target} is {}, which tenants may not reach; only an `[egress] allow` entry naming exactly `{shown}` lets it through",
                own.what
            )));
        }
        // A public address of this machine reaches every service on it
        // that listens on all interfaces, as loopback would.
        let class = closed_class(ip, is_local);
        match class {
            None => Ok(()),
            Some(_) if self.allows(host, ip, port) => Ok(()),
            Some(class) => Err(EgressError::Denied(format!(
                "{target} is {class}, which tenants may not reach; the operator allows it with `[egress] allow = [\"{}\"]` in the config file (an address, a range or a host name, each with an optional :PORT)",
                // A name, as written; an address in any spelling (`0x7f.1`)
                // as the address it is.
                match host.map(normalize) {
                    Some(name) if matches!(url::Host::parse(&name), Ok(url::Host::Domain(_))) => name,
                    _ => ip.to_string(),
                }
            ))),
        }
    }

    /// Resolves `host` and keeps the addresses the policy allows; refuses
    /// when none is left, naming why. Connect only to what this returns.
    pub async fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, EgressError> {
        let name = normalize(host);
        if let Ok(ip) = IpAddr::from_str(&name) {
            let address = SocketAddr::new(ip, port);
            self.check(None, address)?;
            return Ok(vec![address]);
        }
        let mut allowed = Vec::new();
        let mut refused = Vec::new();
        for address in lookup(&name, port).await? {
            match self.check(Some(&name), address) {
                Ok(()) => allowed.push(address),
                Err(e) => refused.push(e),
            }
        }
        if !allowed.is_empty() {
            return Ok(allowed);
        }
        match refused.len() {
            0 => Err(EgressError::Unresolved(format!("`{host}` has no address"))),
            1 => Err(refused.remove(0)),
            _ => Err(EgressError::Denied(format!(
                "every address of `{host}` is refused: {}",
                refused
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            ))),
        }
    }

    /// Checks a URL's host where it is an IP literal, which HTTP clients
    /// connect to without asking a resolver; names pass here and are
    /// checked by the resolver at connect time.
    pub fn check_literal(&self, url: &url::Url) -> Result<(), EgressError> {
        let port = url.port_or_known_default().unwrap_or(0);
        let ip = match url.host() {
            Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip),
            Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip),
            _ => return Ok(()),
        };
        self.check(None, SocketAddr::new(ip, port))
    }

    /// Checks a URL now, resolving a host name: for a registration, so a
    /// refused target is refused before it is stored.
    pub async fn check_url(&self, url: &url::Url) -> Result<(), EgressError> {
        self.check_literal(url)?;
        if let Some(url::Host::Domain(host)) = url.host() {
            let port = url.port_or_known_default().unwrap_or(0);
            self.resolve(host, port).await?;
        }
        Ok(())
    }
}

/// The IPv4-mapped form of an IPv4 address, so a range written either way
/// matches both.
fn to_mapped(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V6(v4.to_ipv6_mapped()),
        v6 => v6,
    }
}

async fn lookup(host: &str, port: u16) -> Result<Vec<SocketAddr>, EgressError> {
    tokio::net::lookup_host((host, port))
        .await
        .map(Iterator::collect)
        .map_err(|e| EgressError::Unresolved(format!("cannot resolve `{host}`: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(text: &str) -> SocketAddr {
        text.parse().expect("socket address")
    }

    #[test]
    fn allow_entries_are_read_or_refused() {
        let policy = EgressPolicy::new(&[
            "10.20.0.0/16",
            "127.0.0.1:5432",
            "db.internal",
            "Cache.Internal.:6379",
            "[::1]:8080",
            "fd00::/8",
            "[fd00::/8]:53",
            "192.168.0.0/24:443",
            "169.254.1.1",
        ])
        .expect("valid");
        assert_eq!(policy.rules.len(), 9);
        assert!(policy.rules.contains(&Rule::Host {
            name: "cache.internal".into(),
            port: Some(6379)
        }));
        for bad in [
            "",
            "10.0.0.0/33",
            "1.2.3.4:80:90",
            "[::1",
            "[::1]x",
            "host:0",
            "host:99999",
            "under_score.example",
            "http://x",
            "a..b",
        ] {
            assert!(EgressPolicy::new(&[bad]).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_public_address_of_this_machine_is_closed() {
        let public: IpAddr = "8.8.8.8".parse().expect("ip");
        assert_eq!(
            closed_class(public, |_| true),
            Some("an address of this machine")
        );
        assert_eq!(closed_class(public, |_| false), None);
        let private: IpAddr = "10.0.0.1".parse().expect("ip");
        assert_eq!(
            closed_class(private, |_| true),
            Some("an address of this machine")
        );
        assert_eq!(closed_class(private, |_| false), Some("a private address"));
        let loopback: IpAddr = "127.0.0.1".parse().expect("ip");
        assert_eq!(closed_class(loopback, |_| true), Some("a loopback address"));
        // This machine's own interfaces, whatever they are, are closed.
        for interface in ["0.0.0.0", "::"] {
            let probe = std::net::UdpSocket::bind((interface, 0)).expect("socket");
            if probe.connect(("192.0.2.200", 9)).is_ok() {
                let own = probe.local_addr().expect("local address").ip();
                let policy = EgressPolicy::default();
                let refused = policy.check(None, SocketAddr::new(own, 80));
                assert!(
                    refused.is_err_and(|e| e.to_string().contains("an address of this machine")),
                    "{own} of this machine"
                );
            }
        }
    }

    #[test]
    fn closed_ranges_open_only_as_the_allow_list_says() {
        let closed = EgressPolicy::default();
        for target in [
            "127.0.0.1:80",
            "[::1]:80",
            "169.254.169.254:80",
            "10.1.2.3:5432",
            "[::ffff:127.0.0.1]:80",
            "0.0.0.0:80",
        ] {
            let err = closed.check(None, addr(target)).expect_err(target);
            assert_eq!(err.code(), "egress_denied");
            assert!(err.to_string().contains("[egress] allow"), "{err}");
        }
        assert!(closed.check(None, addr("93.184.216.34:443")).is_ok());

        let open =
            EgressPolicy::new(&["10.20.0.0/16", "127.0.0.1:5432", "db.internal"]).expect("valid");
        assert!(open.check(None, addr("10.20.3.4:80")).is_ok());
        assert!(open.check(None, addr("[::ffff:10.20.3.4]:80")).is_ok());
        assert!(open.check(None, addr("10.21.0.1:80")).is_err());
        assert!(open.check(None, addr("127.0.0.1:5432")).is_ok());
        assert!(open.check(None, addr("127.0.0.1:5433")).is_err());
        // A name entry opens what that name resolves to, and nothing else.
        assert!(open
            .check(Some("db.internal"), addr("10.9.9.9:5432"))
            .is_ok());
        assert!(open
            .check(Some("DB.Internal."), addr("10.9.9.9:5432"))
            .is_ok());
        assert!(open
            .check(Some("other.internal"), addr("10.9.9.9:5432"))
            .is_err());
    }

    #[test]
    fn roster_itself_stays_closed_unless_named_exactly() {
        let mut policy = EgressPolicy::new(&["127.0.0.0/8", "10.0.0.0/8"]).expect("valid");
        policy.protect_listener(addr("127.0.0.1:7700"));
        policy.protect(
            "Roster's own database",
            Some("10.0.0.5".parse().expect("ip")),
            5432,
        );
        let err = policy
            .check(None, addr("127.0.0.1:7700"))
            .expect_err("own port");
        assert!(err.to_string().contains("Roster's own listener"), "{err}");
        assert!(err.to_string().contains("`127.0.0.1:7700`"), "{err}");
        let err = policy
            .check(Some("localhost"), addr("[::ffff:127.0.0.1]:7700"))
            .expect_err("mapped form");
        assert!(err.to_string().contains("own listener"), "{err}");
        assert!(policy.check(None, addr("10.0.0.5:5432")).is_err());
        assert!(policy.check(None, addr("127.0.0.1:7701")).is_ok());
        assert!(policy.check(None, addr("10.0.0.5:5433")).is_ok());

        let mut exact = EgressPolicy::new(&["127.0.0.1:7700", "10.0.0.5:5432"]).expect("valid");
        exact.protect_listener(addr("127.0.0.1:7700"));
        exact.protect(
            "Roster's own database",
            Some("10.0.0.5".parse().expect("ip")),
            5432,
        );
        assert!(exact.check(None, addr("127.0.0.1:7700")).is_ok());
        assert!(exact.check(None, addr("10.0.0.5:5432")).is_ok());
    }

    #[test]
    fn a_listener_on_every_address_is_closed_on_every_local_address() {
        let mut policy = EgressPolicy::new(&["127.0.0.0/8", "0.0.0.0/0"]).expect("valid");
        policy.protect_listener(addr("0.0.0.0:7700"));
        for target in ["127.0.0.1:7700", "127.4.5.6:7700", "0.0.0.0:7700"] {
            let err = policy.check(None, addr(target)).expect_err(target);
            assert!(err.to_string().contains("own listener"), "{err}");
        }
        assert!(policy.check(None, addr("127.4.5.6:7701")).is_ok());
    }

    #[tokio::test]
    async fn names_are_resolved_and_filtered() {
        let closed = EgressPolicy::default();
        let err = closed
            .resolve("localhost", 8080)
            .await
            .expect_err("loopback");
        assert_eq!(err.code(), "egress_denied");
        assert!(err.to_string().contains("localhost"), "{err}");
        // Numeric shorthands are addresses too.
        for host in ["127.1", "0x7f.1", "2130706433", "[::1]", "::ffff:127.0.0.1"] {
            let err = closed.resolve(host, 80).await.expect_err(host);
            assert_eq!(err.code(), "egress_denied", "{host}: {err}");
        }
        // The advice names the address, not its odd spelling.
        let err = closed.resolve("0x7f.1", 80).await.expect_err("0x7f.1");
        assert!(
            err.to_string().contains(r#"allow = ["127.0.0.1"]"#),
            "{err}"
        );
        let open = EgressPolicy::new(&["localhost:8080"]).expect("valid");
        let found = open.resolve("localhost", 8080).await.expect("allowed");
        assert!(found
            .iter()
            .all(|a| a.ip().is_loopback() && a.port() == 8080));
        assert!(open.resolve("localhost", 8081).await.is_err());
    }

    #[tokio::test]
    async fn the_database_on_this_machine_is_closed_on_all_its_addresses() {
        let mut policy = EgressPolicy::new(&["127.0.0.0/8"]).expect("valid");
        policy
            .protect_host("Roster's own database", "localhost", 5432)
            .await
            .expect("resolve");
        let err = policy.check(None, addr("127.0.0.1:5432")).expect_err("db");
        assert!(err.to_string().contains("own database"), "{err}");
        assert!(policy.check(None, addr("127.9.9.9:5432")).is_err());
        assert!(policy.check(None, addr("127.0.0.1:5433")).is_ok());
    }

    #[test]
    fn literal_urls_are_checked_and_names_left_to_the_resolver() {
        let closed = EgressPolicy::default();
        for url in [
            "http://127.0.0.1/",
            "http://127.1:8080/",
            "http://0x7f.1/",
            "http://[::1]:80/",
            "http://[::ffff:7f00:1]/",
            "http://169.254.169.254/latest/meta-data",
            "https://10.0.0.1/",
        ] {
            let parsed = url::Url::parse(url).expect("url");
            assert!(closed.check_literal(&parsed).is_err(), "{url}");
        }
        let named = url::Url::parse("http://localhost/").expect("url");
        assert!(closed.check_literal(&named).is_ok());
    }
}
