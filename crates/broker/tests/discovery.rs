//! R2 discovery against fake sites on real loopback sockets.
#![allow(clippy::unwrap_used)]

use authbroker_broker::discovery::{DiscoveryCache, discover};
use authbroker_outbound::{Allow, Outbound, OutboundConfig};
use authbroker_protocol::ErrorCode;
use axum::Router;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{any, get};
use serde_json::json;

async fn serve(app: impl FnOnce(String) -> Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = app(base.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    base
}

fn outbound(loopback: bool) -> Outbound {
    Outbound::new(OutboundConfig {
        allow: Allow {
            loopback,
            private: false,
        },
        ..OutboundConfig::default()
    })
    .unwrap()
}

fn index(base: &str, broker: serde_json::Value) -> serde_json::Value {
    json!({"name": "Fake", "url": base, "authentication": {"oauth1": {}, "broker": broker}})
}

/// A WordPress-like site: every response links the API root, the index names the broker endpoint.
fn wordpress(base: String) -> Router {
    let link = format!("<{base}/wp-json/>; rel=\"https://api.w.org/\"");
    let index_body = index(&base, json!(format!("{base}/wp-json/broker/v1/connect")));
    Router::new()
        .route(
            "/",
            any(move |method: Method| {
                let link = link.clone();
                async move {
                    let mut headers = HeaderMap::new();
                    headers.append(
                        "link",
                        HeaderValue::from_static("<https://x.example/?p=1>; rel=shortlink"),
                    );
                    headers.append("link", HeaderValue::from_str(&link).unwrap());
                    (headers, if method == Method::HEAD { "" } else { "<html>" }).into_response()
                }
            }),
        )
        .route(
            "/wp-json/",
            get(move || async move { axum::Json(index_body) }),
        )
}

#[tokio::test]
async fn a_wordpress_site_is_discovered_through_its_link_header() {
    let base = serve(wordpress).await;
    let found = discover(&outbound(true), &format!("{base}/"))
        .await
        .unwrap();
    assert_eq!(
        found.api_root.as_deref(),
        Some(format!("{base}/wp-json/").as_str())
    );
    assert_eq!(found.endpoint, format!("{base}/wp-json/broker/v1/connect"));
    assert_eq!(found.site_data.unwrap()["name"], "Fake");
}

#[tokio::test]
async fn the_endpoint_header_short_circuits() {
    let base = serve(|_| {
        Router::new().route(
            "/connect",
            any(|| async { ([("x-ba-endpoint", "connection-request")], "") }),
        )
    })
    .await;
    let found = discover(&outbound(true), &format!("{base}/connect"))
        .await
        .unwrap();
    assert_eq!(found.endpoint, format!("{base}/connect"));
    assert_eq!(found.api_root, None);
}

#[tokio::test]
async fn head_refused_falls_back_to_get_and_redirects_are_followed() {
    let base = serve(|base| {
        let link = format!("<{base}/api/>; rel=\"https://api.w.org/\"");
        let index_body = index(&base, json!(format!("{base}/connect")));
        Router::new()
            .route("/old", any(|| async { Redirect::permanent("/new") }))
            .route(
                "/new",
                any(move |method: Method| {
                    let link = link.clone();
                    async move {
                        if method == Method::HEAD {
                            StatusCode::METHOD_NOT_ALLOWED.into_response()
                        } else {
                            ([("link", link)], "ok").into_response()
                        }
                    }
                }),
            )
            .route("/api/", get(move || async move { axum::Json(index_body) }))
    })
    .await;
    let found = discover(&outbound(true), &format!("{base}/old"))
        .await
        .unwrap();
    assert_eq!(found.endpoint, format!("{base}/connect"));
}

#[tokio::test]
async fn without_a_link_the_url_itself_is_tried_as_the_api_root() {
    let base = serve(|base| {
        let index_body = index(&base, json!(format!("{base}/connect")));
        Router::new().route(
            "/wp-json/",
            get(move || async move { axum::Json(index_body) }),
        )
    })
    .await;
    let found = discover(&outbound(true), &format!("{base}/wp-json/"))
        .await
        .unwrap();
    assert_eq!(found.endpoint, format!("{base}/connect"));
}

async fn error_code(app: impl FnOnce(String) -> Router, path: &str) -> ErrorCode {
    let base = serve(app).await;
    discover(&outbound(true), &format!("{base}{path}"))
        .await
        .unwrap_err()
        .code
}

#[tokio::test]
async fn failures_map_to_the_reference_codes() {
    // A page that is not a REST API and links none.
    let code = error_code(
        |_| Router::new().route("/", get(|| async { "<html>hello</html>" })),
        "/",
    )
    .await;
    assert_eq!(code, ErrorCode::NotAWordPressSite);
    // A REST index without authentication.broker (authentication may be [] on sites with no methods).
    let code = error_code(
        |_| {
            Router::new().route(
                "/",
                get(|| async { axum::Json(json!({"name": "x", "authentication": []})) }),
            )
        },
        "/",
    )
    .await;
    assert_eq!(code, ErrorCode::BrokerAuthNotSupported);
    // A relative broker URL is not an absolute URL.
    let code = error_code(
        |_| {
            Router::new().route(
                "/",
                get(|| async { axum::Json(json!({"authentication": {"broker": "/connect"}})) }),
            )
        },
        "/",
    )
    .await;
    assert_eq!(code, ErrorCode::BrokerAuthNotSupported);
    // The linked root answers garbage.
    let code = error_code(
        |base| {
            let link = format!("<{base}/api/>; rel=\"https://api.w.org/\"");
            Router::new()
                .route("/", any(move || async move { ([("link", link)], "") }))
                .route("/api/", get(|| async { "not json" }))
        },
        "/",
    )
    .await;
    assert_eq!(code, ErrorCode::JsonDecodeError);
    // Errors and redirect loops.
    let code = error_code(
        |_| Router::new().route("/", any(|| async { StatusCode::INTERNAL_SERVER_ERROR })),
        "/",
    )
    .await;
    assert_eq!(code, ErrorCode::ServerError);
    let code = error_code(
        |_| Router::new().route("/loop", any(|| async { Redirect::temporary("/loop") })),
        "/loop",
    )
    .await;
    assert_eq!(code, ErrorCode::ServerError);
}

#[tokio::test]
async fn private_addresses_are_refused_by_default() {
    let base = serve(wordpress).await;
    let err = discover(&outbound(false), &format!("{base}/"))
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::ServerError);
    assert!(err.message.contains("refusing"), "{}", err.message);
    let err = discover(&outbound(false), "http://169.254.169.254/latest/")
        .await
        .unwrap_err();
    assert!(err.message.contains("refusing"), "{}", err.message);
}

#[tokio::test]
async fn successes_are_cached() {
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = hits.clone();
    let base = serve(move |base| {
        wordpress(base).layer(axum::middleware::from_fn(
            move |req: axum::extract::Request, next: axum::middleware::Next| {
                let counter = counter.clone();
                async move {
                    counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let response: Response = next.run(req).await;
                    response
                }
            },
        ))
    })
    .await;
    let cache = DiscoveryCache::default();
    let client = outbound(true);
    let first = cache.discover(&client, &format!("{base}/")).await.unwrap();
    let requests = hits.load(std::sync::atomic::Ordering::SeqCst);
    let second = cache.discover(&client, &format!("{base}/")).await.unwrap();
    assert_eq!(first, second);
    assert_eq!(
        hits.load(std::sync::atomic::Ordering::SeqCst),
        requests,
        "second discovery came from the cache"
    );
}
