//! `authbroker broker init` and `authbroker broker serve`, run as real processes.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::time::Duration;

use authbroker_broker::BrokerConfig;
use authbroker_testkit::{TestCa, hidden_field};
use common::{Server, authbroker, blocking_client, password_line, path};
use predicates::prelude::PredicateBooleanExt;
use predicates::str::contains;

const BROKER_ID: &str = "http://127.0.0.1:8443/";

/// Starts `authbroker broker serve --broker-id BROKER_ID --data-dir DIR/data ARGS`.
fn broker_server(dir: &Path, args: &[&str], envs: &[(&str, &str)]) -> Server {
    let mut argv = vec![
        "broker".to_owned(),
        "serve".to_owned(),
        "--broker-id".to_owned(),
        BROKER_ID.to_owned(),
        "--data-dir".to_owned(),
        path(&dir.join("data")).to_owned(),
    ];
    argv.extend(args.iter().map(|a| (*a).to_owned()));
    Server::start(dir, argv, envs)
}

/// `broker init` for the data directory under `dir`; returns the generated password.
fn init(dir: &Path, email: &str) -> String {
    let data = dir.join("data");
    let output = authbroker(&[
        "broker",
        "init",
        "--broker-id",
        BROKER_ID,
        "--data-dir",
        path(&data),
        "--admin-email",
        email,
    ])
    .output()
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains(&format!("Administrator: {email}")),
        "{stdout}"
    );
    assert!(stdout.contains(BROKER_ID), "{stdout}");
    password_line(&stdout).expect("a generated password is printed")
}

#[test]
fn init_creates_an_administrator_once() {
    let dir = tempfile::tempdir().unwrap();
    let password = init(dir.path(), "admin@broker.example");
    assert_eq!(password.len(), 24, "{password}");
    assert!(password.chars().all(|c| c.is_ascii_alphanumeric()));
    assert!(dir.path().join("data").join("broker.db").exists());

    authbroker(&[
        "broker",
        "init",
        "--broker-id",
        BROKER_ID,
        "--data-dir",
        path(&dir.path().join("data")),
        "--admin-email",
        "other@broker.example",
    ])
    .assert()
    .code(1)
    .stderr(contains("already has an administrator").and(contains("admin@broker.example")))
    .stdout(contains("Password").not());
}

#[test]
fn init_with_a_chosen_password_does_not_print_it() {
    let dir = tempfile::tempdir().unwrap();
    let database_url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("chosen.db").display()
    );
    let config = dir.path().join("broker.toml");
    std::fs::write(&config, format!("broker_id = \"{BROKER_ID}\"\n")).unwrap();
    authbroker(&[
        "broker",
        "init",
        "--config",
        path(&config),
        "--database-url",
        &database_url,
        "--admin-email",
        "admin@broker.example",
    ])
    .env("AUTHBROKER_ADMIN_PASSWORD", "correct horse battery staple")
    .assert()
    .success()
    .stdout(contains("Administrator: admin@broker.example").and(contains("correct horse").not()))
    .stdout(contains("Password").not());
    assert!(dir.path().join("chosen.db").exists());
}

#[test]
fn init_refuses_bad_admin_accounts_and_needs_a_broker_id() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    for (email, password, complaint) in [
        ("admin@broker.example", "short", "at least 12 characters"),
        (
            "not an email",
            "long enough password",
            "valid email address",
        ),
    ] {
        authbroker(&[
            "broker",
            "init",
            "--broker-id",
            BROKER_ID,
            "--data-dir",
            path(&data),
            "--admin-email",
            email,
            "--admin-password",
            password,
        ])
        .assert()
        .code(1)
        .stderr(contains(complaint));
    }
    authbroker(&[
        "broker",
        "init",
        "--data-dir",
        path(&data),
        "--admin-email",
        "admin@broker.example",
    ])
    .assert()
    .code(1)
    .stderr(contains("broker_id").and(contains("--broker-id")));
    // --admin-email is required.
    authbroker(&["broker", "init", "--broker-id", BROKER_ID])
        .assert()
        .code(2)
        .stderr(contains("--admin-email"));
}

#[test]
fn configuration_errors_name_the_key_and_its_source() {
    let dir = tempfile::tempdir().unwrap();
    authbroker(&["broker", "serve", "--data-dir", path(dir.path())])
        .env("AUTHBROKER_BROKER_ID", BROKER_ID)
        .env("AUTHBROKER_CONNECT_TIMEOUT_SECS", "soon")
        .assert()
        .code(1)
        .stderr(contains("connect_timeout_secs:").and(contains("AUTHBROKER_CONNECT_TIMEOUT_SECS")));
    authbroker(&["broker", "serve", "--broker-id", "https://apps.example"])
        .assert()
        .code(1)
        .stderr(contains("broker_id:").and(contains("--broker-id")));
}

