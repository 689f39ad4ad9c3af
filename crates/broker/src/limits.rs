//! Rate limits for R1 (`POST /broker/connect`): per client IP, per app and per target site.
//!
//! Every R1 request the broker accepts costs it a held response and several outbound requests, and makes it
//! send a connection request to a site someone else chose. Three keyed token buckets bound that:
//!
//! * **client IP** — checked first, before any signature work or database access, so a flood of junk is
//!   cheap to refuse. The IP is the TCP peer address; `X-Forwarded-For` is read only when the peer is one of
//!   the configured `trusted_proxies`, and then from the right, skipping the proxies' own addresses. IPv6
//!   clients are keyed by their /64 (one subscriber usually holds a whole /64). Without a peer address (a
//!   router served without connect info) this limit is skipped, never applied to one shared key that would
//!   let one client lock out everybody.
//! * **app** (its broker client id) — checked only after the signature verified and the nonce was recorded,
//!   so neither a forger nor someone replaying a captured request can spend a real app's quota.
//! * **target site** — the host and port of the normalized `server_url`, so that varying the path or the
//!   query does not escape it: the broker must not become a tool for hammering one site with connection
//!   requests. Checked before any outbound request.
//!
//! Each bucket holds `per_minute` tokens and refills at `per_minute / 60` per second: a burst of a
//! minute's worth, then a steady rate. A refused request gets `429` with `Retry-After` (whole seconds until
//! a token is back). `0` turns a limit off.
//!
//! The buckets are the shared [`authbroker_web::limits::KeyedLimiter`] (also behind the site's login
//! throttle), built with [`KeyedLimiter::per_minute`]; every R1 request takes a token. Memory is bounded: a
//! bucket that has refilled completely is dropped by a sweep every minute; when a limiter still reaches
//! `max_keys` distinct keys, the buckets closest to full are evicted first (a client evicted that way merely
//! gets a fresh bucket). The limits are per process; several broker nodes behind one address each apply them.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use authbroker_web::limits::{
    KeyedLimiter, NoPeerWarning, canonical_ip as canonical, ip_key, retry_after_secs,
};
use axum::http::HeaderMap;

use crate::config::RateLimits;
use crate::error::BrokerError;

/// An IP network from `trusted_proxies`: an address (`10.0.0.7`, `::1`) or a CIDR block (`10.0.0.0/8`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl IpNet {
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("trusted_proxies: {text:?} is not an IP address or CIDR block"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("trusted_proxies: {text:?} has a bad prefix length"))?,
        };
        Ok(Self {
            addr: canonical(addr),
            prefix,
        })
    }

    pub(crate) fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, canonical(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// The client's address: the TCP peer, or — only when the peer is a trusted proxy — the right-most
/// `X-Forwarded-For` entry that is not itself a trusted proxy. `None` without a peer address.
pub(crate) fn client_ip(
    peer: Option<SocketAddr>,
    headers: &HeaderMap,
    trusted: &[IpNet],
) -> Option<IpAddr> {
    let peer = canonical(peer?.ip());
    let is_trusted = |ip: IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(peer) {
        return Some(peer);
    }
    let forwarded: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    for entry in forwarded.iter().rev() {
        match parse_forwarded_ip(entry) {
            Some(ip) if is_trusted(ip) => continue,
            Some(ip) => return Some(ip),
            // Garbage between us and the client: stop at the last address we can trust.
            None => break,
        }
    }
    Some(peer)
}

/// An `X-Forwarded-For` entry: `1.2.3.4`, `2001:db8::1`, `[2001:db8::1]:443` or `1.2.3.4:5678`.
fn parse_forwarded_ip(entry: &str) -> Option<IpAddr> {
    if let Ok(ip) = entry.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    entry.parse::<SocketAddr>().ok().map(|s| canonical(s.ip()))
}

/// The three limiters of a broker.
#[derive(Debug)]
pub(crate) struct Limits {
    per_ip: KeyedLimiter<IpAddr>,
    per_app: KeyedLimiter<String>,
    per_site: KeyedLimiter<String>,
    trusted_proxies: Vec<IpNet>,
    no_peer: NoPeerWarning,
}

impl Limits {
    pub(crate) fn new(config: &RateLimits) -> Result<Self, String> {
        let trusted_proxies = config
            .trusted_proxies
            .iter()
            .map(|t| IpNet::parse(t))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            per_ip: KeyedLimiter::per_minute(config.per_ip_per_minute, config.max_keys),
            per_app: KeyedLimiter::per_minute(config.per_app_per_minute, config.max_keys),
            per_site: KeyedLimiter::per_minute(config.per_server_per_minute, config.max_keys),
            trusted_proxies,
            no_peer: NoPeerWarning::default(),
        })
    }

    /// The per-IP limit, before anything else is looked at.
    pub(crate) fn check_client(
        &self,
        peer: Option<SocketAddr>,
        headers: &HeaderMap,
    ) -> Result<(), BrokerError> {
        let Some(ip) = client_ip(peer, headers, &self.trusted_proxies) else {
            self.no_peer.warn("per-IP rate limit");
            return Ok(());
        };
        self.per_ip
            .check(&ip_key(ip), Instant::now())
            .map_err(|wait| {
                limited(
                    wait,
                    "Too many connection requests from your address; try again later.",
                )
            })
    }

    /// The per-app limit, once the app proved who it is.
    pub(crate) fn check_app(&self, client_id: &str) -> Result<(), BrokerError> {
        self.per_app
            .check(&client_id.to_owned(), Instant::now())
            .map_err(|wait| {
                limited(
                    wait,
                    "Too many connection requests for this app; try again later.",
                )
            })
    }

    /// The per-site limit, before any request goes to the site.
    pub(crate) fn check_site(&self, server_url: &str) -> Result<(), BrokerError> {
        self.per_site
            .check(&site_key(server_url), Instant::now())
            .map_err(|wait| {
                limited(
                    wait,
                    "Too many connection requests for this site; try again later.",
                )
            })
    }
}

