//! Double-submit CSRF protection for server-rendered forms.
//!
//! One mechanism for every form, signed in or not: a random [`COOKIE`] whose value each form repeats in the
//! hidden field [`FIELD`]. Another site can make a browser send the cookie but cannot read it, so it cannot
//! fill in the field. The comparison is constant-time.

use axum::http::header::InvalidHeaderValue;
use axum::http::{HeaderMap, HeaderValue};
use subtle::ConstantTimeEq;

use crate::cookies::{self, CookieOptions};

/// The cookie holding the token.
pub const COOKIE: &str = "ab_csrf";
/// The form field that repeats it.
pub const FIELD: &str = "_csrf";
/// Length of a token (`[A-Za-z0-9]`, about 190 bits).
pub const TOKEN_LEN: usize = 32;

/// The token to put in a form, and the `Set-Cookie` to send when the browser has none yet (or a malformed
/// one). `secure` adds `Secure` to the cookie (the service is reached over HTTPS).
pub fn issue(
    headers: &HeaderMap,
    secure: bool,
) -> Result<(String, Option<HeaderValue>), InvalidHeaderValue> {
    match cookies::get(headers, COOKIE).filter(|v| is_token(v)) {
        Some(token) => Ok((token, None)),
        None => {
            let token = crate::random::alnum(TOKEN_LEN);
            let set = cookies::set(COOKIE, &token, CookieOptions::new(secure))?;
            Ok((token, Some(set)))
        }
    }
}

fn is_token(value: &str) -> bool {
    value.len() == TOKEN_LEN && value.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// The submission did not repeat the CSRF cookie.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the form's CSRF token does not match its cookie")]
pub struct CsrfRejected;

/// Accepts a submission whose `submitted` token (the form field, or a header) repeats the cookie.
pub fn check(headers: &HeaderMap, submitted: Option<&str>) -> Result<(), CsrfRejected> {
    let cookie = cookies::get(headers, COOKIE).unwrap_or_default();
    let submitted = submitted.unwrap_or_default();
    if !cookie.is_empty() && bool::from(cookie.as_bytes().ct_eq(submitted.as_bytes())) {
        Ok(())
    } else {
        Err(CsrfRejected)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::header;

    #[test]
    fn a_submission_needs_the_cookie_and_the_same_field() {
        let mut headers = HeaderMap::new();
        assert_eq!(check(&headers, Some("")), Err(CsrfRejected));
        headers.insert(header::COOKIE, HeaderValue::from_static("ab_csrf=abc"));
        assert!(check(&headers, Some("abc")).is_ok());
        assert!(check(&headers, Some("abd")).is_err());
        assert!(check(&headers, Some("ab")).is_err());
        assert!(check(&headers, None).is_err());
    }

    #[test]
    fn a_token_is_issued_once_and_then_reused() {
        let (token, set) = issue(&HeaderMap::new(), true).unwrap();
        assert_eq!(token.len(), TOKEN_LEN);
        let set = set.expect("a new browser gets the cookie");
        let set = set.to_str().unwrap();
        assert!(set.starts_with(&format!("ab_csrf={token}; ")), "{set}");
        assert!(set.ends_with("; Secure"), "{set}");

        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("ab_csrf={token}")).unwrap(),
        );
        assert_eq!(issue(&headers, true).unwrap(), (token.clone(), None));
        assert!(check(&headers, Some(&token)).is_ok());

        headers.insert(header::COOKIE, HeaderValue::from_static("ab_csrf=short"));
        let (fresh, set) = issue(&headers, false).unwrap();
        assert_ne!(fresh, "short");
        assert!(set.is_some());
    }
}
