//! Server-side verification: required parameters, signature method, timestamp window, signature, nonce.

use std::collections::HashMap;
use std::fmt;

use authbroker_protocol::ErrorCode;

use crate::request::{RequestError, SignedRequest};
use crate::signature::{self, SignatureMethod};

/// Parameters every signed request carries (the WP-API plugin requires nonce and timestamp even for
/// PLAINTEXT, and so do we).
pub(crate) const REQUIRED: [&str; 5] = [
    "oauth_consumer_key",
    "oauth_timestamp",
    "oauth_nonce",
    "oauth_signature",
    "oauth_signature_method",
];

/// The default timestamp window, ±15 minutes as in the WP-API plugin.
pub const DEFAULT_TIMESTAMP_WINDOW: i64 = 900;

/// Why a request failed verification. Each maps to exactly one protocol error code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyError {
    /// The request's parameters could not be read.
    Malformed(RequestError),
    /// These required parameters are absent or empty.
    MissingParameters(Vec<&'static str>),
    /// The signature method is unknown or not allowed here.
    InvalidSignatureMethod(String),
    /// The timestamp is not a decimal number or lies outside the window.
    InvalidTimestamp,
    /// The consumer key names no active consumer (reported by the caller's lookup).
    ConsumerNotFound,
    /// The token names no usable token for this consumer (reported by the caller's lookup).
    InvalidToken,
    /// The signature does not verify.
    SignatureMismatch,
    /// The nonce was used before within the window.
    NonceAlreadyUsed,
    /// The nonce store could not answer; the request must not be accepted.
    NonceStoreUnavailable,
    /// A consumer key, token or nonce no store can hold (a NUL character, over [`MAX_IDENTIFIER_LEN`]
    /// bytes): refused before any lookup, where PostgreSQL would fail the whole batched statement it rides
    /// in (text cannot hold NUL; index entries are capped) and with it every other request of the batch.
    InvalidParameter(&'static str),
}

/// The longest consumer key, token or nonce accepted. Generated values are far shorter (WordPress: 12, 24
/// and 32 characters); database keys and indexes stay small.
pub const MAX_IDENTIFIER_LEN: usize = 255;

/// Whether `value` can be stored and looked up as a consumer key, token or nonce: 1 to
/// [`MAX_IDENTIFIER_LEN`] bytes without NUL (PostgreSQL text cannot hold NUL). Anything else a client
/// sends is its own business (the signature covers it).
pub fn storable_identifier(value: &str) -> bool {
    !value.is_empty() && value.len() <= MAX_IDENTIFIER_LEN && !value.contains('\0')
}

impl VerifyError {
    /// The protocol error code.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Malformed(_) | Self::MissingParameters(_) | Self::InvalidParameter(_) => {
                ErrorCode::OAuth1MissingParameter
            }
            Self::InvalidSignatureMethod(_) => ErrorCode::OAuth1InvalidSignatureMethod,
            Self::InvalidTimestamp => ErrorCode::OAuth1InvalidTimestamp,
            Self::ConsumerNotFound => ErrorCode::ConsumerNotFound,
            Self::InvalidToken => ErrorCode::OAuth1InvalidToken,
            Self::SignatureMismatch => ErrorCode::OAuth1SignatureMismatch,
            Self::NonceAlreadyUsed => ErrorCode::OAuth1NonceAlreadyUsed,
            Self::NonceStoreUnavailable => ErrorCode::ServerError,
        }
    }

    /// The HTTP status: the code's default, except that unreadable parameters are the client's malformed
    /// request (400) and an unavailable nonce store is a temporary server condition (503).
    pub fn status(&self) -> u16 {
        match self {
            Self::Malformed(_) | Self::InvalidParameter(_) => 400,
            Self::NonceStoreUnavailable => 503,
            other => other.code().default_status(),
        }
    }
}

impl fmt::Display for VerifyError {
    /// The message clients display; worded as the WP-API plugin words it where it has one.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed(err) => err.fmt(f),
            Self::MissingParameters(names) if names.len() == 1 => {
                write!(f, "Missing OAuth parameter {}", names[0])
            }
            Self::MissingParameters(names) => {
                write!(f, "Missing OAuth parameters {}", names.join(", "))
            }
            Self::InvalidSignatureMethod(_) => f.write_str("Signature method is invalid"),
            Self::InvalidTimestamp => f.write_str("Invalid timestamp"),
            Self::ConsumerNotFound => f.write_str("Consumer ID is invalid"),
            Self::InvalidToken => f.write_str("Invalid token"),
            Self::SignatureMismatch => f.write_str("OAuth signature does not match"),
            Self::NonceAlreadyUsed => f.write_str("Invalid nonce - nonce has already been used"),
            Self::NonceStoreUnavailable => {
                f.write_str("Replay protection is unavailable, try again")
            }
            Self::InvalidParameter(name) => write!(f, "Invalid OAuth parameter {name}"),
        }
    }
}

