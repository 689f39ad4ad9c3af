//! Server-rendered pages: rendering an askama template into a response, the browser hardening every
//! response gets, local-only redirects, and dates as people read them.

use askama::Template;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, Request};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};

/// The policy of every HTML page: no scripts at all, styles inline or from the service, images from the
/// service or `data:`, never framed, forms only to the service itself.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'";

/// Renders `template` with `status`, adding `Set-Cookie` values (a fresh CSRF cookie, a session) and
/// `Cache-Control: no-store` (pages carry CSRF tokens and credentials).
pub fn render(
    template: &impl Template,
    status: StatusCode,
    cookies: impl IntoIterator<Item = HeaderValue>,
) -> Result<Response, askama::Error> {
    let body = template.render()?;
    let mut response = (status, Html(body)).into_response();
    for cookie in cookies {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// Adds the hardening headers to a response: `X-Content-Type-Options: nosniff` on everything, and on HTML
/// `X-Frame-Options: DENY`, [`CONTENT_SECURITY_POLICY`] and `Referrer-Policy: same-origin`.
pub fn harden(headers: &mut HeaderMap) {
    headers.insert(
        HeaderName::from_static("x-content-type-options"),
        HeaderValue::from_static("nosniff"),
    );
    if headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"))
    {
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        );
        headers.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        );
    }
}

/// [`harden`] as a middleware: `router.layer(axum::middleware::from_fn(security_headers))`.
pub async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    harden(response.headers_mut());
    response
}

/// The `?done=` query of a page reached by the redirect after a change (post/redirect/get); a malformed
/// one only loses the notice.
pub type DoneQuery<T> = Result<Query<T>, QueryRejection>;

/// The redirect after a change to `page`, with the notice `done` (a fixed word the page maps to a text).
pub fn redirect_done(page: &str, done: &str) -> Response {
    Redirect::to(&format!("{page}?done={done}")).into_response()
}

/// Only local paths: an absolute or protocol-relative URL would make a login form an open redirect.
pub fn safe_redirect(target: Option<&str>) -> &str {
    match target {
        Some(t) if t.starts_with('/') && !t.starts_with("//") && !t.contains('\\') => t,
        _ => "/",
    }
}

/// Unix seconds as `YYYY-MM-DD HH:MM UTC`.
pub fn format_time(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let minutes = unix.rem_euclid(86_400) / 60;
    // Days since 1970-01-01 to the proleptic Gregorian date (Howard Hinnant's `civil_from_days`).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        minutes / 60,
        minutes % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_stay_local() {
        assert_eq!(
            safe_redirect(Some("/oauth1/authorize?oauth_token=x")),
            "/oauth1/authorize?oauth_token=x"
        );
        assert_eq!(safe_redirect(Some("https://evil.example/")), "/");
        assert_eq!(safe_redirect(Some("//evil.example/")), "/");
        assert_eq!(safe_redirect(Some("/\\evil.example")), "/");
        assert_eq!(safe_redirect(None), "/");
    }

    #[test]
    fn times_are_utc_dates() {
        assert_eq!(format_time(0), "1970-01-01 00:00 UTC");
        assert_eq!(format_time(-1), "1969-12-31 23:59 UTC");
        assert_eq!(format_time(951_782_400), "2000-02-29 00:00 UTC");
        assert_eq!(format_time(1_709_210_096), "2024-02-29 12:34 UTC");
        assert_eq!(format_time(4_107_542_400), "2100-03-01 00:00 UTC");
    }

    #[test]
    fn html_gets_the_page_headers_and_everything_gets_nosniff() {
        let mut json = HeaderMap::new();
        json.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        harden(&mut json);
        assert_eq!(json["x-content-type-options"], "nosniff");
        assert!(json.get(header::CONTENT_SECURITY_POLICY).is_none());

        let mut html = HeaderMap::new();
        html.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        harden(&mut html);
        assert_eq!(html[header::X_FRAME_OPTIONS], "DENY");
        assert_eq!(
            html[header::CONTENT_SECURITY_POLICY],
            CONTENT_SECURITY_POLICY
        );
        assert_eq!(html[header::REFERRER_POLICY], "same-origin");
    }
}
