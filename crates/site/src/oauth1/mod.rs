//! The OAuth 1.0a provider at `/oauth1/request`, `/oauth1/authorize`, `/oauth1/access` (PROTOCOL.md R7–R11),
//! `/oauth1/revoke` (ours: an app revokes its own access token), and the authentication of signed REST calls.

pub(crate) mod consumers;
pub(crate) mod nonces;
pub(crate) mod tokens;
mod verify;

use askama::Template;
use authbroker_protocol::ErrorCode;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Form, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use crate::accounts::{MaybeSession, User, csrf_cookie_value, require_csrf};
use crate::error::SiteError;
use crate::pages::{MessagePage, error_page, render};
use crate::state::SiteState;
pub(crate) use verify::TokenKind;

pub(crate) fn routes() -> Router<SiteState> {
    Router::new()
        .route(
            "/oauth1/request",
            get(request_token).post(request_token).options(preflight),
        )
        .route(
            "/oauth1/authorize",
            get(authorize_page).post(authorize_decision),
        )
        .route(
            "/oauth1/access",
            get(access_token).post(access_token).options(preflight),
        )
        .route("/oauth1/revoke", post(revoke).options(preflight))
}

/// Deletes expired nonces and request tokens.
pub(crate) async fn prune_expired(state: &SiteState) -> Result<(), SiteError> {
    nonces::prune(state).await?;
    authbroker_store::sqlx::query("DELETE FROM request_tokens WHERE expires_at < $1")
        .bind(state.now())
        .execute(state.db())
        .await?;
    Ok(())
}

/// The user a REST request acts for when it carries OAuth parameters: `Ok(None)` when it carries none (the
/// caller may then fall back to the session cookie — OAuth takes precedence when present).
pub(crate) async fn authenticate_rest(
    state: &SiteState,
    parts: &Parts,
    body: &[u8],
) -> Result<Option<User>, SiteError> {
    let request = verify::collect(state, parts, body)?;
    if !request.has_oauth_params() {
        return Ok(None);
    }
    let verified = verify::verify(state, request, TokenKind::Access).await?;
    let (Some(token), Some(user)) = (verified.access_token, verified.user) else {
        return Err(SiteError::Internal(
            "access verification without a token or user".into(),
        ));
    };
    tokens::touch_access_token(state, &token).await?;
    Ok(Some(user))
}

/// CORS preflight for browser apps: echo the origin, allow the `Authorization` header and credentials.
async fn preflight(headers: HeaderMap) -> Response {
    let mut response = StatusCode::OK.into_response();
    cors(&headers, response.headers_mut());
    response
}

fn cors(request: &HeaderMap, response: &mut HeaderMap) {
    authbroker_web::cors::cors(request, response, "GET, POST, OPTIONS");
}

/// A form-encoded OAuth reply with the content type WordPress sends.
fn form_reply(request: &HeaderMap, pairs: &[(&str, &str)]) -> Response {
    let body = pairs
        .iter()
        .map(|(k, v)| {
            format!(
                "{}={}",
                authbroker_oauth1::percent_encode(k),
                authbroker_oauth1::percent_encode(v)
            )
        })
        .collect::<Vec<_>>()
        .join("&");
    let mut response = (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "application/x-www-form-urlencoded; charset=utf-8",
        )],
        body,
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    cors(request, response.headers_mut());
    response
}

fn oauth_error(request: &HeaderMap, err: SiteError) -> Response {
    let mut response = err.oauth(request);
    cors(request, response.headers_mut());
    response
}

/// R7: temporary credentials.
async fn request_token(State(state): State<SiteState>, parts: Parts, body: Bytes) -> Response {
    let headers = parts.headers.clone();
    match issue_request_token(&state, &parts, &body).await {
        Ok(token) => form_reply(
            &headers,
            &[
                ("oauth_token", &token.key),
                ("oauth_token_secret", &token.secret),
                ("oauth_callback_confirmed", "true"),
            ],
        ),
        Err(err) => oauth_error(&headers, err),
    }
}

/// The parameters of a request to a token endpoint, which must carry OAuth parameters: a request with none
/// is answered 400 "No OAuth parameters supplied", as the WP-API plugin does.
fn collect_token_request(
    state: &SiteState,
    parts: &Parts,
    body: &[u8],
) -> Result<authbroker_oauth1::SignedRequest, SiteError> {
    let request = verify::collect(state, parts, body)?;
    if request.has_oauth_params() {
        Ok(request)
    } else {
        Err(SiteError::protocol(
            ErrorCode::OAuth1MissingParameter,
            "No OAuth parameters supplied",
        )
        .with_status(400))
    }
}