impl std::error::Error for VerifyError {}

impl From<RequestError> for VerifyError {
    fn from(err: RequestError) -> Self {
        Self::Malformed(err)
    }
}

/// The identity of a nonce: RFC 5849 §3.3 makes a nonce unique per (consumer, token, timestamp).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NonceKey<'a> {
    pub consumer_key: &'a str,
    /// The token, or `""` for requests without one.
    pub token: &'a str,
    pub timestamp: i64,
    pub nonce: &'a str,
}

/// The nonce store could not record or look up a nonce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NonceStoreUnavailable;

/// Replay protection, provided by the caller (a database table, a cache in front of one, …).
pub trait NonceStore {
    /// Records `key` until `expires_at` (unix seconds) if it is new, atomically. Returns `Ok(true)` when it
    /// was new and `Ok(false)` when it had been recorded before.
    fn insert(&mut self, key: NonceKey<'_>, expires_at: i64)
    -> Result<bool, NonceStoreUnavailable>;
}

/// An in-memory [`NonceStore`] for clients, tests and single-process tools. Servers that must survive
/// restarts or run several nodes need a shared store.
#[derive(Debug, Default)]
pub struct MemoryNonceStore {
    seen: HashMap<(String, String, i64, String), i64>,
}

impl MemoryNonceStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Forgets nonces whose timestamp has left the window.
    pub fn prune(&mut self, now: i64) {
        self.seen.retain(|_, expires_at| *expires_at >= now);
    }

    /// How many nonces are held.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// Whether no nonce is held.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}

impl NonceStore for MemoryNonceStore {
    fn insert(
        &mut self,
        key: NonceKey<'_>,
        expires_at: i64,
    ) -> Result<bool, NonceStoreUnavailable> {
        let entry = (
            key.consumer_key.to_owned(),
            key.token.to_owned(),
            key.timestamp,
            key.nonce.to_owned(),
        );
        Ok(self.seen.insert(entry, expires_at).is_none())
    }
}

/// The shared secrets a request is verified with.
#[derive(Debug, Clone, Copy)]
pub struct Secrets<'a> {
    pub consumer_secret: &'a str,
    /// The token secret, or `""` for requests without a token (temporary-credential and broker requests).
    pub token_secret: &'a str,
}

/// The verification policy of one endpoint.
#[derive(Debug, Clone)]
pub struct Verifier {
    methods: Vec<SignatureMethod>,
    window: i64,
    require_token: bool,
}

impl Default for Verifier {
    /// HMAC-SHA1 and HMAC-SHA256, ±900 s, token required.
    fn default() -> Self {
        Self {
            methods: vec![SignatureMethod::HmacSha1, SignatureMethod::HmacSha256],
            window: DEFAULT_TIMESTAMP_WINDOW,
            require_token: true,
        }
    }
}

impl Verifier {
    /// The default policy: HMAC-SHA1 and HMAC-SHA256, ±900 s, token required.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the accepted signature methods (add PLAINTEXT only on endpoints reached over TLS).
    pub fn methods(mut self, methods: &[SignatureMethod]) -> Self {
        self.methods = methods.to_vec();
        self
    }

    /// Sets the timestamp window in seconds either side of now.
    pub fn timestamp_window(mut self, seconds: i64) -> Self {
        self.window = seconds;
        self
    }

    /// Whether `oauth_token` is required (false for temporary-credential and broker connect requests).
    pub fn require_token(mut self, required: bool) -> Self {
        self.require_token = required;
        self
    }

