//! Throttling of failed logins (`POST /login`): per login name and per client IP.
//!
//! Without it an attacker could guess a password forever at the price of one argon2 verification per guess.
//! Two [`KeyedLimiter`]s bound that:
//!
//! * **login name** — case-folded and trimmed, so `Admin` and ` admin` count against `admin`; stored as its
//!   SHA-256, so a flood of long made-up names costs 32 bytes per bucket. A login that does not exist spends
//!   tokens exactly like one that does: the limiter's answers reveal nothing about which accounts exist.
//!   [`PER_LOGIN_BURST`] failures (configuration key `login_failures_per_account`), then one more every
//!   [`PER_LOGIN_REFILL`].
//! * **client IP** — the TCP peer (IPv6 by its /64, see [`ip_key`]), so that one client spraying many
//!   names is bounded as well. [`PER_IP_BURST`] failures (`login_failures_per_ip`), then one more every
//!   [`PER_IP_REFILL`]. Without a peer address (a router served without connect info) this limit is
//!   skipped rather than applied to one key shared by everybody. The site does not read
//!   `X-Forwarded-For`: behind a reverse proxy every client has the proxy's address and this limit would
//!   become one budget for all failed logins of the site, so it is off when TLS ends at a proxy (an https
//!   home URL without `tls_cert`, see `per_ip_burst`); a plain-HTTP proxy elsewhere needs
//!   `login_failures_per_ip = 0`.
//!
//! A burst of 0 turns a limit off; the refill periods are constants.
//!
//! Only failures cost: an attempt reserves a token from both buckets *before* the password is verified and
//! gives both back when the password was right (or the verification could not run). Reserving first —
//! rather than asking and spending after a failed verification — means that concurrent guesses cannot all
//! pass the check while the first ones are still being verified: at most the bucket's tokens are ever in
//! flight (the price: more logins of one account than its burst verifying at the same instant would be
//! refused even with the right password). When either bucket is empty the attempt is refused before any
//! verification, with `429` and `Retry-After`; a refused attempt costs nothing and does not push the wait
//! further out.
//!
//! A per-account limit lets whoever knows a login name keep that account locked (the price of any
//! per-account limit); the refill period bounds how long a lockout lasts after the attacker stops, and a
//! successful login never spends a token, so the owner gets in as soon as one is back. The limits live in
//! memory, per process (see [`authbroker_web::limits`] for the bounded memory).

use std::net::IpAddr;
use std::time::{Duration, Instant};

use authbroker_web::limits::{KeyedLimiter, NoPeerWarning, ip_key, retry_after_secs};
use sha2::{Digest, Sha256};

/// Failed logins an account may have at once (the default of `login_failures_per_account`). Covers typos,
/// a stale password manager entry and a forgotten caps lock several times over; an online guesser gets 10
/// guesses, then [`PER_LOGIN_REFILL`] limits it.
pub(crate) const PER_LOGIN_BURST: u32 = 10;
/// One more failed login per account after this long: at most 60 guesses an hour (1,440 a day) against one
/// account instead of the tens a second the argon2 verification alone would allow, while its owner waits
/// at most a minute once an attack stops.
pub(crate) const PER_LOGIN_REFILL: Duration = Duration::from_secs(60);
/// Failed logins one client IP may have at once, across all names (the default of `login_failures_per_ip`):
/// a few people behind one NAT mistyping their passwords stay far below it, while spraying a common
/// password over many names is cut short.
pub(crate) const PER_IP_BURST: u32 = 50;
/// One more failed login per client IP after this long (5 a minute, 300 an hour).
pub(crate) const PER_IP_REFILL: Duration = Duration::from_secs(12);
/// Keys each limiter tracks at most (about 100 bytes each).
const MAX_KEYS: usize = 100_000;

/// The per-IP burst in effect. An https home URL served without `tls_cert` means TLS ends at a reverse
/// proxy (plain HTTP is only served on loopback): every request then comes from the proxy's address, and a
/// per-IP limit would be one budget for the whole site that any anonymous guesser could exhaust for
/// everybody. The limit is off there until the site can read trusted proxies' `X-Forwarded-For`.
fn per_ip_burst(config: &crate::SiteConfig) -> u32 {
    let behind_proxy = config.home_url.starts_with("https://") && config.tls_cert.is_none();
    if behind_proxy && config.login_failures_per_ip > 0 {
        tracing::info!(
            "the per-IP login limit is off: TLS ends at a proxy, so every client has the proxy's address"
        );
        return 0;
    }
    config.login_failures_per_ip
}

/// Why an attempt was refused, and how long until the next one may be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// The login name had too many failures.
    Account(Duration),
    /// The client IP had too many failures.
    Address(Duration),
}

impl Refused {
    /// How long until a token is back.
    pub(crate) fn wait(self) -> Duration {
        match self {
            Self::Account(wait) | Self::Address(wait) => wait,
        }
    }

