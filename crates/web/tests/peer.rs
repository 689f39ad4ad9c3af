//! Handlers see the TCP peer as `ConnectInfo<SocketAddr>` behind the production listener.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;

use authbroker_web::serve::Listener;
use axum::Router;
use axum::extract::ConnectInfo;
use axum::routing::get;

#[tokio::test]
async fn the_plain_listener_exposes_the_peer() {
    let listener = Listener::bind("127.0.0.1:0".parse().unwrap(), None, None)
        .await
        .unwrap();
    let base = listener.url();
    let app = Router::new().route(
        "/",
        get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.ip().to_string() }),
    );
    tokio::spawn(listener.serve(app, std::future::pending()));
    let body = reqwest::get(&base).await.unwrap().text().await.unwrap();
    assert_eq!(body, "127.0.0.1");
}
