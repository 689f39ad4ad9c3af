//! R1: `POST /broker/connect` — authenticate the app, answer 200 at once, hold the body while discovery
//! (R2), the connection request (R4) and the site's verification (R5) happen, then send the credentials
//! (R6) or an error object.

use std::convert::Infallible;
use std::net::SocketAddr;

use authbroker_oauth1::{
    RequestParts, Secrets, SignatureMethod, SignedRequest, Verifier, VerifyError,
};
use authbroker_protocol::ErrorCode;
use authbroker_web::input::has_nul;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};
use tokio::sync::{OwnedSemaphorePermit, oneshot};
use tokio::time::Instant;

use crate::apps::{self, App};
use crate::error::BrokerError;
use crate::pending::Credentials;
use crate::state::BrokerState;

pub(crate) fn routes() -> Router<BrokerState> {
    Router::new()
        .route("/broker/connect", post(connect).options(preflight))
        .route("/broker/connect/", post(connect).options(preflight))
}

/// CORS for browser apps: echo the origin, allow the `Authorization` header and credentials.
fn cors(request: &HeaderMap, response: &mut HeaderMap) {
    authbroker_web::cors::cors(request, response, "POST, OPTIONS");
}

async fn preflight(headers: HeaderMap) -> Response {
    let mut response = StatusCode::OK.into_response();
    cors(&headers, response.headers_mut());
    response
}

/// An authenticated connection request, ready to run.
#[derive(Debug)]
struct Accepted {
    app: App,
    server_url: String,
}

async fn connect(State(state): State<BrokerState>, parts: Parts, body: Bytes) -> Response {
    let started = Instant::now();
    let ndjson = wants_ndjson(&parts.headers);
    let outcome = async {
        // The per-IP limit comes before any signature or database work.
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|info| info.0);
        state.limits().check_client(peer, &parts.headers)?;
        let accepted = accept(&state, &parts, &body).await?;
        let permit = state.held().clone().try_acquire_owned().map_err(|_| {
            BrokerError::protocol(
                ErrorCode::ServerError,
                "The broker is holding as many connections as it can; try again shortly.",
            )
            .with_status(503)
        })?;
        Ok::<_, BrokerError>((accepted, permit))
    }
    .await;
    let (accepted, permit) = match outcome {
        Ok(ok) => ok,
        Err(err) => {
            let mut response = err.into_response();
            cors(&parts.headers, response.headers_mut());
            return response;
        }
    };
    // The 200 and its headers go out now (with NDJSON, the processing line too); the body follows when
    // the connection is done. Everything a held connection keeps is small: a oneshot channel for its one
    // result, and a task whose larger steps (discovery, R4, the log) are boxed and freed once done.
    let (sender, receiver) = oneshot::channel::<Bytes>();
    let deadline = started + state.config().connect_timeout();
    tokio::spawn(run(state, accepted, ndjson, deadline, sender, permit));
    let first = ndjson.then(|| Bytes::from_static(PROCESSING));
    let stream =
        futures_util::stream::unfold((first, Some(receiver)), |(first, receiver)| async move {
            if let Some(chunk) = first {
                return Some((Ok::<_, Infallible>(chunk), (None, receiver)));
            }
            let chunk = receiver?.await.ok()?;
            Some((Ok(chunk), (None, None)))
        });
    let content_type = if ndjson {
        "application/x-ndjson"
    } else {
        "application/json"
    };
    let mut response = (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-store"),
        ],
        Body::from_stream(stream),
    )
        .into_response();
    cors(&parts.headers, response.headers_mut());
    response
}

/// The first NDJSON line, sent with the headers.
const PROCESSING: &[u8] = b"{\"status\":\"processing\"}\n";

/// NDJSON (the spec's framing) when asked for; one JSON object (what deployed clients read) otherwise.
fn wants_ndjson(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/x-ndjson"))
}

