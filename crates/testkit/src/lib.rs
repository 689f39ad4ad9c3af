//! Test support shared by the integration tests of every crate.
//!
//! * [`TestCa`] — a CA made with rcgen whose certificates the services under test trust through their
//!   `extra_root_certs`, so HTTPS-only parts of the protocol (R5) run over real TLS on loopback.
//! * [`serve_tls`] / [`serve_http`] — serve a router on an ephemeral loopback port with the production
//!   listener.
//! * [`ScriptedUser`] (and [`log_in`], [`approve`] for any cookie-keeping client) — a person at a browser,
//!   as plain HTTP: logs in through the login form and approves on the consent page, keeping cookies like a
//!   browser.
//! * [`three_legged`] / [`three_legged_with`] and its steps [`request_token`], [`access_token`] — the
//!   OAuth 1.0a three-legged flow against a site; [`signed`], [`signed_post`], [`send`] and [`Reply`] for
//!   signed requests and what came back; [`form_value`] and [`hidden_field`] to read replies and pages.
//! * [`chromium`] — a real headless Chromium through chromedriver for the page tests of every service.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use authbroker_oauth1::{AuthorizationHeader, SignatureMethod, Signer, parse_form};
use axum::Router;

pub mod chromium;

/// A certificate authority for tests, with its PEM on disk.
pub struct TestCa {
    cert: rcgen::Certificate,
    key: rcgen::KeyPair,
    dir: tempfile::TempDir,
}

impl std::fmt::Debug for TestCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCa")
            .field("pem", &self.pem_path())
            .finish()
    }
}

impl TestCa {
    pub fn new(name: &str) -> Self {
        let key = rcgen::KeyPair::generate().expect("key generation");
        let mut params =
            rcgen::CertificateParams::new(Vec::<String>::new()).expect("empty SAN list");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).expect("self-signed CA");
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("ca.pem"), cert.pem()).expect("write CA PEM");
        Self { cert, key, dir }
    }

    /// The CA certificate as a PEM file (for `extra_root_certs`).
    pub fn pem_path(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// The CA certificate for a reqwest client.
    pub fn reqwest_root(&self) -> reqwest::Certificate {
        reqwest::Certificate::from_pem(self.cert.pem().as_bytes()).expect("CA PEM parses")
    }

    /// Writes a server certificate for 127.0.0.1 and localhost, signed by this CA; returns (cert, key) paths.
    pub fn issue_server_files(&self, name: &str) -> (PathBuf, PathBuf) {
        let key = rcgen::KeyPair::generate().expect("key generation");
        let mut params =
            rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
                .expect("valid SANs");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let cert = params
            .signed_by(&key, &self.cert, &self.key)
            .expect("signed by the CA");
        let cert_path = self.dir.path().join(format!("{name}.pem"));
        let key_path = self.dir.path().join(format!("{name}.key"));
        std::fs::write(&cert_path, cert.pem()).expect("write cert");
        std::fs::write(&key_path, key.serialize_pem()).expect("write key");
        (cert_path, key_path)
    }

    /// A reqwest client that trusts this CA (and keeps cookies, follows no redirects).
    pub fn client(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .add_root_certificate(self.reqwest_root())
            .redirect(reqwest::redirect::Policy::none())
            .cookie_store(true)
            .build()
            .expect("client builds")
    }
}

/// A bound TLS listener whose URL is known before the router is built (services whose configuration names
/// their own URL).
#[derive(Debug)]
pub struct BoundTls {
    listener: authbroker_web::serve::Listener,
}

impl BoundTls {
    /// Binds 127.0.0.1 on an ephemeral port with a certificate from `ca`.
    pub async fn bind(ca: &TestCa, name: &str) -> Self {
        let (cert, key) = ca.issue_server_files(name);
        let listener = authbroker_web::serve::Listener::bind(
            "127.0.0.1:0".parse().expect("loopback address"),
            Some(&cert),
            Some(&key),
        )
        .await
        .expect("bind TLS listener");
        Self { listener }
    }

    /// `https://127.0.0.1:PORT` (no trailing slash).
    pub fn base(&self) -> String {
        format!("https://{}", self.listener.local_addr())
    }

    /// Serves `app` in the background until the test process ends.
    pub fn serve(self, app: Router) {
        tokio::spawn(self.listener.serve(app, std::future::pending()));
    }
}

/// Serves `app` over TLS with a certificate from `ca`; returns `https://127.0.0.1:PORT`.
pub async fn serve_tls(app: Router, ca: &TestCa) -> String {
    let bound = BoundTls::bind(ca, "server").await;
    let base = bound.base();
    bound.serve(app);
    base
}

/// Serves `app` over plain HTTP on loopback; returns `http://127.0.0.1:PORT`.
pub async fn serve_http(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("local addr"));
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
    base
}

