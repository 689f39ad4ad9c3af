//! Test support: a real headless Chromium driven through chromedriver (WebDriver), for the page tests.
//!
//! [`Chromium::start`] spawns `$AUTHBROKER_CHROMEDRIVER` on a free loopback port, waits until it answers
//! `/status`, and opens a session on `$AUTHBROKER_CHROMIUM` with a fresh profile directory. Dropping it ends
//! the session (which quits the browser) and kills chromedriver, also when the test panicked.
//!
//! The tests fail, never skip, when chromedriver is not configured: `scripts/test` installs Debian's
//! `chromium` and `chromium-driver` and exports both variables.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;

/// How long to wait for chromedriver to answer, for an element to appear, for a navigation to land.
const PATIENCE: Duration = Duration::from_secs(20);

/// The arguments every test browser gets: headless, no sandbox (CI runs as root in a container), nothing
/// that talks to the network on its own, a fixed window so screenshots are comparable.
const CHROMIUM_ARGS: &[&str] = &[
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1200,900",
];

/// A headless Chromium session and the chromedriver serving it.
pub struct Chromium {
    pub client: Client,
    /// Held for its `Drop` (kills chromedriver).
    _driver: Driver,
    port: u16,
    session: Option<String>,
    /// Held for its `Drop` (removes the profile).
    _dir: tempfile::TempDir,
}

impl std::fmt::Debug for Chromium {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chromium")
            .field("port", &self.port)
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
}

