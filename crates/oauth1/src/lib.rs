//! OAuth 1.0a (RFC 5849) for authbroker's site, broker and client.
//!
//! Pure: no I/O, no async, no clock and no randomness — the caller passes the time, nonces and a
//! [`NonceStore`]. Every parser returns a typed error; nothing here panics on input.
//!
//! * [`AuthorizationHeader`] parses and formats `Authorization: OAuth …` (only `oauth_*` names are taken,
//!   `realm` is ignored, values percent-decoded with `+` as a literal plus).
//! * [`SignedRequest::from_parts`] collects the signed parameter set: query ∪ form body ∪ header `oauth_*`
//!   (the header wins on a name clash, repeated names kept and sorted per RFC 5849 §3.4.1.3.2).
//! * [`base_string_uri`] and [`signature_base_string`] build the base string from a caller-supplied
//!   canonical URI — servers use their configured home URL, never the `Host` header.
//! * [`sign`] / [`verify`] implement `HMAC-SHA1`, `HMAC-SHA256` and `PLAINTEXT`; comparison is constant
//!   time.
//! * [`Verifier`] checks required parameters, the signature-method allow-list, the timestamp window
//!   (default ±900 s), the signature and the nonce, in that order; each [`VerifyError`] maps to one code of
//!   [`authbroker_protocol::ErrorCode`].
//! * [`Signer`] signs requests for clients (the SDK and the broker).
//!
//! ```
//! use authbroker_oauth1::{MemoryNonceStore, RequestParts, SignatureMethod, SignedRequest, Signer, Verifier};
//!
//! // Client side: sign a REST call with the consumer and access token credentials.
//! let uri = "https://site.example/wp-json/wp/v2/posts?per_page=5";
//! let header = Signer::new(SignatureMethod::HmacSha1, "consumer-key", "consumer-secret")
//!     .token("token-key", "token-secret")
//!     .sign("GET", uri, &[], "3f9a1c0e7b5d4a2f", 1_700_000_000)?
//!     .to_header_value();
//!
//! // Server side: collect the parameters and verify with the secrets looked up by key.
//! let request = SignedRequest::from_parts(&RequestParts {
//!     method: "GET",
//!     uri,
//!     form_body: None,
//!     authorization: Some(&header),
//! })?;
//! let mut nonces = MemoryNonceStore::new();
//! let checked = Verifier::new().verify(&request, 1_700_000_005, |c| {
//!     assert_eq!(c.consumer_key(), "consumer-key");
//!     Ok(("consumer-secret".to_owned(), "token-secret".to_owned()))
//! }, &mut nonces)?;
//! assert_eq!(checked.token(), Some("token-key"));
//!
//! // The same request again is a replay.
//! assert!(Verifier::new().verify(&request, 1_700_000_005, |_| Ok(("consumer-secret".into(), "token-secret".into())), &mut nonces).is_err());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod base;
mod encode;
mod header;
mod params;
mod request;
mod signature;
mod signer;
mod verify;

pub use base::{UriError, base_string_uri, signature_base_string};
pub use encode::{DecodeError, Plus, percent_decode, percent_encode};
pub use header::{AuthorizationHeader, HeaderError};
pub use params::{Param, collect, normalize, parse_form};
pub use request::{RequestError, RequestParts, SignedRequest};
pub use signature::{SignatureMethod, UnknownSignatureMethod, sign, signing_key, verify};
pub use signer::Signer;
pub use verify::{
    Checked, DEFAULT_TIMESTAMP_WINDOW, MAX_IDENTIFIER_LEN, MemoryNonceStore, NonceKey, NonceStore,
    NonceStoreUnavailable, Secrets, Verifier, VerifyError, storable_identifier,
};