#[test]
fn serve_runs_the_portal_where_the_initial_administrator_logs_in() {
    let dir = tempfile::tempdir().unwrap();
    let password = init(dir.path(), "admin@broker.example");
    let server = broker_server(
        dir.path(),
        &["--listen", "127.0.0.1:0", "--allow-loopback-targets"],
        &[],
    );
    assert!(
        server.url.starts_with("http://127.0.0.1:"),
        "{}",
        server.url
    );
    assert!(!server.url.ends_with(":0/"), "{}", server.url);
    let printed = server.stdout.join("\n");
    assert!(
        printed.contains(&format!("broker ID: {BROKER_ID}")),
        "{printed}"
    );

    let browser = reqwest::blocking::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let login = browser
        .get(format!("{}login", server.url))
        .send()
        .unwrap_or_else(|err| panic!("{err}; stderr:\n{}", server.stderr()));
    assert_eq!(login.status(), 200);
    assert_eq!(login.headers()["x-frame-options"], "DENY");
    let csrf = hidden_field(&login.text().unwrap(), "_csrf");
    let response = browser
        .post(format!("{}login", server.url))
        .form(&[
            ("_csrf", csrf.as_str()),
            ("email", "admin@broker.example"),
            ("password", password.as_str()),
            ("redirect_to", "/admin/developers"),
        ])
        .send()
        .unwrap();
    assert_eq!(response.status(), 303, "{}", server.stderr());
    assert_eq!(response.headers()["location"], "/admin/developers");
    let page = browser
        .get(format!("{}admin/developers", server.url))
        .send()
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().unwrap().contains("admin@broker.example"));

    // The JSON API is there too, and wants a token.
    let response = blocking_client()
        .get(format!("{}api/v1/apps", server.url))
        .send()
        .unwrap();
    assert_eq!(response.status(), 401);
}

#[test]
fn serve_warns_until_init_and_file_env_and_flags_layer() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("broker.toml");
    // The file asks for a non-loopback plain-HTTP address, which would be refused; the flag wins.
    std::fs::write(
        &config,
        "broker_id = \"https://file.example/\"\nlisten = \"0.0.0.0:0\"\nname = \"From the file\"\n",
    )
    .unwrap();
    let server = Server::start(
        dir.path(),
        [
            "broker",
            "serve",
            "--config",
            path(&config),
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            path(dir.path()),
        ],
        &[("AUTHBROKER_BROKER_ID", "https://env.example/")],
    );
    let printed = server.stdout.join("\n");
    assert!(
        printed.contains("\"From the file\" listening on http://127.0.0.1:"),
        "{printed}"
    );
    assert!(
        printed.contains("broker ID: https://env.example/"),
        "{printed}"
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !server.stderr().contains("no administrator yet") {
        assert!(std::time::Instant::now() < deadline, "{}", server.stderr());
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn serve_refuses_plain_http_off_loopback_and_half_a_tls_pair() {
    let dir = tempfile::tempdir().unwrap();
    authbroker(&[
        "broker",
        "serve",
        "--broker-id",
        BROKER_ID,
        "--data-dir",
        path(dir.path()),
        "--listen",
        "0.0.0.0:0",
    ])
    .timeout(Duration::from_secs(60))
    .assert()
    .code(1)
    .stderr(contains("plain HTTP").and(contains("loopback")));
    authbroker(&[
        "broker",
        "serve",
        "--broker-id",
        BROKER_ID,
        "--data-dir",
        path(dir.path()),
        "--tls-key",
        path(&dir.path().join("key.pem")),
    ])
    .timeout(Duration::from_secs(60))
    .assert()
    .code(1)
    .stderr(contains("tls_cert"));
}

#[test]
fn serve_over_https_with_a_certificate_from_a_local_ca() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("authbroker CLI test CA");
    let (cert, key) = ca.issue_server_files("broker");
    let server = broker_server(
        dir.path(),
        &[
            "--listen",
            "127.0.0.1:0",
            "--tls-cert",
            path(&cert),
            "--tls-key",
            path(&key),
        ],
        &[],
    );
    assert!(
        server.url.starts_with("https://127.0.0.1:"),
        "{}",
        server.url
    );
    let trusting = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .tls_built_in_root_certs(false)
        .add_root_certificate(ca.reqwest_root())
        .build()
        .unwrap();
    let response = trusting
        .get(format!("{}signup", server.url))
        .send()
        .unwrap_or_else(|err| panic!("{err:?}; stderr:\n{}", server.stderr()));
    assert_eq!(response.status(), 200);
    assert!(
        response
            .text()
            .unwrap()
            .contains("Create a developer account")
    );
    // A client that does not trust the local CA refuses the connection: this really is TLS.
    assert!(
        blocking_client()
            .get(format!("{}signup", server.url))
            .send()
            .is_err()
    );
}

#[cfg(unix)]
#[test]
fn serve_stops_gracefully_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = broker_server(dir.path(), &["--listen", "127.0.0.1:0"], &[]);
    server.terminate();
}

#[test]
fn help_documents_every_configuration_key() {
    for command in ["serve", "init"] {
        let output = authbroker(&["broker", command, "--help"]).output().unwrap();
        assert!(output.status.success());
        let help = String::from_utf8_lossy(&output.stdout);
        for key in BrokerConfig::KEYS {
            assert!(help.contains(key.key), "{command}: {}", key.key);
            for name in key.env.iter().chain(key.flag.iter()) {
                assert!(help.contains(name), "{command}: {name}");
            }
        }
    }
    authbroker(&["broker", "init", "--help"])
        .assert()
        .success()
        .stdout(contains("--admin-email").and(contains("--admin-password")))
        .stdout(contains("AUTHBROKER_ADMIN_PASSWORD"));
    authbroker(&["broker", "serve", "--help"])
        .assert()
        .success()
        .stdout(contains("--allow-loopback-targets"));
}
