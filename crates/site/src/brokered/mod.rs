//! The brokered connection endpoint (PROTOCOL.md R4/R5, site side).
//!
//! `{home}/wp-json/broker/v1/connect` (also `/index.php?rest_route=/broker/v1/connect`):
//!
//! * `GET`/`HEAD` answer 200 with `X-BA-Endpoint: connection-request`, so autodiscovery can stop here.
//! * `POST` is a connection request from a broker: validated in the order the protocol fixes, answered
//!   **202 at once**; the verification request to the broker ([`verify`]) runs in the background and only
//!   its exact 200 activates the credentials.

mod request;
mod verify;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use crate::error::SiteError;
use crate::state::SiteState;

const ENDPOINT_HEADER: HeaderName = HeaderName::from_static("x-ba-endpoint");
const ENDPOINT_VALUE: HeaderValue = HeaderValue::from_static("connection-request");

pub(crate) fn routes() -> Router<SiteState> {
    Router::new()
        .route("/wp-json/broker/v1/connect", get(describe).post(connect))
        .route("/wp-json/broker/v1/connect/", get(describe).post(connect))
}

/// `GET`/`HEAD` (axum answers `HEAD` with the `GET` handler, without the body): the endpoint announces
/// itself.
async fn describe(State(state): State<SiteState>) -> Response {
    let mut response = Json(json!({
        "namespace": "broker/v1",
        "methods": ["GET", "POST"],
        "endpoint": "connection-request",
        "_links": {"self": state.url("/wp-json/broker/v1/connect")},
    }))
    .into_response();
    response
        .headers_mut()
        .insert(ENDPOINT_HEADER, ENDPOINT_VALUE);
    response
}

/// `POST`: a connection request (R4). Errors are the WordPress REST envelope with status 400; success is 202
/// with the verification (R5) left to a background task.
async fn connect(
    State(state): State<SiteState>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, SiteError> {
    let params = request::Params::parse(uri.query(), &headers, &body)?;
    let request = request::validate(&state, params).await?;
    tracing::info!(
        broker = %request.broker_id,
        client_id = %request.client_id,
        "connection request accepted; verifying with the broker"
    );
    verify::spawn(state, request);
    Ok((StatusCode::ACCEPTED, Json(json!({"status": "pending"}))).into_response())
}