/// Checks the R1 request: an OAuth 1.0a temporary-credential-style signature by an active app (empty token
/// secret, `server_url` signed), a fresh nonce, and a usable `server_url`; then the app's and the site's
/// rate limits (see [`crate::limits`]).
async fn accept(state: &BrokerState, parts: &Parts, body: &[u8]) -> Result<Accepted, BrokerError> {
    let uri = format!(
        "{}{}",
        state.config().home(),
        parts.uri.path_and_query().map_or("/", |pq| pq.as_str())
    );
    let form_body = form_body(&parts.headers, body)?;
    let authorization = match parts.headers.get(header::AUTHORIZATION) {
        Some(value) => Some(value.to_str().map_err(|_| {
            BrokerError::protocol(
                ErrorCode::OAuth1MissingParameter,
                "The Authorization header is not ASCII.",
            )
            .with_status(400)
        })?),
        None => None,
    };
    let request = SignedRequest::from_parts(&RequestParts {
        method: parts.method.as_str(),
        uri: &uri,
        form_body,
        authorization,
    })
    .map_err(VerifyError::Malformed)?;
    let mut methods = vec![SignatureMethod::HmacSha1, SignatureMethod::HmacSha256];
    if state.config().home().starts_with("https://") {
        methods.push(SignatureMethod::Plaintext);
    }
    let checked = Verifier::new()
        .methods(&methods)
        .require_token(false)
        .check(&request, state.now())?;
    let app = apps::active_app(state, checked.consumer_key())
        .await?
        .ok_or(VerifyError::ConsumerNotFound)?;
    checked.verify_signature(Secrets {
        consumer_secret: &app.client_secret,
        token_secret: "",
    })?;
    crate::nonces::record(state, checked.nonce_key(), checked.nonce_expires_at()).await?;
    // Only a verified, fresh request spends the app's quota: forgers and replays cannot exhaust it.
    state.limits().check_app(&app.client_id)?;
    let server_url = request
        .param("server_url")
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            BrokerError::protocol(
                ErrorCode::RestMissingCallbackParam,
                "Missing parameter(s): server_url",
            )
        })?;
    let server_url = normalize_server_url(server_url).ok_or_else(|| {
        BrokerError::protocol(
            ErrorCode::RestInvalidParam,
            "server_url must be an http or https URL with a host",
        )
    })?;
    // Before any request goes to the site.
    state.limits().check_site(&server_url)?;
    Ok(Accepted { app, server_url })
}

/// The form body: sent as `application/x-www-form-urlencoded`, or with no content type at all (some
/// clients omit it). Other bodies are not signed and carry no parameters.
fn form_body<'b>(headers: &HeaderMap, body: &'b [u8]) -> Result<Option<&'b str>, BrokerError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_ascii_lowercase());
    let is_form = match content_type {
        None => !body.is_empty(),
        Some(ct) => ct.starts_with("application/x-www-form-urlencoded"),
    };
    if !is_form {
        return Ok(None);
    }
    std::str::from_utf8(body).map(Some).map_err(|_| {
        BrokerError::protocol(ErrorCode::RestInvalidParam, "The form body is not UTF-8.")
            .with_status(400)
    })
}

/// Accepts what users type: `site.example` gets `https://`; only http(s) with a host is allowed, and not
/// with NUL (URL parsers strip it at either end or escape it, so it would quietly name another URL).
fn normalize_server_url(input: &str) -> Option<String> {
    if has_nul(input) {
        return None;
    }
    let with_scheme = if input.contains("://") {
        input.to_owned()
    } else {
        format!("https://{input}")
    };
    let url = url::Url::parse(&with_scheme).ok()?;
    (matches!(url.scheme(), "http" | "https") && url.host_str().is_some()).then(|| url.to_string())
}

/// Runs one held connection and writes its result into the response body.
async fn run(
    state: BrokerState,
    accepted: Accepted,
    ndjson: bool,
    deadline: Instant,
    mut sender: oneshot::Sender<Bytes>,
    _permit: OwnedSemaphorePermit,
) {
    let result = tokio::select! {
        result = orchestrate(&state, &accepted, deadline) => result,
        () = sender.closed() => Err(BrokerError::protocol(ErrorCode::BaTimedOut, "The client went away.")),
    };
    let (body, outcome) = match result {
        Ok(success) => (success, "success".to_owned()),
        Err(err) => {
            let wire = err.to_wire();
            let code = wire.code.clone();
            (serde_json::to_value(wire).unwrap_or(Value::Null), code)
        }
    };
    tracing::info!(client_id = %accepted.app.client_id, server_url = %accepted.server_url, %outcome, "brokered connection finished");
    if let Err(err) = Box::pin(apps::log_connection(
        &state,
        &accepted.app.id,
        &accepted.server_url,
        &outcome,
    ))
    .await
    {
        tracing::warn!(%err, "could not record the connection");
    }
    let mut bytes = serde_json::to_vec(&body).unwrap_or_default();
    if ndjson {
        bytes.push(b'\n');
    }
    let _ = sender.send(Bytes::from(bytes));
}

