//! The client commands run as a process against an in-process broker and site (the demo world: a local
//! CA, both services over HTTPS on loopback): connect through the broker, post a Markdown file, list,
//! disconnect; the `--no-browser` path with a pasted verifier; what a revoked token says; the 0600 file
//! when there is no OS keyring.
#![allow(clippy::unwrap_used)]

use std::process::{Output, Stdio};
use std::time::Duration;

use authbroker_client::store::{KeyringPolicy, TokenStore};
use authbroker_demo::{Approver, World, WorldOptions};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const LIMIT: Duration = Duration::from_secs(60);

struct Fixture {
    world: World,
    config_dir: tempfile::TempDir,
}

/// How the approval gets back to the CLI.
#[derive(Clone, Copy)]
enum Back {
    /// The browser follows the redirect to the CLI's loopback listener.
    Redirect,
    /// The person pastes the address the browser ended on.
    PasteUrl,
    /// The person pastes only the verifier.
    PasteVerifier,
}

impl Fixture {
    async fn new() -> Self {
        let world = World::start(WorldOptions::default(), &mut |_, _| {})
            .await
            .unwrap();
        Self {
            world,
            config_dir: tempfile::tempdir().unwrap(),
        }
    }

    /// `authbroker ARGS` configured for this world through the environment, with no OS keyring reachable
    /// (no session bus), like a server or a CI machine.
    fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(assert_cmd::cargo::cargo_bin("authbroker"));
        for (name, _) in std::env::vars() {
            if name.starts_with("AUTHBROKER_") {
                command.env_remove(name);
            }
        }
        let app = self.world.app();
        command
            .args(args)
            .env("AUTHBROKER_CONFIG_DIR", self.config_dir.path())
            .env("AUTHBROKER_BROKER_URL", self.world.broker_id())
            .env("AUTHBROKER_APP_KEY", &app.client_id)
            .env("AUTHBROKER_APP_SECRET", &app.client_secret)
            .env("AUTHBROKER_CA_FILE", self.world.ca_pem_path())
            .env_remove("DBUS_SESSION_BUS_ADDRESS")
            .env("XDG_RUNTIME_DIR", self.config_dir.path())
            .env("RUST_LOG", "warn")
            .kill_on_drop(true)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    }

    async fn run(&self, args: &[&str]) -> Output {
        let child = self.command(args).spawn().unwrap();
        tokio::time::timeout(LIMIT, child.wait_with_output())
            .await
            .expect("the command finishes")
            .unwrap()
    }

    /// `authbroker connect <site> --no-browser`, approved by the demo's author, the approval coming back
    /// as `back` says.
    async fn connect(&self, back: Back, extra: &[&str]) -> Output {
        self.connect_with(back, extra, &[]).await
    }

    /// [`Fixture::connect`] with extra environment variables.
    async fn connect_with(&self, back: Back, extra: &[&str], env: &[(&str, &str)]) -> Output {
        let mut args = vec!["connect", self.world.site_url(), "--no-browser"];
        args.extend(extra);
        let mut child = self
            .command(&args)
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
        let mut seen = Vec::new();
        let url = tokio::time::timeout(LIMIT, async {
            while let Some(line) = stderr.next_line().await.unwrap() {
                seen.push(line.clone());
                if line.contains("/oauth1/authorize?oauth_token=") {
                    return line.trim().to_owned();
                }
            }
            panic!("no authorize URL; stderr:\n{}", seen.join("\n"));
        })
        .await
        .expect("the authorize URL is shown");
        let rest = tokio::spawn(async move {
            let mut rest = seen;
            while let Ok(Some(line)) = stderr.next_line().await {
                rest.push(line);
            }
            rest.join("\n")
        });
        let approver = Approver::new(self.world.ca_pem(), self.world.site_author()).unwrap();
        let location = approver.approve(&url).await.unwrap();
        let mut stdin = child.stdin.take().unwrap();
        match back {
            Back::Redirect => assert_eq!(approver.visit(&location).await.unwrap(), 200),
            Back::PasteUrl => stdin
                .write_all(format!("{location}\n").as_bytes())
                .await
                .unwrap(),
            Back::PasteVerifier => {
                let query = location.split_once('?').unwrap().1;
                let verifier = authbroker_testkit::form_value(query, "oauth_verifier");
                stdin
                    .write_all(format!("{verifier}\n").as_bytes())
                    .await
                    .unwrap();
            }
        }
        let mut output = tokio::time::timeout(LIMIT, child.wait_with_output())
            .await
            .expect("connect finishes")
            .unwrap();
        output.stderr = rest.await.unwrap().into_bytes();
        output
    }
}

