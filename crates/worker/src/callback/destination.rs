//! Where a callback may go: `http`/`https` URLs whose host is a public address, checked
//! where the connection is made. The delivery client resolves names through
//! [`PinnedResolver`], which looks the name up once per connection, refuses the answer if
//! any address is not public, and hands reqwest exactly the addresses it checked; so a
//! name that resolves to a public address when the run is accepted and to `127.0.0.1`
//! when the callback is sent (DNS rebinding) is refused at the second lookup. IP-literal
//! hosts are not resolved by reqwest and are checked on the URL ([`check_url`]).
//!
//! Lookups go through [`HostLookup`]: the system resolver in production, a scripted one
//! in tests that play DNS rebinding.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

/// Looks host names up.
#[async_trait::async_trait]
pub trait HostLookup: Send + Sync + fmt::Debug {
    /// The addresses of `host`.
    async fn lookup(&self, host: &str) -> std::io::Result<Vec<IpAddr>>;
}

/// The system resolver (`getaddrinfo`, through tokio).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemLookup;

#[async_trait::async_trait]
impl HostLookup for SystemLookup {
    async fn lookup(&self, host: &str) -> std::io::Result<Vec<IpAddr>> {
        Ok(tokio::net::lookup_host((host, 0))
            .await?
            .map(|address| address.ip())
            .collect())
    }
}

/// A destination refused, with the reason (the delivery log shows it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused(pub String);

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refused {}

/// Checks a callback URL without resolving it: `http`/`https`, a host, and (unless
/// `allow_private`) a public address when the host is an IP literal. Names are checked
/// when they are resolved ([`resolve_checked`]).
pub(crate) fn check_url(url: &str, allow_private: bool) -> Result<reqwest::Url, Refused> {
    let parsed = reqwest::Url::parse(url).map_err(|e| Refused(format!("not a valid URL: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(Refused(format!(
            "the scheme must be http or https, got '{}'",
            parsed.scheme()
        )));
    }
    let Some(host) = parsed.host_str() else {
        return Err(Refused("the URL has no host".into()));
    };
    let literal = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>();
    if let Ok(ip) = literal
        && !allow_private
        && let Some(kind) = non_public(ip)
    {
        return Err(refusal(&ip.to_string(), ip, kind));
    }
    Ok(parsed)
}

/// Resolves `host` once and returns its addresses if every one may be reached.
pub(crate) async fn resolve_checked(
    lookup: &dyn HostLookup,
    host: &str,
    allow_private: bool,
) -> Result<Vec<IpAddr>, Refused> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let addresses = match host.parse::<IpAddr>() {
        Ok(ip) => vec![ip],
        Err(_) => lookup
            .lookup(host)
            .await
            .map_err(|e| Refused(format!("cannot resolve '{host}': {e}")))?,
    };
    if addresses.is_empty() {
        return Err(Refused(format!("'{host}' resolves to no address")));
    }
    if !allow_private
        && let Some((ip, kind)) = addresses
            .iter()
            .find_map(|ip| non_public(*ip).map(|kind| (*ip, kind)))
    {
        return Err(refusal(host, ip, kind));
    }
    Ok(addresses)
}

fn refusal(host: &str, ip: IpAddr, kind: &str) -> Refused {
    let resolves = if host == ip.to_string() {
        format!("{ip} is")
    } else {
        format!("'{host}' resolves to {ip},")
    };
    Refused(format!(
        "{resolves} a {kind} address; such destinations are refused unless the server \
         allows them ([callbacks] allow_private)"
    ))
}

/// The reqwest resolver of the delivery client: [`resolve_checked`] on every connection.
#[derive(Debug, Clone)]
pub(crate) struct PinnedResolver {
    pub(crate) lookup: Arc<dyn HostLookup>,
    pub(crate) allow_private: bool,
}

impl reqwest::dns::Resolve for PinnedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let resolver = self.clone();
        Box::pin(async move {
            let addresses =
                resolve_checked(&*resolver.lookup, name.as_str(), resolver.allow_private).await?;
            // The port is the URL's; reqwest sets it on each address.
            let addresses: reqwest::dns::Addrs = Box::new(
                addresses
                    .into_iter()
                    .map(|ip| SocketAddr::new(ip, 0))
                    .collect::<Vec<_>>()
                    .into_iter(),
            );
            Ok(addresses)
        })
    }
}

/// What kind of non-public address `ip` is, or `None` for an address on the public
/// internet.
pub(crate) fn non_public(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => non_public_v4(v4),
        IpAddr::V6(v6) => non_public_v6(v6),
    }
}