async fn issue_request_token(
    state: &SiteState,
    parts: &Parts,
    body: &[u8],
) -> Result<tokens::RequestToken, SiteError> {
    let request = collect_token_request(state, parts, body)?;
    let verified = verify::verify(state, request, TokenKind::None).await?;
    let callback = verified
        .request
        .param("oauth_callback")
        .filter(|c| !c.is_empty())
        .map(str::to_owned);
    if let Some(callback) = &callback {
        if !consumers::callback_matches(&verified.consumer.callback, callback) {
            return Err(SiteError::protocol(
                ErrorCode::OAuth1InvalidCallback,
                "Callback URL is invalid",
            ));
        }
    }
    tokens::create_request_token(state, &verified.consumer.id, callback.as_deref()).await
}

/// R11: token credentials.
async fn access_token(State(state): State<SiteState>, parts: Parts, body: Bytes) -> Response {
    let headers = parts.headers.clone();
    match issue_access_token(&state, &parts, &body).await {
        Ok(token) => form_reply(
            &headers,
            &[
                ("oauth_token", &token.key),
                ("oauth_token_secret", &token.secret),
            ],
        ),
        Err(err) => oauth_error(&headers, err),
    }
}

async fn issue_access_token(
    state: &SiteState,
    parts: &Parts,
    body: &[u8],
) -> Result<tokens::AccessToken, SiteError> {
    let request = collect_token_request(state, parts, body)?;
    if request.param("oauth_verifier").is_none_or(str::is_empty) {
        return Err(SiteError::protocol(
            ErrorCode::OAuth1MissingParameter,
            "Missing OAuth parameter oauth_verifier",
        ));
    }
    let verified = verify::verify(state, request, TokenKind::Request).await?;
    let token = verified
        .request_token
        .ok_or_else(|| SiteError::Internal("request verification without a token".into()))?;
    let (Some(expected), Some(user_id)) = (token.verifier.as_deref(), token.user_id.as_deref())
    else {
        return Err(SiteError::protocol(
            ErrorCode::OAuth1UnauthorizedToken,
            "OAuth token has not been authorized",
        ));
    };
    let supplied = verified.request.param("oauth_verifier").unwrap_or_default();
    if !bool::from(subtle::ConstantTimeEq::ct_eq(
        expected.as_bytes(),
        supplied.as_bytes(),
    )) {
        return Err(SiteError::protocol(
            ErrorCode::OAuth1InvalidVerifier,
            "OAuth verifier does not match",
        ));
    }
    tokens::exchange(state, &token, user_id).await
}

/// `POST /oauth1/revoke` — **ours**, not in the WP-API OAuth1 plugin: the access token that signed the
/// request is revoked, so a client can disconnect itself (a CLI's `disconnect` revokes its token on the site
/// instead of only forgetting it locally). The request is verified exactly like a signed REST call (same
/// verifier, nonce store, timestamp window and canonical home URL); a request token or a consumer-only
/// signature cannot revoke anything. Replies `revoked=true`, form-encoded like the other endpoints; errors
/// are theirs (plain text, or the JSON envelope when asked for). Only POST: a `GET` is answered 405.
/// WordPress sites have no such endpoint, so clients treat 404 and 405 as "revocation not supported".
async fn revoke(State(state): State<SiteState>, parts: Parts, body: Bytes) -> Response {
    let headers = parts.headers.clone();
    match revoke_signing_token(&state, &parts, &body).await {
        Ok(()) => form_reply(&headers, &[("revoked", "true")]),
        Err(err) => oauth_error(&headers, err),
    }
}

/// Verifies a request signed with an access token and revokes that token. A request without OAuth
/// parameters is 400, one without a token 401 `json_oauth1_missing_parameter`, an unknown, revoked or request
/// token 401 `json_oauth1_invalid_token`: the answers of a signed REST call.
async fn revoke_signing_token(
    state: &SiteState,
    parts: &Parts,
    body: &[u8],
) -> Result<(), SiteError> {
    let request = collect_token_request(state, parts, body)?;
    let verified = verify::verify(state, request, TokenKind::Access).await?;
    let token = verified
        .access_token
        .ok_or_else(|| SiteError::Internal("access verification without a token".into()))?;
    let was_live = tokens::revoke_access_token(state, &token.key, &token.consumer_id).await?;
    tracing::info!(
        consumer = %token.consumer_id,
        user = %token.user_id,
        was_live,
        "access token revoked by its app"
    );
    Ok(())
}

