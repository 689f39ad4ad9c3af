//! Client-side signing.

use crate::base::{UriError, base_string_uri};
use crate::header::AuthorizationHeader;
use crate::params::{Param, parse_form, signature_base_string_of};
use crate::signature::{SignatureMethod, sign};

/// Signs requests for one consumer (and optionally one token).
///
/// Nonce and timestamp are arguments, not generated here: the crate does no I/O and reads no clock, which
/// keeps signatures reproducible in tests. Use at least 128 bits of randomness for the nonce.
#[derive(Debug, Clone)]
pub struct Signer<'a> {
    method: SignatureMethod,
    consumer_key: &'a str,
    consumer_secret: &'a str,
    token: Option<(&'a str, &'a str)>,
    callback: Option<&'a str>,
    verifier: Option<&'a str>,
    version: bool,
}

impl<'a> Signer<'a> {
    /// A signer for a consumer, with no token (a temporary-credential or broker connect request).
    pub fn new(method: SignatureMethod, consumer_key: &'a str, consumer_secret: &'a str) -> Self {
        Self {
            method,
            consumer_key,
            consumer_secret,
            token: None,
            callback: None,
            verifier: None,
            version: true,
        }
    }

    /// Adds the token (`oauth_token`) and its secret.
    pub fn token(mut self, key: &'a str, secret: &'a str) -> Self {
        self.token = Some((key, secret));
        self
    }

    /// Adds `oauth_callback` (temporary-credential requests).
    pub fn callback(mut self, callback: &'a str) -> Self {
        self.callback = Some(callback);
        self
    }

    /// Adds `oauth_verifier` (token requests).
    pub fn verifier(mut self, verifier: &'a str) -> Self {
        self.verifier = Some(verifier);
        self
    }

    /// Whether to send the optional `oauth_version="1.0"` (default: yes).
    pub fn with_version(mut self, send: bool) -> Self {
        self.version = send;
        self
    }

    /// Signs a request and returns its `oauth_*` parameters (signature last) as an Authorization header.
    ///
    /// `uri` is the full request URI including its query; `form_body` the decoded pairs of an
    /// `application/x-www-form-urlencoded` body (empty for other bodies). To send the protocol parameters in
    /// the query or the body instead of the header, append `header.params`.
    pub fn sign(
        &self,
        http_method: &str,
        uri: &str,
        form_body: &[Param],
        nonce: &str,
        timestamp: i64,
    ) -> Result<AuthorizationHeader, UriError> {
        let base_uri = base_string_uri(uri)?;
        let timestamp = timestamp.to_string();
        let mut oauth: Vec<Param> = Vec::with_capacity(9);
        let mut push = |name: &str, value: &str| oauth.push((name.to_owned(), value.to_owned()));
        if let Some(callback) = self.callback {
            push("oauth_callback", callback);
        }
        push("oauth_consumer_key", self.consumer_key);
        push("oauth_nonce", nonce);
        push("oauth_signature_method", self.method.as_str());
        push("oauth_timestamp", &timestamp);
        if let Some((token, _)) = self.token {
            push("oauth_token", token);
        }
        if let Some(verifier) = self.verifier {
            push("oauth_verifier", verifier);
        }
        if self.version {
            push("oauth_version", "1.0");
        }
        let query = match uri.split_once('?') {
            Some((_, q)) => parse_form(q.split_once('#').map_or(q, |(q, _)| q))
                .map_err(|e| UriError::NotAbsolute(format!("query: {e}")))?,
            None => Vec::new(),
        };
        let base_string = signature_base_string_of(
            http_method,
            &base_uri,
            query
                .iter()
                .chain(form_body)
                .chain(&oauth)
                .map(|(n, v)| (n.as_str(), v.as_str())),
        );
        let token_secret = self.token.map_or("", |(_, secret)| secret);
        let signature = sign(
            self.method,
            &base_string,
            self.consumer_secret,
            token_secret,
        );
        oauth.push(("oauth_signature".to_owned(), signature));
        Ok(AuthorizationHeader {
            realm: None,
            params: oauth,
        })
    }
}
