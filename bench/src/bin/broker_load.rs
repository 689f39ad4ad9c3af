//! `authbroker-broker-load`: the broker benchmark (BENCHMARKS.md, "Broker: held connections and brokered
//! connections per second"), driven by `bench/run-broker-bench.sh`.
//!
//! * `fake-site` serves a minimal site on loopback: `HEAD`/`GET /` link to a REST index whose
//!   `authentication.broker` is `/connect`, and `POST /connect` answers 202 and never verifies, so every
//!   R1 a broker accepts for it stays held until the broker's timeout or the client leaves.
//! * `setup` logs in to the broker's portal, creates an API token and registers apps through the JSON API;
//!   prints one `client_id client_secret` line per app.
//! * `hold` opens R1 connections (one socket each, every request freshly signed), keeps them open and
//!   samples the broker's `VmRSS`/`VmHWM` from `/proc/<pid>/status` at the given counts.
//! * `flows` runs complete R1 flows (credentials received) with a fixed concurrency for a bounded time and
//!   reports connections per second and latency percentiles.
//!
//! Loopback only: every URL given must name 127.0.0.1, ::1 or localhost.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use authbroker_oauth1::{SignatureMethod, Signer};
use clap::{Args, Parser, Subcommand};
use rand::Rng;
use rand::distributions::Alphanumeric;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

#[derive(Debug, Parser)]
#[command(name = "authbroker-broker-load", about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve a fake site whose connection endpoint answers 202 and never verifies.
    FakeSite(FakeSiteArgs),
    /// Register apps at a broker (portal login, API token, JSON API); prints `client_id client_secret`.
    Setup(SetupArgs),
    /// Open R1 connections, keep them held and sample the broker's memory.
    Hold(HoldArgs),
    /// Run complete R1 flows with a fixed concurrency and report connections per second.
    Flows(FlowsArgs),
}

#[derive(Debug, Args)]
struct FakeSiteArgs {
    #[arg(long, default_value = "127.0.0.1:18181")]
    listen: SocketAddr,
}

#[derive(Debug, Args)]
struct SetupArgs {
    /// The broker's home URL (http(s)://127.0.0.1:PORT).
    #[arg(long)]
    broker: String,
    /// PEM of the CA that issued the broker's certificate (when it serves HTTPS).
    #[arg(long)]
    ca: Option<PathBuf>,
    #[arg(long)]
    email: String,
    #[arg(long, env = "AUTHBROKER_ADMIN_PASSWORD", hide_env_values = true)]
    password: String,
    /// How many apps to register.
    #[arg(long, default_value_t = 10)]
    apps: usize,
}

#[derive(Debug, Args)]
struct HoldArgs {
    /// The broker's home URL (plain http on loopback).
    #[arg(long)]
    broker: String,
    /// The `server_url` every R1 names (the fake site).
    #[arg(long)]
    server_url: String,
    /// File of `client_id client_secret` lines (from `setup`); connections take the apps in turn.
    #[arg(long)]
    apps: PathBuf,
    /// The broker's process id, for /proc/<pid>/status.
    #[arg(long)]
    pid: u32,
    /// Counts of held connections at which to sample, ascending; the last is the total.
    #[arg(long, value_delimiter = ',', default_value = "0,1000,5000,10000")]
    checkpoints: Vec<usize>,
    /// Connections being opened at once.
    #[arg(long, default_value_t = 256)]
    parallel: usize,
    /// Seconds to wait at each checkpoint before sampling (the broker finishes its R4 requests).
    #[arg(long, default_value_t = 3.0)]
    settle: f64,
    /// Give up if the whole run takes longer than this many seconds.
    #[arg(long, default_value_t = 300.0)]
    limit: f64,
}

#[derive(Debug, Args)]
struct FlowsArgs {
    /// The broker's home URL (https://127.0.0.1:PORT).
    #[arg(long)]
    broker: String,
    /// PEM of the CA that issued the broker's certificate.
    #[arg(long)]
    ca: Option<PathBuf>,
    /// The `server_url` every R1 names (our site).
    #[arg(long)]
    server_url: String,
    /// File of `client_id client_secret` lines (from `setup`); workers take the apps in turn.
    #[arg(long)]
    apps: PathBuf,
    /// Flows in flight at once.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Seconds to measure (after the warm-up).
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds of flows before measuring.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Stop after this many flows in all, whatever the duration.
    #[arg(long, default_value_t = 1_000_000)]
    max_flows: u64,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::FakeSite(args) => fake_site(args).await,
            Command::Setup(args) => setup(args).await,
            Command::Hold(args) => hold(args).await,
            Command::Flows(args) => flows(args).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Refuses URLs that are not on loopback.
fn loopback(url: &str) -> Result<url::Url, String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("{url:?}: {e}"))?;
    let ok = match parsed.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d == "localhost",
        None => false,
    };
    if !ok || !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!("{url:?}: only http(s) on loopback is allowed"));
    }
    Ok(parsed)
}