    /// The message on the login page.
    pub(crate) fn message(self) -> String {
        let minutes = retry_after_secs(self.wait()).div_ceil(60);
        let when = if minutes == 1 {
            "1 minute".to_owned()
        } else {
            format!("{minutes} minutes")
        };
        match self {
            Self::Account(_) => {
                format!("Too many failed logins for this account; try again in {when}.")
            }
            Self::Address(_) => {
                format!("Too many failed logins from your address; try again in {when}.")
            }
        }
    }
}

/// The tokens one attempt reserved: kept when the password was wrong, given back otherwise.
#[derive(Debug)]
#[must_use = "an attempt ends with `LoginLimits::give_back` or `LoginLimits::spend`"]
pub(crate) struct Attempt {
    login: [u8; 32],
    ip: Option<IpAddr>,
}

/// The two limiters of a site.
#[derive(Debug)]
pub(crate) struct LoginLimits {
    per_login: KeyedLimiter<[u8; 32]>,
    per_ip: KeyedLimiter<IpAddr>,
    no_peer: NoPeerWarning,
}

impl LoginLimits {
    /// The limiters `login_failures_per_account` and `login_failures_per_ip` ask for.
    pub(crate) fn from_config(config: &crate::SiteConfig) -> Self {
        Self::new(
            (config.login_failures_per_account, PER_LOGIN_REFILL),
            (per_ip_burst(config), PER_IP_REFILL),
        )
    }

    /// Limiters with `(burst, refill period)` per login and per IP; a burst of 0 turns one off.
    fn new(per_login: (u32, Duration), per_ip: (u32, Duration)) -> Self {
        Self {
            per_login: KeyedLimiter::new(per_login.0, per_login.1, MAX_KEYS),
            per_ip: KeyedLimiter::new(per_ip.0, per_ip.1, MAX_KEYS),
            no_peer: NoPeerWarning::default(),
        }
    }

    /// Reserves a token for an attempt to log in as `login` from `peer` at `now`, or refuses it (taking
    /// nothing) when either limit is exhausted.
    pub(crate) fn begin(
        &self,
        login: &str,
        peer: Option<IpAddr>,
        now: Instant,
    ) -> Result<Attempt, Refused> {
        let login = login_key(login);
        let ip = match peer {
            Some(ip) => Some(ip_key(ip)),
            None => {
                if self.per_ip.is_enabled() {
                    self.no_peer.warn("per-IP login limit");
                }
                None
            }
        };
        self.per_login
            .check(&login, now)
            .map_err(Refused::Account)?;
        if let Some(ip) = &ip {
            if let Err(wait) = self.per_ip.check(ip, now) {
                self.per_login.refund(&login, now);
                return Err(Refused::Address(wait));
            }
        }
        Ok(Attempt { login, ip })
    }

    /// The attempt was no failed guess (the password was right, or it could not be verified): its tokens go
    /// back.
    pub(crate) fn give_back(&self, attempt: Attempt, now: Instant) {
        self.per_login.refund(&attempt.login, now);
        if let Some(ip) = &attempt.ip {
            self.per_ip.refund(ip, now);
        }
    }

    /// The password was wrong (or the login unknown): the reserved tokens stay spent.
    pub(crate) fn spend(&self, attempt: Attempt) {
        let Attempt { .. } = attempt;
    }
}

