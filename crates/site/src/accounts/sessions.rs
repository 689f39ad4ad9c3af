//! Login sessions and CSRF tokens, on the shared plumbing of [`authbroker_web`].
//!
//! The session cookie holds a random id; the database holds only its SHA-256 ([`authbroker_web::session`]),
//! so a leaked database does not hand out live sessions. CSRF uses one mechanism for every form, signed in
//! or not: the `ab_csrf` cookie repeated in a hidden field ([`authbroker_web::csrf`]).

use authbroker_store::sqlx;
use authbroker_web::csrf;
use authbroker_web::session::{NewSession, SessionCookie};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue};

use super::{USER_COLUMNS, User, user_from_row};
use crate::error::SiteError;
use crate::state::SiteState;

const SESSION_COOKIE: &str = "ab_session";
const SESSION_LIFETIME: i64 = 14 * 24 * 3600;

fn session_cookie(state: &SiteState) -> SessionCookie {
    SessionCookie {
        name: SESSION_COOKIE,
        lifetime: SESSION_LIFETIME,
        secure: state.config().is_https(),
    }
}

fn cookie_error(_: axum::http::header::InvalidHeaderValue) -> SiteError {
    SiteError::Internal("cookie value".into())
}

/// The signed-in user of a request, if any.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    pub(crate) user: User,
}

/// Extracts the session from the cookie; `None` when there is none or it expired.
#[derive(Debug, Clone)]
pub(crate) struct MaybeSession(pub(crate) Option<Session>);

impl FromRequestParts<SiteState> for MaybeSession {
    type Rejection = SiteError;

    async fn from_request_parts(parts: &mut Parts, state: &SiteState) -> Result<Self, SiteError> {
        let Some(id_hash) = session_cookie(state).id_hash(&parts.headers) else {
            return Ok(Self(None));
        };
        let row = sqlx::query(&format!(
            "SELECT {cols} FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id_hash = $1 AND s.expires_at > $2",
            cols = USER_COLUMNS
                .split(", ")
                .map(|c| format!("u.{c} AS {c}"))
                .collect::<Vec<_>>()
                .join(", ")
        ))
        .bind(id_hash)
        .bind(state.now())
        .fetch_optional(state.db())
        .await?;
        Ok(Self(
            row.as_ref()
                .map(user_from_row)
                .transpose()?
                .map(|user| Session { user }),
        ))
    }
}

/// Starts a session for `user_id`; returns the `Set-Cookie` value.
pub(crate) async fn start_session(
    state: &SiteState,
    user_id: &str,
) -> Result<HeaderValue, SiteError> {
    let session = NewSession::generate();
    let now = state.now();
    sqlx::query(
        "INSERT INTO sessions (id_hash, user_id, csrf_token, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&session.id_hash)
    .bind(user_id)
    .bind("")
    .bind(now)
    .bind(now + SESSION_LIFETIME)
    .execute(state.db())
    .await?;
    session_cookie(state).start(&session).map_err(cookie_error)
}

/// Ends the request's session (if any); returns the `Set-Cookie` that clears it.
pub(crate) async fn end_session(
    state: &SiteState,
    headers: &HeaderMap,
) -> Result<HeaderValue, SiteError> {
    let cookie = session_cookie(state);
    if let Some(id_hash) = cookie.id_hash(headers) {
        sqlx::query("DELETE FROM sessions WHERE id_hash = $1")
            .bind(id_hash)
            .execute(state.db())
            .await?;
    }
    cookie.clear().map_err(cookie_error)
}

/// Deletes expired sessions (a browser that never logs out leaves its row behind); returns how many.
pub(crate) async fn prune(state: &SiteState) -> Result<u64, SiteError> {
    Ok(sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
        .bind(state.now())
        .execute(state.db())
        .await?
        .rows_affected())
}

/// The CSRF token to put in a form, and the `Set-Cookie` to send when the browser has none yet.
pub(crate) fn csrf_cookie_value(
    state: &SiteState,
    headers: &HeaderMap,
) -> Result<(String, Option<HeaderValue>), SiteError> {
    csrf::issue(headers, state.config().is_https()).map_err(cookie_error)
}

/// Refuses a form whose CSRF field does not repeat the cookie.
pub(crate) fn require_csrf(headers: &HeaderMap, submitted: Option<&str>) -> Result<(), SiteError> {
    csrf::check(headers, submitted).map_err(|_| {
        SiteError::rest(
            "rest_cookie_invalid_nonce",
            403,
            "The form has expired. Go back, reload the page and try again.",
        )
    })
}

/// Refuses a cookie-authenticated REST write without the `X-WP-Nonce` header repeating the CSRF cookie
/// (what WordPress asks of its own JavaScript).
pub(crate) fn require_csrf_header(headers: &HeaderMap) -> Result<(), SiteError> {
    let nonce = headers.get("x-wp-nonce").and_then(|v| v.to_str().ok());
    require_csrf(headers, nonce).map_err(|_| {
        SiteError::rest(
            "rest_cookie_invalid_nonce",
            403,
            "Cookie check failed: send X-WP-Nonce with the ab_csrf cookie value.",
        )
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use axum::http::header;

    #[tokio::test]
    async fn expired_sessions_are_pruned_and_live_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = crate::SiteConfig::new("https://site.example".to_owned());
        config.data_dir = dir.path().to_owned();
        let clock = std::sync::Arc::new(crate::FixedClock::new(1_700_000_000));
        let state = SiteState::open(config, clock.clone()).await.unwrap();
        let user = crate::create_user(&state, "ada", "Ada", "", "a password", crate::Role::Author)
            .await
            .unwrap();
        start_session(&state, &user.id).await.unwrap();
        clock.advance(SESSION_LIFETIME + 1);
        start_session(&state, &user.id).await.unwrap();
        assert_eq!(prune(&state).await.unwrap(), 1);
        let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sessions")
            .fetch_one(state.db())
            .await
            .unwrap();
        assert_eq!(left, 1);
    }

    #[test]
    fn csrf_errors_are_the_wordpress_nonce_error() {
        let mut headers = HeaderMap::new();
        let err = require_csrf(&headers, Some("")).unwrap_err();
        assert_eq!(err.code(), "rest_cookie_invalid_nonce");
        assert_eq!(err.status(), 403);
        headers.insert(header::COOKIE, HeaderValue::from_static("ab_csrf=abc"));
        assert!(require_csrf(&headers, Some("abc")).is_ok());
        headers.insert("x-wp-nonce", HeaderValue::from_static("abc"));
        assert!(require_csrf_header(&headers).is_ok());
    }
}
