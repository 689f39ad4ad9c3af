//! Wire types shared by every authbroker role.
//!
//! This crate is pure data: no I/O, no async. It is the single place where the protocol's error codes are
//! spelled, so that the site, the broker, the client SDK and the OAuth 1.0a library can never disagree on a
//! code or on the HTTP status it travels with.
//!
//! * [`ErrorCode`] — every error code of the 2016 WP-API brokered authentication system and of the WP-API
//!   OAuth 1.0a plugin, with its default HTTP status.
//! * [`WpError`] — the WordPress REST error envelope `{"code","message","data":{"status"}}`.
//! * [`BrokerError`] — the broker's R1 error object, which carries the code under both `code` (the spec) and
//!   `type` (what the reference broker and its clients read).

mod envelope;
mod error_code;

pub use envelope::{BrokerError, WpError, WpErrorData};
pub use error_code::{ErrorCode, UnknownErrorCode};
