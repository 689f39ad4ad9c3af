//! Rendering of server-side pages: every page is an askama template whose context carries the site name,
//! rendered by the shared [`authbroker_web::pages::render`].

use askama::Template;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::error::SiteError;

/// Renders a template with `status`, adding `Set-Cookie` values (a fresh CSRF cookie, a session).
pub(crate) fn render(
    template: &impl Template,
    status: StatusCode,
    cookies: impl IntoIterator<Item = HeaderValue>,
) -> Result<Response, SiteError> {
    authbroker_web::pages::render(template, status, cookies)
        .map_err(|e| SiteError::Internal(format!("template: {e}")))
}

/// A page with a heading, a sentence and optionally a code to copy (an OAuth verifier).
#[derive(Template)]
#[template(path = "message.html")]
pub(crate) struct MessagePage<'a> {
    pub(crate) site_name: &'a str,
    pub(crate) heading: &'a str,
    pub(crate) text: &'a str,
    pub(crate) code: Option<&'a str>,
}

/// An error as a page, for browser-facing routes.
pub(crate) fn error_page(site_name: &str, err: &SiteError) -> Response {
    let page = MessagePage {
        site_name,
        heading: "Something went wrong",
        text: err.message(),
        code: None,
    };
    render(&page, err.status(), None)
        .unwrap_or_else(|_| (err.status(), err.message().to_owned()).into_response())
}
