//! Interop with a real, independent OAuth 1.0a client: Python's requests-oauthlib (2.0.0, on oauthlib 3.2.2)
//! runs the whole three-legged flow against a running site, on both backends.
//!
//! `interop/site_flow.py` discovers the endpoints from the REST index, fetches a request token, logs the
//! user in and approves with plain form posts (as a browser would), exchanges the verifier for an access
//! token and makes signed REST calls — with HMAC-SHA1 and HMAC-SHA256, and with the protocol parameters in
//! the `Authorization` header, the query and the form body. It also creates posts with a form body (signed)
//! and a JSON body (not signed), and checks that a used-up request token cannot be exchanged again.
//!
//! The Python interpreter comes from `AUTHBROKER_PYTHON`, which `scripts/test` sets to its venv. Without it
//! the test fails: it is never skipped.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use common::*;
use serde_json::{Value, json};

const CALLBACK: &str = "http://127.0.0.1:9/callback";

fn python() -> String {
    match std::env::var("AUTHBROKER_PYTHON") {
        Ok(path) if !path.trim().is_empty() => path,
        _ => panic!(
            "AUTHBROKER_PYTHON is not set: run scripts/test, which installs the interop venv, or set \
             AUTHBROKER_PYTHON (e.g. AUTHBROKER_PYTHON=~/.cache/authbroker/venv/bin/python)"
        ),
    }
}

/// Runs `tests/interop/<script>` with `input` as JSON on stdin, off the async runtime (the script talks to
/// the site this runtime serves), and returns its JSON stdout.
async fn run_script(script: &'static str, input: Value) -> Value {
    let python = python();
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("interop")
        .join(script);
    tokio::task::spawn_blocking(move || {
        let mut child = Command::new(&python)
            .arg(&path)
            .env("PYTHONIOENCODING", "utf-8")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run AUTHBROKER_PYTHON={python}: {e}"));
        let mut stdin = child.stdin.take().unwrap();
        stdin
            .write_all(&serde_json::to_vec(&input).unwrap())
            .unwrap();
        drop(stdin);
        let output = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success(),
            "{script} failed ({}):\n{stderr}\n{stdout}",
            output.status
        );
        serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("{script} printed no JSON ({e}):\n{stdout}\n{stderr}"))
    })
    .await
    .unwrap()
}

fn is_alnum(value: &Value, len: usize) -> bool {
    value
        .as_str()
        .is_some_and(|s| s.len() == len && s.bytes().all(|b| b.is_ascii_alphanumeric()))
}

