//! Keyed token buckets: rate limits per client IP, per app, per login name, … with bounded memory.
//!
//! A [`KeyedLimiter`] keeps one bucket per key. A bucket starts full with `capacity` tokens and gets one token
//! back every `refill_every` (at most `capacity`): a burst, then a steady rate. The caller decides what costs
//! a token:
//!
//! * [`KeyedLimiter::check`] takes one, or says how long until one is back (every request counts — the
//!   broker's R1 limits);
//! * [`KeyedLimiter::peek`] only asks whether a request would be refused now, taking nothing;
//! * [`KeyedLimiter::refund`] gives a token back, so that a caller can reserve a token before some work and
//!   return it when the work turned out not to count (the site's login throttle takes a token before the
//!   password is verified and returns it on success: only failures cost, and concurrent guesses cannot all
//!   slip through while the first ones are being verified).
//!
//! Time is an argument (`Instant`), so tests are deterministic. A capacity of 0 turns a limiter off.
//!
//! Memory is bounded: a bucket that has refilled completely is the same as no bucket and is dropped by a
//! sweep every minute ([`SWEEP_EVERY`]); when a limiter still reaches `max_keys` distinct keys, the buckets
//! closest to full are evicted first (a key evicted that way merely gets a fresh bucket, and the keys being
//! limited right now — empty buckets — are the last to go). The limits are per process; several nodes
//! behind one address each apply them.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How often fully refilled buckets are swept away.
pub const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// One bucket: tokens left at `updated`.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

#[derive(Debug)]
struct Buckets<K> {
    map: HashMap<K, Bucket>,
    last_sweep: Instant,
}

/// A token bucket per key, with bounded memory (see the [module documentation](self)).
#[derive(Debug)]
pub struct KeyedLimiter<K> {
    /// Bucket size; 0 disables the limiter.
    capacity: f64,
    /// Seconds per token coming back.
    period: f64,
    max_keys: usize,
    buckets: Mutex<Buckets<K>>,
}

impl<K: Hash + Eq + Clone> KeyedLimiter<K> {
    /// Buckets of `capacity` tokens, one token back every `refill_every`, at most `max_keys` keys tracked.
    /// A `capacity` of 0 or a zero `refill_every` (tokens back at once) turns the limiter off.
    pub fn new(capacity: u32, refill_every: Duration, max_keys: usize) -> Self {
        if refill_every.is_zero() {
            return Self::with_period(0.0, 0.0, max_keys);
        }
        Self::with_period(f64::from(capacity), refill_every.as_secs_f64(), max_keys)
    }

    /// Buckets of `per_minute` tokens refilled at `per_minute / 60` per second: a minute's worth at once,
    /// then that rate. 0 turns the limiter off.
    pub fn per_minute(per_minute: u32, max_keys: usize) -> Self {
        Self::with_period(
            f64::from(per_minute),
            60.0 / f64::from(per_minute),
            max_keys,
        )
    }

    fn with_period(capacity: f64, period: f64, max_keys: usize) -> Self {
        Self {
            capacity,
            period,
            max_keys: max_keys.max(1),
            buckets: Mutex::new(Buckets {
                map: HashMap::new(),
                last_sweep: Instant::now(),
            }),
        }
    }

    /// Whether the limiter limits anything (a capacity above 0).
    pub fn is_enabled(&self) -> bool {
        self.capacity > 0.0
    }

    /// Takes a token for `key` at `now`, or says how long until one is available (taking nothing).
    pub fn check(&self, key: &K, now: Instant) -> Result<(), Duration> {
        if !self.is_enabled() {
            return Ok(());
        }
        let mut buckets = self.lock();
        if now.saturating_duration_since(buckets.last_sweep) >= SWEEP_EVERY {
            buckets.last_sweep = now;
            self.sweep(&mut buckets.map, now, usize::MAX);
        }
        if !buckets.map.contains_key(key) && buckets.map.len() >= self.max_keys {
            // Keep a quarter free so the next sweep is max_keys / 4 new keys away.
            let target = self.max_keys - self.max_keys / 4 - 1;
            self.sweep(&mut buckets.map, now, target);
        }
        let bucket = buckets.map.entry(key.clone()).or_insert(Bucket {
            tokens: self.capacity,
            updated: now,
        });
        let tokens = self.level(bucket, now);
        if tokens >= 1.0 {
            *bucket = Bucket {
                tokens: tokens - 1.0,
                updated: now,
            };
            Ok(())
        } else {
            *bucket = Bucket {
                tokens,
                updated: now,
            };
            Err(self.wait(tokens))
        }
    }

