//! The three-legged OAuth 1.0a flow against a real site over a real socket, on both backends.
#![allow(clippy::unwrap_used)]

mod common;

use authbroker_oauth1::{SignatureMethod, Signer};
use common::*;

#[tokio::test]
async fn three_legged_flow_then_users_me() {
    for backend in BACKENDS {
        let site = TestSite::start(backend).await;
        let consumer = site.consumer("http://127.0.0.1:9/callback").await;
        for method in [SignatureMethod::HmacSha1, SignatureMethod::HmacSha256] {
            let AccessToken { token, secret } = site.three_legged(&consumer, method).await;
            assert_eq!(token.len(), 24);
            assert_eq!(secret.len(), 48);
            let url = site.url("/wp-json/wp/v2/users/me");
            let header = Signer::new(method, &consumer.key, &consumer.secret)
                .token(&token, &secret)
                .sign("GET", &url, &[], &nonce(), now())
                .unwrap()
                .to_header_value();
            let response = reqwest::Client::new()
                .get(&url)
                .header("Authorization", &header)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200, "{backend:?}");
            let me: serde_json::Value = response.json().await.unwrap();
            assert_eq!(me["username"], "admin");
            assert_eq!(me["roles"][0], "administrator");

            // The same signed request again is a replay.
            let replay = reqwest::Client::new()
                .get(&url)
                .header("Authorization", &header)
                .header("Accept", "application/json")
                .send()
                .await
                .unwrap();
            assert_eq!(replay.status(), 401);
            let body: serde_json::Value = replay.json().await.unwrap();
            assert_eq!(body["code"], "json_oauth1_nonce_already_used");
        }
        site.cleanup().await;
    }
}

#[tokio::test]
async fn index_advertises_oauth1_and_broker() {
    let site = TestSite::start(Backend::Sqlite).await;
    let response = reqwest::get(site.url("/wp-json/")).await.unwrap();
    assert_eq!(response.status(), 200);
    let link = response.headers()["link"].to_str().unwrap().to_owned();
    assert_eq!(
        link,
        format!("<{}/wp-json/>; rel=\"https://api.w.org/\"", site.base)
    );
    let index: serde_json::Value = response.json().await.unwrap();
    assert_eq!(
        index["authentication"]["oauth1"]["request"],
        site.url("/oauth1/request")
    );
    assert_eq!(
        index["authentication"]["oauth1"]["authorize"],
        site.url("/oauth1/authorize")
    );
    assert_eq!(
        index["authentication"]["oauth1"]["access"],
        site.url("/oauth1/access")
    );
    assert_eq!(index["authentication"]["oauth1"]["version"], "0.1");
    assert_eq!(
        index["authentication"]["broker"],
        site.url("/wp-json/broker/v1/connect")
    );
    let head = reqwest::Client::new()
        .head(site.url("/"))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 200);
    assert!(head.headers().contains_key("link"));
    let via_query = reqwest::get(site.url("/index.php?rest_route=/"))
        .await
        .unwrap();
    assert_eq!(via_query.status(), 200);
    assert_eq!(
        via_query.headers().get_all("link").iter().count(),
        1,
        "the discovery link is sent once, also after re-dispatch"
    );
    let again: serde_json::Value = via_query.json().await.unwrap();
    assert_eq!(again["authentication"], index["authentication"]);
}
