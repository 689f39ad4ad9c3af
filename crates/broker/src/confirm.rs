//! R5: `POST /broker/confirm/` — the site's verification request. Only the site can know the verifier the
//! broker sent it in R4, so a matching verifier proves the credentials came from that site.

use authbroker_protocol::{ErrorCode, WpError};
use authbroker_web::input::has_nul;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::json;

use crate::pending::{ConfirmError, Credentials};
use crate::state::BrokerState;

pub(crate) fn routes() -> Router<BrokerState> {
    // `/broker/verify/` is what the reference README names; sites in the wild use either.
    Router::new()
        .route("/broker/confirm/", post(confirm))
        .route("/broker/confirm", post(confirm))
        .route("/broker/verify/", post(confirm))
        .route("/broker/verify", post(confirm))
}

fn error(code: ErrorCode, status: u16, message: &str) -> Response {
    let status_code = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    (
        status_code,
        axum::Json(WpError::with_status(code, status, message)),
    )
        .into_response()
}

/// The request's fields: a form body whatever the Content-Type says (the site plugin may send none), or a
/// JSON object when the body is one.
fn fields(headers: &HeaderMap, body: &[u8]) -> Vec<(String, String)> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("json"));
    if is_json {
        if let Ok(serde_json::Value::Object(map)) =
            serde_json::from_slice::<serde_json::Value>(body)
        {
            return map
                .into_iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k, s.to_owned())))
                .collect();
        }
    }
    std::str::from_utf8(body)
        .ok()
        .and_then(|text| authbroker_oauth1::parse_form(text).ok())
        .unwrap_or_default()
}

async fn confirm(State(state): State<BrokerState>, headers: HeaderMap, body: Bytes) -> Response {
    let fields = fields(&headers, &body);
    let get = |name: &str| {
        fields
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    };
    let (Some(verifier), Some(client_id), Some(client_token), Some(client_secret)) = (
        get("verifier"),
        get("client_id"),
        get("client_token"),
        get("client_secret"),
    ) else {
        return error(
            ErrorCode::BaInvalidVerifier,
            400,
            "The verification request needs verifier, client_id, client_token and client_secret.",
        );
    };
    // Nothing with NUL was ever sent in R4 (verifiers and client ids are alphanumeric), and credentials with
    // one could never be stored or used: refused like any other mismatch, and the connection keeps waiting.
    if [verifier, client_id, client_token, client_secret]
        .into_iter()
        .any(has_nul)
    {
        return error(
            ErrorCode::BaInvalidVerifier,
            400,
            "The verification request's fields cannot contain NUL characters.",
        );
    }
    let credentials = Credentials {
        client_token: client_token.to_owned(),
        client_secret: client_secret.to_owned(),
    };
    match state.pending().confirm(verifier, client_id, credentials) {
        Ok(()) => (StatusCode::OK, axum::Json(json!({"status": "ok"}))).into_response(),
        Err(ConfirmError::InvalidVerifier) => error(
            ErrorCode::BaInvalidVerifier,
            400,
            "No pending connection request matches this verifier and client.",
        ),
        Err(ConfirmError::TimedOut) => error(
            ErrorCode::BaTimedOut,
            409,
            "The connection request this verifier belongs to has timed out.",
        ),
    }
}
