//! The loopback redirect listener of native apps (RFC 8252 §7.3): a one-shot HTTP server on 127.0.0.1
//! that catches the browser's return from the consent page, answers "you can close this tab" and stops.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{StatusCode, Uri};
use axum::response::{Html, IntoResponse, Response};
use tokio::sync::{Mutex, mpsc, oneshot};

use crate::{Error, Result};

/// What the browser brought back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallbackOutcome {
    /// Approved: the `oauth_verifier`.
    Approved(String),
    /// The user pressed Cancel (`denied=<token>`).
    Denied,
}

/// A listening callback endpoint.
#[derive(Debug)]
pub struct LoopbackCallback {
    url: String,
    outcomes: mpsc::Receiver<(String, CallbackOutcome)>,
    expected: Arc<Mutex<Option<String>>>,
    stop: Option<oneshot::Sender<()>>,
    server: tokio::task::JoinHandle<()>,
}

#[derive(Clone)]
struct Shared {
    path: String,
    outcomes: mpsc::Sender<(String, CallbackOutcome)>,
    expected: Arc<Mutex<Option<String>>>,
}

impl LoopbackCallback {
    /// Listens on `127.0.0.1:port` (0: any free port) for requests to `path`.
    pub async fn bind(path: &str, port: u16) -> Result<Self> {
        let path = if path.starts_with('/') {
            path.to_owned()
        } else {
            format!("/{path}")
        };
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .map_err(|err| Error::io(format!("cannot listen on 127.0.0.1:{port}"), err))?;
        let addr = listener
            .local_addr()
            .map_err(|err| Error::io("the loopback listener has no address", err))?;
        let (sender, outcomes) = mpsc::channel(4);
        let expected = Arc::new(Mutex::new(None));
        let shared = Shared {
            path: path.clone(),
            outcomes: sender,
            expected: expected.clone(),
        };
        let app = axum::Router::new().fallback(callback).with_state(shared);
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            let serving = axum::serve(listener, app).with_graceful_shutdown(async {
                let _ = stopped.await;
            });
            if let Err(err) = serving.await {
                tracing_free_log(&err);
            }
        });
        Ok(Self {
            url: format!("http://{addr}{path}"),
            outcomes,
            expected,
            stop: Some(stop),
            server,
        })
    }

    /// The callback URL to send as `oauth_callback`.
    pub fn callback_url(&self) -> &str {
        &self.url
    }

    /// Waits for the browser to come back for `request_token` (redirects for other tokens are ignored),
    /// then stops listening once that response has gone out.
    pub async fn wait(mut self, request_token: &str) -> Result<CallbackOutcome> {
        *self.expected.lock().await = Some(request_token.to_owned());
        let outcome = loop {
            match self.outcomes.recv().await {
                Some((token, outcome)) if token == request_token => break outcome,
                Some(_) => {}
                None => {
                    return Err(Error::io(
                        "the loopback listener stopped",
                        std::io::Error::from(std::io::ErrorKind::BrokenPipe),
                    ));
                }
            }
        };
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        // Graceful shutdown lets the "close this tab" page reach the browser first.
        let _ = (&mut self.server).await;
        Ok(outcome)
    }
}

impl Drop for LoopbackCallback {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// The listener has nowhere to report a failed accept loop but the waiting side, which sees the channel
/// close; this keeps the reason on standard error for whoever runs the app.
fn tracing_free_log(err: &std::io::Error) {
    eprintln!("authbroker: the loopback callback listener failed: {err}");
}

async fn callback(
    State(shared): State<Shared>,
    uri: Uri,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    if uri.path() != shared.path {
        return (StatusCode::NOT_FOUND, "Not found").into_response();
    }
    let get = |name: &str| {
        query
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    let expected = shared.expected.lock().await.clone();
    let (token, outcome) = match (get("oauth_token"), get("oauth_verifier"), get("denied")) {
        (Some(token), Some(verifier), _) => (token, CallbackOutcome::Approved(verifier)),
        (_, _, Some(token)) => (token, CallbackOutcome::Denied),
        _ => {
            return page(
                StatusCode::BAD_REQUEST,
                "This is not an approval",
                "The address has no oauth_token and oauth_verifier. Go back to the application and try again.",
            );
        }
    };
    if expected.as_deref().is_some_and(|e| e != token) {
        return page(
            StatusCode::BAD_REQUEST,
            "Unknown request",
            "This approval is for another request. Go back to the application and try again.",
        );
    }
    let (title, text) = match outcome {
        CallbackOutcome::Approved(_) => (
            "Connected",
            "The application is connected. You can close this tab and return to it.",
        ),
        CallbackOutcome::Denied => (
            "Not connected",
            "You denied the request; nothing was connected. You can close this tab.",
        ),
    };
    if shared.outcomes.send((token, outcome)).await.is_err() {
        return page(
            StatusCode::GONE,
            "Too late",
            "The application stopped waiting. Run it again.",
        );
    }
    page(StatusCode::OK, title, text)
}

fn page(status: StatusCode, title: &str, text: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title></head>\
         <body><h1>{title}</h1><p>{text}</p></body></html>"
    );
    let mut response = (status, Html(html)).into_response();
    let headers = response.headers_mut();
    headers.insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    headers.insert(
        axum::http::header::REFERRER_POLICY,
        axum::http::HeaderValue::from_static("no-referrer"),
    );
    response
}
