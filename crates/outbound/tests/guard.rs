//! The guard against real sockets: a server on loopback is refused by default, reachable when allowed;
//! redirects and body caps are enforced.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use authbroker_outbound::{Allow, Outbound, OutboundConfig, OutboundError};
use axum::Router;
use axum::response::Redirect;
use axum::routing::get;

async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    base
}

fn client(allow_loopback: bool) -> Outbound {
    Outbound::new(OutboundConfig {
        allow: Allow {
            loopback: allow_loopback,
            private: false,
        },
        timeout: Duration::from_secs(5),
        max_body: 1024,
        ..OutboundConfig::default()
    })
    .unwrap()
}

fn app() -> Router {
    Router::new()
        .route("/ok", get(|| async { "hello" }))
        .route("/big", get(|| async { "x".repeat(4096) }))
        .route("/loop", get(|| async { Redirect::to("/loop") }))
        .route("/hop", get(|| async { Redirect::to("/ok") }))
        .route(
            "/to-metadata",
            get(|| async { Redirect::to("http://169.254.169.254/latest/") }),
        )
}

#[tokio::test]
async fn loopback_is_refused_unless_allowed() {
    let base = serve(app()).await;
    let err = client(false).get(&format!("{base}/ok")).await.unwrap_err();
    assert!(matches!(err, OutboundError::Forbidden(_)), "{err}");
    // A name that resolves to loopback is refused by the resolver too.
    let port = base.rsplit(':').next().unwrap();
    let err = client(false)
        .get(&format!("http://localhost:{port}/ok"))
        .await
        .unwrap_err();
    assert!(matches!(err, OutboundError::Forbidden(_)), "{err}");

    let allowed = client(true);
    let fetched = allowed.get(&format!("{base}/ok")).await.unwrap();
    assert_eq!(fetched.status, 200);
    assert_eq!(allowed.read_body(fetched).await.unwrap(), b"hello");
}

#[tokio::test]
async fn redirects_are_followed_checked_and_bounded() {
    let base = serve(app()).await;
    let outbound = client(true);
    let fetched = outbound.get(&format!("{base}/hop")).await.unwrap();
    assert_eq!(fetched.status, 200);
    assert_eq!(fetched.url.path(), "/ok");
    let err = outbound.get(&format!("{base}/loop")).await.unwrap_err();
    assert!(matches!(err, OutboundError::TooManyRedirects(5)), "{err}");
    let err = outbound
        .get(&format!("{base}/to-metadata"))
        .await
        .unwrap_err();
    assert!(matches!(err, OutboundError::Forbidden(_)), "{err}");
}

#[tokio::test]
async fn bodies_over_the_cap_are_refused() {
    let base = serve(app()).await;
    let outbound = client(true);
    let fetched = outbound.get(&format!("{base}/big")).await.unwrap();
    let err = outbound.read_body(fetched).await.unwrap_err();
    assert!(matches!(err, OutboundError::BodyTooLarge(1024)), "{err}");
}
