//! The JSON API under `/api/v1/` with bearer API tokens, on SQLite and PostgreSQL: the app lifecycle,
//! WordPress-style errors, 401 without a valid token, 404 for another developer's app.
#![allow(clippy::unwrap_used)]

mod portal_support;

use authbroker_broker::accounts::{set_developer_status, sign_up};
use authbroker_broker::apps::{self, STATUS_ACTIVE, STATUS_SUSPENDED};
use authbroker_broker::tokens::{create_token, revoke_token};
use portal_support::*;
use serde_json::{Value, json};

/// A developer with an API token.
struct Caller {
    id: String,
    token: String,
}

async fn caller(broker: &TestBroker, email: &str) -> Caller {
    let developer = sign_up(&broker.state, email, "Dev", PASSWORD)
        .await
        .unwrap();
    let token = create_token(&broker.state, &developer.id, "tests")
        .await
        .unwrap();
    Caller {
        id: developer.id,
        token,
    }
}

/// Sends a request with the caller's token; returns status, headers and the JSON body (`null` if none).
async fn call(
    broker: &TestBroker,
    token: Option<&str>,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut request = reqwest::Client::new().request(method, broker.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    let value = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
    };
    (status, headers, value)
}

fn assert_error(status: u16, body: &Value, expected_status: u16, code: &str) {
    assert_eq!(status, expected_status, "{body}");
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["data"]["status"], expected_status, "{body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
}

#[tokio::test]
async fn an_app_is_created_read_regenerated_and_deleted() {
    use reqwest::Method;
    for backend in BACKENDS {
        let broker = TestBroker::start(backend).await;
        let dev = caller(&broker, "dev@app.example").await;
        let token = Some(dev.token.as_str());

        let (status, _, body) = call(&broker, token, Method::GET, "/api/v1/apps", None).await;
        assert_eq!((status, body.clone()), (200, json!([])));

        let (status, headers, created) = call(
            &broker,
            token,
            Method::POST,
            "/api/v1/apps",
            Some(json!({
                "name": "Pressly",
                "description": "Publishes Markdown",
                "callback_url": "myapp://callback",
                "details_url": "https://app.example/about",
            })),
        )
        .await;
        assert_eq!(status, 201, "{created}");
        let client_id = created["client_id"].as_str().unwrap().to_owned();
        let secret = created["client_secret"].as_str().unwrap().to_owned();
        assert_eq!(client_id.len(), apps::CLIENT_ID_LEN);
        assert_eq!(secret.len(), apps::CLIENT_SECRET_LEN);
        assert_eq!(created["name"], "Pressly");
        assert_eq!(created["callback_url"], "myapp://callback");
        assert_eq!(created["details_url"], "https://app.example/about");
        assert_eq!(created["status"], "active");
        assert_eq!(
            headers["location"],
            broker.url(&format!("/api/v1/apps/{client_id}")).as_str()
        );
        assert_eq!(headers["cache-control"], "no-store");

        // The list shows it without its secret.
        let (status, _, list) = call(&broker, token, Method::GET, "/api/v1/apps", None).await;
        assert_eq!(status, 200);
        assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
        assert_eq!(list[0]["client_id"], client_id.as_str());
        assert!(list[0].get("client_secret").is_none(), "{list}");

        // One app: its secret and its recent connections.
        let app = app_by_client_id(&broker.state, &client_id).await.unwrap();
        apps::log_connection(&broker.state, &app.id, "https://site.example/", "success")
            .await
            .unwrap();
        let path = format!("/api/v1/apps/{client_id}");
        let (status, _, shown) = call(&broker, token, Method::GET, &path, None).await;
        assert_eq!(status, 200, "{shown}");
        assert_eq!(shown["client_secret"], secret.as_str());
        let connections = shown["connections"].as_array().unwrap();
        assert_eq!(connections.len(), 1, "{shown}");
        assert_eq!(connections[0]["site_url"], "https://site.example/");
        assert_eq!(connections[0]["result"], "success");
        assert!(connections[0]["time"].as_i64().unwrap() > 0);

        // Regenerate the secret.
        let (status, _, regenerated) = call(
            &broker,
            token,
            Method::POST,
            &format!("{path}/secret"),
            None,
        )
        .await;
        assert_eq!(status, 200, "{regenerated}");
        let new_secret = regenerated["client_secret"].as_str().unwrap();
        assert_ne!(new_secret, secret);
        assert_eq!(
            app_by_client_id(&broker.state, &client_id)
                .await
                .unwrap()
                .client_secret,
            new_secret
        );

        // Delete.
        let (status, _, deleted) = call(&broker, token, Method::DELETE, &path, None).await;
        assert_eq!(status, 200, "{deleted}");
        assert_eq!(deleted["deleted"], true);
        assert_eq!(deleted["previous"]["client_id"], client_id.as_str());
        assert!(deleted["previous"].get("client_secret").is_none());
        let (status, _, body) = call(&broker, token, Method::GET, &path, None).await;
        assert_error(status, &body, 404, "rest_not_found");
        let (status, _, body) = call(&broker, token, Method::DELETE, &path, None).await;
        assert_error(status, &body, 404, "rest_not_found");
        broker.cleanup().await;
    }
}

