//! The one egress policy every request to a tenant-chosen URL goes through (a model key's
//! `base_url` today; MCP servers, embeddings, webhooks, OAuth and fetch tools later).
//!
//! - Only `http` and `https`, no proxy, no redirects, bounded connect and read times.
//! - The host is resolved by the policy's own resolver, which drops every loopback,
//!   private, link-local, unique-local, multicast, unspecified, documentation, CGNAT and
//!   metadata address; the connection goes to an address it kept, so nothing resolves twice.
//!   An IP literal never reaches a resolver and is checked before the request is sent.
//! - The operator opens exceptions with `INGRAM_EGRESS_ALLOW`: hosts, IPs or CIDR ranges,
//!   each with an optional port (`127.0.0.1:11434`, `10.0.0.0/8`, `ollama.internal:11434`).
//!   A hostname rule allows whatever that name resolves to.
//!
//! Port-specific rules are enforced at resolution too: the policy keeps one client per port
//! named in a rule, whose resolver knows that port, and one for every other port.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Why a tenant-controlled request was not sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct EgressDenied(pub String);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    Host(String),
    Net { addr: IpAddr, prefix: u8 },
}

/// One `INGRAM_EGRESS_ALLOW` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowRule {
    target: Target,
    port: Option<u16>,
}

impl AllowRule {
    /// `host`, `host:port`, `ip`, `ip:port`, `[v6]:port`, `cidr` or `cidr:port`.
    pub fn parse(rule: &str) -> Result<Self, String> {
        let parsed = Self::parse_raw(rule)?;
        // An IPv4-mapped IPv6 rule is the IPv4 rule it maps, in IPv4's own prefix.
        match parsed.target {
            Target::Net { addr: IpAddr::V6(v6), prefix } if v6.to_ipv4_mapped().is_some() => {
                let v4 = v6.to_ipv4_mapped().expect("checked");
                let prefix = prefix
                    .checked_sub(96)
                    .ok_or_else(|| format!("'{}' is wider than the IPv4-mapped range", rule.trim()))?;
                Ok(Self { target: Target::Net { addr: IpAddr::V4(v4), prefix }, port: parsed.port })
            }
            _ => Ok(parsed),
        }
    }

    fn parse_raw(rule: &str) -> Result<Self, String> {
        let rule = rule.trim();
        let invalid = || format!("'{rule}' is not a host, IP or CIDR range with an optional port");
        if rule.is_empty() {
            return Err(invalid());
        }
        if let Ok(addr) = rule.parse::<IpAddr>() {
            return Ok(Self { target: Target::Net { addr, prefix: full_prefix(addr) }, port: None });
        }
        if let Ok(socket) = rule.parse::<SocketAddr>() {
            let addr = socket.ip();
            return Ok(Self { target: Target::Net { addr, prefix: full_prefix(addr) }, port: Some(socket.port()) });
        }
        // An IPv6 range with a port is written [range]:port.
        let (body, port) = match rule.strip_prefix('[').and_then(|rest| rest.split_once("]:")) {
            Some((inside, port)) => (inside, Some(port.parse::<u16>().map_err(|_| invalid())?)),
            None => match rule.rsplit_once(':') {
                Some((body, port)) if !body.contains(':') => (body, Some(port.parse::<u16>().map_err(|_| invalid())?)),
                _ => (rule, None),
            },
        };
        if let Some((addr, prefix)) = body.split_once('/') {
            let addr: IpAddr = addr.parse().map_err(|_| invalid())?;
            let prefix: u8 = prefix.parse().map_err(|_| invalid())?;
            if prefix > full_prefix(addr) {
                return Err(invalid());
            }
            return Ok(Self { target: Target::Net { addr, prefix }, port });
        }
        if let Ok(addr) = body.parse::<IpAddr>() {
            return Ok(Self { target: Target::Net { addr, prefix: full_prefix(addr) }, port });
        }
        let host = body.trim_end_matches('.').to_ascii_lowercase();
        let valid_host = !host.is_empty()
            && host.len() <= 253
            && host.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
        if !valid_host {
            return Err(invalid());
        }
        Ok(Self { target: Target::Host(host), port })
    }

    fn covers_port(&self, port: Option<u16>) -> bool {
        self.port.is_none() || self.port == port
    }

    fn covers_addr(&self, ip: IpAddr) -> bool {
        match self.target {
            Target::Net { addr, prefix } => in_net(ip, addr, prefix),
            Target::Host(_) => false,
        }
    }

    fn covers_host(&self, host: &str) -> bool {
        matches!(&self.target, Target::Host(name) if name == host)
    }
}

fn full_prefix(addr: IpAddr) -> u8 {
    if addr.is_ipv4() { 32 } else { 128 }
}

/// `net` and `prefix` are in the rule's own family (mapped rules were made IPv4 at parse).
fn in_net(ip: IpAddr, net: IpAddr, prefix: u8) -> bool {
    match (canonical(ip), net) {
        (IpAddr::V4(ip), IpAddr::V4(net)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            u32::from(ip) & mask == u32::from(net) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            u128::from(ip) & mask == u128::from(net) & mask
        }
        _ => false,
    }
}