    /// Whether [`check`](Self::check) would refuse `key` at `now` — and if so, how long until a token is
    /// back — without taking a token or tracking a new key. Tests observe buckets with it; the services
    /// reserve with `check` and give back with `refund` instead (asking first would let concurrent
    /// attempts all pass before any is settled).
    #[cfg(test)]
    fn peek(&self, key: &K, now: Instant) -> Result<(), Duration> {
        if !self.is_enabled() {
            return Ok(());
        }
        let buckets = self.lock();
        let tokens = buckets
            .map
            .get(key)
            .map_or(self.capacity, |bucket| self.level(bucket, now));
        if tokens >= 1.0 {
            Ok(())
        } else {
            Err(self.wait(tokens))
        }
    }

    /// Gives back a token taken from `key` (never beyond the capacity). A key that is no longer tracked
    /// (swept or evicted) already has a full bucket; nothing happens then.
    pub fn refund(&self, key: &K, now: Instant) {
        if !self.is_enabled() {
            return;
        }
        let mut buckets = self.lock();
        if let Some(bucket) = buckets.map.get_mut(key) {
            let tokens = (self.level(bucket, now) + 1.0).min(self.capacity);
            *bucket = Bucket {
                tokens,
                updated: now,
            };
        }
    }

    /// How many keys have a bucket right now (full buckets are dropped by the next sweep).
    pub fn tracked_keys(&self) -> usize {
        self.lock().map.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Buckets<K>> {
        self.buckets.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How long until a bucket holding `tokens` (< 1) holds one.
    fn wait(&self, tokens: f64) -> Duration {
        Duration::from_secs_f64((1.0 - tokens) * self.period)
    }

    /// The tokens `bucket` holds at `now`.
    fn level(&self, bucket: &Bucket, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        (bucket.tokens + elapsed / self.period).min(self.capacity)
    }

    /// Drops the buckets that are full again; if more than `target` remain, evicts the fullest until
    /// `target` are left.
    fn sweep(&self, map: &mut HashMap<K, Bucket>, now: Instant, target: usize) {
        map.retain(|_, bucket| self.level(bucket, now) < self.capacity);
        if map.len() <= target {
            return;
        }
        let mut levels: Vec<(f64, K)> = map
            .iter()
            .map(|(key, bucket)| (self.level(bucket, now), key.clone()))
            .collect();
        levels.sort_by(|a, b| b.0.total_cmp(&a.0));
        let excess = map.len() - target;
        for (_, key) in levels.into_iter().take(excess) {
            map.remove(&key);
        }
    }
}

/// A wait as the value of `Retry-After`: whole seconds, rounded up, at least 1.
pub fn retry_after_secs(wait: Duration) -> u64 {
    wait.as_secs_f64().ceil().max(1.0) as u64
}

/// Warns once that a per-IP limit is skipped because requests carry no peer address (a router served
/// without connect info): never one shared key for everybody, but the operator must hear of it.
#[derive(Debug, Default)]
pub struct NoPeerWarning(AtomicBool);

impl NoPeerWarning {
    /// Logs the warning for `limit` the first time only.
    pub fn warn(&self, limit: &str) {
        if !self.0.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                "no peer address on requests (router served without connect info): the {limit} is off"
            );
        }
    }
}