fn non_public_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    Some(if ip.is_loopback() {
        "loopback"
    } else if ip.is_private() {
        "private"
    } else if ip.is_link_local() {
        "link-local (cloud metadata)"
    } else if ip.is_unspecified() || a == 0 {
        "unspecified"
    } else if a == 100 && (64..128).contains(&b) {
        "carrier-grade NAT"
    } else if a == 192 && b == 0 && c == 0 {
        "IETF protocol"
    } else if a == 192 && b == 88 && c == 99 {
        "6to4 relay"
    } else if ip.is_documentation() {
        "documentation"
    } else if a == 198 && (18..20).contains(&b) {
        "benchmarking"
    } else if ip.is_multicast() {
        "multicast"
    } else if ip.is_broadcast() || a >= 240 {
        "reserved"
    } else {
        return None;
    })
}

fn non_public_v6(ip: Ipv6Addr) -> Option<&'static str> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return non_public_v4(v4);
    }
    let s = ip.segments();
    Some(if ip.is_loopback() {
        "loopback"
    } else if ip.is_unspecified() {
        "unspecified"
    } else if s[0] == 0x64 && s[1] == 0xff9b && (s[2..6] == [0; 4] || s[2] == 1) {
        // 64:ff9b::/96 and 64:ff9b:1::/48 reach IPv4 addresses, private ones included.
        "NAT64"
    } else if s[..6] == [0; 6] {
        "IPv4-compatible"
    } else if (s[0] & 0xfe00) == 0xfc00 {
        "unique-local (private)"
    } else if (s[0] & 0xffc0) == 0xfe80 || (s[0] & 0xffc0) == 0xfec0 {
        "link-local"
    } else if (s[0] & 0xff00) == 0xff00 {
        "multicast"
    } else if s[0] == 0x2002 {
        "6to4"
    } else if s[0] == 0x2001 && s[1] == 0 {
        "Teredo"
    } else if s[0] == 0x2001 && s[1] == 0xdb8 {
        "documentation"
    } else if s[0] == 0x2001 && s[1] < 0x200 {
        "IETF protocol"
    } else if (s[0] & 0xe000) != 0x2000 {
        // Only 2000::/3 is global unicast.
        "reserved"
    } else {
        return None;
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_pass() {
        for (ip, kind) in [
            ("127.0.0.1", "loopback"),
            ("10.1.2.3", "private"),
            ("192.168.0.1", "private"),
            ("172.16.0.1", "private"),
            ("169.254.169.254", "link-local (cloud metadata)"),
            ("100.64.0.1", "carrier-grade NAT"),
            ("0.0.0.0", "unspecified"),
            ("192.0.0.8", "IETF protocol"),
            ("198.18.0.1", "benchmarking"),
            ("255.255.255.255", "reserved"),
            ("::1", "loopback"),
            ("::ffff:127.0.0.1", "loopback"),
            ("::ffff:169.254.169.254", "link-local (cloud metadata)"),
            ("64:ff9b::7f00:1", "NAT64"),
            ("64:ff9b::a9fe:a9fe", "NAT64"),
            ("64:ff9b:1::a00:1", "NAT64"),
            ("::127.0.0.1", "IPv4-compatible"),
            ("fd00::1", "unique-local (private)"),
            ("fe80::1", "link-local"),
            ("ff02::1", "multicast"),
            ("2002:7f00:1::", "6to4"),
            ("2001:0:4136:e378::1", "Teredo"),
            ("2001:db8::1", "documentation"),
            ("100::1", "reserved"),
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(non_public(ip), Some(kind), "{ip}");
        }
        for ip in [
            "93.184.215.14",
            "8.8.8.8",
            "2606:4700::1111",
            "2a00:1450::1",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(non_public(ip), None, "{ip}");
        }
    }

    #[test]
    fn urls_are_checked_without_resolving_names() {
        assert!(check_url("http://127.0.0.1:9/hook", false).is_err());
        assert!(check_url("http://[::1]:9/hook", false).is_err());
        assert!(check_url("http://[64:ff9b::7f00:1]/hook", false).is_err());
        assert!(check_url("http://127.0.0.1:9/hook", true).is_ok());
        assert!(check_url("http://name.invalid/hook", false).is_ok());
        assert!(check_url("ftp://example.com/x", true).is_err());
        assert!(check_url("not a url", true).is_err());
    }
}