/// An IPv4-mapped IPv6 address is the IPv4 address it maps.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Whether an address is on the public internet: anything else is refused unless allowed.
pub fn is_public(ip: IpAddr) -> bool {
    match canonical(ip) {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local() // 169.254.0.0/16, cloud metadata included
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // carrier-grade NAT
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240) // reserved
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00 // unique local
        || (first & 0xffc0) == 0xfe80 // link-local
        || (first & 0xffc0) == 0xfec0 // site-local (deprecated)
        || first == 0x2001 && ip.segments()[1] == 0x0db8 // documentation
        || first == 0x0064 && ip.segments()[1] == 0xff9b // NAT64, may map to private IPv4
        || first == 0x2002 // 6to4, embeds any IPv4
        || ip.to_ipv4().is_some()) // IPv4-compatible and mapped forms
}

/// The policy: which addresses and ports a tenant-controlled request may reach.
#[derive(Debug, Clone, Default)]
pub struct EgressPolicy {
    allow: Vec<AllowRule>,
}

impl EgressPolicy {
    /// Only public addresses.
    pub fn strict() -> Self {
        Self::default()
    }

    /// `INGRAM_EGRESS_ALLOW`'s comma-separated rules.
    pub fn parse(rules: &str) -> Result<Self, String> {
        let allow =
            rules.split(',').filter(|rule| !rule.trim().is_empty()).map(AllowRule::parse).collect::<Result<_, _>>()?;
        Ok(Self { allow })
    }

    pub fn allowing(mut self, rule: &str) -> Result<Self, String> {
        self.allow.push(AllowRule::parse(rule)?);
        Ok(self)
    }

    /// Whether `host` (as named in the URL) may be reached at `ip` on `port`.
    fn permits(&self, host: &str, ip: IpAddr, port: Option<u16>) -> bool {
        is_public(ip)
            || self.allow.iter().any(|rule| rule.covers_port(port) && (rule.covers_host(host) || rule.covers_addr(ip)))
    }

    fn rule_ports(&self) -> impl Iterator<Item = u16> + '_ {
        self.allow.iter().filter_map(|rule| rule.port)
    }
}

/// Checks a URL a tenant is saving: its scheme, and an IP literal host against the policy.
/// Hostnames are checked when a request is made, since what they resolve to may change.
pub fn check_saved_url(policy: &EgressPolicy, url: &str) -> Result<(), EgressDenied> {
    target_port(policy, url).map(|_| ())
}

/// The port a URL reaches, refused early when the URL cannot be allowed whatever its host
/// resolves to: a scheme other than http(s), credentials, or a refused IP literal (which
/// never reaches a resolver).
fn target_port(policy: &EgressPolicy, url: &str) -> Result<u16, EgressDenied> {
    let parsed = Url::parse(url).map_err(|_| EgressDenied(format!("'{url}' is not a URL")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(EgressDenied("only http and https URLs are allowed".into()));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(EgressDenied("URLs may not carry credentials".into()));
    }
    let port = parsed.port_or_known_default().ok_or_else(|| EgressDenied("the URL has no port".into()))?;
    let literal = match parsed.host() {
        Some(url::Host::Domain(_)) => None,
        Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
        None => return Err(EgressDenied("the URL has no host".into())),
    };
    match literal {
        Some(ip) if !policy.permits("", ip, Some(port)) => Err(denied_address(ip)),
        _ => Ok(port),
    }
}

fn denied_address(ip: IpAddr) -> EgressDenied {
    EgressDenied(format!(
        "{ip} is a loopback, private, link-local or otherwise internal address; the operator may allow it with INGRAM_EGRESS_ALLOW"
    ))
}

/// Resolves names for one port class, keeping only the addresses the policy permits there.
struct PolicyResolver {
    policy: Arc<EgressPolicy>,
    port: Option<u16>,
}

impl Resolve for PolicyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        let port = self.port;
        let host = name.as_str().trim_end_matches('.').to_ascii_lowercase();
        Box::pin(async move {
            let resolved: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let kept: Vec<SocketAddr> =
                resolved.iter().copied().filter(|addr| policy.permits(&host, addr.ip(), port)).collect();
            match (kept.is_empty(), resolved.first()) {
                (false, _) => Ok(Box::new(kept.into_iter()) as Addrs),
                (true, Some(first)) => {
                    // The tenant learns that the name is internal, never which address it has.
                    tracing::warn!(host, address = %first.ip(), "egress refused: the host resolves only to internal addresses");
                    let denied = EgressDenied(format!(
                        "{host} resolves only to internal addresses; the operator may allow it with INGRAM_EGRESS_ALLOW"
                    ));
                    Err(Box::new(denied) as Box<dyn std::error::Error + Send + Sync>)
                }
                (true, None) => Err(format!("{host} did not resolve").into()),
            }
        })
    }
}

/// HTTP clients bound by the policy, for every tenant-controlled request.
#[derive(Clone)]
pub struct Egress {
    policy: Arc<EgressPolicy>,
    /// One client per port a rule names; `None` serves every other port.
    clients: Arc<HashMap<Option<u16>, reqwest::Client>>,
}

