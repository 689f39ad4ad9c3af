//! The WordPress REST surface: the index (discovery), `users/me`, posts, and the `?rest_route=` form of
//! every route for sites without pretty permalinks.

mod index;
mod posts;
mod users;

use axum::Router;
use axum::body::Bytes;
use axum::extract::Request;
use axum::http::request::Parts;
use axum::http::{Method, Uri};
use axum::routing::get;

use crate::accounts::{MaybeSession, User, require_csrf_header};
use crate::error::SiteError;
use crate::state::SiteState;

pub(crate) fn routes() -> Router<SiteState> {
    Router::new()
        .route("/", get(index::home))
        .route("/index.php", get(index::home))
        .route("/wp-json", get(index::rest_index))
        .route("/wp-json/", get(index::rest_index))
        .route("/wp-json/wp/v2/users/me", get(users::me))
        .merge(posts::routes())
}

/// `/index.php?rest_route=/wp/v2/…` and `/?rest_route=…` (WordPress answers both): the REST API addressed by
/// query parameter, as on sites without pretty permalinks. Applied to every request before routing: the URI
/// becomes `/wp-json/wp/v2/…` with the other query parameters, so each route behaves identically both ways,
/// and the URI the client signed is kept in [`SignedUri`] for the signature check.
pub(crate) fn rewrite_rest_route(mut request: Request) -> Request {
    if !matches!(request.uri().path(), "/" | "/index.php") {
        return request;
    }
    let Some(query) = request.uri().query() else {
        return request;
    };
    let mut route = None;
    let mut rest = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("rest_route", value)) => {
                route =
                    authbroker_oauth1::percent_decode(value, authbroker_oauth1::Plus::Space).ok();
            }
            _ => rest.push(pair),
        }
    }
    let Some(route) = route.filter(|r| r.starts_with('/')) else {
        return request;
    };
    let mut target = if route == "/" {
        "/wp-json/".to_owned()
    } else {
        // Each segment re-encoded: the decoded route may hold bytes a path cannot.
        let segments: Vec<String> = route
            .trim_end_matches('/')
            .split('/')
            .map(authbroker_oauth1::percent_encode)
            .collect();
        format!("/wp-json{}", segments.join("/"))
    };
    if !rest.is_empty() {
        target.push('?');
        target.push_str(&rest.join("&"));
    }
    // Every byte is encoded or comes from a query that parsed, so this holds; if not, the home page answers.
    let Ok(uri) = target.parse::<Uri>() else {
        return request;
    };
    let signed = std::mem::replace(request.uri_mut(), uri);
    request.extensions_mut().insert(SignedUri(signed));
    request
}

/// The URI the client used when a request was re-dispatched from `?rest_route=`: signatures cover it.
#[derive(Debug, Clone)]
pub(crate) struct SignedUri(pub(crate) Uri);

/// Who a REST request acts for: OAuth parameters win over the session cookie; a cookie alone may only
/// change things with the CSRF header (`X-WP-Nonce`), as in WordPress.
pub(crate) async fn rest_user(
    state: &SiteState,
    parts: &Parts,
    body: &Bytes,
    session: MaybeSession,
) -> Result<Option<User>, SiteError> {
    if let Some(user) = crate::oauth1::authenticate_rest(state, parts, body).await? {
        return Ok(Some(user));
    }
    let Some(session) = session.0 else {
        return Ok(None);
    };
    if !matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS) {
        require_csrf_header(&parts.headers)?;
    }
    Ok(Some(session.user))
}

/// The error WordPress sends to anonymous callers of routes that need a user.
pub(crate) fn not_logged_in() -> SiteError {
    SiteError::rest(
        "rest_not_logged_in",
        401,
        "You are not currently logged in.",
    )
}
