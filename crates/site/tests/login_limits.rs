//! Throttling of failed logins on `POST /login`, against a real site over real sockets: per account (both
//! backends), per client address (the production listener, which hands handlers the TCP peer), successes
//! never throttled. The timing (refill after the period) is covered by the unit tests of `accounts::limits`
//! and `authbroker_web::limits`, which pass the time in.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use authbroker_site::{Role, SystemClock, create_user, router};
use common::*;
use tokio::task::JoinSet;

/// Failed logins an account may have before it is locked (`accounts::limits::PER_LOGIN_BURST`).
const PER_LOGIN_BURST: usize = 10;
/// Failed logins one address may have in the per-address test (`login_failures_per_ip`; the default, 50,
/// would cost 50 argon2 verifications).
const PER_IP_BURST: u32 = 3;
/// A well-formed CSRF token, sent as the cookie and repeated in the form (double submit).
const CSRF: &str = "abcdefghijklmnopqrstuvwxyz012345";
const WRONG: &str = "not the password";
const LOCKED_ACCOUNT: &str = "Too many failed logins for this account; try again in 1 minute.";
const LOCKED_ADDRESS: &str = "Too many failed logins from your address; try again in 1 minute.";
const INCORRECT: &str = "Unknown username or incorrect password.";

/// A browser-like client without cookie store (each attempt carries the CSRF cookie itself) that does not
/// follow redirects.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// One `POST {base}{path}` of the login form.
async fn attempt_at(
    client: &reqwest::Client,
    base: &str,
    path: &str,
    login: &str,
    password: &str,
) -> Reply {
    send(
        client
            .post(format!("{base}{path}"))
            .header("Cookie", format!("ab_csrf={CSRF}"))
            .form(&[
                ("log", login),
                ("pwd", password),
                ("_csrf", CSRF),
                ("redirect_to", "/wp-admin/"),
            ]),
    )
    .await
}

async fn attempt(client: &reqwest::Client, base: &str, login: &str, password: &str) -> Reply {
    attempt_at(client, base, "/login", login, password).await
}

fn assert_logged_in(reply: &Reply, what: &str) {
    assert_eq!(reply.status, 303, "{what}: {}", reply.body);
    assert_eq!(reply.location(), "/wp-admin/", "{what}");
    assert!(
        reply
            .headers
            .get_all("set-cookie")
            .iter()
            .any(|c| c.to_str().unwrap().starts_with("ab_session=")),
        "{what}: a session starts"
    );
}

fn assert_incorrect(reply: &Reply, what: &str) {
    assert_eq!(reply.status, 401, "{what}: {}", reply.body);
    assert!(reply.body.contains(INCORRECT), "{what}: {}", reply.body);
}

/// A refused attempt: the login page again, 429, `Retry-After` within `max_secs`, `message`, the name kept,
/// no session.
fn assert_throttled(reply: &Reply, login: &str, message: &str, max_secs: u64, what: &str) {
    assert_eq!(reply.status, 429, "{what}: {}", reply.body);
    let retry_after: u64 = reply.header("retry-after").parse().unwrap();
    assert!(
        (1..=max_secs).contains(&retry_after),
        "{what}: Retry-After {retry_after}"
    );
    assert!(
        reply.content_type().starts_with("text/html"),
        "{what}: the login page"
    );
    assert!(reply.body.contains(message), "{what}: {}", reply.body);
    assert!(
        reply.body.contains(&format!("value=\"{login}\"")),
        "{what}: the name is kept"
    );
    assert!(
        reply.body.contains("name=\"pwd\""),
        "{what}: the form is there"
    );
    assert!(
        reply.headers.get("set-cookie").is_none(),
        "{what}: no session"
    );
}

#[tokio::test]
async fn ten_wrong_passwords_lock_the_account_even_against_the_right_password() {
    for backend in BACKENDS {
        let site = TestSite::start(backend).await;
        create_user(
            &site.state,
            "author",
            "Arthur Author",
            "author@site.example",
            "another good password",
            Role::Author,
        )
        .await
        .unwrap();
        let client = client();
        let admin = site.admin_login.as_str();
        for i in 1..=PER_LOGIN_BURST {
            let reply = attempt(&client, &site.base, admin, WRONG).await;
            assert_incorrect(&reply, &format!("{backend:?}: wrong password {i}"));
        }
        // The 11th attempt is refused before any verification, the right password notwithstanding.
        let reply = attempt(&client, &site.base, admin, &site.admin_password).await;
        assert_throttled(
            &reply,
            admin,
            LOCKED_ACCOUNT,
            60,
            &format!("{backend:?}: the right password after 10 wrong ones"),
        );
        // Refused attempts do not push the lockout further out; the name's case and spacing do not
        // escape it, nor does the WordPress path of the form.
        let again = attempt(&client, &site.base, admin, WRONG).await;
        assert_throttled(&again, admin, LOCKED_ACCOUNT, 60, "a 12th attempt");
        let first: u64 = reply.header("retry-after").parse().unwrap();
        let second: u64 = again.header("retry-after").parse().unwrap();
        assert!(second <= first, "{second} > {first}");
        let upper = attempt(&client, &site.base, " ADMIN ", &site.admin_password).await;
        assert_throttled(&upper, "ADMIN", LOCKED_ACCOUNT, 60, "ADMIN");
        let wp = attempt_at(
            &client,
            &site.base,
            "/wp-login.php",
            admin,
            &site.admin_password,
        )
        .await;
        assert_throttled(&wp, admin, LOCKED_ACCOUNT, 60, "/wp-login.php");
        // Another account is unaffected.
        let author = attempt(&client, &site.base, "author", "another good password").await;
        assert_logged_in(&author, "another account");
        site.cleanup().await;
    }
}

