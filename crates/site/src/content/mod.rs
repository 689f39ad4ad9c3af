//! The WordPress REST surface: the index (discovery), `users/me`, posts, and the `?rest_route=` form of
//! every route for sites without pretty permalinks.

mod index;
mod posts;
mod users;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::http::{Method, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use tower::ServiceExt;

use crate::accounts::{MaybeSession, User, require_csrf_header};
use crate::error::SiteError;
use crate::state::SiteState;

pub(crate) fn routes() -> Router<SiteState> {
    Router::new()
        .route("/", any(rest_route))
        .route("/wp-json", get(index::rest_index))
        .route("/wp-json/", get(index::rest_index))
        .route("/wp-json/wp/v2/users/me", get(users::me))
        .route("/index.php", any(rest_route))
        .merge(posts::routes())
}

/// `/index.php?rest_route=/wp/v2/...` (and `/?rest_route=…`, which WordPress answers too): the same REST API,
/// addressed by query parameter as on WordPress sites without pretty permalinks. The request is re-dispatched to `/wp-json{rest_route}` with its other query
/// parameters, so every route is reachable both ways with identical behaviour (and the signature is still
/// checked against the URI the client actually signed).
async fn rest_route(State(state): State<SiteState>, request: Request) -> Response {
    let query = request.uri().query().unwrap_or_default().to_owned();
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
        if !matches!(*request.method(), Method::GET | Method::HEAD) {
            return axum::http::StatusCode::METHOD_NOT_ALLOWED.into_response();
        }
        return index::home(State(state)).await.into_response();
    };
    let mut target = format!("/wp-json{}", route.trim_end_matches('/'));
    if route == "/" {
        target = "/wp-json/".to_owned();
    }
    if !rest.is_empty() {
        target.push('?');
        target.push_str(&rest.join("&"));
    }
    let (mut parts, body) = request.into_parts();
    parts.extensions.insert(SignedUri(parts.uri.clone()));
    match target.parse::<Uri>() {
        Ok(uri) => parts.uri = uri,
        Err(_) => {
            return SiteError::rest(
                "rest_no_route",
                404,
                "No route was found matching the URL and request method.",
            )
            .into_response();
        }
    }
    let request = Request::from_parts(parts, body);
    match crate::state::router(state).oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    }
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