fn read_apps(path: &PathBuf) -> Result<Vec<(String, String)>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let apps: Vec<(String, String)> = text
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            Some((words.next()?.to_owned(), words.next()?.to_owned()))
        })
        .collect();
    if apps.is_empty() {
        return Err(format!("{}: no apps", path.display()));
    }
    Ok(apps)
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn nonce() -> String {
    rand::thread_rng()
        .sample_iter(Alphanumeric)
        .take(32)
        .map(char::from)
        .collect()
}

/// The Authorization header of an R1 to `connect_url` for `server_url`.
fn sign_r1(connect_url: &str, app: &(String, String), server_url: &str) -> Result<String, String> {
    let form = [("server_url".to_owned(), server_url.to_owned())];
    Signer::new(SignatureMethod::HmacSha1, &app.0, &app.1)
        .sign("POST", connect_url, &form, &nonce(), now_secs())
        .map(|h| h.to_header_value())
        .map_err(|e| format!("signing: {e:?}"))
}

fn form_encode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

// ---- raw sockets (tokio's `net` feature only: readiness plus try_read/try_write) ----

async fn write_all(stream: &TcpStream, mut bytes: &[u8]) -> std::io::Result<()> {
    while !bytes.is_empty() {
        stream.writable().await?;
        match stream.try_write(bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Reads into `buf` until it holds `want` bytes or the headers end (`want` = None); `Ok(false)` on EOF.
async fn read_more(stream: &TcpStream, buf: &mut Vec<u8>) -> std::io::Result<bool> {
    let mut chunk = [0u8; 4096];
    loop {
        stream.readable().await?;
        match stream.try_read(&mut chunk) {
            Ok(0) => return Ok(false),
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                return Ok(true);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
}

fn header_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4)
}

// ---- fake-site ----

async fn fake_site(args: FakeSiteArgs) -> Result<(), String> {
    if !args.listen.ip().is_loopback() {
        return Err("--listen must be a loopback address".into());
    }
    let listener = TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("bind {}: {e}", args.listen))?;
    let base = format!("http://{}", args.listen);
    let index = format!(
        r#"{{"name":"fake site","url":"{base}","home":"{base}","namespaces":["wp/v2"],"authentication":{{"broker":"{base}/connect"}},"routes":{{}}}}"#
    );
    let received = Arc::new(AtomicU64::new(0));
    println!("fake site listening on {base}");
    {
        let received = received.clone();
        tokio::spawn(async move {
            let mut last = 0;
            loop {
                tokio::time::sleep(Duration::from_secs(5)).await;
                let now = received.load(Ordering::Relaxed);
                if now != last {
                    eprintln!("fake site: {now} connection requests received");
                    last = now;
                }
            }
        });
    }
    let index: Arc<str> = index.into();
    let base: Arc<str> = base.into();
    loop {
        let (stream, _) = listener
            .accept()
            .await
            .map_err(|e| format!("accept: {e}"))?;
        let index = index.clone();
        let base = base.clone();
        let received = received.clone();
        tokio::spawn(async move {
            let _ = serve_site_connection(stream, &index, &base, &received).await;
        });
    }
}

async fn serve_site_connection(
    stream: TcpStream,
    index: &str,
    base: &str,
    received: &AtomicU64,
) -> std::io::Result<()> {
    let mut buf = Vec::new();
    loop {
        let end = loop {
            if let Some(end) = header_end(&buf) {
                break end;
            }
            if !read_more(&stream, &mut buf).await? {
                return Ok(());
            }
        };
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        let length: usize = head
            .lines()
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.trim().parse().ok())
            .unwrap_or(0);
        while buf.len() < end + length {
            if !read_more(&stream, &mut buf).await? {
                return Ok(());
            }
        }
        buf.drain(..end + length);
        let mut words = head.split_whitespace();
        let method = words.next().unwrap_or("");
        let path = words.next().unwrap_or("");
        let response = match (method, path) {
            ("HEAD" | "GET", "/") => format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nLink: <{base}/wp-json/>; rel=\"https://api.w.org/\"\r\nContent-Length: 0\r\n\r\n"
            ),
            ("GET", "/wp-json/") => format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{index}",
                index.len()
            ),
            ("POST", "/connect") => {
                received.fetch_add(1, Ordering::Relaxed);
                "HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n".to_owned()
            }
            _ => "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_owned(),
        };
        write_all(&stream, response.as_bytes()).await?;
    }
}

