//! The client's address, for rate limits and the access log.
//!
//! Each proxy appends the address it was called from to `X-Forwarded-For`,
//! so only the hops that trusted proxies appended can be believed: walking
//! from the right, the client is the first hop that is not one of them.
//! Anything further left was written by the client and proves nothing.

use std::{fmt, net::IpAddr, str::FromStr};

use actix_web::http::header::HeaderMap;
use ipnet::IpNet;

/// The networks of the proxies in front of the gateway
/// (`SMSOPS_GATEWAY_TRUSTED_PROXIES`). Empty: `X-Forwarded-For` is ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|net| net.contains(&ip))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromStr for TrustedProxies {
    type Err = String;

    /// Comma-separated CIDRs; a bare address is a network of one.
    fn from_str(text: &str) -> Result<Self, String> {
        text.split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(|item| {
                item.parse::<IpNet>()
                    .or_else(|_| item.parse::<IpAddr>().map(IpNet::from))
                    .map(|net| net.trunc())
                    .map_err(|_| format!("{item:?} is not a CIDR such as 10.0.0.0/8 or fd00::/8"))
            })
            .collect::<Result<_, _>>()
            .map(Self)
    }
}

impl fmt::Display for TrustedProxies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nets: Vec<String> = self.0.iter().map(IpNet::to_string).collect();
        f.write_str(&nets.join(","))
    }
}

/// The client's address: `peer` itself unless `peer` is a trusted proxy;
/// then the right-most `X-Forwarded-For` hop that is not, or the furthest
/// hop that can be read when every one is trusted or the next is garbage
/// (a trusted proxy wrote it, so its own caller is as far as we can see).
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &TrustedProxies) -> IpAddr {
    let mut client = peer.to_canonical();
    if !trusted.contains(client) {
        return client;
    }
    // Several X-Forwarded-For lines are one list, in order.
    let lines: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .map(|value| value.to_str().unwrap_or(""))
        .collect();
    for hop in lines.iter().rev().flat_map(|line| line.rsplit(',')) {
        let Some(ip) = parse_hop(hop) else {
            return client;
        };
        client = ip;
        if !trusted.contains(ip) {
            return ip;
        }
    }
    client
}

/// `203.0.113.7`, `2001:db8::1`, and the forms with a port some proxies
/// write: `203.0.113.7:4711`, `[2001:db8::1]:4711`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    let ip = hop
        .parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<std::net::SocketAddr>().ok().map(|a| a.ip()))
        .or_else(|| hop.strip_prefix('[')?.strip_suffix(']')?.parse().ok())?;
    Some(ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use actix_web::http::header::{HeaderName, HeaderValue};

    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn headers(lines: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for line in lines {
            map.append(
                HeaderName::from_static("x-forwarded-for"),
                HeaderValue::from_str(line).unwrap(),
            );
        }
        map
    }

    fn proxies() -> TrustedProxies {
        "10.0.0.0/8, fd00::/8,192.0.2.1".parse().unwrap()
    }

    fn client(peer: &str, lines: &[&str]) -> IpAddr {
        client_ip(ip(peer), &headers(lines), &proxies())
    }

    #[test]
    fn parses_cidrs_and_bare_addresses() {
        let trusted = proxies();
        assert!(trusted.contains(ip("10.200.3.4")));
        assert!(trusted.contains(ip("fd12::1")));
        assert!(trusted.contains(ip("192.0.2.1")));
        assert!(!trusted.contains(ip("192.0.2.2")));
        assert!(!trusted.contains(ip("11.0.0.1")));
        // An IPv4 peer seen through a dual-stack socket.
        assert!(trusted.contains(ip("::ffff:10.1.2.3")));
        assert_eq!(trusted.to_string(), "10.0.0.0/8,fd00::/8,192.0.2.1/32");
        assert_eq!(
            "10.1.2.3/8".parse::<TrustedProxies>().unwrap().to_string(),
            "10.0.0.0/8"
        );
        assert!("".parse::<TrustedProxies>().unwrap().is_empty());
        for bad in [
            "10.0.0.0/33",
            "10.0.0",
            "example.com",
            "10.0.0.0/8,nope",
            "::/129",
        ] {
            assert!(bad.parse::<TrustedProxies>().is_err(), "{bad}");
        }
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_writes() {
        assert_eq!(client("203.0.113.9", &["198.51.100.1"]), ip("203.0.113.9"));
        assert_eq!(
            client_ip(
                ip("10.0.0.1"),
                &headers(&["198.51.100.1"]),
                &TrustedProxies::default()
            ),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn a_spoofed_left_most_hop_is_ignored() {
        // The client wrote "1.2.3.4"; the ingress (10.0.0.5) appended the
        // client's real address, and the gateway's peer is the ingress.
        assert_eq!(
            client("10.0.0.5", &["1.2.3.4, 203.0.113.9"]),
            ip("203.0.113.9")
        );
        // A spoof that names a trusted proxy does not help either.
        assert_eq!(
            client("10.0.0.5", &["10.9.9.9, 203.0.113.9"]),
            ip("203.0.113.9")
        );
        // Two trusted proxies in a row.
        assert_eq!(
            client("10.0.0.5", &["1.2.3.4, 203.0.113.9, 10.0.0.7"]),
            ip("203.0.113.9")
        );
        // Split over several header lines, in order.
        assert_eq!(
            client("10.0.0.5", &["1.2.3.4", "203.0.113.9", "10.0.0.7"]),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn an_all_trusted_chain_ends_at_its_furthest_hop() {
        assert_eq!(client("10.0.0.5", &["10.0.0.9, 10.0.0.7"]), ip("10.0.0.9"));
        assert_eq!(client("10.0.0.5", &[]), ip("10.0.0.5"));
        assert_eq!(client("10.0.0.5", &[""]), ip("10.0.0.5"));
    }

    #[test]
    fn garbage_stops_the_walk_at_the_proxy_that_passed_it_on() {
        assert_eq!(client("10.0.0.5", &["unknown"]), ip("10.0.0.5"));
        assert_eq!(
            client("10.0.0.5", &["203.0.113.9, nonsense, 10.0.0.7"]),
            ip("10.0.0.7")
        );
        assert_eq!(client("10.0.0.5", &["1.2.3.4,,10.0.0.7"]), ip("10.0.0.7"));
        assert_eq!(client("10.0.0.5", &["999.1.1.1"]), ip("10.0.0.5"));
        // Behind an untrusted hop, garbage is never even read.
        assert_eq!(
            client("10.0.0.5", &["nonsense, 203.0.113.9"]),
            ip("203.0.113.9")
        );
        let mut map = headers(&[]);
        map.append(
            HeaderName::from_static("x-forwarded-for"),
            HeaderValue::from_bytes(b"203.0.113.9\xff").unwrap(),
        );
        assert_eq!(client_ip(ip("10.0.0.5"), &map, &proxies()), ip("10.0.0.5"));
    }

    #[test]
    fn hops_with_ports_and_ipv6() {
        assert_eq!(client("10.0.0.5", &["203.0.113.9:4711"]), ip("203.0.113.9"));
        assert_eq!(
            client("10.0.0.5", &["[2001:db8::7]:4711"]),
            ip("2001:db8::7")
        );
        assert_eq!(client("10.0.0.5", &["[2001:db8::7]"]), ip("2001:db8::7"));
        assert_eq!(
            client("fd00::1", &[" 2001:db8::7 , fd00::2"]),
            ip("2001:db8::7")
        );
        assert_eq!(
            client("::ffff:10.0.0.5", &["::ffff:203.0.113.9"]),
            ip("203.0.113.9")
        );
    }
}