#[tokio::test]
async fn requests_oauthlib_three_legged_flow() {
    // Fail fast, before starting sites, when the interpreter is missing.
    python();
    for backend in BACKENDS {
        let site = TestSite::start(backend).await;
        let consumer = site.consumer(CALLBACK).await;
        let output = run_script(
            "site_flow.py",
            json!({
                "base": site.base,
                "consumer_key": consumer.key,
                "consumer_secret": consumer.secret,
                "callback": CALLBACK,
                "login": site.admin_login,
                "password": site.admin_password,
                "posts": true,
            }),
        )
        .await;
        assert_eq!(output["oauthlib"], "3.2.2", "{output}");
        assert_eq!(output["requests_oauthlib"], "2.0.0", "{output}");
        assert_eq!(output["endpoints"]["request"], site.url("/oauth1/request"));

        let runs = output["runs"].as_array().unwrap();
        let mut seen = Vec::new();
        for run in runs {
            let context = format!(
                "{backend:?} {} {}",
                run["signature_method"], run["signature_type"]
            );
            assert!(
                run.get("error").is_none(),
                "{context}: {}",
                run["error"].as_str().unwrap_or_default()
            );
            seen.push((
                run["signature_method"].as_str().unwrap().to_owned(),
                run["signature_type"].as_str().unwrap().to_owned(),
            ));

            // Where requests-oauthlib put the signature: the run's place for the token requests and the form
            // post; a GET or a JSON body cannot carry it in the body, so the body run signs those in the
            // header.
            let place = match run["signature_type"].as_str().unwrap() {
                "AUTH_HEADER" => "header",
                "QUERY" => "query",
                "BODY" => "body",
                other => panic!("{context}: signature type {other}"),
            };
            let bodiless = if place == "body" { "header" } else { place };
            assert_eq!(
                run["token_requests_signed_in"],
                json!([place, place]),
                "{context}"
            );
            assert_eq!(run["me"]["signed_in"], bodiless, "{context}");
            assert_eq!(run["form_post"]["signed_in"], place, "{context}");
            assert_eq!(run["json_post"]["signed_in"], bodiless, "{context}");

            // Request token, approval, access token.
            let request = &run["request_token"];
            assert!(is_alnum(&request["oauth_token"], 24), "{context}: {run}");
            assert!(
                is_alnum(&request["oauth_token_secret"], 48),
                "{context}: {run}"
            );
            assert_eq!(request["oauth_callback_confirmed"], "true", "{context}");
            let location = run["location"].as_str().unwrap();
            assert!(
                location.starts_with(&format!("{CALLBACK}?oauth_token=")),
                "{context}: {location}"
            );
            assert!(location.ends_with("&wp_scope=*"), "{context}: {location}");
            let authorization = &run["authorization"];
            assert_eq!(
                authorization["oauth_token"], request["oauth_token"],
                "{context}"
            );
            assert!(
                is_alnum(&authorization["oauth_verifier"], 24),
                "{context}: {run}"
            );
            let access = &run["access_token"];
            assert!(is_alnum(&access["oauth_token"], 24), "{context}: {run}");
            assert!(
                is_alnum(&access["oauth_token_secret"], 48),
                "{context}: {run}"
            );
            assert_ne!(access["oauth_token"], request["oauth_token"], "{context}");

            // Signed REST calls act as the approving user.
            let me = &run["me"];
            assert_eq!(me["status"], 200, "{context}: {me}");
            assert_eq!(me["body"]["username"], "admin", "{context}: {me}");
            assert_eq!(me["body"]["roles"][0], "administrator", "{context}");

            let form_post = &run["form_post"];
            assert_eq!(form_post["status"], 201, "{context}: {form_post}");
            assert_eq!(
                form_post["body"]["title"]["raw"], run["form_post_title"],
                "{context}: {form_post}"
            );
            assert_eq!(
                form_post["body"]["content"]["raw"], "Sent as a form & signed: 100% + more",
                "{context}: {form_post}"
            );
            assert_eq!(form_post["body"]["status"], "publish", "{context}");
            let json_post = &run["json_post"];
            assert_eq!(json_post["status"], 201, "{context}: {json_post}");
            assert_eq!(
                json_post["body"]["title"]["raw"], run["json_post_title"],
                "{context}: {json_post}"
            );
            assert_eq!(json_post["body"]["status"], "draft", "{context}");
            assert_ne!(
                json_post["body"]["id"], form_post["body"]["id"],
                "{context}"
            );

            // A used-up request token: refused with the plain-text message clients display.
            let second = &run["second_exchange"];
            assert_eq!(second["status"], 400, "{context}: {second}");
            assert_eq!(second["text"], "Invalid token", "{context}: {second}");
        }
        seen.sort();
        let mut expected = Vec::new();
        for method in ["HMAC-SHA1", "HMAC-SHA256"] {
            for kind in ["AUTH_HEADER", "BODY", "QUERY"] {
                expected.push((method.to_owned(), kind.to_owned()));
            }
        }
        assert_eq!(seen, expected);

        // The posts are there, seen by the site's own listing as the admin would see them.
        let method = authbroker_oauth1::SignatureMethod::HmacSha256;
        let access = site.three_legged(&consumer, method).await;
        let url = site.url("/wp-json/wp/v2/posts?status=any&per_page=100");
        let signer = authbroker_oauth1::Signer::new(method, &consumer.key, &consumer.secret)
            .token(&access.token, &access.secret);
        let response = signed("GET", &url, &signer).send().await.unwrap();
        assert_eq!(response.status(), 200);
        let posts: Value = response.json().await.unwrap();
        assert_eq!(posts.as_array().unwrap().len(), 2 * runs.len(), "{posts}");
        site.cleanup().await;
    }
}
