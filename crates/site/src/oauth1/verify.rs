//! Verifying a signed request against the site's consumers, tokens and nonce store.

use authbroker_oauth1::{
    RequestParts, Secrets, SignatureMethod, SignedRequest, Verifier, VerifyError,
};
use authbroker_protocol::ErrorCode;
use axum::http::header;
use axum::http::request::Parts;

use super::consumers::{self, Consumer};
use super::tokens::{self, AccessToken, RequestToken};
use crate::accounts::{User, user_by_id};
use crate::error::SiteError;
use crate::state::SiteState;

/// Which token the endpoint expects the request to be signed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenKind {
    /// `/oauth1/request`: consumer only.
    None,
    /// `/oauth1/access`: a request token.
    Request,
    /// REST calls: an access token.
    Access,
}

/// A request whose signature, timestamp and nonce verified.
#[derive(Debug)]
pub(crate) struct Verified {
    pub(crate) consumer: Consumer,
    pub(crate) request_token: Option<RequestToken>,
    pub(crate) access_token: Option<AccessToken>,
    /// The user an access token acts for (`TokenKind::Access` only).
    pub(crate) user: Option<User>,
    pub(crate) request: SignedRequest,
}

/// Collects the request's OAuth parameters. The URI is rebuilt from the configured home URL: the `Host`
/// header is the client's to choose and must not decide what was signed.
pub(crate) fn collect(
    state: &SiteState,
    parts: &Parts,
    body: &[u8],
) -> Result<SignedRequest, SiteError> {
    // A request re-dispatched from `/index.php?rest_route=` was signed with the URI the client used.
    let original = parts
        .extensions
        .get::<crate::content::SignedUri>()
        .map(|s| &s.0);
    let path_and_query = original
        .unwrap_or(&parts.uri)
        .path_and_query()
        .map_or("/", |pq| pq.as_str());
    let uri = state.url(path_and_query);
    let is_form = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        });
    let form_body = if is_form {
        Some(std::str::from_utf8(body).map_err(|_| {
            SiteError::protocol(
                ErrorCode::OAuth1MissingParameter,
                "The form body is not UTF-8.",
            )
            .with_status(400)
        })?)
    } else {
        None
    };
    let authorization = match parts.headers.get(header::AUTHORIZATION) {
        Some(value) => Some(value.to_str().map_err(|_| {
            SiteError::protocol(
                ErrorCode::OAuth1MissingParameter,
                "The Authorization header is not ASCII.",
            )
            .with_status(400)
        })?),
        None => None,
    };
    SignedRequest::from_parts(&RequestParts {
        method: parts.method.as_str(),
        uri: &uri,
        form_body,
        authorization,
    })
    .map_err(|e| VerifyError::Malformed(e).into())
}

/// Verifies `request` in the protocol's order: parameters, method and timestamp; consumer; token;
/// signature; nonce.
pub(crate) async fn verify(
    state: &SiteState,
    request: SignedRequest,
    kind: TokenKind,
) -> Result<Verified, SiteError> {
    let verifier = Verifier::new()
        .methods(accepted_methods(state))
        .require_token(kind != TokenKind::None);
    let checked = verifier.check(&request, state.now())?;
    if kind == TokenKind::Access {
        // The common case, a signed REST call with a live token: token, consumer and user in one query.
        // Anything else (unknown token, another consumer's token, a blocked consumer) takes the lookups
        // below, which tell the cases apart in the protocol's order.
        let token_key = checked.token().unwrap_or_default();
        if let Some(grant) = tokens::access_grant(state, token_key).await? {
            if grant.consumer.key == checked.consumer_key() && grant.consumer.status == "active" {
                checked.verify_signature(Secrets {
                    consumer_secret: &grant.consumer.secret,
                    token_secret: &grant.token.secret,
                })?;
                super::nonces::record(state, checked.nonce_key(), checked.nonce_expires_at())
                    .await?;
                return Ok(Verified {
                    consumer: grant.consumer,
                    request_token: None,
                    access_token: Some(grant.token),
                    user: Some(grant.user),
                    request,
                });
            }
        }
    }
    let consumer = consumers::active_by_key(state, checked.consumer_key())
        .await?
        .ok_or(VerifyError::ConsumerNotFound)?;
    let now = state.now();
    let token_key = checked.token().unwrap_or_default();
    let (request_token, access_token, token_secret) = match kind {
        TokenKind::None => (None, None, String::new()),
        TokenKind::Request => {
            let token = tokens::request_token(state, token_key)
                .await?
                .filter(|t| t.consumer_id == consumer.id)
                .ok_or(VerifyError::InvalidToken)?;
            if token.expires_at < now {
                return Err(SiteError::protocol(
                    ErrorCode::OAuth1ExpiredToken,
                    "OAuth request token has expired",
                ));
            }
            let secret = token.secret.clone();
            (Some(token), None, secret)
        }
        TokenKind::Access => {
            let token = tokens::access_token(state, token_key)
                .await?
                .filter(|t| t.consumer_id == consumer.id)
                .ok_or_else(invalid_access_token)?;
            let secret = token.secret.clone();
            (None, Some(token), secret)
        }
    };
    checked.verify_signature(Secrets {
        consumer_secret: &consumer.secret,
        token_secret: &token_secret,
    })?;
    super::nonces::record(state, checked.nonce_key(), checked.nonce_expires_at()).await?;
    // Reached for an access token only when the joined lookup found no user for it (or the token
    // appeared in between): the user decides.
    let user = match &access_token {
        Some(token) => Some(
            user_by_id(state, &token.user_id)
                .await?
                .ok_or_else(invalid_access_token)?,
        ),
        None => None,
    };
    Ok(Verified {
        consumer,
        request_token,
        access_token,
        user,
        request,
    })
}

/// The signature methods this site accepts: PLAINTEXT sends the secrets themselves, so only when TLS
/// protects them.
fn accepted_methods(state: &SiteState) -> &'static [SignatureMethod] {
    const HMAC: &[SignatureMethod] = &[SignatureMethod::HmacSha1, SignatureMethod::HmacSha256];
    const WITH_PLAINTEXT: &[SignatureMethod] = &[
        SignatureMethod::HmacSha1,
        SignatureMethod::HmacSha256,
        SignatureMethod::Plaintext,
    ];
    if state.config().is_https() {
        WITH_PLAINTEXT
    } else {
        HMAC
    }
}

fn invalid_access_token() -> SiteError {
    SiteError::protocol(ErrorCode::OAuth1InvalidToken, "Invalid token").with_status(401)
}
