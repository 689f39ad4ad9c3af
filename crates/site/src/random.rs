//! Unguessable identifiers and credentials.

use rand::Rng;
use rand::distributions::Alphanumeric;

/// `len` characters of `[A-Za-z0-9]` from a CSPRNG (the shape WordPress's `wp_generate_password($len, false)`
/// gives keys, secrets and verifiers).
pub(crate) fn alnum(len: usize) -> String {
    rand::thread_rng()
        .sample_iter(Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

/// A fresh opaque id for a row.
pub(crate) fn id() -> String {
    alnum(20)
}
