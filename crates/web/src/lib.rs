//! Plumbing shared by the broker and the site.
//!
//! * [`clock`] — time as a dependency ([`Clock`]), so windows and expiry are deterministic in tests.
//! * [`password`] — argon2id hashing and timing-safe verification on the blocking pool.
//! * [`random`] — unguessable `[A-Za-z0-9]` tokens from a CSPRNG.
//! * [`serve`] — the HTTP/HTTPS listener (rustls, plain HTTP only on loopback, graceful shutdown).
//! * [`config`] — the configuration loader: TOML file, `AUTHBROKER_*` variables, flags, errors naming the key.
//! * [`cors`] — CORS headers for browser apps (origin echoed, `Authorization`, credentials).
//! * [`cookies`] — reading cookies and building hardened `Set-Cookie` values (`Secure` under HTTPS).
//! * [`session`] — session ids in a cookie, only their SHA-256 stored (also used for API tokens).
//! * [`csrf`] — double-submit CSRF tokens (`ab_csrf` cookie, `_csrf` field), checked in constant time.
//! * [`input`] — NUL characters in request input (PostgreSQL `text` cannot hold them): found or dropped.
//! * [`limits`] — keyed token buckets with bounded memory (take, peek, refund), `Retry-After`, IP keys.
//! * [`pages`] — askama rendering with cookies, the security-headers middleware, `safe_redirect`, dates.

pub mod clock;
pub mod config;
pub mod cookies;
pub mod cors;
pub mod csrf;
pub mod input;
pub mod limits;
pub mod pages;
pub mod password;
pub mod random;
pub mod serve;
pub mod session;

pub use clock::{Clock, FixedClock, SystemClock};