// ---- setup ----

fn client(ca: Option<&PathBuf>, cookies: bool) -> Result<reqwest::Client, String> {
    let mut builder = reqwest::Client::builder()
        .cookie_store(cookies)
        .redirect(reqwest::redirect::Policy::limited(5))
        .timeout(Duration::from_secs(60));
    if let Some(path) = ca {
        let pem = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let cert = reqwest::Certificate::from_pem(&pem).map_err(|e| format!("CA: {e}"))?;
        builder = builder.add_root_certificate(cert);
    }
    builder.build().map_err(|e| format!("client: {e}"))
}

/// The value of the first hidden `_csrf` field of a page.
fn csrf_field(html: &str) -> Result<String, String> {
    let at = html
        .find(r#"name="_csrf" value=""#)
        .ok_or("no _csrf field on the page")?;
    let rest = &html[at + r#"name="_csrf" value=""#.len()..];
    Ok(rest[..rest.find('"').unwrap_or(0)].to_owned())
}

async fn page(client: &reqwest::Client, url: &str) -> Result<String, String> {
    let response = client
        .get(url)
        .send()
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    if !response.status().is_success() {
        return Err(format!("{url}: {}", response.status()));
    }
    response.text().await.map_err(|e| format!("{url}: {e}"))
}

async fn post_form(
    client: &reqwest::Client,
    url: &str,
    form: &[(&str, &str)],
) -> Result<String, String> {
    let response = client
        .post(url)
        .form(form)
        .send()
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    if !response.status().is_success() {
        return Err(format!("{url}: {}", response.status()));
    }
    response.text().await.map_err(|e| format!("{url}: {e}"))
}

async fn setup(args: SetupArgs) -> Result<(), String> {
    let base = loopback(&args.broker)?;
    let base = base.as_str().trim_end_matches('/');
    let http = client(args.ca.as_ref(), true)?;
    let login = page(&http, &format!("{base}/login")).await?;
    let csrf = csrf_field(&login)?;
    post_form(
        &http,
        &format!("{base}/login"),
        &[
            ("email", args.email.as_str()),
            ("password", args.password.as_str()),
            ("_csrf", csrf.as_str()),
        ],
    )
    .await?;
    let tokens = page(&http, &format!("{base}/tokens")).await?;
    let csrf = csrf_field(&tokens)?;
    let shown = post_form(
        &http,
        &format!("{base}/tokens"),
        &[("label", "broker benchmark"), ("_csrf", csrf.as_str())],
    )
    .await?;
    let marker = r#"<code id="new-token">"#;
    let at = shown
        .find(marker)
        .ok_or("the token page did not show a new token (login failed?)")?;
    let rest = &shown[at + marker.len()..];
    let token = rest[..rest.find('<').unwrap_or(0)].to_owned();
    for i in 0..args.apps {
        let body = format!(
            r#"{{"name":"Benchmark app {i}","description":"Broker benchmark","callback_url":"http://127.0.0.1:9/callback"}}"#
        );
        let response = http
            .post(format!("{base}/api/v1/apps"))
            .bearer_auth(&token)
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| format!("register app: {e}"))?;
        let status = response.status();
        let body = response
            .text()
            .await
            .map_err(|e| format!("register app: {e}"))?;
        let field = |name: &str| {
            json_string(&body, name).ok_or(format!("register app: {status}: no {name} in {body}"))
        };
        println!("{} {}", field("client_id")?, field("client_secret")?);
    }
    Ok(())
}

/// The value of a top-level string field `"name":"value"` of a JSON object whose strings need no escapes
/// (ids, secrets, tokens, error codes).
fn json_string(body: &str, name: &str) -> Option<String> {
    let marker = format!("\"{name}\":\"");
    let at = body.find(&marker)? + marker.len();
    let rest = &body[at..];
    Some(rest[..rest.find('"')?].to_owned())
}

// ---- hold ----

fn proc_status(pid: u32) -> Result<(u64, u64), String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("/proc/{pid}/status: {e}"))?;
    let field = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Ok((field("VmRSS:"), field("VmHWM:")))
}

