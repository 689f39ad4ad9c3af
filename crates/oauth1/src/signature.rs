//! Signature methods (RFC 5849 §3.4.2–3.4.4) and their constant-time check.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use subtle::ConstantTimeEq;

use crate::encode::percent_encode_into;

/// A signature method named by `oauth_signature_method`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SignatureMethod {
    /// `HMAC-SHA1` (RFC 5849 §3.4.2).
    HmacSha1,
    /// `HMAC-SHA256`, as the WP-API OAuth1 plugin and oauthlib spell it.
    HmacSha256,
    /// `PLAINTEXT` (RFC 5849 §3.4.4): the key itself. Only safe over TLS; servers decide with their
    /// allow-list.
    Plaintext,
}

impl SignatureMethod {
    /// The value of `oauth_signature_method`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::HmacSha1 => "HMAC-SHA1",
            Self::HmacSha256 => "HMAC-SHA256",
            Self::Plaintext => "PLAINTEXT",
        }
    }
}

impl fmt::Display for SignatureMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An `oauth_signature_method` this library does not implement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownSignatureMethod(pub String);

impl fmt::Display for UnknownSignatureMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown signature method {:?}", self.0)
    }
}

impl std::error::Error for UnknownSignatureMethod {}

impl FromStr for SignatureMethod {
    type Err = UnknownSignatureMethod;

    /// Exact, case-sensitive names, as the WP-API plugin compares them.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "HMAC-SHA1" => Ok(Self::HmacSha1),
            "HMAC-SHA256" => Ok(Self::HmacSha256),
            "PLAINTEXT" => Ok(Self::Plaintext),
            other => Err(UnknownSignatureMethod(other.to_owned())),
        }
    }
}

/// The signing key `encode(consumer_secret)&encode(token_secret)` (RFC 5849 §3.4.2), which is also the
/// PLAINTEXT signature.
pub fn signing_key(consumer_secret: &str, token_secret: &str) -> String {
    let mut key = String::with_capacity(consumer_secret.len() + token_secret.len() + 1);
    percent_encode_into(consumer_secret, &mut key);
    key.push('&');
    percent_encode_into(token_secret, &mut key);
    key
}

fn hmac_base64<M: Mac + hmac::digest::KeyInit>(key: &[u8], base_string: &str) -> String {
    let mut mac = <M as hmac::digest::KeyInit>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    mac.update(base_string.as_bytes());
    BASE64.encode(mac.finalize().into_bytes())
}

/// Computes `oauth_signature` for a base string.
pub fn sign(
    method: SignatureMethod,
    base_string: &str,
    consumer_secret: &str,
    token_secret: &str,
) -> String {
    let key = signing_key(consumer_secret, token_secret);
    match method {
        SignatureMethod::HmacSha1 => hmac_base64::<Hmac<sha1::Sha1>>(key.as_bytes(), base_string),
        SignatureMethod::HmacSha256 => {
            hmac_base64::<Hmac<sha2::Sha256>>(key.as_bytes(), base_string)
        }
        SignatureMethod::Plaintext => key,
    }
}

/// Whether `provided` is the signature of `base_string`, compared in constant time so that the comparison
/// does not reveal how many leading characters of a forgery were right.
pub fn verify(
    method: SignatureMethod,
    base_string: &str,
    consumer_secret: &str,
    token_secret: &str,
    provided: &str,
) -> bool {
    let key = signing_key(consumer_secret, token_secret);
    match method {
        SignatureMethod::HmacSha1 => {
            hmac_base64_matches::<Hmac<sha1::Sha1>>(key.as_bytes(), base_string, provided)
        }
        SignatureMethod::HmacSha256 => {
            hmac_base64_matches::<Hmac<sha2::Sha256>>(key.as_bytes(), base_string, provided)
        }
        SignatureMethod::Plaintext => key.as_bytes().ct_eq(provided.as_bytes()).into(),
    }
}

/// Whether `provided` is `hmac_base64(key, base_string)`, encoding the digest on the stack.
fn hmac_base64_matches<M: Mac + hmac::digest::KeyInit>(
    key: &[u8],
    base_string: &str,
    provided: &str,
) -> bool {
    let mut mac = <M as hmac::digest::KeyInit>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    mac.update(base_string.as_bytes());
    // 64 bytes hold the Base64 of any digest up to 48 bytes; SHA-256's 32 take 44.
    let mut encoded = [0_u8; 64];
    let len = BASE64
        .encode_slice(mac.finalize().into_bytes(), &mut encoded)
        .unwrap_or_else(|_| unreachable!("a SHA-1 or SHA-256 digest fits in 64 Base64 bytes"));
    encoded[..len].ct_eq(provided.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_names_round_trip_and_are_case_sensitive() {
        for m in [
            SignatureMethod::HmacSha1,
            SignatureMethod::HmacSha256,
            SignatureMethod::Plaintext,
        ] {
            assert_eq!(m.as_str().parse::<SignatureMethod>(), Ok(m));
        }
        assert!("hmac-sha1".parse::<SignatureMethod>().is_err());
        assert!("RSA-SHA1".parse::<SignatureMethod>().is_err());
    }

    #[test]
    fn plaintext_is_the_encoded_key() {
        assert_eq!(
            sign(SignatureMethod::Plaintext, "ignored", "a&b", "c d"),
            "a%26b&c%20d"
        );
        assert!(verify(SignatureMethod::Plaintext, "x", "s", "", "s&"));
    }

    #[test]
    fn hmac_sha256_matches_a_known_vector() {
        // Computed independently with Python:
        // base64(hmac.new(b"cs&ts", b"GET&a&b", hashlib.sha256).digest())
        assert_eq!(
            sign(SignatureMethod::HmacSha256, "GET&a&b", "cs", "ts"),
            "T2jUsbFcrRTQ14kj9q24R3XF4+RV/Q/ha5yyz96jtYw="
        );
    }

    #[test]
    fn verification_rejects_a_wrong_signature() {
        let sig = sign(SignatureMethod::HmacSha1, "GET&a&b", "cs", "ts");
        assert!(verify(
            SignatureMethod::HmacSha1,
            "GET&a&b",
            "cs",
            "ts",
            &sig
        ));
        assert!(!verify(
            SignatureMethod::HmacSha1,
            "GET&a&c",
            "cs",
            "ts",
            &sig
        ));
        assert!(!verify(
            SignatureMethod::HmacSha1,
            "GET&a&b",
            "cs",
            "tt",
            &sig
        ));
        assert!(!verify(
            SignatureMethod::HmacSha1,
            "GET&a&b",
            "cs",
            "ts",
            ""
        ));
    }
}
