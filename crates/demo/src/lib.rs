//! The whole authbroker system in one process on loopback, for `authbroker demo`, `authbroker up` and the
//! CLI's integration tests.
//!
//! [`World::start`] brings up, in order (each step timed and reported to the caller):
//!
//! 1. **a local CA and one server certificate** for `127.0.0.1` and `localhost` (rcgen), written into the
//!    data directory (`tls/`; the key 0600, the CA's own key never written);
//! 2. **the broker** over HTTPS on 127.0.0.1 — the listener is bound first, because the broker's URL is its
//!    ID — with SQLite in `broker/`, loopback targets allowed (the site is on loopback) and the local CA
//!    trusted;
//! 3. **the site** ("Demo Site") over HTTPS, SQLite in `site/`, trusting that broker (its verification URL
//!    is `{broker}/broker/confirm/`) and the local CA (the site's verification request, R5, is HTTPS only);
//! 4. **a developer and an app at the broker** (`dev@demo.example`, app "authbroker CLI" with the loopback
//!    callback `http://127.0.0.1/callback`, whose port sites ignore as RFC 8252 asks);
//! 5. **two site users**: `admin` (administrator) and `author` (author, who approves in the demo).
//!
//! Steps 4 and 5 run concurrently: argon2id password hashing dominates them. Passwords are generated and
//! kept in `credentials.json` (0600) in the data directory, so that a rerun on the same directory (`up`)
//! reuses the world — same CA, same accounts, same app credentials — instead of failing or starting over.
//!
//! [`scenario::run`] then does what an app and its user do, with the client SDK: discover the site from
//! its address, connect through the broker, approve (the scripted user, or a person in a browser), publish
//! a post, read it back and revoke the token — each step timed.
//!
//! [`Approver`] is the person at the browser when nobody is: it logs in on the site's form and approves
//! on the consent page, and hands back the callback URL the site redirected to.
//!
//! The services log with `tracing`; this library never installs a subscriber, the caller decides what is
//! shown.

mod approver;
mod credentials;
mod error;
mod files;
mod pki;
pub mod scenario;
mod world;

pub use approver::Approver;
pub use error::DemoError;
pub use world::{
    ADMIN_LOGIN, APP_CALLBACK, APP_NAME, AUTHOR_LOGIN, DEVELOPER_EMAIL, DemoApp, Login, SITE_NAME,
    STEP_APP, STEP_BROKER, STEP_CERTIFICATES, STEP_SITE, STEP_USERS, World, WorldOptions,
};
