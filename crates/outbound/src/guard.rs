//! Address classification and the resolver that enforces it.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Address classes a deployment may explicitly allow.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Allow {
    /// `127.0.0.0/8`, `::1`, `localhost` — tests and `demo` run everything on loopback.
    pub loopback: bool,
    /// RFC 1918, CGNAT and unique-local ranges — a company broker reaching intranet sites.
    pub private: bool,
}

/// Whether `ip` may not be contacted under `allow`. Link-local (which holds the cloud metadata endpoint),
/// unspecified, multicast, broadcast and reserved addresses are never allowed.
pub fn is_forbidden(ip: IpAddr, allow: Allow) -> bool {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4, allow),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return forbidden_v4(v4, allow);
            }
            let segments = v6.segments();
            if v6.is_loopback() {
                return !allow.loopback;
            }
            let unique_local = segments[0] & 0xfe00 == 0xfc00;
            if unique_local {
                return !allow.private;
            }
            let link_local = segments[0] & 0xffc0 == 0xfe80;
            // NAT64 (64:ff9b::/96) and 6to4 (2002::/16) embed IPv4 addresses that could be private.
            let nat64 =
                segments[0] == 0x64 && segments[1] == 0xff9b && segments[2..6] == [0, 0, 0, 0];
            let six_to_four = segments[0] == 0x2002;
            let embedded_v4 = if nat64 {
                Some(Ipv4Addr::new(
                    (segments[6] >> 8) as u8,
                    segments[6] as u8,
                    (segments[7] >> 8) as u8,
                    segments[7] as u8,
                ))
            } else if six_to_four {
                Some(Ipv4Addr::new(
                    (segments[1] >> 8) as u8,
                    segments[1] as u8,
                    (segments[2] >> 8) as u8,
                    segments[2] as u8,
                ))
            } else {
                None
            };
            if let Some(v4) = embedded_v4 {
                return forbidden_v4(v4, allow);
            }
            v6.is_unspecified()
                || v6.is_multicast()
                || link_local
                || segments[0] == 0x0100 && segments[1..4] == [0, 0, 0]
        }
    }
}

fn forbidden_v4(ip: Ipv4Addr, allow: Allow) -> bool {
    let [a, b, ..] = ip.octets();
    if ip.is_loopback() {
        return !allow.loopback;
    }
    let cgnat = a == 100 && (64..128).contains(&b);
    if ip.is_private() || cgnat {
        return !allow.private;
    }
    ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || a == 0
        || a >= 240
        || (a == 192 && b == 0 && ip.octets()[2] == 0)
        || (a == 198 && (b == 18 || b == 19))
}

/// The error the resolver reports when every address of a name is forbidden.
#[derive(Debug)]
pub(crate) struct Refused(pub(crate) String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} resolves only to forbidden addresses", self.0)
    }
}

impl std::error::Error for Refused {}

/// Resolves with the system resolver and drops forbidden addresses, so the connection can only go to an
/// allowed one (no check-then-connect race: the filtered list is what reqwest connects to).
#[derive(Debug)]
pub(crate) struct GuardedResolver {
    allow: Allow,
}

impl GuardedResolver {
    pub(crate) fn new(allow: Allow) -> Self {
        Self { allow }
    }
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow = self.allow;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let resolved: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = resolved
                .into_iter()
                .filter(|a| !is_forbidden(a.ip(), allow))
                .collect();
            if allowed.is_empty() {
                return Err(Box::new(Refused(host)) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forbidden(s: &str) -> bool {
        is_forbidden(s.parse().unwrap(), Allow::default())
    }

    #[test]
    fn private_and_special_addresses_are_forbidden() {
        for ip in [
            "127.0.0.1",
            "127.255.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "0.1.2.3",
            "255.255.255.255",
            "224.0.0.1",
            "240.0.0.1",
            "198.18.0.1",
            "::1",
            "::",
            "fe80::1",
            "fc00::1",
            "fd00:ec2::254",
            "ff02::1",
            "::ffff:10.0.0.1",
            "::ffff:127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "2002:c0a8:0101::1",
            "100::1",
        ] {
            assert!(forbidden(ip), "{ip} should be forbidden");
        }
    }

    #[test]
    fn public_addresses_are_allowed() {
        for ip in [
            "93.184.215.14",
            "1.1.1.1",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(!forbidden(ip), "{ip} should be allowed");
        }
    }

    #[test]
    fn allow_opens_only_its_class() {
        let loopback = Allow {
            loopback: true,
            private: false,
        };
        assert!(!is_forbidden("127.0.0.1".parse().unwrap(), loopback));
        assert!(!is_forbidden("::1".parse().unwrap(), loopback));
        assert!(is_forbidden("10.0.0.1".parse().unwrap(), loopback));
        assert!(is_forbidden("169.254.169.254".parse().unwrap(), loopback));
        let private = Allow {
            loopback: false,
            private: true,
        };
        assert!(!is_forbidden("10.0.0.1".parse().unwrap(), private));
        assert!(!is_forbidden("fd12::1".parse().unwrap(), private));
        assert!(is_forbidden("127.0.0.1".parse().unwrap(), private));
        // Metadata stays forbidden whatever is allowed.
        let all = Allow {
            loopback: true,
            private: true,
        };
        assert!(is_forbidden("169.254.169.254".parse().unwrap(), all));
    }
}