/// The chromedriver process, killed when dropped.
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn chromedriver_path() -> PathBuf {
    match std::env::var_os("AUTHBROKER_CHROMEDRIVER").filter(|v| !v.is_empty()) {
        Some(path) => PathBuf::from(path),
        None => panic!(
            "AUTHBROKER_CHROMEDRIVER is not set: the browser tests drive a real headless Chromium. \
             Run scripts/test, which installs Debian's chromium and chromium-driver and sets \
             AUTHBROKER_CHROMEDRIVER and AUTHBROKER_CHROMIUM (or set them yourself: \
             AUTHBROKER_CHROMEDRIVER=/usr/bin/chromedriver AUTHBROKER_CHROMIUM=/usr/bin/chromium)."
        ),
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn read_log(path: &Path) -> String {
    let log = std::fs::read_to_string(path).unwrap_or_default();
    let tail: Vec<&str> = log.lines().rev().take(40).collect();
    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
}

/// Whether chromedriver on `port` reports itself ready.
async fn driver_ready(http: &reqwest::Client, port: u16) -> bool {
    let Ok(response) = http
        .get(format!("http://127.0.0.1:{port}/status"))
        .send()
        .await
    else {
        return false;
    };
    let Ok(status) = response.json::<serde_json::Value>().await else {
        return false;
    };
    status["value"]["ready"] == serde_json::Value::Bool(true)
}

/// Spawns chromedriver on a free loopback port and waits until it answers. The port is picked before the
/// process binds it, so another process may take it in between: chromedriver then exits and we try again.
async fn spawn_driver(driver: &Path, log: &Path) -> (Driver, u16) {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    for _attempt in 0..3 {
        let port = free_port();
        let out = std::fs::File::create(log).unwrap();
        let err = out.try_clone().unwrap();
        let mut child = Driver(
            Command::new(driver)
                .arg(format!("--port={port}"))
                .stdin(Stdio::null())
                .stdout(out)
                .stderr(err)
                .spawn()
                .unwrap_or_else(|e| {
                    panic!(
                        "cannot start chromedriver {}: {e} (run scripts/test to install it)",
                        driver.display()
                    )
                }),
        );
        let deadline = Instant::now() + PATIENCE;
        loop {
            if driver_ready(&http, port).await {
                return (child, port);
            }
            if child.0.try_wait().unwrap().is_some() {
                break;
            }
            if Instant::now() > deadline {
                panic!(
                    "chromedriver did not answer on port {port} within {PATIENCE:?}:\n{}",
                    read_log(log)
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    panic!("chromedriver kept exiting on start:\n{}", read_log(log));
}

impl Chromium {
    /// Starts chromedriver and a headless Chromium with a fresh profile.
    pub async fn start() -> Self {
        let driver_path = chromedriver_path();
        let dir = tempfile::tempdir().unwrap();
        let profile = dir.path().join("profile");
        std::fs::create_dir(&profile).unwrap();
        let log = dir.path().join("chromedriver.log");
        let (driver, port) = spawn_driver(&driver_path, &log).await;

        let mut args: Vec<String> = CHROMIUM_ARGS.iter().map(|a| (*a).to_owned()).collect();
        args.push(format!("--user-data-dir={}", profile.display()));
        let mut options = serde_json::json!({ "args": args });
        if let Some(binary) = std::env::var_os("AUTHBROKER_CHROMIUM").filter(|v| !v.is_empty()) {
            options["binary"] = binary.to_string_lossy().into_owned().into();
        }
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("browserName".into(), "chrome".into());
        capabilities.insert("goog:chromeOptions".into(), options);

        let connected = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await;
        let client = connected.unwrap_or_else(|e| {
            panic!(
                "chromedriver could not start Chromium: {e}\n{}",
                read_log(&log)
            )
        });
        let session = client.session_id().await.unwrap();
        Self {
            client,
            _driver: driver,
            port,
            session,
            _dir: dir,
        }
    }

    /// Opens `url` and waits for it to load.
    pub async fn goto(&self, url: &str) {
        self.client
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("cannot open {url}: {e}"));
    }

    pub async fn current_url(&self) -> url::Url {
        self.client.current_url().await.unwrap()
    }

    /// Waits until the browser is on a URL satisfying `accept`; returns it.
    pub async fn wait_for_url(&self, what: &str, accept: impl Fn(&url::Url) -> bool) -> url::Url {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let url = self.current_url().await;
            if accept(&url) {
                return url;
            }
            if Instant::now() > deadline {
                panic!(
                    "the browser did not reach {what}; it is on {url}:\n{}",
                    self.body_text().await
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The element matching `css`, waiting for it to appear.
    pub async fn find(&self, css: &str) -> Element {
        match self
            .client
            .wait()
            .at_most(PATIENCE)
            .for_element(Locator::Css(css))
            .await
        {
            Ok(element) => element,
            Err(e) => {
                let url = self.current_url().await;
                panic!(
                    "no element {css} on {url} ({e}):\n{}",
                    self.body_text().await
                )
            }
        }
    }

    /// Whether an element matching `css` is on the page now (no waiting).
    pub async fn has(&self, css: &str) -> bool {
        !self
            .client
            .find_all(Locator::Css(css))
            .await
            .unwrap()
            .is_empty()
    }

    /// The visible text of the element matching `css`. When the page changes under it (a click's navigation
    /// landing between finding the element and reading it), it looks again on the new page.
    pub async fn text(&self, css: &str) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            match self.find(css).await.text().await {
                Ok(text) => return text,
                Err(e) if e.is_stale_element_reference() && Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("cannot read the text of {css}: {e}"),
            }
        }
    }

    /// The visible text of the whole page (for assertions and failure messages).
    pub async fn body_text(&self) -> String {
        match self.client.find(Locator::Css("body")).await {
            Ok(body) => body.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    /// Types `value` into the field matching `css`, replacing what it held.
    pub async fn fill(&self, css: &str, value: &str) {
        let field = self.find(css).await;
        field.clear().await.unwrap();
        field.send_keys(value).await.unwrap();
    }

    /// Clicks the element matching `css` (a submit button waits for the next page to load).
    pub async fn click(&self, css: &str) {
        self.find(css)
            .await
            .click()
            .await
            .unwrap_or_else(|e| panic!("cannot click {css}: {e}"));
    }

    /// Fills in and submits the site's login form the browser is on (WordPress's field ids `log`, `pwd`,
    /// `wp-submit`).
    pub async fn log_in(&self, login: &str, password: &str) {
        self.fill("#log", login).await;
        self.fill("#pwd", password).await;
        self.click("#wp-submit").await;
    }

    /// Saves a PNG of the viewport as `target/screenshots/<name>`; returns its path.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.client.screenshot().await.unwrap();
        assert!(
            png.starts_with(b"\x89PNG\r\n\x1a\n"),
            "the screenshot {name} is not a PNG"
        );
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, png).unwrap();
        eprintln!("screenshot: {}", path.display());
        path
    }
}

impl Drop for Chromium {
    fn drop(&mut self) {
        // Ending the session makes chromedriver quit Chromium; killing chromedriver alone (which the `Driver`
        // field does next) would leave the browser running. A blocking call on purpose: drop cannot await, and
        // it must also run when a test panicked.
        if let Some(session) = self.session.take() {
            delete_session(self.port, &session);
        }
    }
}

/// `DELETE /session/{id}` to chromedriver over a plain blocking socket.
fn delete_session(port: u16, session: &str) {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return;
    };
    let _ = stream.set_read_timeout(Some(PATIENCE));
    let _ = stream.set_write_timeout(Some(PATIENCE));
    let request = format!(
        "DELETE /session/{session} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\
         Content-Length: 0\r\nConnection: close\r\n\r\n"
    );
    if stream.write_all(request.as_bytes()).is_err() {
        return;
    }
    // chromedriver answers once the browser has quit; it keeps the connection open, so read exactly one
    // reply (headers, then `Content-Length` bytes) rather than to the end of the stream.
    let mut reply = Vec::new();
    let mut chunk = [0_u8; 4096];
    while !reply_complete(&reply) {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => reply.extend_from_slice(&chunk[..n]),
        }
    }
}

fn reply_complete(reply: &[u8]) -> bool {
    let Some(end) = reply.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&reply[..end]).to_ascii_lowercase();
    let length = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    reply.len() >= end + 4 + length
}

/// `target/screenshots` of the workspace: under `$CARGO_TARGET_DIR` when it is set.
pub fn screenshot_dir() -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .unwrap()
        .to_path_buf();
    let target = match std::env::var_os("CARGO_TARGET_DIR").filter(|v| !v.is_empty()) {
        Some(dir) => workspace.join(dir),
        None => workspace.join("target"),
    };
    target.join("screenshots")
}