/// The bucket key of a login name: SHA-256 of the trimmed, lower-cased name.
fn login_key(login: &str) -> [u8; 32] {
    Sha256::digest(login.trim().to_lowercase().as_bytes()).into()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    impl Default for LoginLimits {
        fn default() -> Self {
            Self::new(
                (PER_LOGIN_BURST, PER_LOGIN_REFILL),
                (PER_IP_BURST, PER_IP_REFILL),
            )
        }
    }

    const ALICE: Option<IpAddr> = Some(IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1)));
    const BOB: Option<IpAddr> = Some(IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 2)));

    fn fail(limits: &LoginLimits, login: &str, peer: Option<IpAddr>, now: Instant) {
        let attempt = limits.begin(login, peer, now).unwrap();
        limits.spend(attempt);
    }

    #[test]
    fn ten_failures_lock_the_account_for_a_minute_then_one_more_is_allowed() {
        let limits = LoginLimits::default();
        let start = Instant::now();
        for _ in 0..PER_LOGIN_BURST {
            fail(&limits, "admin", ALICE, start);
        }
        let refused = limits.begin("admin", ALICE, start).unwrap_err();
        assert_eq!(refused, Refused::Account(PER_LOGIN_REFILL));
        assert_eq!(
            refused.message(),
            "Too many failed logins for this account; try again in 1 minute."
        );
        // Refused attempts cost nothing: the wait does not grow.
        let later = start + Duration::from_secs(59);
        assert_eq!(
            limits.begin("admin", ALICE, later).unwrap_err(),
            Refused::Account(Duration::from_secs(1))
        );
        // From another address too, and whatever the case and spacing of the name.
        assert!(matches!(
            limits.begin(" ADMIN ", BOB, later),
            Err(Refused::Account(_))
        ));
        // Other accounts are unaffected.
        limits.give_back(limits.begin("author", ALICE, later).unwrap(), later);
        // After the refill period: one more attempt, then locked again.
        let refilled = start + PER_LOGIN_REFILL;
        let attempt = limits.begin("admin", ALICE, refilled).unwrap();
        limits.spend(attempt);
        assert!(limits.begin("admin", ALICE, refilled).is_err());
        // A success in the window it gets does not spend it.
        let next = refilled + PER_LOGIN_REFILL;
        limits.give_back(limits.begin("admin", ALICE, next).unwrap(), next);
        limits.give_back(limits.begin("admin", ALICE, next).unwrap(), next);
    }

    #[test]
    fn successes_never_spend() {
        let limits = LoginLimits::default();
        let now = Instant::now();
        for _ in 0..1000 {
            let attempt = limits.begin("admin", ALICE, now).unwrap();
            limits.give_back(attempt, now);
        }
        // The whole burst of failures is still there.
        for _ in 0..PER_LOGIN_BURST {
            fail(&limits, "admin", ALICE, now);
        }
        assert!(limits.begin("admin", ALICE, now).is_err());
    }

    #[test]
    fn concurrent_attempts_cannot_exceed_the_burst() {
        let limits = LoginLimits::default();
        let now = Instant::now();
        // Attempts reserved but not yet verified.
        let in_flight: Vec<Attempt> = (0..PER_LOGIN_BURST)
            .map(|_| limits.begin("admin", ALICE, now).unwrap())
            .collect();
        assert!(limits.begin("admin", ALICE, now).is_err());
        for attempt in in_flight {
            limits.spend(attempt);
        }
        assert!(limits.begin("admin", ALICE, now).is_err());
    }

    #[test]
    fn one_address_spraying_names_is_limited_and_unknown_names_count() {
        let limits = LoginLimits::default();
        let start = Instant::now();
        for i in 0..PER_IP_BURST {
            fail(&limits, &format!("nobody{i}"), ALICE, start);
        }
        let refused = limits.begin("admin", ALICE, start).unwrap_err();
        assert_eq!(refused, Refused::Address(PER_IP_REFILL));
        assert_eq!(
            refused.message(),
            "Too many failed logins from your address; try again in 1 minute."
        );
        // The refusal took no token from the account it named.
        for _ in 0..PER_LOGIN_BURST {
            fail(&limits, "admin", BOB, start);
        }
        // Another address is unaffected, the same /64 is not.
        limits.give_back(limits.begin("author", BOB, start).unwrap(), start);
        let v6 = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        for i in 0..PER_IP_BURST {
            fail(&limits, &format!("x{i}"), v6("2001:db8::1"), start);
        }
        assert!(matches!(
            limits.begin("y", v6("2001:db8::ffff"), start),
            Err(Refused::Address(_))
        ));
        limits.give_back(
            limits.begin("y", v6("2001:db8:0:1::1"), start).unwrap(),
            start,
        );
        // One more after the refill period.
        let later = start + PER_IP_REFILL;
        fail(&limits, "nobody-else", ALICE, later);
        assert!(matches!(
            limits.begin("another", ALICE, later),
            Err(Refused::Address(_))
        ));
        // Unknown names are locked like known ones.
        for _ in 0..PER_LOGIN_BURST {
            fail(&limits, "ghost", BOB, later);
        }
        assert!(matches!(
            limits.begin("ghost", BOB, later),
            Err(Refused::Account(_))
        ));
    }

    #[test]
    fn without_a_peer_only_the_account_limit_applies() {
        let limits = LoginLimits::default();
        let now = Instant::now();
        for i in 0..(PER_IP_BURST * 2) {
            fail(&limits, &format!("n{i}"), None, now);
        }
        limits.give_back(limits.begin("admin", None, now).unwrap(), now);
    }

    #[test]
    fn minutes_in_the_message_round_up() {
        assert!(
            Refused::Account(Duration::from_secs(61))
                .message()
                .ends_with("try again in 2 minutes.")
        );
        assert!(
            Refused::Account(Duration::from_millis(300))
                .message()
                .ends_with("try again in 1 minute.")
        );
    }

    #[test]
    fn zero_turns_a_limit_off() {
        let limits = LoginLimits::new((0, PER_LOGIN_REFILL), (0, PER_IP_REFILL));
        let now = Instant::now();
        for _ in 0..100 {
            fail(&limits, "admin", ALICE, now);
        }
    }

    #[test]
    fn behind_a_tls_proxy_the_ip_limit_is_off() {
        let mut config = crate::SiteConfig::new("https://site.example".to_owned());
        assert_eq!(
            per_ip_burst(&config),
            0,
            "https home, no certificate: a proxy"
        );
        config.tls_cert = Some("cert.pem".into());
        assert_eq!(per_ip_burst(&config), PER_IP_BURST);
        let config = crate::SiteConfig::new("http://127.0.0.1:8080".to_owned());
        assert_eq!(per_ip_burst(&config), PER_IP_BURST);
    }
}