/// Opens one R1 connection and returns its socket once the 200 and its headers arrived.
async fn open_held(
    addr: SocketAddr,
    connect_url: String,
    host: String,
    path: String,
    app: (String, String),
    server_url: String,
) -> Result<TcpStream, String> {
    let authorization = sign_r1(&connect_url, &app, &server_url)?;
    let body = format!("server_url={}", form_encode(&server_url));
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: {authorization}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    write_all(&stream, request.as_bytes())
        .await
        .map_err(|e| format!("write: {e}"))?;
    let mut buf = Vec::new();
    while header_end(&buf).is_none() {
        if !read_more(&stream, &mut buf)
            .await
            .map_err(|e| format!("read: {e}"))?
        {
            return Err("the broker closed the connection".into());
        }
    }
    if !buf.starts_with(b"HTTP/1.1 200") {
        return Err(format!(
            "not held: {}",
            String::from_utf8_lossy(&buf).lines().next().unwrap_or("")
        ));
    }
    Ok(stream)
}

async fn hold(args: HoldArgs) -> Result<(), String> {
    let broker = loopback(&args.broker)?;
    loopback(&args.server_url)?;
    if broker.scheme() != "http" {
        return Err("hold speaks plain HTTP: give the broker's http:// URL".into());
    }
    let apps = read_apps(&args.apps)?;
    let addr = broker
        .socket_addrs(|| None)
        .map_err(|e| format!("{e}"))?
        .into_iter()
        .next()
        .ok_or("no address")?;
    let host = format!("{}:{}", broker.host_str().unwrap_or(""), addr.port());
    let connect_url = format!("{}/broker/connect", args.broker.trim_end_matches('/'));
    let path = "/broker/connect".to_owned();
    let deadline = Instant::now() + Duration::from_secs_f64(args.limit);
    let settle = Duration::from_secs_f64(args.settle);
    let mut held: Vec<TcpStream> = Vec::new();
    let mut next_app = 0usize;
    let started = Instant::now();
    println!("held\tVmRSS_kB\tVmHWM_kB\tsince_start_s");
    let mut previous: Option<(usize, u64)> = None;
    let mut baseline: Option<(usize, u64)> = None;
    for &target in &args.checkpoints {
        while held.len() < target {
            if Instant::now() > deadline {
                return Err(format!("time limit reached with {} held", held.len()));
            }
            let batch = (target - held.len()).min(args.parallel);
            let mut set = JoinSet::new();
            for _ in 0..batch {
                let app = apps[next_app % apps.len()].clone();
                next_app += 1;
                set.spawn(open_held(
                    addr,
                    connect_url.clone(),
                    host.clone(),
                    path.clone(),
                    app,
                    args.server_url.clone(),
                ));
            }
            while let Some(done) = set.join_next().await {
                held.push(done.map_err(|e| format!("task: {e}"))??);
            }
        }
        tokio::time::sleep(settle).await;
        let (rss, hwm) = proc_status(args.pid)?;
        println!(
            "{}\t{rss}\t{hwm}\t{:.1}",
            held.len(),
            started.elapsed().as_secs_f64()
        );
        if let Some((n0, rss0)) = previous
            && held.len() > n0
        {
            println!(
                "  step {n0}→{}: {:.2} kB per held connection",
                held.len(),
                (rss as f64 - rss0 as f64) / (held.len() - n0) as f64
            );
        }
        if baseline.is_none() {
            baseline = Some((held.len(), rss));
        }
        previous = Some((held.len(), rss));
    }
    if let (Some((n0, rss0)), Some((n1, rss1))) = (baseline, previous)
        && n1 > n0
    {
        println!(
            "overall {n0}→{n1}: {:.2} kB per held connection ({:.1} MB resident at {n1})",
            (rss1 as f64 - rss0 as f64) / (n1 - n0) as f64,
            rss1 as f64 / 1024.0
        );
    }
    // Every connection must still be held: none got an answer body or was closed.
    let mut probe = [0u8; 1];
    let finished = held
        .iter()
        .filter(|s| !matches!(s.try_read(&mut probe), Err(ref e) if e.kind() == std::io::ErrorKind::WouldBlock))
        .count();
    println!("still held at the end: {}", held.len() - finished);
    drop(held);
    tokio::time::sleep(settle).await;
    let (rss, hwm) = proc_status(args.pid)?;
    println!("released\t{rss}\t{hwm}");
    if finished > 0 {
        return Err(format!(
            "{finished} connections were answered or closed early"
        ));
    }
    Ok(())
}