/// Time and size bounds of tenant-controlled requests.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
pub const READ_TIMEOUT: Duration = Duration::from_secs(300);

impl Egress {
    pub fn new(policy: EgressPolicy) -> Self {
        let policy = Arc::new(policy);
        let ports: Vec<Option<u16>> = std::iter::once(None)
            .chain(policy.rule_ports().map(Some))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let clients = ports
            .into_iter()
            .map(|port| {
                let resolver = PolicyResolver { policy: policy.clone(), port };
                let client = reqwest::Client::builder()
                    .dns_resolver(Arc::new(resolver))
                    .redirect(reqwest::redirect::Policy::none())
                    .no_proxy()
                    .connect_timeout(CONNECT_TIMEOUT)
                    .read_timeout(READ_TIMEOUT)
                    .build()
                    .expect("an HTTP client with default TLS");
                (port, client)
            })
            .collect();
        Self { policy, clients: Arc::new(clients) }
    }

    /// The client that may reach `url`, or why it may not.
    pub fn client_for(&self, url: &str) -> Result<&reqwest::Client, EgressDenied> {
        let port = target_port(&self.policy, url)?;
        Ok(self.clients.get(&Some(port)).unwrap_or_else(|| &self.clients[&None]))
    }
}

/// Whether a transport error is the policy's refusal, and which.
pub fn denial_in<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a EgressDenied> {
    let mut source = Some(err);
    while let Some(err) = source {
        if let Some(denied) = err.downcast_ref::<EgressDenied>() {
            return Some(denied);
        }
        source = err.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn internal_addresses_are_not_public() {
        for internal in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fc00::1",
            "fd12::1",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::",
        ] {
            assert!(!is_public(ip(internal)), "{internal}");
        }
        for public in ["1.1.1.1", "8.8.8.8", "2606:4700::1111", "::ffff:1.1.1.1"] {
            assert!(is_public(ip(public)), "{public}");
        }
    }

    #[test]
    fn rules_parse_hosts_ips_ranges_and_ports() {
        let policy =
            EgressPolicy::parse("127.0.0.1:11434, 10.0.0.0/8, ollama.internal:8080, [::1]:9000, fd00::/8").unwrap();
        assert!(policy.permits("x", ip("127.0.0.1"), Some(11434)));
        assert!(!policy.permits("x", ip("127.0.0.1"), Some(22)));
        assert!(policy.permits("x", ip("10.9.8.7"), Some(1)));
        assert!(!policy.permits("x", ip("11.0.0.1"), Some(1)) || is_public(ip("11.0.0.1")));
        assert!(policy.permits("ollama.internal", ip("192.168.0.5"), Some(8080)));
        assert!(!policy.permits("ollama.internal", ip("192.168.0.5"), Some(8081)));
        assert!(!policy.permits("other.internal", ip("192.168.0.5"), Some(8080)));
        assert!(policy.permits("x", ip("::1"), Some(9000)));
        assert!(policy.permits("x", ip("fd00::5"), Some(443)));
        // An IPv4-mapped rule allows its IPv4 address, not all of IPv4.
        let mapped = EgressPolicy::parse("::ffff:10.0.0.1").unwrap();
        assert!(mapped.permits("x", ip("10.0.0.1"), Some(80)));
        assert!(!mapped.permits("x", ip("127.0.0.1"), Some(80)));
        assert!(!mapped.permits("x", ip("169.254.169.254"), Some(80)));
        assert!(AllowRule::parse("::ffff:0:0/64").is_err());
        assert!(!policy.permits("x", ip("169.254.169.254"), Some(80)));
        for bad in ["", "a b", "10.0.0.0/33", "host:notaport", "http://x"] {
            assert!(AllowRule::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn literals_schemes_and_credentials_are_checked_before_sending() {
        let strict = EgressPolicy::strict();
        for url in [
            "http://127.0.0.1:8080/v1",
            "http://169.254.169.254/latest/meta-data",
            "http://[::1]/",
            "http://[::ffff:10.0.0.1]/",
            "http://0x7f000001/",
            "ftp://example.com/",
            "file:///etc/passwd",
            "https://user:pw@example.com/",
        ] {
            assert!(check_saved_url(&strict, url).is_err(), "{url}");
        }
        assert!(check_saved_url(&strict, "https://api.openai.com/v1").is_ok());
        let allowed = EgressPolicy::strict().allowing("127.0.0.1:11434").unwrap();
        assert!(check_saved_url(&allowed, "http://127.0.0.1:11434/v1").is_ok());
        assert!(check_saved_url(&allowed, "http://127.0.0.1:11435/v1").is_err());
    }

    #[tokio::test]
    async fn names_resolving_to_internal_addresses_are_refused_at_connection() {
        let egress = Egress::new(EgressPolicy::strict());
        let client = egress.client_for("http://localhost:9/").unwrap();
        let err = client.get("http://localhost:9/").send().await.unwrap_err();
        assert!(denial_in(&err).is_some(), "{err:?}");
    }
}
