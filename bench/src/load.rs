//! The load loop: N connections, each sending freshly signed requests back to back.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use authbroker_oauth1::{SignatureMethod, Signer};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper_util::rt::TokioIo;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::net::TcpStream;

use crate::{Kind, RunArgs, loopback_url, seconds};

/// Everything a connection needs, shared.
#[derive(Debug)]
struct Plan {
    addr: String,
    host: String,
    /// Request target (path) and the absolute URI that is signed.
    target: String,
    signed_uri: String,
    kind: Kind,
    consumer_key: String,
    consumer_secret: String,
    token: String,
    token_secret: String,
    measure_from: Instant,
    until: Instant,
    /// Requests that may still be started when a count was given.
    budget: Option<AtomicU64>,
}

/// What one connection saw.
#[derive(Debug, Default)]
struct Tally {
    /// Latencies (µs) of requests completed inside the measurement window.
    latencies: Vec<u32>,
    /// Answers by status, inside the window.
    statuses: BTreeMap<u16, u64>,
    /// Transport failures (connect, send, receive), anywhere.
    errors: u64,
    /// Non-2xx answers during the warm-up (not counted in the figures, but reported and fatal).
    warmup_failures: u64,
    first_failure: Option<String>,
}

pub(crate) async fn run(args: RunArgs) -> Result<ExitCode, String> {
    let url = loopback_url(&args.base_url)?;
    if args.connections == 0 {
        return Err("--connections must be at least 1".into());
    }
    let warmup = seconds(args.warmup, "warmup")?;
    let duration = seconds(args.duration, "duration")?;
    let host = url.host_str().ok_or("--base-url has no host")?;
    let port = url
        .port_or_known_default()
        .ok_or("--base-url has no port")?;
    let host_header = match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    };
    let prefix = url.path().trim_end_matches('/');
    let target = match args.kind {
        Kind::GetMe => format!("{prefix}/wp-json/wp/v2/users/me"),
        Kind::PostJson => format!("{prefix}/wp-json/wp/v2/posts"),
    };
    let signed_uri = format!("{}://{}{}", url.scheme(), host_header, target);
    let start = Instant::now();
    let plan = Arc::new(Plan {
        addr: format!("{host}:{port}"),
        host: host_header,
        target,
        signed_uri,
        kind: args.kind,
        consumer_key: args.consumer_key,
        consumer_secret: args.consumer_secret,
        token: args.token,
        token_secret: args.token_secret,
        measure_from: start + warmup,
        until: start + warmup + duration,
        budget: args.requests.map(AtomicU64::new),
    });
    let workers: Vec<_> = (0..args.connections)
        .map(|i| tokio::spawn(connection(plan.clone(), i)))
        .collect();
    let mut total = Tally::default();
    for worker in workers {
        let tally = worker
            .await
            .map_err(|e| format!("a connection task failed: {e}"))?;
        total.latencies.extend(tally.latencies);
        for (status, n) in tally.statuses {
            *total.statuses.entry(status).or_default() += n;
        }
        total.errors += tally.errors;
        total.warmup_failures += tally.warmup_failures;
        if total.first_failure.is_none() {
            total.first_failure = tally.first_failure;
        }
    }
    // A count-bounded run may end before the window does.
    let window = (Instant::now().min(plan.until))
        .saturating_duration_since(plan.measure_from)
        .as_secs_f64();
    Ok(report(
        &args.kind,
        args.connections,
        args.threads,
        window,
        total,
    ))
}