    /// Checks everything that needs no secret: required parameters, signature method, timestamp window.
    ///
    /// Cheap checks come first so that a flood of stale or malformed requests costs no database lookup.
    pub fn check<'r>(
        &self,
        request: &'r SignedRequest,
        now: i64,
    ) -> Result<Checked<'r>, VerifyError> {
        let present = |name: &str| request.param(name).filter(|v| !v.is_empty());
        let mut missing: Vec<&'static str> = REQUIRED
            .iter()
            .copied()
            .filter(|n| present(n).is_none())
            .collect();
        if self.require_token && present("oauth_token").is_none() {
            missing.push("oauth_token");
        }
        if !missing.is_empty() {
            return Err(VerifyError::MissingParameters(missing));
        }
        // `present` returned Some for every required name just above.
        let get = |name: &str| present(name).unwrap_or_default();
        let method_name = get("oauth_signature_method");
        let method = method_name
            .parse::<SignatureMethod>()
            .ok()
            .filter(|m| self.methods.contains(m))
            .ok_or_else(|| VerifyError::InvalidSignatureMethod(method_name.to_owned()))?;
        let timestamp =
            parse_timestamp(get("oauth_timestamp")).ok_or(VerifyError::InvalidTimestamp)?;
        if (timestamp - now).abs() > self.window {
            return Err(VerifyError::InvalidTimestamp);
        }
        let token = request.param("oauth_token").unwrap_or_default();
        for (name, value, required) in [
            ("oauth_consumer_key", get("oauth_consumer_key"), true),
            ("oauth_token", token, false),
            ("oauth_nonce", get("oauth_nonce"), true),
        ] {
            if (required || !value.is_empty()) && !storable_identifier(value) {
                return Err(VerifyError::InvalidParameter(name));
            }
        }
        Ok(Checked {
            request,
            method,
            timestamp,
            expires_at: timestamp.saturating_add(self.window),
            consumer_key: get("oauth_consumer_key"),
            token,
            nonce: get("oauth_nonce"),
            signature: get("oauth_signature"),
        })
    }

    /// The whole verification in the order the protocol wants: [`Verifier::check`], then the caller's
    /// lookup of the secrets (which reports unknown consumers and tokens), then the signature, and only for
    /// a valid signature the nonce — so that forged requests cannot burn nonces.
    pub fn verify<'r>(
        &self,
        request: &'r SignedRequest,
        now: i64,
        lookup: impl FnOnce(&Checked<'r>) -> Result<(String, String), VerifyError>,
        nonces: &mut impl NonceStore,
    ) -> Result<Checked<'r>, VerifyError> {
        let checked = self.check(request, now)?;
        let (consumer_secret, token_secret) = lookup(&checked)?;
        checked.verify_signature(Secrets {
            consumer_secret: &consumer_secret,
            token_secret: &token_secret,
        })?;
        checked.record_nonce(nonces)?;
        Ok(checked)
    }
}

/// Timestamps are positive decimal integers (RFC 5849 §3.3); a sign, spaces or a fraction is invalid.
fn parse_timestamp(value: &str) -> Option<i64> {
    if value.is_empty() || value.len() > 18 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse().ok()
}

/// A request that passed [`Verifier::check`]: its protocol parameters, ready for the secret-dependent steps.
#[derive(Debug, Clone, Copy)]
pub struct Checked<'r> {
    request: &'r SignedRequest,
    method: SignatureMethod,
    timestamp: i64,
    expires_at: i64,
    consumer_key: &'r str,
    token: &'r str,
    nonce: &'r str,
    signature: &'r str,
}

