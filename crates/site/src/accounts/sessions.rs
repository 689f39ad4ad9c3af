//! Login sessions and CSRF tokens.
//!
//! The session cookie holds a random id; the database holds only its SHA-256, so a leaked database does not
//! hand out live sessions. CSRF uses one mechanism for every form, signed in or not: a random `ab_csrf`
//! cookie whose value each form repeats in a hidden field (double submit), compared in constant time.

use authbroker_store::sqlx;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{USER_COLUMNS, User, user_from_row};
use crate::error::SiteError;
use crate::state::SiteState;

pub(crate) const SESSION_COOKIE: &str = "ab_session";
pub(crate) const CSRF_COOKIE: &str = "ab_csrf";
const SESSION_LIFETIME: i64 = 14 * 24 * 3600;

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
        let Some(id) = cookie(&parts.headers, SESSION_COOKIE) else {
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
        .bind(hash_id(&id))
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
    let id = crate::random::alnum(43);
    let now = state.now();
    sqlx::query(
        "INSERT INTO sessions (id_hash, user_id, csrf_token, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(hash_id(&id))
    .bind(user_id)
    .bind("")
    .bind(now)
    .bind(now + SESSION_LIFETIME)
    .execute(state.db())
    .await?;
    set_cookie(state, SESSION_COOKIE, &id, Some(SESSION_LIFETIME))
}

/// Ends the request's session (if any); returns the `Set-Cookie` that clears it.
pub(crate) async fn end_session(
    state: &SiteState,
    headers: &HeaderMap,
) -> Result<HeaderValue, SiteError> {
    if let Some(id) = cookie(headers, SESSION_COOKIE) {
        sqlx::query("DELETE FROM sessions WHERE id_hash = $1")
            .bind(hash_id(&id))
            .execute(state.db())
            .await?;
    }
    set_cookie(state, SESSION_COOKIE, "", Some(0))
}

/// The CSRF token to put in a form, and the `Set-Cookie` to send when the browser has none yet.
pub(crate) fn csrf_cookie_value(
    state: &SiteState,
    headers: &HeaderMap,
) -> Result<(String, Option<HeaderValue>), SiteError> {
    match cookie(headers, CSRF_COOKIE).filter(|v| v.len() == 32) {
        Some(token) => Ok((token, None)),
        None => {
            let token = crate::random::alnum(32);
            let set = set_cookie(state, CSRF_COOKIE, &token, None)?;
            Ok((token, Some(set)))
        }
    }
}

/// Refuses a form whose CSRF field does not repeat the cookie.
pub(crate) fn require_csrf(headers: &HeaderMap, submitted: Option<&str>) -> Result<(), SiteError> {
    let cookie = cookie(headers, CSRF_COOKIE).unwrap_or_default();
    let submitted = submitted.unwrap_or_default();
    if !cookie.is_empty() && bool::from(cookie.as_bytes().ct_eq(submitted.as_bytes())) {
        Ok(())
    } else {
        Err(SiteError::rest(
            "rest_cookie_invalid_nonce",
            403,
            "The form has expired. Go back, reload the page and try again.",
        ))
    }
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

fn hash_id(id: &str) -> String {
    let digest = Sha256::digest(id.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn set_cookie(
    state: &SiteState,
    name: &str,
    value: &str,
    max_age: Option<i64>,
) -> Result<HeaderValue, SiteError> {
    let mut cookie = format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax");
    if let Some(age) = max_age {
        cookie.push_str(&format!("; Max-Age={age}"));
    }
    if state.config().is_https() {
        cookie.push_str("; Secure");
    }
    HeaderValue::from_str(&cookie).map_err(|_| SiteError::Internal("cookie value".into()))
}

/// The value of cookie `name`.
pub(crate) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_among_many() {
        let mut headers = HeaderMap::new();
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; ab_session=xyz"),
        );
        headers.append(header::COOKIE, HeaderValue::from_static("ab_csrf=t"));
        assert_eq!(cookie(&headers, "ab_session").as_deref(), Some("xyz"));
        assert_eq!(cookie(&headers, "ab_csrf").as_deref(), Some("t"));
        assert_eq!(cookie(&headers, "b"), None);
    }

    #[test]
    fn csrf_needs_the_cookie_and_the_same_field() {
        let mut headers = HeaderMap::new();
        assert!(require_csrf(&headers, Some("")).is_err());
        headers.insert(header::COOKIE, HeaderValue::from_static("ab_csrf=abc"));
        assert!(require_csrf(&headers, Some("abc")).is_ok());
        assert!(require_csrf(&headers, Some("abd")).is_err());
        assert!(require_csrf(&headers, None).is_err());
    }
}