/// Unix seconds now.
pub fn now() -> i64 {
    authbroker_web::Clock::now(&authbroker_web::SystemClock)
}

/// A fresh 32-character nonce.
pub fn nonce() -> String {
    authbroker_web::random::alnum(32)
}

/// The value of `name` in a form-encoded string.
pub fn form_value(body: &str, name: &str) -> String {
    parse_form(body)
        .expect("form-encoded")
        .into_iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no {name} in {body}"))
        .1
}

/// The value of a hidden form field in a page.
pub fn hidden_field(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no field {name} in page:\n{html}"))
        + marker.len();
    let end = html[start..].find('"').expect("closing quote") + start;
    html[start..end].to_owned()
}

/// A browser-like HTTP client that keeps cookies and does not follow redirects.
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client builds")
}

// ---------------------------------------------------------------------------------------------------------
// Requests and replies.

/// What came back: the status, the headers and the body as text.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Reply {
    /// The header `name` (panics when there is none).
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .unwrap_or_else(|| panic!("no {name} header in {self:?}"))
            .to_str()
            .unwrap()
    }

    /// The `Content-Type`, or `""` without one.
    pub fn content_type(&self) -> &str {
        self.headers
            .get("content-type")
            .map_or("", |v| v.to_str().unwrap())
    }

    /// The `Location` (panics when there is none).
    pub fn location(&self) -> &str {
        self.header("location")
    }

    /// The body as JSON (panics when it is not).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }

    /// A value of a form-encoded OAuth success reply (asserting that this is one).
    pub fn form_value(&self, name: &str) -> String {
        assert_eq!(self.status, 200, "{}", self.body);
        assert_eq!(
            self.content_type(),
            "application/x-www-form-urlencoded; charset=utf-8"
        );
        form_value(&self.body, name)
    }
}

/// Sends `request` and reads the whole reply.
pub async fn send(request: reqwest::RequestBuilder) -> Reply {
    let response = request.send().await.unwrap();
    Reply {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
        body: response.text().await.unwrap(),
    }
}

/// The OAuth parameters for `method url` with the body parameters `form`, signed by `signer` now with a
/// fresh nonce.
pub fn sign_now(
    signer: &Signer<'_>,
    method: &str,
    url: &str,
    form: &[(String, String)],
) -> AuthorizationHeader {
    signer.sign(method, url, form, &nonce(), now()).unwrap()
}

/// `method url` (no body parameters) with an `Authorization: OAuth` header signed by `signer` now.
pub fn signed(method: &str, url: &str, signer: &Signer<'_>) -> reqwest::RequestBuilder {
    let oauth = sign_now(signer, method, url, &[]);
    reqwest::Client::new()
        .request(method.parse().expect("an HTTP method"), url)
        .header("Authorization", oauth.to_header_value())
}

/// Signs and sends an OAuth POST with form-encoded body parameters; returns the status and the body.
pub async fn signed_post(
    url: &str,
    signer: Signer<'_>,
    form: &[(String, String)],
) -> (u16, String) {
    let oauth = sign_now(&signer, "POST", url, form);
    let reply = send(
        reqwest::Client::new()
            .post(url)
            .header("Authorization", oauth.to_header_value())
            .form(form),
    )
    .await;
    (reply.status, reply.body)
}

// ---------------------------------------------------------------------------------------------------------
// A person at a browser, and the OAuth 1.0a three-legged flow.

