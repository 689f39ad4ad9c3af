//! Connections waiting for the site's verification request (R5).
//!
//! The site's credentials arrive in the R5 request and leave in the held R1 response; in between they
//! live in a oneshot channel and nowhere else. An entry exists only while its R1 request waits: dropping
//! the [`Waiting`] handle (delivery, timeout, client gone) removes it. A verifier that timed out is
//! remembered — as a bare verifier, no secrets — for a while so a late R5 gets `ba.timed_out` (409) rather
//! than `ba.invalid_verifier` (400).

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::Rng;
use rand::distributions::Alphanumeric;
use subtle::ConstantTimeEq;
use tokio::sync::oneshot;

/// Verifier length: the spec asks for an unguessable alphanumeric value of 1–255 characters; 40
/// characters are ~238 bits.
pub const VERIFIER_LEN: usize = 40;
/// How long a timed-out verifier is remembered.
const LATE_MEMORY: Duration = Duration::from_secs(600);

/// The credentials a site issued. `Debug` never shows the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub client_token: String,
    pub client_secret: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("client_token", &self.client_token)
            .field("client_secret", &"<redacted>")
            .finish()
    }
}

/// Why a verification request is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfirmError {
    /// No pending connection has this verifier for this client (400 `ba.invalid_verifier`).
    InvalidVerifier,
    /// The connection this verifier belonged to gave up waiting (409 `ba.timed_out`).
    TimedOut,
}

struct Entry {
    client_id: String,
    deadline: Instant,
    sender: oneshot::Sender<Credentials>,
}

#[derive(Default)]
struct Inner {
    waiting: HashMap<String, Entry>,
    late: HashMap<String, Instant>,
}

/// All pending connections of this process.
#[derive(Clone, Default)]
pub struct PendingRegistry {
    inner: Arc<Mutex<Inner>>,
}

impl fmt::Debug for PendingRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingRegistry")
            .field("waiting", &self.len())
            .finish()
    }
}

impl PendingRegistry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a connection for `client_id` that waits at most `timeout`; returns its fresh verifier
    /// and the handle to wait on.
    pub fn register(&self, client_id: &str, timeout: Duration) -> Waiting {
        let (sender, receiver) = oneshot::channel();
        let verifier: String = rand::thread_rng()
            .sample_iter(Alphanumeric)
            .take(VERIFIER_LEN)
            .map(char::from)
            .collect();
        let entry = Entry {
            client_id: client_id.to_owned(),
            deadline: Instant::now() + timeout,
            sender,
        };
        self.lock().waiting.insert(verifier.clone(), entry);
        Waiting {
            registry: self.clone(),
            verifier,
            receiver: Some(receiver),
        }
    }

    /// Delivers the credentials of an R5 request to the waiting connection.
    pub fn confirm(
        &self,
        verifier: &str,
        client_id: &str,
        credentials: Credentials,
    ) -> Result<(), ConfirmError> {
        let mut inner = self.lock();
        let now = Instant::now();
        inner
            .late
            .retain(|_, at| now.duration_since(*at) < LATE_MEMORY);
        let matches = inner
            .waiting
            .get(verifier)
            .is_some_and(|e| bool::from(e.client_id.as_bytes().ct_eq(client_id.as_bytes())));
        if !matches {
            return Err(if inner.late.contains_key(verifier) {
                ConfirmError::TimedOut
            } else {
                ConfirmError::InvalidVerifier
            });
        }
        let Some(entry) = inner.waiting.remove(verifier) else {
            return Err(ConfirmError::InvalidVerifier);
        };
        if entry.deadline <= now {
            inner.late.insert(verifier.to_owned(), now);
            return Err(ConfirmError::TimedOut);
        }
        entry.sender.send(credentials).map_err(|_| {
            inner.late.insert(verifier.to_owned(), now);
            ConfirmError::TimedOut
        })
    }

    /// How many connections are waiting.
    pub fn len(&self) -> usize {
        self.lock().waiting.len()
    }

    /// Whether none is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding this lock cannot leave the maps half-updated (single inserts/removes), so a
        // poisoned lock is still consistent.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn forget(&self, verifier: &str) {
        let mut inner = self.lock();
        if inner.waiting.remove(verifier).is_some() {
            let now = Instant::now();
            // `confirm` prunes the remembered verifiers, but when no verification ever arrives (every site
            // failing) they would pile up: sweep here too, each time the map reaches a power of two.
            let late = inner.late.len();
            if late >= 1024 && late.is_power_of_two() {
                inner
                    .late
                    .retain(|_, at| now.duration_since(*at) < LATE_MEMORY);
            }
            inner.late.insert(verifier.to_owned(), now);
        }
    }
}