impl<'r> Checked<'r> {
    /// `oauth_consumer_key`.
    pub fn consumer_key(&self) -> &'r str {
        self.consumer_key
    }

    /// `oauth_token`, if the request has one.
    pub fn token(&self) -> Option<&'r str> {
        Some(self.token).filter(|t| !t.is_empty())
    }

    /// The signature method used.
    pub fn signature_method(&self) -> SignatureMethod {
        self.method
    }

    /// `oauth_timestamp`.
    pub fn timestamp(&self) -> i64 {
        self.timestamp
    }

    /// The request this was checked from.
    pub fn request(&self) -> &'r SignedRequest {
        self.request
    }

    /// Verifies the signature in constant time.
    pub fn verify_signature(&self, secrets: Secrets<'_>) -> Result<(), VerifyError> {
        let base_string = self.request.base_string();
        if signature::verify(
            self.method,
            &base_string,
            secrets.consumer_secret,
            secrets.token_secret,
            self.signature,
        ) {
            Ok(())
        } else {
            Err(VerifyError::SignatureMismatch)
        }
    }

    /// The nonce's identity, for stores the caller drives itself (an async database).
    pub fn nonce_key(&self) -> NonceKey<'r> {
        NonceKey {
            consumer_key: self.consumer_key,
            token: self.token,
            timestamp: self.timestamp,
            nonce: self.nonce,
        }
    }

    /// When the nonce may be forgotten: once its timestamp has left the window, the request is refused for
    /// its timestamp anyway.
    pub fn nonce_expires_at(&self) -> i64 {
        self.expires_at
    }

    /// Records the nonce, refusing a replay.
    pub fn record_nonce(&self, store: &mut impl NonceStore) -> Result<(), VerifyError> {
        match store.insert(self.nonce_key(), self.expires_at) {
            Ok(true) => Ok(()),
            Ok(false) => Err(VerifyError::NonceAlreadyUsed),
            Err(NonceStoreUnavailable) => Err(VerifyError::NonceStoreUnavailable),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::RequestParts;
    use crate::signer::Signer;

    const NOW: i64 = 1_700_000_000;

    fn signed(method: SignatureMethod, timestamp: i64, nonce: &str) -> String {
        Signer::new(method, "ck", "cs")
            .token("tk", "ts")
            .sign(
                "GET",
                "https://site.example/wp-json/wp/v2/users/me?context=edit",
                &[],
                nonce,
                timestamp,
            )
            .expect("absolute URI")
            .to_header_value()
    }

    fn request(auth: &str) -> SignedRequest {
        SignedRequest::from_parts(&RequestParts {
            method: "GET",
            uri: "https://site.example/wp-json/wp/v2/users/me?context=edit",
            form_body: None,
            authorization: Some(auth),
        })
        .expect("well-formed")
    }

    fn secrets(_: &Checked<'_>) -> Result<(String, String), VerifyError> {
        Ok(("cs".into(), "ts".into()))
    }

    #[test]
    fn a_signed_request_verifies_once() {
        let req = request(&signed(SignatureMethod::HmacSha1, NOW, "n1"));
        let mut store = MemoryNonceStore::new();
        let checked = Verifier::new()
            .verify(&req, NOW, secrets, &mut store)
            .unwrap();
        assert_eq!(checked.consumer_key(), "ck");
        assert_eq!(checked.token(), Some("tk"));
        assert_eq!(
            Verifier::new()
                .verify(&req, NOW, secrets, &mut store)
                .unwrap_err(),
            VerifyError::NonceAlreadyUsed
        );
    }

    #[test]
    fn identifiers_no_store_can_hold_are_refused_before_any_lookup() {
        let long = "n".repeat(MAX_IDENTIFIER_LEN + 1);
        for nonce in ["\0", "a\0b", long.as_str()] {
            let req = request(&signed(SignatureMethod::HmacSha1, NOW, nonce));
            let err = Verifier::new().check(&req, NOW).unwrap_err();
            assert_eq!(
                err,
                VerifyError::InvalidParameter("oauth_nonce"),
                "{nonce:?}"
            );
            assert_eq!(err.status(), 400);
            assert_eq!(err.code(), ErrorCode::OAuth1MissingParameter);
            assert_eq!(err.to_string(), "Invalid OAuth parameter oauth_nonce");
        }
        // What clients send: digits, letters, base64, hex, even spaces and non-ASCII, up to the limit.
        let longest = "n".repeat(MAX_IDENTIFIER_LEN);
        for nonce in [
            "1234567890",
            "aB3+/=",
            "0f9e-8d7c",
            "with space",
            "naïve",
            longest.as_str(),
        ] {
            let req = request(&signed(SignatureMethod::HmacSha1, NOW, nonce));
            assert!(Verifier::new().check(&req, NOW).is_ok(), "{nonce:?}");
        }
        let token = Signer::new(SignatureMethod::HmacSha1, "ck", "cs")
            .token("t\0k", "ts")
            .sign(
                "GET",
                "https://site.example/wp-json/wp/v2/users/me?context=edit",
                &[],
                "n",
                NOW,
            )
            .unwrap()
            .to_header_value();
        assert_eq!(
            Verifier::new().check(&request(&token), NOW).unwrap_err(),
            VerifyError::InvalidParameter("oauth_token")
        );
        let consumer = Signer::new(SignatureMethod::HmacSha1, "c\0k", "cs")
            .token("tk", "ts")
            .sign(
                "GET",
                "https://site.example/wp-json/wp/v2/users/me?context=edit",
                &[],
                "n",
                NOW,
            )
            .unwrap()
            .to_header_value();
        assert_eq!(
            Verifier::new().check(&request(&consumer), NOW).unwrap_err(),
            VerifyError::InvalidParameter("oauth_consumer_key")
        );
    }

    #[test]
    fn the_timestamp_window_is_inclusive_and_symmetric() {
        let v = Verifier::new();
        for (ts, ok) in [
            (NOW - 900, true),
            (NOW + 900, true),
            (NOW - 901, false),
            (NOW + 901, false),
        ] {
            let req = request(&signed(SignatureMethod::HmacSha1, ts, "n"));
            assert_eq!(
                v.check(&req, NOW).is_ok(),
                ok,
                "timestamp offset {}",
                ts - NOW
            );
        }
    }

    #[test]
    fn missing_parameters_are_all_named() {
        let req = request("OAuth oauth_consumer_key=\"ck\"");
        let err = Verifier::new().check(&req, NOW).unwrap_err();
        assert_eq!(
            err,
            VerifyError::MissingParameters(vec![
                "oauth_timestamp",
                "oauth_nonce",
                "oauth_signature",
                "oauth_signature_method",
                "oauth_token"
            ])
        );
        assert_eq!(err.code(), ErrorCode::OAuth1MissingParameter);
        assert_eq!(err.status(), 401);
        assert!(
            err.to_string()
                .starts_with("Missing OAuth parameters oauth_timestamp")
        );
    }

    #[test]
    fn plaintext_is_refused_unless_allowed() {
        let req = request(&signed(SignatureMethod::Plaintext, NOW, "n"));
        let err = Verifier::new().check(&req, NOW).unwrap_err();
        assert_eq!(err.code(), ErrorCode::OAuth1InvalidSignatureMethod);
        let tls = Verifier::new().methods(&[SignatureMethod::Plaintext]);
        tls.verify(&req, NOW, secrets, &mut MemoryNonceStore::new())
            .unwrap();
    }

    #[test]
    fn malformed_timestamps_are_invalid() {
        for ts in [
            "-5",
            "+1700000000",
            "1700000000.0",
            "abc",
            "99999999999999999999",
        ] {
            let header = signed(SignatureMethod::HmacSha1, NOW, "n").replace(
                &format!("oauth_timestamp=\"{NOW}\""),
                &format!("oauth_timestamp=\"{ts}\""),
            );
            let err = Verifier::new().check(&request(&header), NOW).unwrap_err();
            assert_eq!(err, VerifyError::InvalidTimestamp, "{ts}");
        }
    }

    #[test]
    fn a_forged_signature_does_not_burn_the_nonce() {
        let good = signed(SignatureMethod::HmacSha1, NOW, "n");
        let req = request(&good);
        let mut store = MemoryNonceStore::new();
        let wrong = |_: &Checked<'_>| Ok(("other".to_owned(), "ts".to_owned()));
        assert_eq!(
            Verifier::new()
                .verify(&req, NOW, wrong, &mut store)
                .unwrap_err(),
            VerifyError::SignatureMismatch
        );
        assert!(store.is_empty());
        Verifier::new()
            .verify(&req, NOW, secrets, &mut store)
            .unwrap();
    }

    #[test]
    fn lookup_errors_pass_through() {
        let req = request(&signed(SignatureMethod::HmacSha1, NOW, "n"));
        let err = Verifier::new()
            .verify(
                &req,
                NOW,
                |_| Err(VerifyError::ConsumerNotFound),
                &mut MemoryNonceStore::new(),
            )
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::ConsumerNotFound);
    }

    #[test]
    fn nonces_are_scoped_to_consumer_token_and_timestamp_and_pruned() {
        let mut store = MemoryNonceStore::new();
        let key = |c, t, ts| NonceKey {
            consumer_key: c,
            token: t,
            timestamp: ts,
            nonce: "n",
        };
        assert!(store.insert(key("a", "", 1), 10).unwrap());
        assert!(store.insert(key("b", "", 1), 10).unwrap());
        assert!(store.insert(key("a", "t", 1), 10).unwrap());
        assert!(store.insert(key("a", "", 2), 20).unwrap());
        assert!(!store.insert(key("a", "", 1), 10).unwrap());
        store.prune(15);
        assert_eq!(store.len(), 1);
    }

    struct Down;
    impl NonceStore for Down {
        fn insert(&mut self, _: NonceKey<'_>, _: i64) -> Result<bool, NonceStoreUnavailable> {
            Err(NonceStoreUnavailable)
        }
    }

    #[test]
    fn an_unavailable_store_refuses_the_request() {
        let req = request(&signed(SignatureMethod::HmacSha256, NOW, "n"));
        let err = Verifier::new()
            .verify(&req, NOW, secrets, &mut Down)
            .unwrap_err();
        assert_eq!(err, VerifyError::NonceStoreUnavailable);
        assert_eq!(err.status(), 503);
    }
}
