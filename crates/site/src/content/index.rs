//! `GET /wp-json/` and the home page.

use axum::Json;
use axum::extract::State;
use axum::response::{Html, IntoResponse, Response};
use serde_json::{Value, json};

use crate::state::SiteState;

/// The REST index: what brokers and clients discover. `authentication.oauth1` and `authentication.broker`
/// are absolute URLs built from the configured home URL.
pub(super) async fn rest_index(State(state): State<SiteState>) -> Json<Value> {
    Json(index_document(&state))
}

pub(crate) fn index_document(state: &SiteState) -> Value {
    let home = state.config().home();
    let route = |methods: &[&str], href: String| {
        json!({
            "namespace": "wp/v2",
            "methods": methods,
            "endpoints": [{"methods": methods, "args": {}}],
            "_links": {"self": href},
        })
    };
    json!({
        "name": state.config().name,
        "description": state.config().description,
        "url": home,
        "home": home,
        "gmt_offset": 0,
        "timezone_string": "UTC",
        "namespaces": ["oauth1", "broker/v1", "wp/v2"],
        "authentication": {
            "oauth1": {
                "request": format!("{home}/oauth1/request"),
                "authorize": format!("{home}/oauth1/authorize"),
                "access": format!("{home}/oauth1/access"),
                "version": "0.1",
            },
            "broker": format!("{home}/wp-json/broker/v1/connect"),
        },
        "routes": {
            "/": {"namespace": "", "methods": ["GET"], "endpoints": [{"methods": ["GET"], "args": {}}], "_links": {"self": format!("{home}/wp-json/")}},
            "/wp/v2/posts": route(&["GET", "POST"], format!("{home}/wp-json/wp/v2/posts")),
            "/wp/v2/posts/(?P<id>[\\d]+)": route(&["GET", "POST", "PUT", "PATCH", "DELETE"], format!("{home}/wp-json/wp/v2/posts/(?P<id>[\\d]+)")),
            "/wp/v2/users/me": route(&["GET"], format!("{home}/wp-json/wp/v2/users/me")),
            "/broker/v1/connect": {"namespace": "broker/v1", "methods": ["GET", "POST"], "endpoints": [{"methods": ["GET", "POST"], "args": {}}], "_links": {"self": format!("{home}/wp-json/broker/v1/connect")}},
        },
        "_links": {"help": [{"href": "https://developer.wordpress.org/rest-api/"}]},
    })
}

/// The home page; `HEAD /` answers 200 with the discovery `Link` header (added to every response).
pub(super) async fn home(State(state): State<SiteState>) -> Response {
    let name = askama_escape(&state.config().name);
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{name}</title></head>\
         <body><h1>{name}</h1><p><a href=\"/login\">Log in</a></p></body></html>"
    ))
    .into_response()
}

fn askama_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
