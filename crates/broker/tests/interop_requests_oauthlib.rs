//! Interop with an independent OAuth 1.0a client: `interop/r1.py` uses Python's requests-oauthlib (2.0.0,
//! over oauthlib 3.2.2) to perform R1 against our broker over TLS (verified against the test CA) with our
//! real site behind it. The signature goes in the `Authorization` header and `server_url` in the form body;
//! one case also puts `server_url` inside the header, as a real client does. The credentials that come back
//! must work for `/oauth1/request` at the site.
//!
//! The Python interpreter comes from `AUTHBROKER_PYTHON`, which `scripts/test` sets to its venv. Without it
//! the tests fail: they are never skipped.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use authbroker_testkit::TestCa;
use common::{credentials_work, real_site, register, start_broker};
use serde_json::{Value, json};

fn python() -> PathBuf {
    match std::env::var_os("AUTHBROKER_PYTHON") {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => panic!(
            "AUTHBROKER_PYTHON is not set: run scripts/test, which installs the interop venv, or set AUTHBROKER_PYTHON"
        ),
    }
}

/// Runs `interop/r1.py` with `case` on stdin (off the async runtime: the broker serves on it meanwhile).
async fn run_client(case: Value) -> Value {
    let python = python();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop/r1.py");
    tokio::task::spawn_blocking(move || {
        let mut child = Command::new(&python)
            .arg(&script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", python.display()));
        child
            .stdin
            .take()
            .unwrap()
            .write_all(case.to_string().as_bytes())
            .unwrap();
        let output = child.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "r1.py failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice::<Value>(&output.stdout).unwrap_or_else(|e| {
            panic!(
                "r1.py printed no JSON ({e}):\n{}",
                String::from_utf8_lossy(&output.stdout)
            )
        })
    })
    .await
    .unwrap()
}

async fn connect_with_requests_oauthlib(signature_method: &str, server_url_in_header: bool) {
    let ca = TestCa::new("interop CA");
    let broker = start_broker(&ca, |_| {}).await;
    let (site_base, _site, _dir) = real_site(&ca, &broker).await;
    let app = register(&broker.state, "Python client").await;
    let server_url = format!("{site_base}/");
    let result = run_client(json!({
        "url": broker.connect_url(),
        "consumer_key": app.client_id,
        "consumer_secret": app.client_secret,
        "server_url": server_url,
        "ca": ca.pem_path(),
        "signature_method": signature_method,
        "server_url_in_header": server_url_in_header,
    }))
    .await;
    assert_eq!(result["status"], 200, "{result}");
    assert_eq!(result["content_type"], "application/json", "{result}");
    let authorization = result["authorization"].as_str().unwrap();
    assert!(authorization.starts_with("OAuth "), "{authorization}");
    assert!(
        authorization.contains(&format!("oauth_signature_method=\"{signature_method}\"")),
        "{authorization}"
    );
    assert_eq!(
        authorization.contains("server_url="),
        server_url_in_header,
        "{authorization}"
    );
    let reply = &result["reply"];
    let token = reply["client_token"]
        .as_str()
        .unwrap_or_else(|| panic!("no credentials: {reply}"));
    let secret = reply["client_secret"].as_str().unwrap();
    assert_eq!(token.len(), 12);
    assert_eq!(secret.len(), 48);
    assert_eq!(reply["api_root"], format!("{site_base}/wp-json/"));
    assert!(reply["site_data"]["authentication"]["oauth1"].is_object());
    credentials_work(&site_base, token, secret).await;
    assert!(broker.state.pending().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hmac_sha1_with_server_url_in_the_body() {
    connect_with_requests_oauthlib("HMAC-SHA1", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hmac_sha1_with_server_url_also_in_the_header() {
    connect_with_requests_oauthlib("HMAC-SHA1", true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hmac_sha256_with_server_url_in_the_body() {
    connect_with_requests_oauthlib("HMAC-SHA256", false).await;
}
