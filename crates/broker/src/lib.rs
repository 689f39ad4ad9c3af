//! The authbroker broker: the registry that vouches for apps to sites (PROTOCOL.md §2, broker side).
//!
//! * [`discovery`] — R2: from the URL a user typed to the site's REST index and its
//!   `authentication.broker` endpoint, through the SSRF-guarded outbound client.
//! * `connect` — R1/R4/R6: `POST /broker/connect` authenticates the app (OAuth 1.0a, empty token
//!   secret), answers 200 at once and holds the body until the site's credentials arrive or time runs out.
//! * `confirm` — R5: `POST /broker/confirm/` (alias `/broker/verify/`) hands the site's credentials to the
//!   waiting connection.
//! * `limits` — rate limits on R1 per client IP, per app and per target site (429 with `Retry-After`).
//! * [`pending`] — the connections waiting for their R5, in memory only: site credentials pass through the
//!   broker and are never written anywhere.
//! * [`apps`] — developers, apps and the per-app log of connections (site, time, result; no secrets).
//! * [`accounts`] — developer accounts, passwords (argon2id) and login sessions; [`tokens`] — API tokens.
//! * `portal` — the developer portal pages (sign up, my apps, API tokens, administration), and `api` — the
//!   JSON API under `/api/v1/` for scripts and the CLI.
//! * [`serve`] — binding the shared listener and `broker init` (the first administrator).

pub mod accounts;
mod api;
pub mod apps;
mod config;
mod confirm;
mod connect;
pub mod discovery;
mod error;
mod limits;
mod nonces;
pub mod pending;
mod portal;
pub mod serve;
mod state;
pub mod tokens;

pub use authbroker_web::{Clock, FixedClock, SystemClock};
pub use config::{BrokerConfig, RateLimits, ServiceConfig};
pub use error::BrokerError;
pub use state::{BrokerState, MIGRATIONS, router};
