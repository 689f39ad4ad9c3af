//! The demo world over real sockets: both services answer over TLS with the local CA, the registered app
//! gets brokered credentials for the site, the scripted author approves, and a rerun on the same data
//! directory reuses everything.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use authbroker_demo::{
    Approver, DemoError, Login, STEP_APP, STEP_BROKER, STEP_CERTIFICATES, STEP_SITE, STEP_USERS,
    World, WorldOptions,
};
use authbroker_oauth1::{SignatureMethod, Signer, parse_form};

/// Starts a world and checks that every step was reported once, in order; prints the durations (visible
/// with `--nocapture`).
async fn start(options: WorldOptions) -> World {
    let mut steps = Vec::new();
    let started = Instant::now();
    let world = World::start(options, &mut |name, elapsed| {
        steps.push((name.to_owned(), elapsed));
    })
    .await
    .unwrap_or_else(|err| panic!("the world did not start: {err}"));
    let total = started.elapsed();
    let names: Vec<&str> = steps.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(
        names,
        [
            STEP_CERTIFICATES,
            STEP_BROKER,
            STEP_SITE,
            STEP_APP,
            STEP_USERS
        ]
    );
    for (name, elapsed) in &steps {
        eprintln!("  ✓ {name} ({} ms)", elapsed.as_millis());
    }
    eprintln!("World::start took {} ms", total.as_millis());
    world
}

fn client(world: &World) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(world.ca_pem().as_bytes()).unwrap())
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .build()
        .unwrap()
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .try_into()
        .unwrap()
}

fn nonce() -> String {
    authbroker_web::random::alnum(32)
}

fn form_value(body: &str, name: &str) -> String {
    parse_form(body)
        .unwrap()
        .into_iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no {name} in {body}"))
        .1
}

fn hidden_field(page: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in {page}"))
        + marker.len();
    let end = page[start..].find('"').unwrap() + start;
    page[start..end].to_owned()
}

/// R1: the demo app asks the broker to connect it to the demo site; returns the site credentials.
async fn brokered_credentials(world: &World) -> (String, String) {
    let app = world.app();
    let url = format!("{}/broker/connect", world.broker_url());
    let form = vec![("server_url".to_owned(), format!("{}/", world.site_url()))];
    let header = Signer::new(
        SignatureMethod::HmacSha1,
        &app.client_id,
        &app.client_secret,
    )
    .sign("POST", &url, &form, &nonce(), now())
    .unwrap();
    let response = client(world)
        .post(&url)
        .header("Authorization", header.to_header_value())
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let reply: serde_json::Value = response.json().await.unwrap();
    let token = reply["client_token"]
        .as_str()
        .unwrap_or_else(|| panic!("no credentials: {reply}"))
        .to_owned();
    let secret = reply["client_secret"].as_str().unwrap().to_owned();
    assert_eq!(reply["api_root"], format!("{}/wp-json/", world.site_url()));
    (token, secret)
}

/// R7: a request token for `callback`, signed with the brokered credentials (retrying briefly while the
/// site activates them). Returns (token, secret).
async fn request_token(world: &World, key: &str, secret: &str, callback: &str) -> (String, String) {
    let url = format!("{}/oauth1/request", world.site_url());
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let header = Signer::new(SignatureMethod::HmacSha1, key, secret)
            .callback(callback)
            .sign("POST", &url, &[], &nonce(), now())
            .unwrap();
        let response = client(world)
            .post(&url)
            .header("Authorization", header.to_header_value())
            .send()
            .await
            .unwrap();
        let status = response.status();
        let body = response.text().await.unwrap();
        if status == 401 && body.contains("Consumer ID is invalid") && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(25)).await;
            continue;
        }
        assert_eq!(status, 200, "request token: {body}");
        assert_eq!(form_value(&body, "oauth_callback_confirmed"), "true");
        return (
            form_value(&body, "oauth_token"),
            form_value(&body, "oauth_token_secret"),
        );
    }
}

