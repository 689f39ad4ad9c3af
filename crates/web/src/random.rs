//! Unguessable identifiers and credentials.

use rand::Rng;
use rand::distributions::Alphanumeric;

/// `len` characters of `[A-Za-z0-9]` from a CSPRNG (the shape WordPress's `wp_generate_password($len, false)`
/// gives keys, secrets and verifiers).
pub fn alnum(len: usize) -> String {
    rand::thread_rng()
        .sample_iter(Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

/// A fresh opaque id for a row.
pub fn id() -> String {
    alnum(20)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_have_the_asked_length_and_alphabet() {
        let token = alnum(48);
        assert_eq!(token.len(), 48);
        assert!(token.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_ne!(alnum(24), alnum(24));
    }
}
