//! 1,000 R1 connections held at once by one broker (over TLS), against four fake sites that verify each
//! connection request 1–2 s after the last of the 1,000 arrived, so every connection is pending at the same
//! time. Each site issues credentials derived from the verifier and remembers whom it issued them to; every
//! client must get exactly its own site's credentials for its own app, and all within a bounded time.
//!
//! Each held R1 costs the process a client and a server socket, plus the broker's outbound connections and
//! the sites' verification requests: about 5,000 descriptors at the peak. The test raises the soft
//! open-file limit to the hard limit first (the `rlimit` crate: a safe `setrlimit`) and fails with a clear
//! message if that is still too low.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use authbroker_store::sqlx::{self, Row};
use authbroker_testkit::TestCa;
use common::{Gate, r1, register_apps, start_broker, verifying_site};

const CONNECTIONS: usize = 1_000;
const SITES: usize = 4;
const APPS: usize = 5;
/// Descriptors the test needs at its peak, with room to spare.
const FILES_NEEDED: u64 = 6 * CONNECTIONS as u64;

/// 1–2 s, spread over the requests a site received.
fn delay(n: usize) -> Duration {
    Duration::from_millis(1_000 + (n as u64 * 397) % 1_000)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_connections_held_at_once() {
    let limit = rlimit::increase_nofile_limit(FILES_NEEDED).unwrap();
    assert!(
        limit >= FILES_NEEDED,
        "the open-file limit is {limit} (hard limit included), {FILES_NEEDED} are needed: raise it with ulimit -Hn"
    );

    let ca = TestCa::new("concurrency CA");
    let broker = start_broker(&ca, |config| {
        config.connect_timeout_secs = 45;
        // High enough for this burst, still exercised on every request.
        config.rate_limits.per_app_per_minute = 10_000;
        config.rate_limits.per_server_per_minute = 10_000;
        // Every client here is 127.0.0.1, which the production listener now reports as the peer.
        config.rate_limits.per_ip_per_minute = 10_000;
    })
    .await;
    let gate = Gate::new(CONNECTIONS);
    let mut sites = Vec::new();
    for _ in 0..SITES {
        let (base, issued) =
            verifying_site(ca.client(), broker.confirm_url(), delay, Some(gate.clone())).await;
        sites.push((format!("{base}/"), issued));
    }
    let apps = register_apps(&broker.state, "Concurrent", APPS).await;

    // Watch how many connections wait at once.
    let peak = Arc::new(AtomicUsize::new(0));
    let all_held_after = Arc::new(std::sync::Mutex::new(None::<Duration>));
    let started = Instant::now();
    let sampler = {
        let state = broker.state.clone();
        let peak = peak.clone();
        let all_held_after = all_held_after.clone();
        tokio::spawn(async move {
            loop {
                let waiting = state.pending().len();
                peak.fetch_max(waiting, Ordering::SeqCst);
                if waiting == CONNECTIONS {
                    all_held_after
                        .lock()
                        .unwrap()
                        .get_or_insert(started.elapsed());
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };

    let client = ca.client();
    let replies = futures_util::future::join_all((0..CONNECTIONS).map(|i| {
        let app = &apps[i % APPS];
        let site = i % SITES;
        let server_url = &sites[site].0;
        let client = &client;
        let broker = &broker;
        async move { (app, site, r1(client, broker, app, server_url).await) }
    }))
    .await;
    let elapsed = started.elapsed();
    sampler.abort();

    let mut tokens = HashSet::new();
    let mut failures = Vec::new();
    for (app, site, reply) in &replies {
        if reply.status != 200 {
            failures.push(format!("HTTP {}: {}", reply.status, reply.body));
            continue;
        }
        let value = reply.json();
        let (Some(token), Some(secret)) = (
            value["client_token"].as_str(),
            value["client_secret"].as_str(),
        ) else {
            failures.push(value.to_string());
            continue;
        };
        // Issued by the site this client named, for this client's app, with this secret.
        let accepted = sites[*site].1.accepted.lock().unwrap();
        match accepted.get(token) {
            Some((client_id, issued_secret)) => {
                assert_eq!(client_id, &app.client_id, "credentials for another app");
                assert_eq!(issued_secret, secret, "another secret");
            }
            None => failures.push(format!("site {site} never issued {token}")),
        }
        assert!(tokens.insert(token.to_owned()), "{token} handed out twice");
    }
    assert!(
        failures.is_empty(),
        "{} of {CONNECTIONS} failed, e.g. {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    assert_eq!(tokens.len(), CONNECTIONS);
    for (_, issued) in &sites {
        assert!(issued.refused.lock().unwrap().is_empty());
        assert_eq!(issued.requests.load(Ordering::SeqCst), CONNECTIONS / SITES);
    }
    assert_eq!(
        peak.load(Ordering::SeqCst),
        CONNECTIONS,
        "all were pending at once"
    );
    assert!(broker.state.pending().is_empty());
    let logged: i64 = sqlx::query("SELECT COUNT(*) AS n FROM connections WHERE result = 'success'")
        .fetch_one(broker.state.store().pool())
        .await
        .unwrap()
        .try_get("n")
        .unwrap();
    assert_eq!(logged, CONNECTIONS as i64);
    let all_held_after = all_held_after.lock().unwrap().unwrap();
    eprintln!(
        "{CONNECTIONS} connections: all held after {all_held_after:.2?}, all answered after {elapsed:.2?}"
    );
    assert!(elapsed < Duration::from_secs(60), "took {elapsed:?}");
}
