//! Credentials for a load run: a consumer registered in the site's database, and an access token obtained
//! through the real three-legged flow over HTTP, as a user and an app would.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use authbroker_oauth1::{SignatureMethod, Signer, parse_form};
use authbroker_site::{NewConsumer, SiteConfig, SiteState, SystemClock, register_consumer};
use rand::Rng;

use crate::{SetupArgs, loopback_url};

/// Where the site redirects after consent; nothing listens there, the tool reads the `Location` header.
const CALLBACK: &str = "http://127.0.0.1:9/callback";

pub(crate) async fn run(args: SetupArgs) -> Result<ExitCode, String> {
    let base = loopback_url(&args.base_url)?;
    let base = base.as_str().trim_end_matches('/').to_owned();

    // The site has no HTTP registration endpoint of its own yet: register through the library, in the
    // site's own database, as an administrator's tool would.
    let mut config = SiteConfig::new(base.clone());
    config.database_url = Some(args.database_url.clone());
    let state = SiteState::open(config, Arc::new(SystemClock))
        .await
        .map_err(|e| format!("opening {}: {e}", args.database_url))?;
    let consumer = register_consumer(
        &state,
        NewConsumer {
            name: "authbroker-load",
            description: "Load generator for BENCHMARKS.md",
            callback: CALLBACK,
        },
    )
    .await
    .map_err(|e| format!("registering the consumer: {e}"))?;
    state.store().pool().close().await;

    let http = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| e.to_string())?;
    let url = |path: &str| format!("{base}{path}");

    // R7: temporary credentials.
    let body = signed_post(
        &http,
        &url("/oauth1/request"),
        Signer::new(SignatureMethod::HmacSha1, &consumer.key, &consumer.secret).callback(CALLBACK),
    )
    .await?;
    let request_key = form_value(&body, "oauth_token")?;
    let request_secret = form_value(&body, "oauth_token_secret")?;

    // The user logs in through the login form.
    let page = text(http.get(url("/login")).send().await, 200).await?;
    let csrf = hidden_field(&page, "_csrf")?;
    let response = http
        .post(url("/login"))
        .form(&[
            ("log", args.login.as_str()),
            ("pwd", &args.password),
            ("_csrf", &csrf),
            ("redirect_to", "/"),
        ])
        .send()
        .await
        .map_err(|e| format!("login: {e}"))?;
    if response.status() != 303 {
        return Err(format!("login refused (HTTP {})", response.status()));
    }

    // R8–R10: the consent page, approved.
    let page = text(
        http.get(url(&format!("/oauth1/authorize?oauth_token={request_key}")))
            .send()
            .await,
        200,
    )
    .await?;
    let csrf = hidden_field(&page, "_csrf")?;
    let response = http
        .post(url("/oauth1/authorize"))
        .form(&[
            ("_csrf", csrf.as_str()),
            ("oauth_token", &request_key),
            ("wp-submit", "authorize"),
        ])
        .send()
        .await
        .map_err(|e| format!("consent: {e}"))?;
    let location = response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .filter(|_| response.status() == 303)
        .ok_or_else(|| format!("consent was not approved (HTTP {})", response.status()))?;
    let query = location
        .split_once('?')
        .map(|(_, q)| q)
        .ok_or("the consent redirect carries no verifier")?;
    let verifier = form_value(query, "oauth_verifier")?;

    // R11: token credentials.
    let body = signed_post(
        &http,
        &url("/oauth1/access"),
        Signer::new(SignatureMethod::HmacSha1, &consumer.key, &consumer.secret)
            .token(&request_key, &request_secret)
            .verifier(&verifier),
    )
    .await?;
    let token = form_value(&body, "oauth_token")?;
    let token_secret = form_value(&body, "oauth_token_secret")?;

    println!("CONSUMER_KEY={}", consumer.key);
    println!("CONSUMER_SECRET={}", consumer.secret);
    println!("TOKEN={token}");
    println!("TOKEN_SECRET={token_secret}");
    Ok(ExitCode::SUCCESS)
}

async fn signed_post(
    http: &reqwest::Client,
    url: &str,
    signer: Signer<'_>,
) -> Result<String, String> {
    let nonce: String = rand::thread_rng()
        .sample_iter(rand::distributions::Alphanumeric)
        .take(32)
        .map(char::from)
        .collect();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .as_secs();
    let header = signer
        .sign(
            "POST",
            url,
            &[],
            &nonce,
            i64::try_from(now).map_err(|e| e.to_string())?,
        )
        .map_err(|e| format!("signing: {e}"))?;
    text(
        http.post(url)
            .header("Authorization", header.to_header_value())
            .send()
            .await,
        200,
    )
    .await
}

async fn text(response: reqwest::Result<reqwest::Response>, expect: u16) -> Result<String, String> {
    let response = response.map_err(|e| e.to_string())?;
    let status = response.status();
    let url = response.url().path().to_owned();
    let body = response.text().await.map_err(|e| e.to_string())?;
    if status != expect {
        return Err(format!("{url}: HTTP {status}: {body}"));
    }
    Ok(body)
}

fn form_value(body: &str, name: &str) -> Result<String, String> {
    parse_form(body)
        .map_err(|e| format!("{body:?}: {e}"))?
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v)
        .ok_or_else(|| format!("no {name} in {body:?}"))
}

fn hidden_field(html: &str, name: &str) -> Result<String, String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .ok_or_else(|| format!("no field {name} in the page"))?
        + marker.len();
    let end = html[start..]
        .find('"')
        .ok_or_else(|| format!("field {name} is not closed"))?
        + start;
    Ok(html[start..end].to_owned())
}