#[tokio::test]
async fn requests_without_a_valid_token_are_401() {
    use reqwest::Method;
    for backend in BACKENDS {
        let broker = TestBroker::start(backend).await;
        let dev = caller(&broker, "dev@app.example").await;
        let (status, headers, body) = call(&broker, None, Method::GET, "/api/v1/apps", None).await;
        assert_error(status, &body, 401, "rest_not_logged_in");
        assert!(
            headers["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Bearer")
        );
        for bad in [
            "abt_0000000000000000000000000000000000000000".to_owned(),
            "nonsense".to_owned(),
            format!("{}x", dev.token),
            dev.token[..dev.token.len() - 1].to_owned(),
        ] {
            let (status, _, body) =
                call(&broker, Some(&bad), Method::GET, "/api/v1/apps", None).await;
            assert_error(status, &body, 401, "rest_not_logged_in");
        }
        // Another scheme is not a bearer token.
        let response = reqwest::Client::new()
            .get(broker.url("/api/v1/apps"))
            .basic_auth("dev@app.example", Some(PASSWORD))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401);
        // Every route asks, including creation (before reading the body).
        let (status, _, body) = call(
            &broker,
            None,
            Method::POST,
            "/api/v1/apps",
            Some(json!({"name": "x", "callback_url": "oob"})),
        )
        .await;
        assert_error(status, &body, 401, "rest_not_logged_in");
        // A revoked token stops working.
        let hash = authbroker_web::session::hash_id(&dev.token);
        assert!(revoke_token(&broker.state, &dev.id, &hash).await.unwrap());
        let (status, _, body) =
            call(&broker, Some(&dev.token), Method::GET, "/api/v1/apps", None).await;
        assert_error(status, &body, 401, "rest_not_logged_in");
        broker.cleanup().await;
    }
}