/// Logs `browser` in through the login form of the site at `base` (asserting the redirect that follows a
/// successful login).
pub async fn log_in(browser: &reqwest::Client, base: &str, login: &str, password: &str) {
    let page = browser
        .get(format!("{base}/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = hidden_field(&page, "_csrf");
    let response = browser
        .post(format!("{base}/login"))
        .form(&[
            ("log", login),
            ("pwd", password),
            ("_csrf", csrf.as_str()),
            ("redirect_to", "/"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303, "login should redirect");
}

/// Opens the consent page of the site at `base` for `request_token` in the logged-in `browser` and
/// approves; returns the callback URL the site redirected to.
pub async fn approve(browser: &reqwest::Client, base: &str, request_token: &str) -> String {
    let consent = browser
        .get(format!(
            "{base}/oauth1/authorize?oauth_token={request_token}"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(consent.status(), 200, "consent page");
    let page = consent.text().await.unwrap();
    let csrf = hidden_field(&page, "_csrf");
    let approved = browser
        .post(format!("{base}/oauth1/authorize"))
        .form(&[
            ("_csrf", csrf.as_str()),
            ("oauth_token", request_token),
            ("wp-submit", "authorize"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(approved.status(), 303, "approval redirects to the callback");
    approved.headers()["location"].to_str().unwrap().to_owned()
}

/// A person at a browser: a cookie-keeping client that never follows redirects by itself.
#[derive(Debug, Clone)]
pub struct ScriptedUser {
    pub client: reqwest::Client,
    pub login: String,
    pub password: String,
}

impl ScriptedUser {
    pub fn new(login: &str, password: &str) -> Self {
        Self {
            client: browser(),
            login: login.to_owned(),
            password: password.to_owned(),
        }
    }

    /// Logs in on the site at `base`.
    pub async fn log_in(&self, base: &str) {
        log_in(&self.client, base, &self.login, &self.password).await;
    }

    /// Opens the consent page for `request_token` and approves; returns the callback URL the site
    /// redirected to.
    pub async fn approve(&self, base: &str, request_token: &str) -> String {
        approve(&self.client, base, request_token).await
    }
}

/// Credentials from the end of a three-legged flow.
#[derive(Debug, Clone)]
pub struct AccessToken {
    pub token: String,
    pub secret: String,
}

/// Temporary credentials from `POST /oauth1/request` on the site at `base`, signed by `signer` (which carries
/// the callback); asserts the success and the confirmed callback and returns the token and its secret.
///
/// Brokered credentials can reach the client a moment before the site has activated them (the site
/// activates on the broker's 200 to its verification request); clients retry briefly, as PROTOCOL.md says,
/// and so does this.
pub async fn request_token(base: &str, signer: Signer<'_>) -> (String, String) {
    let url = format!("{base}/oauth1/request");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    let body = loop {
        let (status, body) = signed_post(&url, signer.clone(), &[]).await;
        if status == 401
            && body.contains("Consumer ID is invalid")
            && std::time::Instant::now() < deadline
        {
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
            continue;
        }
        assert_eq!(status, 200, "request token: {body}");
        break body;
    };
    assert_eq!(form_value(&body, "oauth_callback_confirmed"), "true");
    (
        form_value(&body, "oauth_token"),
        form_value(&body, "oauth_token_secret"),
    )
}

/// Token credentials from `POST /oauth1/access` on the site at `base`, signed by `signer` (which carries the
/// request token and the verifier); asserts the success.
pub async fn access_token(base: &str, signer: Signer<'_>) -> AccessToken {
    let (status, body) = signed_post(&format!("{base}/oauth1/access"), signer, &[]).await;
    assert_eq!(status, 200, "access token: {body}");
    AccessToken {
        token: form_value(&body, "oauth_token"),
        secret: form_value(&body, "oauth_token_secret"),
    }
}

/// A signed `POST /oauth1/request` on the site at `base` that asks for JSON errors: the status and, when it
/// is not 200, the error's `code` (`""` on success).
pub async fn try_request_token(base: &str, signer: &Signer<'_>) -> (u16, String) {
    let reply = send(
        signed("POST", &format!("{base}/oauth1/request"), signer)
            .header("Accept", "application/json"),
    )
    .await;
    let code = if reply.status == 200 {
        String::new()
    } else {
        reply.json()["code"]
            .as_str()
            .unwrap_or_else(|| panic!("no error code in {}", reply.body))
            .to_owned()
    };
    (reply.status, code)
}

/// Runs the OAuth 1.0a three-legged flow with HMAC-SHA1 against the site at `base` with the given consumer,
/// `user` approving, and the callback `callback`.
pub async fn three_legged(
    base: &str,
    consumer_key: &str,
    consumer_secret: &str,
    callback: &str,
    user: &ScriptedUser,
) -> AccessToken {
    three_legged_with(
        base,
        consumer_key,
        consumer_secret,
        SignatureMethod::HmacSha1,
        callback,
        user,
    )
    .await
}

/// [`three_legged`] with the signature method `method`. Asserts that the approval goes to `callback` with
/// the request token and `wp_scope=*`.
pub async fn three_legged_with(
    base: &str,
    consumer_key: &str,
    consumer_secret: &str,
    method: SignatureMethod,
    callback: &str,
    user: &ScriptedUser,
) -> AccessToken {
    let consumer = Signer::new(method, consumer_key, consumer_secret);
    let (request_key, request_secret) =
        request_token(base, consumer.clone().callback(callback)).await;
    user.log_in(base).await;
    let location = user.approve(base, &request_key).await;
    assert!(location.starts_with(callback), "{location}");
    let query = location.split_once('?').expect("callback has a query").1;
    assert_eq!(form_value(query, "oauth_token"), request_key);
    assert_eq!(form_value(query, "wp_scope"), "*");
    let verifier = form_value(query, "oauth_verifier");
    access_token(
        base,
        consumer
            .token(&request_key, &request_secret)
            .verifier(&verifier),
    )
    .await
}