/// One waiting connection. Dropping it removes the pending entry.
pub struct Waiting {
    registry: PendingRegistry,
    verifier: String,
    receiver: Option<oneshot::Receiver<Credentials>>,
}

impl fmt::Debug for Waiting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Waiting")
            .field("verifier", &"<redacted>")
            .finish()
    }
}

impl Waiting {
    /// The verifier to send in the connection request.
    pub fn verifier(&self) -> &str {
        &self.verifier
    }

    /// Waits for the credentials until `deadline`; `None` when it passes first.
    pub async fn credentials(&mut self, deadline: tokio::time::Instant) -> Option<Credentials> {
        let receiver = self.receiver.as_mut()?;
        match tokio::time::timeout_at(deadline, receiver).await {
            Ok(Ok(credentials)) => {
                self.receiver = None;
                Some(credentials)
            }
            _ => None,
        }
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        self.registry.forget(&self.verifier);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds() -> Credentials {
        Credentials {
            client_token: "key123456789".into(),
            client_secret: "s".repeat(48),
        }
    }

    #[tokio::test]
    async fn delivery_reaches_the_waiter_once() {
        let registry = PendingRegistry::new();
        let mut waiting = registry.register("app", Duration::from_secs(5));
        assert_eq!(waiting.verifier().len(), VERIFIER_LEN);
        let verifier = waiting.verifier().to_owned();
        registry.confirm(&verifier, "app", creds()).unwrap();
        let got = waiting
            .credentials(tokio::time::Instant::now() + Duration::from_secs(1))
            .await;
        assert_eq!(got, Some(creds()));
        drop(waiting);
        assert!(registry.is_empty());
        assert_eq!(
            registry.confirm(&verifier, "app", creds()),
            Err(ConfirmError::InvalidVerifier)
        );
    }

    #[tokio::test]
    async fn wrong_client_or_verifier_is_invalid() {
        let registry = PendingRegistry::new();
        let waiting = registry.register("app", Duration::from_secs(5));
        assert_eq!(
            registry.confirm(waiting.verifier(), "other", creds()),
            Err(ConfirmError::InvalidVerifier)
        );
        assert_eq!(
            registry.confirm("nope", "app", creds()),
            Err(ConfirmError::InvalidVerifier)
        );
        // The right pair still works after wrong attempts.
        registry
            .confirm(waiting.verifier(), "app", creds())
            .unwrap();
    }

    #[tokio::test]
    async fn late_verification_is_timed_out_and_nothing_lingers() {
        let registry = PendingRegistry::new();
        let mut waiting = registry.register("app", Duration::from_secs(5));
        let verifier = waiting.verifier().to_owned();
        assert_eq!(
            waiting
                .credentials(tokio::time::Instant::now() + Duration::from_millis(10))
                .await,
            None
        );
        drop(waiting);
        assert!(registry.is_empty());
        assert_eq!(
            registry.confirm(&verifier, "app", creds()),
            Err(ConfirmError::TimedOut)
        );
    }

    #[test]
    fn past_the_deadline_is_timed_out() {
        let registry = PendingRegistry::new();
        let waiting = registry.register("app", Duration::ZERO);
        assert_eq!(
            registry.confirm(waiting.verifier(), "app", creds()),
            Err(ConfirmError::TimedOut)
        );
    }

    #[test]
    fn debug_output_hides_secrets() {
        let text = format!("{:?}", creds());
        assert!(!text.contains("sss"), "{text}");
    }
}
