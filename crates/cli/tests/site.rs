//! `authbroker site init` and `authbroker site serve`, run as real processes.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command as StdCommand, Stdio};
use std::time::Duration;

use authbroker_site::SiteConfig;
use common::{Server, authbroker, blocking_client, clean_env, password_line, path};
use predicates::prelude::PredicateBooleanExt;
use predicates::str::contains;

const HOME: &str = "http://127.0.0.1:8080";
const LINK: &str = "<http://127.0.0.1:8080/wp-json/>; rel=\"https://api.w.org/\"";

/// Starts `authbroker site serve --home-url HOME --data-dir DIR/data ARGS`.
fn site_server(dir: &Path, args: &[&str]) -> Server {
    let mut argv = vec![
        "site".to_owned(),
        "serve".to_owned(),
        "--home-url".to_owned(),
        HOME.to_owned(),
        "--data-dir".to_owned(),
        path(&dir.join("data")).to_owned(),
    ];
    argv.extend(args.iter().map(|a| (*a).to_owned()));
    Server::start(dir, argv, &[])
}

#[test]
fn init_creates_an_administrator_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let args = [
        "site",
        "init",
        "--home-url",
        HOME,
        "--data-dir",
        path(&data),
        "--admin-login",
        "boss",
    ];
    let output = authbroker(&args).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("Administrator: boss"), "{stdout}");
    let password = password_line(&stdout).expect("a generated password is printed");
    assert_eq!(password.len(), 24, "{password}");
    assert!(password.chars().all(|c| c.is_ascii_alphanumeric()));
    assert!(data.join("site.db").exists());

    authbroker(&args)
        .assert()
        .code(1)
        .stderr(contains("already has an administrator").and(contains("boss")))
        .stdout(contains("Password").not());
}

#[test]
fn init_with_a_chosen_password_does_not_print_it() {
    let dir = tempfile::tempdir().unwrap();
    let database_url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("chosen.db").display()
    );
    let config = dir.path().join("site.toml");
    std::fs::write(&config, format!("home_url = \"{HOME}\"\n")).unwrap();
    authbroker(&[
        "site",
        "init",
        "--config",
        path(&config),
        "--database-url",
        &database_url,
    ])
    .env("AUTHBROKER_ADMIN_PASSWORD", "correct horse battery staple")
    .assert()
    .success()
    .stdout(contains("Administrator: admin").and(contains("correct horse").not()))
    .stdout(contains("Password").not());
    assert!(dir.path().join("chosen.db").exists());
}

#[test]
fn init_refuses_a_short_password() {
    let dir = tempfile::tempdir().unwrap();
    authbroker(&[
        "site",
        "init",
        "--home-url",
        HOME,
        "--data-dir",
        path(dir.path()),
        "--admin-password",
        "short",
    ])
    .assert()
    .code(1)
    .stderr(contains("at least 12 characters"));
}

#[test]
fn a_missing_home_url_is_named() {
    let dir = tempfile::tempdir().unwrap();
    authbroker(&["site", "init", "--data-dir", path(dir.path())])
        .assert()
        .code(1)
        .stderr(contains("home_url"));
}

#[test]
fn configuration_errors_name_the_key_and_its_source() {
    let dir = tempfile::tempdir().unwrap();
    authbroker(&["site", "serve", "--data-dir", path(dir.path())])
        .env("AUTHBROKER_HOME_URL", HOME)
        .env("AUTHBROKER_LISTEN", "not an address")
        .assert()
        .code(1)
        .stderr(contains("listen:").and(contains("AUTHBROKER_LISTEN")));
}

#[test]
fn a_bad_listen_flag_is_a_usage_error() {
    authbroker(&["site", "serve", "--home-url", HOME, "--listen", "nowhere"])
        .assert()
        .code(2)
        .stderr(contains("--listen"));
}

#[test]
fn serve_answers_the_rest_index_with_the_link_header() {
    let dir = tempfile::tempdir().unwrap();
    let server = site_server(dir.path(), &["--listen", "127.0.0.1:0"]);
    assert!(
        server.url.starts_with("http://127.0.0.1:"),
        "{}",
        server.url
    );
    assert!(!server.url.ends_with(":0/"), "{}", server.url);
    let response = blocking_client()
        .get(format!("{}wp-json/", server.url))
        .send()
        .unwrap_or_else(|err| panic!("{err}; stderr:\n{}", server.stderr()));
    assert_eq!(response.status(), 200);
    let link = response
        .headers()
        .get("link")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert_eq!(link, LINK);
    let body = response.text().unwrap();
    assert!(body.contains(&format!("\"home\":\"{HOME}\"")), "{body}");
}