#[derive(Debug, Deserialize)]
struct AuthorizeQuery {
    oauth_token: Option<String>,
    oauth_callback: Option<String>,
}

#[derive(Template)]
#[template(path = "consent.html")]
struct ConsentPage<'a> {
    site_name: &'a str,
    user_name: &'a str,
    app_name: &'a str,
    app_description: &'a str,
    broker: Option<&'a str>,
    details_url: Option<&'a str>,
    callback_host: Option<String>,
    csrf: &'a str,
    oauth_token: &'a str,
    switch_url: String,
}

/// The request token named on the authorize URL, checked.
async fn live_request_token(
    state: &SiteState,
    key: Option<&str>,
) -> Result<tokens::RequestToken, SiteError> {
    let key = key.filter(|k| !k.is_empty()).ok_or_else(|| {
        SiteError::protocol(
            ErrorCode::OAuth1MissingParameter,
            "Missing OAuth parameter oauth_token",
        )
        .with_status(400)
    })?;
    let invalid = || SiteError::protocol(ErrorCode::OAuth1InvalidToken, "Invalid token");
    if !authbroker_oauth1::storable_identifier(key) {
        return Err(invalid());
    }
    let token = tokens::request_token(state, key)
        .await?
        .ok_or_else(invalid)?;
    if token.expires_at < state.now() {
        return Err(SiteError::protocol(
            ErrorCode::OAuth1ExpiredToken,
            "OAuth request token has expired",
        ));
    }
    Ok(token)
}

/// A token another user already approved is not this user's to see, approve again or cancel: approving it
/// would hand them the other user's verifier.
fn check_approver(token: &tokens::RequestToken, user: &User) -> Result<(), SiteError> {
    match &token.user_id {
        Some(approver) if *approver != user.id => Err(SiteError::protocol(
            ErrorCode::OAuth1InvalidToken,
            "Invalid token",
        )),
        _ => Ok(()),
    }
}

/// R8/R9: the consent page (after login).
async fn authorize_page(
    State(state): State<SiteState>,
    MaybeSession(session): MaybeSession,
    headers: HeaderMap,
    parts: Parts,
    Query(query): Query<AuthorizeQuery>,
) -> Response {
    let result = async {
        let mut token = live_request_token(&state, query.oauth_token.as_deref()).await?;
        let consumer = consumers::by_id(&state, &token.consumer_id)
            .await?
            .filter(|c| c.status == "active")
            .ok_or_else(|| {
                SiteError::protocol(ErrorCode::ConsumerNotFound, "Consumer ID is invalid")
            })?;
        let callback = query.oauth_callback.as_deref().filter(|c| !c.is_empty());
        if let Some(callback) = callback {
            if !consumers::callback_matches(&consumer.callback, callback) {
                return Err(SiteError::protocol(
                    ErrorCode::OAuth1InvalidCallback,
                    "Callback URL is invalid",
                ));
            }
        }
        let here = parts
            .uri
            .path_and_query()
            .map_or("/oauth1/authorize", |pq| pq.as_str());
        let Some(session) = session else {
            // The callback is kept in `here` and stored once the user is known.
            let login = format!(
                "/login?redirect_to={}",
                authbroker_oauth1::percent_encode(here)
            );
            return Ok(Redirect::to(&login).into_response());
        };
        check_approver(&token, &session.user)?;
        if let Some(callback) = callback {
            tokens::set_request_token_callback(&state, &token.key, callback).await?;
            token.callback = Some(callback.to_owned());
        }
        if let Some(verifier) = &token.verifier {
            // Already approved by this user: the same answer again (a reload or a second click).
            return approved_response(&state, &token, verifier);
        }
        let (csrf, cookie) = csrf_cookie_value(&state, &headers)?;
        let page = ConsentPage {
            site_name: &state.config().name,
            user_name: &session.user.display_name,
            app_name: &consumer.name,
            app_description: &consumer.description,
            broker: consumer.broker_id.as_deref(),
            details_url: consumer.details_url.as_deref(),
            // Where approval leads (`approved_response`): no callback or `oob` shows a code.
            callback_host: token
                .callback
                .as_deref()
                .filter(|c| *c != "oob")
                .and_then(callback_host),
            csrf: &csrf,
            oauth_token: &token.key,
            switch_url: format!(
                "/login?switch=1&redirect_to={}",
                authbroker_oauth1::percent_encode(here)
            ),
        };
        render(&page, StatusCode::OK, cookie)
    }
    .await;
    result.unwrap_or_else(|e| error_page(&state.config().name, &e))
}

