//! Password hashing with argon2id, off the async executor.

use argon2::Argon2;
use argon2::password_hash::{
    PasswordHash, PasswordHasher, PasswordVerifier, SaltString, rand_core::OsRng,
};

/// Hashing or verification could not run (a corrupt stored hash, a failed worker task).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordError(pub String);

impl std::fmt::Display for PasswordError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "password hashing: {}", self.0)
    }
}

impl std::error::Error for PasswordError {}

/// A first administrator's password: the one chosen, or 24 generated letters and digits (about 143 bits).
/// The flag is `true` when the password was generated (to be shown once).
pub fn chosen_or_generated(chosen: Option<String>) -> (String, bool) {
    match chosen {
        Some(password) => (password, false),
        None => (crate::random::alnum(24), true),
    }
}

/// An argon2id PHC string for `password` (argon2's defaults: 19 MiB, 2 passes), computed on the blocking
/// pool so that logins do not stall other requests.
pub async fn hash(password: String) -> Result<String, PasswordError> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| PasswordError(e.to_string()))
    })
    .await
    .map_err(|e| PasswordError(e.to_string()))?
}

/// Whether `password` matches the stored hash. With `None` (no such account) it verifies against a fixed
/// dummy hash and answers `false`, so the time taken does not reveal which accounts exist.
pub async fn verify(password: String, stored: Option<String>) -> Result<bool, PasswordError> {
    let known = stored.is_some();
    let stored = stored.unwrap_or_else(|| dummy_hash().to_owned());
    tokio::task::spawn_blocking(move || {
        let parsed = PasswordHash::new(&stored).map_err(|e| PasswordError(e.to_string()))?;
        Ok(known
            && Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok())
    })
    .await
    .map_err(|e| PasswordError(e.to_string()))?
}

fn dummy_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(crate::random::alnum(32).as_bytes(), &salt)
            .map(|h| h.to_string())
            .unwrap_or_default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_are_argon2id() {
        let stored = hash("correct horse".into()).await.unwrap();
        assert!(stored.starts_with("$argon2id$"), "{stored}");
        assert!(
            verify("correct horse".into(), Some(stored.clone()))
                .await
                .unwrap()
        );
        assert!(!verify("wrong".into(), Some(stored)).await.unwrap());
        assert!(!verify("anything".into(), None).await.unwrap());
        assert!(verify("x".into(), Some("not a hash".into())).await.is_err());
    }
}