impl Fixture {
    /// An SDK session with a stored connection's credentials (as another program holding them would).
    fn session(
        &self,
        connection: &authbroker_client::store::Connection,
    ) -> authbroker_client::Session {
        authbroker_client::Client::builder()
            .add_root_pem(self.world.ca_pem().as_bytes())
            .unwrap()
            .build()
            .unwrap()
            .session(
                authbroker_client::Site::from_parts(
                    &connection.site,
                    &connection.api_root,
                    &connection.name,
                ),
                authbroker_client::Credentials::new(
                    &connection.consumer_key,
                    &connection.secrets.consumer_secret,
                ),
                authbroker_client::Credentials::new(
                    &connection.token,
                    &connection.secrets.token_secret,
                ),
            )
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn json(output: &Output) -> Value {
    assert!(output.status.success(), "{}", text(&output.stderr));
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|err| panic!("{err}: {}", text(&output.stdout)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_post_list_disconnect() {
    let fixture = Fixture::new().await;
    let site = fixture.world.site_url().to_owned();

    let connected = fixture.connect(Back::Redirect, &[]).await;
    let stdout = text(&connected.stdout);
    let stderr = text(&connected.stderr);
    assert!(connected.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains(&format!("Connected to Demo Site ({site}) as ")),
        "{stdout}"
    );
    // Progress while the broker holds the connection.
    assert!(stderr.contains("Asking the broker"), "{stderr}");
    assert!(stderr.contains("issued credentials"), "{stderr}");
    // No session bus, so no OS keyring: the 0600 file holds the secrets, and the user is told so.
    let credentials = fixture.config_dir.path().join("credentials.json");
    assert!(
        stdout.contains(&format!("stored in {}", credentials.display())),
        "{stdout}"
    );
    assert!(stdout.contains("no OS keyring is available"), "{stdout}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&credentials)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    let sites = json(&fixture.run(&["sites", "--json"]).await);
    assert_eq!(sites.as_array().unwrap().len(), 1);
    assert_eq!(sites[0]["site"], site.as_str());
    assert_eq!(sites[0]["broker"], fixture.world.broker_id());

    let whoami = fixture.run(&["whoami"]).await;
    assert!(whoami.status.success(), "{}", text(&whoami.stderr));
    assert!(text(&whoami.stdout).contains(&format!("(author) on {site}")));

    let file = fixture.config_dir.path().join("hello-world.md");
    std::fs::write(
        &file,
        "---\ntitle: Hello from the terminal\nslug: hello-terminal\n---\n\nWritten in *Markdown*.\n",
    )
    .unwrap();
    let posted = fixture
        .run(&["post", file.to_str().unwrap(), "--status", "publish"])
        .await;
    assert!(posted.status.success(), "{}", text(&posted.stderr));
    let link = text(&posted.stdout).trim().to_owned();
    assert!(link.starts_with(&format!("{site}/?p=")), "{link}");

    let posts = json(&fixture.run(&["posts", "--json"]).await);
    let first = &posts["posts"][0];
    assert_eq!(first["title"], "Hello from the terminal");
    assert_eq!(first["status"], "publish");
    assert_eq!(first["link"], link.as_str());
    // The HTML the site stored is the converted Markdown.
    let store =
        TokenStore::open(fixture.config_dir.path().to_owned(), KeyringPolicy::Never).unwrap();
    let connection = store.get(&site).unwrap().unwrap();
    assert!(!connection.secrets.token_secret.is_empty());

    let host = site.trim_start_matches("https://");
    let gone = fixture.run(&["disconnect", host]).await;
    assert!(gone.status.success(), "{}", text(&gone.stderr));
    assert!(
        text(&gone.stdout).contains("revoked the token on the site"),
        "{}",
        text(&gone.stdout)
    );
    assert_eq!(
        json(&fixture.run(&["sites", "--json"]).await),
        Value::Array(vec![])
    );
    // The token is dead on the site too, not only forgotten here.
    let session = fixture.session(&connection);
    assert!(session.me().await.unwrap_err().needs_reconnect());

    let not_connected = fixture.run(&["posts"]).await;
    assert_eq!(not_connected.status.code(), Some(4));
    assert!(text(&not_connected.stderr).contains("authbroker connect"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_browser_with_a_pasted_verifier_or_address() {
    let fixture = Fixture::new().await;
    let connected = fixture.connect(Back::PasteVerifier, &["--json"]).await;
    let reply = json(&connected);
    assert_eq!(reply["site"], fixture.world.site_url());
    assert_eq!(reply["stored_in"], "file");
    assert!(text(&connected.stderr).contains("paste the verifier"));

    let store =
        TokenStore::open(fixture.config_dir.path().to_owned(), KeyringPolicy::Never).unwrap();
    let first = store.list().unwrap().remove(0);

    // Connecting again replaces the connection; this time the whole address is pasted.
    let again = fixture.connect(Back::PasteUrl, &["--json"]).await;
    json(&again);
    assert!(text(&again.stderr).contains("previous connection's token was revoked"));
    let sites = json(&fixture.run(&["sites", "--json"]).await);
    assert_eq!(sites.as_array().unwrap().len(), 1);
    // The replaced token no longer works on the site.
    let err = fixture.session(&first).me().await.unwrap_err();
    assert!(err.needs_reconnect(), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_token_says_to_connect_again() {
    let fixture = Fixture::new().await;
    let connected = fixture.connect(Back::Redirect, &[]).await;
    assert!(connected.status.success(), "{}", text(&connected.stderr));
    // The user revokes the app on the site (here: the token revokes itself, as another device would).
    let store =
        TokenStore::open(fixture.config_dir.path().to_owned(), KeyringPolicy::Never).unwrap();
    let connection = store.list().unwrap().remove(0);
    let session = fixture.session(&connection);
    session.revoke().await.unwrap();

    for args in [&["whoami"][..], &["posts"], &["post", "/dev/null"]] {
        let output = fixture.run(args).await;
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(3), "{args:?}: {stderr}");
        assert!(
            stderr.contains(&format!(
                "run `authbroker connect {}` again",
                connection.site.trim_start_matches("https://")
            )),
            "{args:?}: {stderr}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_browser_is_opened_with_the_approval_address() {
    let fixture = Fixture::new().await;
    // A "browser" that writes down the address it was asked to open.
    let opened = fixture.config_dir.path().join("opened.txt");
    let script = fixture.config_dir.path().join("browser.sh");
    std::fs::write(
        &script,
        format!("#!/bin/sh\necho \"$1\" > {}\n", opened.display()),
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let mut child = fixture
        .command(&["connect", fixture.world.site_url()])
        .env("BROWSER", &script)
        .spawn()
        .unwrap();
    let url = tokio::time::timeout(LIMIT, async {
        loop {
            if let Ok(text) = std::fs::read_to_string(&opened)
                && text.contains("/oauth1/authorize?oauth_token=")
            {
                return text.trim().to_owned();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the browser was opened");
    let approver = Approver::new(fixture.world.ca_pem(), fixture.world.site_author()).unwrap();
    let location = approver.approve(&url).await.unwrap();
    assert_eq!(approver.visit(&location).await.unwrap(), 200);
    let status = tokio::time::timeout(LIMIT, child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_settings_say_how_to_set_them() {
    let fixture = Fixture::new().await;
    let output = fixture
        .command(&["connect", fixture.world.site_url()])
        .env_remove("AUTHBROKER_BROKER_URL")
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("--broker"), "{stderr}");
    assert!(stderr.contains("AUTHBROKER_BROKER_URL"), "{stderr}");

    let output = fixture
        .command(&["connect", fixture.world.site_url()])
        .env_remove("AUTHBROKER_APP_SECRET")
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(text(&output.stderr).contains("AUTHBROKER_APP_SECRET"));

    // The configuration file is read, and a bad value in it names the key and the file.
    std::fs::write(
        fixture.config_dir.path().join("config.toml"),
        "keyring = \"sometimes\"\n",
    )
    .unwrap();
    let output = fixture.run(&["sites"]).await;
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("keyring:") && stderr.contains("config.toml"),
        "{stderr}"
    );
    std::fs::remove_file(fixture.config_dir.path().join("config.toml")).unwrap();

    let path = fixture.run(&["config", "path"]).await;
    assert_eq!(
        text(&path.stdout).trim(),
        fixture
            .config_dir
            .path()
            .join("config.toml")
            .display()
            .to_string()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_consumer_credentials_instead_of_a_broker() {
    let fixture = Fixture::new().await;
    // An administrator registered the app on the site by hand, with the loopback callback.
    let consumer = authbroker_site::register_consumer(
        fixture.world.site_state(),
        authbroker_site::NewConsumer {
            name: "Hand-registered CLI",
            description: "",
            callback: "http://127.0.0.1/callback",
        },
    )
    .await
    .unwrap();
    let connected = fixture
        .connect_with(
            Back::Redirect,
            &["--consumer-key", &consumer.key],
            &[("AUTHBROKER_CONSUMER_SECRET", &consumer.secret)],
        )
        .await;
    assert!(connected.status.success(), "{}", text(&connected.stderr));
    assert!(
        !text(&connected.stderr).contains("broker"),
        "{}",
        text(&connected.stderr)
    );
    let sites = json(&fixture.run(&["sites", "--json"]).await);
    assert_eq!(sites[0]["broker"], Value::Null);
    assert_eq!(
        json(&fixture.run(&["whoami", "--json"]).await)["slug"],
        "author"
    );
}