#[tokio::test]
async fn unknown_logins_spend_tokens_like_known_ones_even_concurrently() {
    let site = TestSite::start(Backend::Sqlite).await;
    let client = client();
    // Twelve guesses at once: every attempt reserves its token before the (slow) verification, so exactly
    // the burst gets verified and the rest is refused, however the requests interleave.
    let mut guesses = JoinSet::new();
    for i in 0..PER_LOGIN_BURST + 2 {
        let client = client.clone();
        let base = site.base.clone();
        guesses.spawn(async move { attempt(&client, &base, "ghost", &format!("guess {i}")).await });
    }
    let mut statuses = Vec::new();
    while let Some(reply) = guesses.join_next().await {
        let reply = reply.unwrap();
        match reply.status {
            401 => assert_incorrect(&reply, "a guess"),
            429 => assert_throttled(&reply, "ghost", LOCKED_ACCOUNT, 60, "a guess"),
            other => panic!("{other}: {}", reply.body),
        }
        statuses.push(reply.status);
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 401).count(),
        PER_LOGIN_BURST,
        "{statuses:?}"
    );
    // Locked exactly like an existing account would be.
    let reply = attempt(&client, &site.base, "ghost", "yet another guess").await;
    assert_throttled(&reply, "ghost", LOCKED_ACCOUNT, 60, "ghost");
    // The administrator is unaffected.
    let reply = attempt(&client, &site.base, &site.admin_login, &site.admin_password).await;
    assert_logged_in(&reply, "admin");
    site.cleanup().await;
}

#[tokio::test]
async fn successful_logins_never_throttle() {
    let site = TestSite::start(Backend::Sqlite).await;
    let client = client();
    let admin = site.admin_login.as_str();
    // Most of the burst gone…
    for i in 1..PER_LOGIN_BURST {
        let reply = attempt(&client, &site.base, admin, WRONG).await;
        assert_incorrect(&reply, &format!("wrong password {i}"));
    }
    // …then 20 successful logins in a row: none is refused and none spends a token.
    for i in 1..=20 {
        let reply = attempt(&client, &site.base, admin, &site.admin_password).await;
        assert_logged_in(&reply, &format!("login {i}"));
    }
    // And through the scripted user the other tests use.
    site.admin().log_in(&site.base).await;
    // The last failure of the burst is still there (it would be refused had the successes cost anything).
    let reply = attempt(&client, &site.base, admin, WRONG).await;
    assert_incorrect(&reply, "the 10th wrong password");
    site.cleanup().await;
}

#[tokio::test]
async fn one_address_guessing_many_names_is_limited_by_its_tcp_peer() {
    let site = TestSite::start_with(Backend::Sqlite, Arc::new(SystemClock), |config| {
        config.login_failures_per_ip = PER_IP_BURST;
    })
    .await;
    // The same site behind the production listener, which hands handlers the TCP peer (`TestSite` serves
    // without connect info, where the per-address limit is skipped rather than shared by everybody).
    let listener =
        authbroker_web::serve::Listener::bind("127.0.0.1:0".parse().unwrap(), None, None)
            .await
            .unwrap();
    let base = listener.url().trim_end_matches('/').to_owned();
    tokio::spawn(listener.serve(router(site.state.clone()), std::future::pending()));
    let client = client();
    // Two more guesses than the burst, each under another (unknown) name, all at once.
    let mut guesses = JoinSet::new();
    for i in 0..PER_IP_BURST + 2 {
        let client = client.clone();
        let base = base.clone();
        guesses.spawn(async move { attempt(&client, &base, &format!("user{i}"), WRONG).await });
    }
    let mut refused = 0;
    while let Some(reply) = guesses.join_next().await {
        let reply = reply.unwrap();
        match reply.status {
            401 => assert_incorrect(&reply, "a guess"),
            429 => {
                assert!(reply.body.contains(LOCKED_ADDRESS), "{}", reply.body);
                refused += 1;
            }
            other => panic!("{other}: {}", reply.body),
        }
    }
    assert_eq!(refused, 2);
    // From that address even the right password for an untouched account is refused…
    let reply = attempt(&client, &base, &site.admin_login, &site.admin_password).await;
    assert_throttled(
        &reply,
        &site.admin_login,
        LOCKED_ADDRESS,
        12,
        "admin from the locked address",
    );
    // …the refusal cost the account nothing, and without a peer address only the account limit applies.
    for i in 1..=PER_LOGIN_BURST {
        let reply = attempt(&client, &site.base, &site.admin_login, WRONG).await;
        assert_incorrect(
            &reply,
            &format!("admin without a peer address, wrong password {i}"),
        );
    }
    let reply = attempt(&client, &site.base, &site.admin_login, &site.admin_password).await;
    assert_throttled(
        &reply,
        &site.admin_login,
        LOCKED_ACCOUNT,
        60,
        "admin after its own burst",
    );
    site.cleanup().await;
}
