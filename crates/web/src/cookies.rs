//! Reading cookies from a request and building `Set-Cookie` values.
//!
//! Every cookie the services set is `Path=/; HttpOnly; SameSite=Lax`, and `Secure` when the service is reached
//! over HTTPS (its configured public URL says so, never the request).

use axum::http::header::InvalidHeaderValue;
use axum::http::{HeaderMap, HeaderValue, header};

/// The value of cookie `name` in the request's `Cookie` headers (the first one when it is repeated).
pub fn get(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.to_owned())
}

/// How a cookie is scoped and how long it lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CookieOptions<'a> {
    /// `Path`; `/` for everything.
    pub path: &'a str,
    /// `Max-Age` in seconds; `None` for a cookie that ends with the browser session, `Some(0)` deletes it.
    pub max_age: Option<i64>,
    /// Add `Secure` (the service is reached over HTTPS).
    pub secure: bool,
}

impl CookieOptions<'static> {
    /// `Path=/`, a browser-session cookie, `Secure` when `secure`.
    pub fn new(secure: bool) -> Self {
        Self {
            path: "/",
            max_age: None,
            secure,
        }
    }
}

impl<'a> CookieOptions<'a> {
    /// The same options with `Max-Age`.
    pub fn max_age(self, seconds: i64) -> Self {
        Self {
            max_age: Some(seconds),
            ..self
        }
    }

    /// The same options with another `Path`.
    pub fn path<'b>(self, path: &'b str) -> CookieOptions<'b> {
        CookieOptions {
            path,
            max_age: self.max_age,
            secure: self.secure,
        }
    }
}

/// A `Set-Cookie` value: `name=value; Path=…; HttpOnly; SameSite=Lax[; Max-Age=…][; Secure]`.
///
/// Fails when the name or value holds characters a header cannot carry; callers only pass tokens they
/// generated, so that is a bug, not bad input.
pub fn set(
    name: &str,
    value: &str,
    options: CookieOptions<'_>,
) -> Result<HeaderValue, InvalidHeaderValue> {
    let mut cookie = format!(
        "{name}={value}; Path={}; HttpOnly; SameSite=Lax",
        options.path
    );
    if let Some(age) = options.max_age {
        cookie.push_str(&format!("; Max-Age={age}"));
    }
    if options.secure {
        cookie.push_str("; Secure");
    }
    HeaderValue::from_str(&cookie)
}

/// A `Set-Cookie` value that deletes cookie `name` (same path, `Max-Age=0`).
pub fn clear(name: &str, options: CookieOptions<'_>) -> Result<HeaderValue, InvalidHeaderValue> {
    set(name, "", options.max_age(0))
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
        assert_eq!(get(&headers, "ab_session").as_deref(), Some("xyz"));
        assert_eq!(get(&headers, "ab_csrf").as_deref(), Some("t"));
        assert_eq!(get(&headers, "b"), None);
        assert_eq!(get(&headers, "ab_"), None);
    }

    #[test]
    fn set_cookie_values_carry_the_hardening_flags() {
        let plain = set("a", "1", CookieOptions::new(false)).unwrap();
        assert_eq!(plain, "a=1; Path=/; HttpOnly; SameSite=Lax");
        let secure = set("a", "1", CookieOptions::new(true).max_age(60)).unwrap();
        assert_eq!(
            secure,
            "a=1; Path=/; HttpOnly; SameSite=Lax; Max-Age=60; Secure"
        );
        let scoped = clear("a", CookieOptions::new(false).path("/tokens")).unwrap();
        assert_eq!(
            scoped,
            "a=; Path=/tokens; HttpOnly; SameSite=Lax; Max-Age=0"
        );
        assert!(set("a", "x\ny", CookieOptions::new(false)).is_err());
    }
}
