//! The authbroker site: what a WordPress site with the WP-API OAuth 1.0a and broker plugins looks like on the
//! wire, as an embeddable axum router.
//!
//! * `GET /wp-json/` — the REST index with `authentication.oauth1` and `authentication.broker`; every
//!   response carries `Link: <{home}/wp-json/>; rel="https://api.w.org/"`.
//! * `/oauth1/request`, `/oauth1/authorize`, `/oauth1/access` — the OAuth 1.0a provider (PROTOCOL.md R7–R11);
//!   `POST /oauth1/revoke` (ours) revokes the access token that signed it.
//! * `/wp-json/wp/v2/users/me` and posts — signed REST calls authenticate as the approving user.
//! * login, consent and management pages, server-rendered, CSRF-protected, no JavaScript.
//!
//! Time comes from the [`Clock`] in the state and every URL the site emits is built from the configured
//! canonical home URL, never from `Host`.

mod accounts;
mod brokered;
mod config;
mod content;
mod error;
mod manage;
mod oauth1;
mod pages;
mod random;
pub mod serve;
mod state;

pub use accounts::{Role, create_user};
pub use authbroker_web::{Clock, FixedClock, SystemClock};
pub use config::{ConfigError, ConfigKey, KnownBrokerConfig, Origin, ServiceConfig, SiteConfig};
pub use error::SiteError;
pub use oauth1::consumers::{Consumer, NewConsumer, register_consumer};
pub use state::{SiteState, router};

/// The site's migrations, applied by [`SiteState::open`].
pub const MIGRATIONS: &[authbroker_store::Migration] = &[
    authbroker_store::Migration {
        version: 1,
        sql: include_str!("../../../migrations/site/0001_init.sql"),
    },
    authbroker_store::Migration {
        version: 2,
        sql: include_str!("../../../migrations/site/0002_posts_slug.sql"),
    },
];