#[tokio::test]
async fn another_developers_app_is_404() {
    use reqwest::Method;
    for backend in BACKENDS {
        let broker = TestBroker::start(backend).await;
        let alice = caller(&broker, "alice@app.example").await;
        let mallory = caller(&broker, "mallory@app.example").await;
        let (status, _, created) = call(
            &broker,
            Some(&alice.token),
            Method::POST,
            "/api/v1/apps",
            Some(json!({"name": "Alice's", "callback_url": "oob"})),
        )
        .await;
        assert_eq!(status, 201, "{created}");
        assert_eq!(created["details_url"], "");
        let path = format!("/api/v1/apps/{}", created["client_id"].as_str().unwrap());
        for (method, path) in [
            (Method::GET, path.clone()),
            (Method::POST, format!("{path}/secret")),
            (Method::DELETE, path.clone()),
        ] {
            let (status, _, body) =
                call(&broker, Some(&mallory.token), method.clone(), &path, None).await;
            assert_error(status, &body, 404, "rest_not_found");
            assert!(
                !body
                    .to_string()
                    .contains(created["client_secret"].as_str().unwrap())
            );
        }
        let (_, _, list) = call(
            &broker,
            Some(&mallory.token),
            Method::GET,
            "/api/v1/apps",
            None,
        )
        .await;
        assert_eq!(list, json!([]));
        let (status, _, shown) = call(&broker, Some(&alice.token), Method::GET, &path, None).await;
        assert_eq!(status, 200);
        assert_eq!(shown["client_secret"], created["client_secret"]);
        broker.cleanup().await;
    }
}

#[tokio::test]
async fn bad_input_is_400_and_unknown_routes_404() {
    use reqwest::Method;
    for backend in BACKENDS {
        let broker = TestBroker::start(backend).await;
        let dev = caller(&broker, "dev@app.example").await;
        let token = Some(dev.token.as_str());
        for (body, code) in [
            (
                json!({"callback_url": "oob"}),
                "rest_missing_callback_param",
            ),
            (json!({"name": "x"}), "rest_missing_callback_param"),
            (
                json!({"name": "x", "callback_url": "/relative"}),
                "rest_invalid_param",
            ),
            (
                json!({"name": "x", "callback_url": "oob", "details_url": "ftp://a.example/"}),
                "rest_invalid_param",
            ),
            (
                json!({"name": "x".repeat(201), "callback_url": "oob"}),
                "rest_invalid_param",
            ),
            (
                json!({"name": 5, "callback_url": "oob"}),
                "rest_invalid_param",
            ),
            (json!(["not", "an", "object"]), "rest_invalid_param"),
        ] {
            let (status, _, reply) = call(
                &broker,
                token,
                Method::POST,
                "/api/v1/apps",
                Some(body.clone()),
            )
            .await;
            assert_error(status, &reply, 400, code);
        }
        let response = reqwest::Client::new()
            .post(broker.url("/api/v1/apps"))
            .bearer_auth(&dev.token)
            .header("content-type", "application/json")
            .body("{not json")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400);
        let reply: Value = response.json().await.unwrap();
        assert_eq!(reply["code"], "rest_invalid_param");
        let (_, _, list) = call(&broker, token, Method::GET, "/api/v1/apps", None).await;
        assert_eq!(list, json!([]), "nothing was created");

        for (method, path) in [
            (Method::GET, "/api/v1/nope"),
            (Method::GET, "/api/v1"),
            (Method::PUT, "/api/v1/apps"),
            (Method::GET, "/api/v1/apps/x/secret"),
        ] {
            let (status, _, reply) = call(&broker, token, method, path, None).await;
            assert_error(status, &reply, 404, "rest_no_route");
        }
        broker.cleanup().await;
    }
}

#[tokio::test]
async fn a_suspended_developer_is_403() {
    use reqwest::Method;
    for backend in BACKENDS {
        let broker = TestBroker::start(backend).await;
        let dev = caller(&broker, "dev@app.example").await;
        assert!(
            set_developer_status(&broker.state, &dev.id, STATUS_SUSPENDED)
                .await
                .unwrap()
        );
        let (status, _, body) =
            call(&broker, Some(&dev.token), Method::GET, "/api/v1/apps", None).await;
        assert_error(status, &body, 403, "rest_forbidden");
        set_developer_status(&broker.state, &dev.id, STATUS_ACTIVE)
            .await
            .unwrap();
        let (status, _, _) =
            call(&broker, Some(&dev.token), Method::GET, "/api/v1/apps", None).await;
        assert_eq!(status, 200);
        broker.cleanup().await;
    }
}