/// A one-shot loopback HTTP listener like the client's: answers the first request with 200 and returns
/// its request line.
fn loopback_callback() -> (u16, tokio::task::JoinHandle<String>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::task::spawn_blocking(move || {
        let (mut stream, _) = listener.accept().unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut request = Vec::new();
        let mut buf = [0u8; 1024];
        while !request.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = stream.read(&mut buf).unwrap();
            assert_ne!(n, 0, "connection closed mid-request");
            request.extend_from_slice(&buf[..n]);
        }
        stream
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            .unwrap();
        let text = String::from_utf8(request).unwrap();
        text.lines().next().unwrap().to_owned()
    });
    (port, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_services_answer_over_tls_with_the_local_ca() {
    let world = start(WorldOptions::default()).await;
    assert!(world.broker_url().starts_with("https://127.0.0.1:"));
    assert!(world.site_url().starts_with("https://127.0.0.1:"));
    assert_eq!(world.broker_id(), format!("{}/", world.broker_url()));
    assert!(!world.reused());
    assert_eq!(
        std::fs::read_to_string(world.ca_pem_path()).unwrap(),
        world.ca_pem()
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for secret in ["tls/server.key", "credentials.json"] {
            let mode = std::fs::metadata(world.data_dir().join(secret))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{secret}");
        }
    }

    let http = client(&world);
    let response = http
        .get(format!("{}/wp-json/", world.site_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let index: serde_json::Value = response.json().await.unwrap();
    assert_eq!(index["name"], "Demo Site");
    assert!(
        index["authentication"]["broker"].is_string(),
        "no broker endpoint: {index}"
    );

    // The broker's home is the developer portal, which sends signed-out visitors to log in.
    let response = http
        .get(format!("{}/", world.broker_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    let response = http
        .get(format!("{}/login", world.broker_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let page = response.text().await.unwrap();

    // The developer logs in and sees the app.
    let developer = world.developer();
    let response = http
        .post(format!("{}/login", world.broker_url()))
        .form(&[
            ("email", developer.login.as_str()),
            ("password", developer.password.as_str()),
            ("_csrf", hidden_field(&page, "_csrf").as_str()),
            ("redirect_to", "/"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303, "the developer could not log in");
    let apps = response.headers()["location"].to_str().unwrap().to_owned();
    let page = http
        .get(format!("{}{apps}", world.broker_url()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains(&world.app().client_id), "{page}");

    world.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scripted_author_approves_a_brokered_connection() {
    let world = start(WorldOptions::default()).await;
    assert_eq!(world.app().callback_url, "http://127.0.0.1/callback");
    let (key, secret) = brokered_credentials(&world).await;

    // The client listens on a port of its own choosing; the registered callback has none (RFC 8252 §7.3).
    let (port, callback_listener) = loopback_callback();
    let callback = format!("http://127.0.0.1:{port}/callback");
    let (request_key, request_secret) = request_token(&world, &key, &secret, &callback).await;
    let authorize_url = format!(
        "{}/oauth1/authorize?oauth_token={request_key}",
        world.site_url()
    );

    // A wrong password is reported as such, and leaves the request token usable.
    let wrong = Login {
        login: world.site_author().login.clone(),
        password: "not the password".to_owned(),
    };
    let err = Approver::new(world.ca_pem(), &wrong)
        .unwrap()
        .approve(&authorize_url)
        .await
        .unwrap_err();
    assert!(matches!(err, DemoError::Approval(_)), "{err}");
    assert!(err.to_string().contains("incorrect password"), "{err}");
    assert!(!err.to_string().contains(&request_key), "{err}");

    let approver = Approver::new(world.ca_pem(), world.site_author()).unwrap();
    let location = approver.approve(&authorize_url).await.unwrap();
    assert!(
        location.starts_with(&format!("{callback}?")),
        "{location} should be the callback"
    );
    let query = location.split_once('?').unwrap().1;
    assert_eq!(form_value(query, "oauth_token"), request_key);
    let verifier = form_value(query, "oauth_verifier");

    // The browser lands on the client's loopback listener.
    assert_eq!(approver.visit(&location).await.unwrap(), 200);
    let request_line = callback_listener.await.unwrap();
    assert!(request_line.starts_with("GET /callback?"), "{request_line}");

    // The verifier is good for an access token.
    let url = format!("{}/oauth1/access", world.site_url());
    let header = Signer::new(SignatureMethod::HmacSha1, &key, &secret)
        .token(&request_key, &request_secret)
        .verifier(&verifier)
        .sign("POST", &url, &[], &nonce(), now())
        .unwrap();
    let response = client(&world)
        .post(&url)
        .header("Authorization", header.to_header_value())
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body = response.text().await.unwrap();
    assert_eq!(status, 200, "access token: {body}");
    assert!(!form_value(&body, "oauth_token").is_empty());

    world.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_start_on_the_same_data_dir_reuses_the_world() {
    let dir = tempfile::tempdir().unwrap();
    let options = WorldOptions {
        data_dir: Some(dir.path().join("world")),
        ..WorldOptions::default()
    };
    let first = start(options.clone()).await;
    assert!(!first.reused());
    let app = first.app().clone();
    let logins = [
        first.developer().clone(),
        first.site_admin().clone(),
        first.site_author().clone(),
    ];
    let ca = first.ca_pem().to_owned();
    first.shutdown().await;

    let second = start(options).await;
    assert!(second.reused());
    assert_eq!(second.app(), &app);
    assert_eq!(
        [
            second.developer().clone(),
            second.site_admin().clone(),
            second.site_author().clone(),
        ],
        logins
    );
    assert_eq!(second.ca_pem(), ca);
    // The site trusts this run's broker (whose port changed), so connecting still works.
    let (key, secret) = brokered_credentials(&second).await;
    request_token(&second, &key, &secret, "http://127.0.0.1:45678/callback").await;
    second.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_without_their_credentials_file_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let options = WorldOptions {
        data_dir: Some(dir.path().to_owned()),
        ..WorldOptions::default()
    };
    start(options.clone()).await.shutdown().await;
    std::fs::remove_file(dir.path().join("credentials.json")).unwrap();
    let err = World::start(options, &mut |_, _| {}).await.unwrap_err();
    assert!(matches!(err, DemoError::Credentials { .. }), "{err}");
    assert!(err.to_string().contains("remove that directory"), "{err}");
}

#[test]
fn logins_do_not_show_their_password() {
    let login = Login {
        login: "author".to_owned(),
        password: "hunter2hunter2".to_owned(),
    };
    let shown = format!("{login:?}");
    assert!(shown.contains("author"), "{shown}");
    assert!(!shown.contains("hunter2"), "{shown}");
}