#[derive(Debug, Deserialize)]
struct DecisionForm {
    #[serde(rename = "_csrf")]
    csrf: Option<String>,
    oauth_token: Option<String>,
    #[serde(rename = "wp-submit")]
    decision: Option<String>,
}

/// R9/R10: approve or cancel.
async fn authorize_decision(
    State(state): State<SiteState>,
    MaybeSession(session): MaybeSession,
    headers: HeaderMap,
    Form(form): Form<DecisionForm>,
) -> Response {
    let result = async {
        require_csrf(&headers, form.csrf.as_deref())?;
        let session = session.ok_or_else(|| {
            SiteError::rest(
                "rest_not_logged_in",
                401,
                "You are not currently logged in.",
            )
        })?;
        let token = live_request_token(&state, form.oauth_token.as_deref()).await?;
        check_approver(&token, &session.user)?;
        let consumer = consumers::by_id(&state, &token.consumer_id)
            .await?
            .filter(|c| c.status == "active")
            .ok_or_else(|| {
                SiteError::protocol(ErrorCode::ConsumerNotFound, "Consumer ID is invalid")
            })?;
        if form.decision.as_deref() == Some("authorize") {
            let verifier =
                tokens::authorize_request_token(&state, &token.key, &session.user.id).await?;
            return approved_response(&state, &token, &verifier);
        }
        tokens::delete_request_token(&state, &token.key).await?;
        match effective_callback(&token, &consumer).filter(|c| c != "oob") {
            Some(callback) => {
                Ok(Redirect::to(&with_query(&callback, &[("denied", &token.key)])).into_response())
            }
            None => render(
                &MessagePage {
                    site_name: &state.config().name,
                    heading: "Access denied",
                    text: &format!(
                        "You did not connect {}. You can close this page.",
                        consumer.name
                    ),
                    code: None,
                },
                StatusCode::OK,
                None,
            ),
        }
    }
    .await;
    result.unwrap_or_else(|e| error_page(&state.config().name, &e))
}

/// The redirect (or, for `oob`, the page) that hands the verifier to the app.
fn approved_response(
    state: &SiteState,
    token: &tokens::RequestToken,
    verifier: &str,
) -> Result<Response, SiteError> {
    match token.callback.as_deref().filter(|c| *c != "oob") {
        Some(callback) => Ok(Redirect::to(&with_query(
            callback,
            &[
                ("oauth_token", &token.key),
                ("oauth_verifier", verifier),
                ("wp_scope", "*"),
            ],
        ))
        .into_response()),
        None => render(
            &MessagePage {
                site_name: &state.config().name,
                heading: "Connected",
                text: "Enter this code in the application to finish connecting:",
                code: Some(verifier),
            },
            StatusCode::OK,
            None,
        ),
    }
}

/// The callback this authorization will use: the one on the token, else the consumer's registered one.
fn effective_callback(
    token: &tokens::RequestToken,
    consumer: &consumers::Consumer,
) -> Option<String> {
    token
        .callback
        .clone()
        .or_else(|| Some(consumer.callback.clone()).filter(|c| !c.is_empty()))
}

fn callback_host(callback: &str) -> Option<String> {
    let url = url::Url::parse(callback).ok()?;
    Some(match url.port() {
        Some(port) => format!("{}://{}:{port}", url.scheme(), url.host_str()?),
        None => format!("{}://{}", url.scheme(), url.host_str()?),
    })
}

/// `url` with `pairs` appended to its query, keeping the query it already has.
fn with_query(url: &str, pairs: &[(&str, &str)]) -> String {
    let (base, fragment) = url
        .split_once('#')
        .map_or((url, None), |(b, f)| (b, Some(f)));
    let mut out = base.to_owned();
    for (i, (name, value)) in pairs.iter().enumerate() {
        let joiner = if i == 0 && !base.contains('?') {
            '?'
        } else {
            '&'
        };
        out.push(joiner);
        out.push_str(name);
        out.push('=');
        // `*` of `wp_scope=*` is sent literally, as WordPress's add_query_arg does.
        if *value == "*" {
            out.push('*');
        } else {
            out.push_str(&authbroker_oauth1::percent_encode(value));
        }
    }
    if let Some(fragment) = fragment {
        out.push('#');
        out.push_str(fragment);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callback_queries_are_kept() {
        assert_eq!(
            with_query(
                "https://app.example/cb?state=1#top",
                &[("oauth_token", "a b"), ("wp_scope", "*")]
            ),
            "https://app.example/cb?state=1&oauth_token=a%20b&wp_scope=*#top"
        );
        assert_eq!(
            with_query("myapp://callback", &[("denied", "t")]),
            "myapp://callback?denied=t"
        );
    }
}