/// An IPv4-mapped IPv6 address (`::ffff:1.2.3.4`, what a dual-stack socket reports) as the IPv4 it is.
pub fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// The key a client IP is limited under: IPv4 as is, IPv6 by its /64 (one subscriber usually holds a
/// whole /64, so keying single IPv6 addresses would give each client 2^64 buckets).
pub fn ip_key(ip: IpAddr) -> IpAddr {
    match canonical_ip(ip) {
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & (u128::MAX << 64))),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn per_minute_is_a_burst_then_the_steady_rate() {
        let limiter = KeyedLimiter::per_minute(60, 100);
        let start = Instant::now();
        for _ in 0..60 {
            limiter.check(&"a", start).unwrap();
        }
        let wait = limiter.check(&"a", start).unwrap_err();
        assert!(
            wait <= Duration::from_secs(1) && wait > Duration::ZERO,
            "{wait:?}"
        );
        limiter.check(&"b", start).unwrap();
        let later = start + Duration::from_millis(1001);
        limiter.check(&"a", later).unwrap();
        assert!(limiter.check(&"a", later).is_err());
    }

    #[test]
    fn explicit_capacity_and_refill_period() {
        // 10 at once, then one every 60 s.
        let limiter = KeyedLimiter::new(10, Duration::from_secs(60), 100);
        let start = Instant::now();
        for _ in 0..10 {
            limiter.check(&"alice", start).unwrap();
        }
        let wait = limiter.check(&"alice", start).unwrap_err();
        assert_eq!(retry_after_secs(wait), 60);
        // Half a period later: still refused, half the wait left.
        let half = start + Duration::from_secs(30);
        assert_eq!(
            retry_after_secs(limiter.check(&"alice", half).unwrap_err()),
            30
        );
        // One period later: exactly one more, then refused again for a whole period.
        let later = start + Duration::from_secs(60);
        limiter.check(&"alice", later).unwrap();
        assert_eq!(
            retry_after_secs(limiter.check(&"alice", later).unwrap_err()),
            60
        );
        // Ten periods of quiet refill the whole burst, not more.
        let much_later = later + Duration::from_secs(3600);
        for _ in 0..10 {
            limiter.check(&"alice", much_later).unwrap();
        }
        assert!(limiter.check(&"alice", much_later).is_err());
        // Other keys never noticed.
        limiter.check(&"bob", start).unwrap();
    }

    #[test]
    fn peek_takes_nothing() {
        let limiter = KeyedLimiter::new(2, Duration::from_secs(10), 100);
        let now = Instant::now();
        for _ in 0..100 {
            limiter.peek(&"k", now).unwrap();
        }
        assert_eq!(limiter.tracked_keys(), 0, "peeking tracks no key");
        limiter.check(&"k", now).unwrap();
        limiter.peek(&"k", now).unwrap();
        limiter.check(&"k", now).unwrap();
        let wait = limiter.peek(&"k", now).unwrap_err();
        assert_eq!(retry_after_secs(wait), 10);
        // Peeking again does not push the wait further out.
        let later = now + Duration::from_secs(4);
        assert_eq!(retry_after_secs(limiter.peek(&"k", later).unwrap_err()), 6);
        assert_eq!(retry_after_secs(limiter.peek(&"k", later).unwrap_err()), 6);
        limiter
            .peek(&"k", now + Duration::from_secs(10))
            .expect("a token is back after one period");
    }

    #[test]
    fn refund_returns_a_token_but_never_beyond_capacity() {
        let limiter = KeyedLimiter::new(3, Duration::from_secs(60), 100);
        let now = Instant::now();
        // Reserve-then-refund any number of times costs nothing.
        for _ in 0..20 {
            limiter.check(&"k", now).unwrap();
            limiter.refund(&"k", now);
        }
        for _ in 0..3 {
            limiter.check(&"k", now).unwrap();
        }
        assert!(limiter.peek(&"k", now).is_err());
        limiter.refund(&"k", now);
        limiter.peek(&"k", now).unwrap();
        // Refunds beyond the capacity are lost.
        for _ in 0..10 {
            limiter.refund(&"k", now);
        }
        for _ in 0..3 {
            limiter.check(&"k", now).unwrap();
        }
        assert!(limiter.check(&"k", now).is_err());
        // A refund for a key never seen tracks nothing.
        limiter.refund(&"other", now);
        assert_eq!(limiter.tracked_keys(), 1);
    }

    #[test]
    fn zero_disables() {
        for limiter in [
            KeyedLimiter::per_minute(0, 1),
            KeyedLimiter::new(0, Duration::from_secs(60), 1),
            KeyedLimiter::new(5, Duration::ZERO, 1),
        ] {
            assert!(!limiter.is_enabled());
            let now = Instant::now();
            for i in 0..1000 {
                limiter.check(&i, now).unwrap();
                limiter.peek(&i, now).unwrap();
                limiter.refund(&i, now);
            }
            assert_eq!(limiter.tracked_keys(), 0);
        }
    }

    #[test]
    fn memory_stays_bounded_and_full_buckets_go_first() {
        let limiter = KeyedLimiter::per_minute(10, 100);
        let now = Instant::now();
        // A key that is hot (empty bucket) survives a flood of one-off keys.
        for _ in 0..10 {
            limiter.check(&u32::MAX, now).unwrap();
        }
        for i in 0..10_000 {
            let _ = limiter.check(&i, now);
            assert!(limiter.tracked_keys() <= 100);
        }
        assert!(
            limiter.check(&u32::MAX, now).is_err(),
            "the hot key kept its state"
        );
        // Buckets that refilled are swept after a minute.
        let later = now + SWEEP_EVERY + Duration::from_secs(1);
        limiter.check(&0, later).unwrap();
        assert_eq!(limiter.tracked_keys(), 1);
    }

    #[test]
    fn retry_after_is_whole_seconds_at_least_one() {
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(29_001)), 30);
        assert_eq!(retry_after_secs(Duration::from_secs(60)), 60);
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
        assert_eq!(
            canonical_ip("::ffff:10.0.0.1".parse().unwrap()),
            "10.0.0.1".parse::<IpAddr>().unwrap()
        );
    }
}