// ---- flows ----

async fn flows(args: FlowsArgs) -> Result<(), String> {
    loopback(&args.broker)?;
    loopback(&args.server_url)?;
    let apps = Arc::new(read_apps(&args.apps)?);
    let http = client(args.ca.as_ref(), false)?;
    let connect_url: Arc<str> =
        format!("{}/broker/connect", args.broker.trim_end_matches('/')).into();
    let server_url: Arc<str> = args.server_url.clone().into();
    let warmup = Duration::from_secs_f64(args.warmup);
    let duration = Duration::from_secs_f64(args.duration);
    let started = Instant::now();
    let measure_from = started + warmup;
    let stop_at = measure_from + duration;
    let issued = Arc::new(AtomicU64::new(0));
    let mut set = JoinSet::new();
    for worker in 0..args.concurrency {
        let http = http.clone();
        let apps = apps.clone();
        let connect_url = connect_url.clone();
        let server_url = server_url.clone();
        let issued = issued.clone();
        let max = args.max_flows;
        set.spawn(async move {
            let mut latencies = Vec::new();
            let mut failures: Vec<String> = Vec::new();
            let mut i = worker;
            while Instant::now() < stop_at && issued.fetch_add(1, Ordering::Relaxed) < max {
                let app = &apps[i % apps.len()];
                i += 1;
                let t0 = Instant::now();
                let outcome = one_flow(&http, &connect_url, app, &server_url).await;
                let t1 = Instant::now();
                if t0 >= measure_from && t1 <= stop_at {
                    match outcome {
                        Ok(()) => latencies.push(t1 - t0),
                        Err(e) => failures.push(e),
                    }
                } else if let Err(e) = outcome
                    && failures.len() < 1000
                {
                    failures.push(format!("(outside the window) {e}"));
                }
            }
            (latencies, failures)
        });
    }
    let mut latencies = Vec::new();
    let mut failures = Vec::new();
    while let Some(done) = set.join_next().await {
        let (l, f) = done.map_err(|e| format!("task: {e}"))?;
        latencies.extend(l);
        failures.extend(f);
    }
    let window = duration.min(Instant::now().saturating_duration_since(measure_from));
    latencies.sort();
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p).ceil() as usize).saturating_sub(1))
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    println!(
        "flows: concurrency {}, measured {:.1} s: {} completed (credentials received), {:.1} connections/s; latency p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms; {} failed",
        args.concurrency,
        window.as_secs_f64(),
        latencies.len(),
        latencies.len() as f64 / window.as_secs_f64().max(f64::EPSILON),
        pct(0.50),
        pct(0.90),
        pct(0.99),
        pct(1.0),
        failures.len()
    );
    let mut counts: HashMap<String, usize> = HashMap::new();
    for f in &failures {
        *counts.entry(f.chars().take(200).collect()).or_default() += 1;
    }
    for (f, n) in counts {
        println!("  {n} × {f}");
    }
    if failures.is_empty() && !latencies.is_empty() {
        Ok(())
    } else {
        Err("some flows failed or none completed".into())
    }
}

/// One R1, read to the end: success means the body carries `client_token` and `client_secret`.
async fn one_flow(
    http: &reqwest::Client,
    connect_url: &str,
    app: &(String, String),
    server_url: &str,
) -> Result<(), String> {
    let authorization = sign_r1(connect_url, app, server_url)?;
    let response = http
        .post(connect_url)
        .header("Authorization", authorization)
        .form(&[("server_url", server_url)])
        .send()
        .await
        .map_err(|e| format!("send: {e}"))?;
    let status = response.status();
    let body = response.text().await.map_err(|e| format!("body: {e}"))?;
    if status == 200
        && json_string(&body, "client_token").is_some()
        && json_string(&body, "client_secret").is_some()
    {
        Ok(())
    } else {
        Err(format!(
            "{status}: {}",
            json_string(&body, "code").unwrap_or_else(|| body.chars().take(120).collect())
        ))
    }
}