/// The host and port of a (normalized) `server_url`; the whole string if it does not parse.
fn site_key(server_url: &str) -> String {
    match url::Url::parse(server_url) {
        Ok(url) => match (url.host_str(), url.port_or_known_default()) {
            (Some(host), Some(port)) => format!("{host}:{port}"),
            (Some(host), None) => host.to_owned(),
            _ => server_url.to_owned(),
        },
        Err(_) => server_url.to_owned(),
    }
}

fn limited(wait: Duration, message: &str) -> BrokerError {
    BrokerError::RateLimited {
        retry_after: retry_after_secs(wait),
        message: message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The limiter itself is tested in `authbroker_web::limits`; here, its wait becomes the broker's 429.
    #[test]
    fn a_refusal_is_a_429_with_whole_seconds_to_wait() {
        let limiter = KeyedLimiter::per_minute(2, 100);
        let now = Instant::now();
        limiter.check(&1, now).unwrap();
        limiter.check(&1, now).unwrap();
        let wait = limiter.check(&1, now).unwrap_err();
        // 2/min refills one token in 30 s.
        match limited(wait, "x") {
            BrokerError::RateLimited { retry_after, .. } => assert_eq!(retry_after, 30),
            other => panic!("{other:?}"),
        }
        match limited(Duration::from_millis(1), "x") {
            BrokerError::RateLimited { retry_after, .. } => assert_eq!(retry_after, 1),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn networks_parse_and_match() {
        let net = IpNet::parse("10.0.0.0/8").unwrap();
        assert!(net.contains("10.200.1.1".parse().unwrap()));
        assert!(net.contains("::ffff:10.0.0.1".parse().unwrap()));
        assert!(!net.contains("11.0.0.1".parse().unwrap()));
        assert!(!net.contains("::1".parse().unwrap()));
        let one = IpNet::parse("192.0.2.7").unwrap();
        assert!(one.contains("192.0.2.7".parse().unwrap()));
        assert!(!one.contains("192.0.2.8".parse().unwrap()));
        let v6 = IpNet::parse("2001:db8::/32").unwrap();
        assert!(v6.contains("2001:db8:1::5".parse().unwrap()));
        assert!(
            IpNet::parse("0.0.0.0/0")
                .unwrap()
                .contains("8.8.8.8".parse().unwrap())
        );
        assert!(IpNet::parse("10.0.0.0/33").is_err());
        assert!(IpNet::parse("proxy.internal").is_err());
    }

    fn headers(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append("x-forwarded-for", v.parse().unwrap());
        }
        headers
    }

    #[test]
    fn forwarded_for_is_ignored_unless_the_peer_is_a_trusted_proxy() {
        let peer: SocketAddr = "203.0.113.9:5000".parse().unwrap();
        let spoofed = headers(&["1.1.1.1"]);
        assert_eq!(
            client_ip(Some(peer), &spoofed, &[]),
            Some("203.0.113.9".parse().unwrap())
        );
        let trusted = [IpNet::parse("10.0.0.0/8").unwrap()];
        assert_eq!(
            client_ip(Some(peer), &spoofed, &trusted),
            Some("203.0.113.9".parse().unwrap())
        );
        // Behind our proxies: the right-most address they did not add.
        let proxy: SocketAddr = "10.0.0.2:443".parse().unwrap();
        let chain = headers(&["1.1.1.1, 198.51.100.4", "10.0.0.3"]);
        assert_eq!(
            client_ip(Some(proxy), &chain, &trusted),
            Some("198.51.100.4".parse().unwrap())
        );
        assert_eq!(
            client_ip(Some(proxy), &headers(&["[2001:db8::1]:443"]), &trusted),
            Some("2001:db8::1".parse().unwrap())
        );
        // No usable header: the proxy itself.
        assert_eq!(
            client_ip(Some(proxy), &headers(&["garbage"]), &trusted),
            Some("10.0.0.2".parse().unwrap())
        );
        assert_eq!(client_ip(None, &chain, &trusted), None);
    }

    #[test]
    fn ipv6_clients_share_their_slash_64() {
        assert_eq!(
            ip_key("2001:db8:1:2:aaaa::1".parse().unwrap()),
            ip_key("2001:db8:1:2:bbbb::2".parse().unwrap())
        );
        assert_ne!(
            ip_key("2001:db8:1:2::1".parse().unwrap()),
            ip_key("2001:db8:1:3::1".parse().unwrap())
        );
        assert_eq!(
            ip_key("::ffff:192.0.2.1".parse().unwrap()),
            "192.0.2.1".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn sites_are_keyed_by_host_and_port() {
        assert_eq!(
            site_key("https://site.example/blog?x=1"),
            "site.example:443"
        );
        assert_eq!(site_key("https://SITE.example/other"), "site.example:443");
        assert_eq!(site_key("http://127.0.0.1:8080/"), "127.0.0.1:8080");
    }

    #[test]
    fn limits_answer_429_with_retry_after() {
        let limits = Limits::new(&RateLimits {
            per_app_per_minute: 1,
            ..RateLimits::default()
        })
        .unwrap();
        limits.check_app("app").unwrap();
        let err = limits.check_app("app").unwrap_err();
        assert_eq!(err.status(), 429);
        assert_eq!(err.to_wire().code, "server-error");
        assert!(limits.check_app("other").is_ok());
        assert!(
            Limits::new(&RateLimits {
                trusted_proxies: vec!["nope".into()],
                ..RateLimits::default()
            })
            .is_err()
        );
    }
}