fn report(kind: &Kind, connections: usize, threads: usize, window: f64, mut t: Tally) -> ExitCode {
    t.latencies.sort_unstable();
    let completed: u64 = t.statuses.values().sum();
    let non_2xx: u64 = t
        .statuses
        .iter()
        .filter(|(s, _)| !(200..300).contains(*s))
        .map(|(_, n)| n)
        .sum();
    let pct = |p: f64| -> f64 {
        if t.latencies.is_empty() {
            return 0.0;
        }
        let rank = ((p / 100.0) * t.latencies.len() as f64).ceil() as usize;
        f64::from(t.latencies[rank.clamp(1, t.latencies.len()) - 1]) / 1000.0
    };
    let rps = if window > 0.0 {
        completed as f64 / window
    } else {
        0.0
    };
    let kind = match kind {
        Kind::GetMe => "get-me",
        Kind::PostJson => "post-json",
    };
    let statuses = t
        .statuses
        .iter()
        .map(|(s, n)| format!("{s}:{n}"))
        .collect::<Vec<_>>()
        .join(",");
    println!(
        "RESULT kind={kind} connections={connections} client_threads={threads} window_s={window:.2} requests={completed} rps={rps:.0} p50_ms={:.3} p90_ms={:.3} p99_ms={:.3} max_ms={:.3} non_2xx={non_2xx} transport_errors={} warmup_failures={} statuses={statuses}",
        pct(50.0),
        pct(90.0),
        pct(99.0),
        pct(100.0),
        t.errors,
        t.warmup_failures,
    );
    if let Some(failure) = &t.first_failure {
        eprintln!("first failure: {failure}");
    }
    if non_2xx > 0 || t.errors > 0 || t.warmup_failures > 0 || completed == 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// One keep-alive connection; reconnects after a transport failure.
async fn connection(plan: Arc<Plan>, index: usize) -> Tally {
    let mut tally = Tally::default();
    let mut rng = StdRng::from_entropy();
    let mut sequence: u64 = 0;
    'connect: while Instant::now() < plan.until {
        let mut sender = match open(&plan.addr).await {
            Ok(sender) => sender,
            Err(err) => {
                tally.errors += 1;
                tally.first_failure.get_or_insert(err);
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        while Instant::now() < plan.until {
            if let Some(budget) = &plan.budget {
                let claimed =
                    budget.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
                if claimed.is_err() {
                    break 'connect;
                }
            }
            sequence += 1;
            let request = match build(&plan, &mut rng, index, sequence) {
                Ok(request) => request,
                Err(err) => {
                    tally.errors += 1;
                    tally.first_failure.get_or_insert(err);
                    break 'connect;
                }
            };
            let started = Instant::now();
            let outcome = async {
                sender.ready().await?;
                let response = sender.send_request(request).await?;
                let status = response.status().as_u16();
                let body = response.into_body().collect().await?.to_bytes();
                Ok::<_, hyper::Error>((status, body))
            }
            .await;
            let done = Instant::now();
            match outcome {
                Ok((status, body)) => {
                    let ok = (200..300).contains(&status);
                    if !ok {
                        tally.first_failure.get_or_insert_with(|| {
                            format!("HTTP {status}: {}", String::from_utf8_lossy(&body))
                        });
                    }
                    if started >= plan.measure_from && done <= plan.until {
                        let micros = u32::try_from(done.duration_since(started).as_micros())
                            .unwrap_or(u32::MAX);
                        tally.latencies.push(micros);
                        *tally.statuses.entry(status).or_default() += 1;
                    } else if !ok {
                        tally.warmup_failures += 1;
                    }
                }
                Err(err) => {
                    tally.errors += 1;
                    tally
                        .first_failure
                        .get_or_insert_with(|| format!("transport: {err}"));
                    continue 'connect;
                }
            }
        }
        break;
    }
    tally
}

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

async fn open(addr: &str) -> Result<Sender, String> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect {addr}: {e}"))?;
    stream
        .set_nodelay(true)
        .map_err(|e| format!("TCP_NODELAY: {e}"))?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// A request signed now with a fresh 128-bit nonce.
fn build(
    plan: &Plan,
    rng: &mut StdRng,
    connection: usize,
    sequence: u64,
) -> Result<Request<Full<Bytes>>, String> {
    let nonce = format!("{:032x}", rng.r#gen::<u128>());
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .as_secs();
    let timestamp = i64::try_from(now).map_err(|e| e.to_string())?;
    let signer = Signer::new(
        SignatureMethod::HmacSha1,
        &plan.consumer_key,
        &plan.consumer_secret,
    )
    .token(&plan.token, &plan.token_secret);
    let (method, body) = match plan.kind {
        Kind::GetMe => ("GET", Bytes::new()),
        Kind::PostJson => (
            "POST",
            Bytes::from(format!(
                r#"{{"title":"Load test {connection}-{sequence}","content":"Posted by authbroker-load.","status":"draft"}}"#
            )),
        ),
    };
    let header = signer
        .sign(method, &plan.signed_uri, &[], &nonce, timestamp)
        .map_err(|e| format!("signing: {e}"))?;
    let mut builder = Request::builder()
        .method(method)
        .uri(&plan.target)
        .header(HOST, &plan.host)
        .header(AUTHORIZATION, header.to_header_value());
    if plan.kind == Kind::PostJson {
        builder = builder.header(CONTENT_TYPE, "application/json");
    }
    builder.body(Full::new(body)).map_err(|e| e.to_string())
}
