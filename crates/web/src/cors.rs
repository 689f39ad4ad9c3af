//! CORS for browser apps calling the OAuth endpoints of either service.

use axum::http::header::{self, HeaderMap, HeaderValue};

/// CORS for browser apps: echo the request's origin, allow the `Authorization` header, credentials and
/// `methods` (such as `"POST, OPTIONS"`).
pub fn cors(request: &HeaderMap, response: &mut HeaderMap, methods: &'static str) {
    if let Some(origin) = request.get(header::ORIGIN) {
        response.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        response.insert(header::VARY, HeaderValue::from_static("Origin"));
    }
    response.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("Authorization"),
    );
    response.insert(
        header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
        HeaderValue::from_static("true"),
    );
    response.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static(methods),
    );
}