/// R2 → R4 → (R5 arrives at `/broker/confirm/`) → the R6 success object.
async fn orchestrate(
    state: &BrokerState,
    accepted: &Accepted,
    deadline: Instant,
) -> Result<Value, BrokerError> {
    let timed_out = || {
        BrokerError::protocol(
            ErrorCode::BaTimedOut,
            "The Broker did not receive a response from the Server.",
        )
    };
    let discovered = tokio::time::timeout_at(
        deadline,
        Box::pin(
            state
                .discovery()
                .discover(state.outbound(), &accepted.server_url),
        ),
    )
    .await
    .map_err(|_| timed_out())?
    .map_err(|e| BrokerError::protocol(e.code, e.message))?;
    let remaining = deadline.saturating_duration_since(Instant::now());
    let mut waiting = state.pending().register(&accepted.app.client_id, remaining);
    let app = &accepted.app;
    let verifier = waiting.verifier().to_owned();
    let form = [
        ("client_id", app.client_id.as_str()),
        ("broker", state.config().broker_id.as_str()),
        ("verifier", verifier.as_str()),
        ("callback_url", app.callback_url.as_str()),
        ("client_name", app.name.as_str()),
        ("client_description", app.description.as_str()),
        ("client_details", app.details_url.as_str()),
    ];
    let form: Vec<(&str, &str)> = form.into_iter().filter(|(_, v)| !v.is_empty()).collect();
    // Boxed, and dropped once answered: a held connection does not keep the request's state.
    let mut request = Some(Box::pin(
        state.outbound().post_form(&discovered.endpoint, &form),
    ));
    // A WordPress site answers R4 only after its own R5 finished, so the credentials can arrive before the
    // 202: wait for both at once.
    let credentials = loop {
        tokio::select! {
            credentials = waiting.credentials(deadline) => match credentials {
                Some(credentials) => break credentials,
                None => return Err(timed_out()),
            },
            answer = async { request.as_mut()?.as_mut().await.into() }, if request.is_some() => {
                let Some(answer) = answer else { continue };
                request = None;
                let answer = answer.map_err(|e| BrokerError::protocol(ErrorCode::ServerError, format!("The connection request to the site failed: {e}")))?;
                if answer.status != StatusCode::ACCEPTED {
                    let status = answer.status.as_u16();
                    let relayed = Box::pin(state.outbound().read_body(answer)).await.ok()
                        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
                        .unwrap_or(Value::Null);
                    return Err(site_refused(status, relayed));
                }
            }
        }
    };
    Ok(success(
        credentials,
        discovered.api_root,
        discovered.site_data,
    ))
}

/// The site refused the connection request: relay what it said instead of swallowing it.
fn site_refused(status: u16, relayed: Value) -> BrokerError {
    let site_code = relayed
        .get("code")
        .and_then(Value::as_str)
        .unwrap_or("unknown");
    BrokerError::protocol(
        ErrorCode::BrokerConnectFailure,
        format!("The site refused the connection request (HTTP {status}, {site_code})."),
    )
    .with_data(json!({"status": status, "site_error": relayed}))
}

fn success(credentials: Credentials, api_root: Option<String>, site_data: Option<Value>) -> Value {
    json!({
        "client_token": credentials.client_token,
        "client_secret": credentials.client_secret,
        "api_root": api_root,
        "site_data": site_data,
    })
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn typed_urls_get_https() {
        assert_eq!(
            normalize_server_url("site.example").as_deref(),
            Some("https://site.example/")
        );
        assert_eq!(
            normalize_server_url("http://site.example/blog").as_deref(),
            Some("http://site.example/blog")
        );
        assert_eq!(normalize_server_url("ftp://site.example/"), None);
        assert_eq!(normalize_server_url("https://"), None);
        assert_eq!(normalize_server_url("https://site.example/\0"), None);
    }

    #[test]
    fn ndjson_only_when_asked() {
        let mut headers = HeaderMap::new();
        assert!(!wants_ndjson(&headers));
        headers.insert(
            header::ACCEPT,
            HeaderValue::from_static("application/x-ndjson"),
        );
        assert!(wants_ndjson(&headers));
    }

    #[test]
    fn the_sites_error_is_relayed() {
        let err = site_refused(
            400,
            json!({"code": "ba.unknown_broker", "message": "x", "data": {"status": 400}}),
        );
        let wire = err.to_wire();
        assert_eq!(wire.code, "broker.connect.failure");
        assert_eq!(wire.kind, "broker.connect.failure");
        assert_eq!(wire.data["site_error"]["code"], "ba.unknown_broker");
    }
}