#[test]
fn the_environment_and_flags_override_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("site.toml");
    // The file asks for a non-loopback plain-HTTP address, which would be refused; the flag wins.
    std::fs::write(
        &config,
        "home_url = \"https://file.example\"\nlisten = \"0.0.0.0:0\"\nname = \"From the file\"\n",
    )
    .unwrap();
    let mut command = StdCommand::new(assert_cmd::cargo::cargo_bin("authbroker"));
    clean_env(&mut command);
    let stderr = dir.path().join("stderr");
    command
        .args(["site", "serve", "--config", path(&config)])
        .args(["--listen", "127.0.0.1:0", "--data-dir", path(dir.path())])
        .env("AUTHBROKER_HOME_URL", HOME)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&stderr).unwrap());
    let mut child = command.spawn().unwrap();
    let mut first_line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first_line)
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        first_line.contains("\"From the file\" listening on http://127.0.0.1:"),
        "{first_line}\n{}",
        std::fs::read_to_string(&stderr).unwrap_or_default()
    );
}

#[test]
fn serve_refuses_plain_http_off_loopback() {
    let dir = tempfile::tempdir().unwrap();
    authbroker(&[
        "site",
        "serve",
        "--home-url",
        HOME,
        "--data-dir",
        path(dir.path()),
        "--listen",
        "0.0.0.0:0",
    ])
    .timeout(Duration::from_secs(60))
    .assert()
    .code(1)
    .stderr(contains("plain HTTP").and(contains("loopback")));
}

#[test]
fn serve_refuses_half_a_tls_pair() {
    let dir = tempfile::tempdir().unwrap();
    authbroker(&[
        "site",
        "serve",
        "--home-url",
        HOME,
        "--data-dir",
        path(dir.path()),
        "--tls-cert",
        path(&dir.path().join("cert.pem")),
    ])
    .timeout(Duration::from_secs(60))
    .assert()
    .code(1)
    .stderr(contains("tls_key"));
}

/// A local CA and a certificate for `localhost` and 127.0.0.1 signed by it, as `demo` will make them.
struct TestPki {
    ca_pem: String,
    chain: PathBuf,
    key: PathBuf,
}

fn make_pki(dir: &Path) -> TestPki {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
    let ca_key = KeyPair::generate().expect("test PKI");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("test PKI");
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "authbroker test CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).expect("test PKI");

    let key = KeyPair::generate().expect("test PKI");
    let params = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
        .expect("test PKI");
    let cert = params.signed_by(&key, &ca, &ca_key).expect("test PKI");

    let chain = dir.join("chain.pem");
    let key_path = dir.join("key.pem");
    std::fs::write(&chain, format!("{}{}", cert.pem(), ca.pem())).expect("test PKI");
    std::fs::write(&key_path, key.serialize_pem()).expect("test PKI");
    TestPki {
        ca_pem: ca.pem(),
        chain,
        key: key_path,
    }
}

#[test]
fn serve_over_https_with_a_certificate_from_a_local_ca() {
    let dir = tempfile::tempdir().unwrap();
    let pki = make_pki(dir.path());
    let server = site_server(
        dir.path(),
        &[
            "--listen",
            "127.0.0.1:0",
            "--tls-cert",
            path(&pki.chain),
            "--tls-key",
            path(&pki.key),
        ],
    );
    assert!(
        server.url.starts_with("https://127.0.0.1:"),
        "{}",
        server.url
    );

    let trusting = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(pki.ca_pem.as_bytes()).unwrap())
        .build()
        .unwrap();
    let response = trusting
        .get(format!("{}wp-json/", server.url))
        .send()
        .unwrap_or_else(|err| panic!("{err:?}; stderr:\n{}", server.stderr()));
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers().get("link").and_then(|v| v.to_str().ok()),
        Some(LINK)
    );

    // A client that does not trust the local CA refuses the connection: this really is TLS.
    let err = blocking_client()
        .get(format!("{}wp-json/", server.url))
        .send()
        .unwrap_err();
    assert!(err.is_connect() || err.is_request(), "{err:?}");

    // And plain HTTP on the TLS port gets no HTTP answer.
    let plain = server.url.replacen("https://", "http://", 1);
    assert!(
        blocking_client()
            .get(format!("{plain}wp-json/"))
            .send()
            .is_err()
    );

    // The server is still fine after those failed handshakes.
    let response = trusting
        .get(format!("{}wp-json/", server.url))
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[cfg(unix)]
#[test]
fn serve_stops_gracefully_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = site_server(dir.path(), &["--listen", "127.0.0.1:0"]);
    server.terminate();
}

#[test]
fn help_documents_every_configuration_key() {
    for command in ["serve", "init"] {
        let output = authbroker(&["site", command, "--help"]).output().unwrap();
        assert!(output.status.success());
        let help = String::from_utf8_lossy(&output.stdout);
        for key in SiteConfig::KEYS {
            assert!(help.contains(key.key), "{command}: {}", key.key);
            for name in key.env.iter().chain(key.flag.iter()) {
                assert!(help.contains(name), "{command}: {name}");
            }
        }
    }
    authbroker(&["site", "init", "--help"])
        .assert()
        .success()
        .stdout(contains("--admin-login").and(contains("--admin-password")))
        .stdout(contains("AUTHBROKER_ADMIN_PASSWORD"));
}
