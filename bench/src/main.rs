//! `authbroker-load`: measures OAuth 1.0a-signed REST requests against a running site.
//!
//! * `authbroker-load setup` registers a consumer in the site's database and obtains an access token through
//!   the real three-legged flow over HTTP (request token, login form, consent form, token exchange), then
//!   prints the four credentials as `NAME=value` lines for a shell to read.
//! * `authbroker-load run` opens N keep-alive connections and, on each, sends requests one after another for
//!   a bounded time (and optionally a bounded count), every request freshly signed with a unique nonce (the
//!   site refuses replays). It reports requests per second, latency percentiles and every non-2xx answer.
//!
//! Loopback only: the tool refuses any other target, so it cannot be pointed at someone else's site.

mod load;
mod setup;

use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(name = "authbroker-load", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Register a consumer and obtain an access token for it; prints CONSUMER_KEY, CONSUMER_SECRET,
    /// TOKEN and TOKEN_SECRET as NAME=value lines.
    Setup(SetupArgs),
    /// Send signed requests on keep-alive connections for a bounded time and report the figures.
    Run(RunArgs),
}

#[derive(Debug, Args)]
struct SetupArgs {
    /// The site's home URL (must equal its home_url: signatures cover it).
    #[arg(long, value_name = "URL")]
    base_url: String,
    /// The site's database, to register the consumer in (sqlite://PATH or postgres://…).
    #[arg(long, value_name = "URL")]
    database_url: String,
    /// Login of a user who approves the app (an administrator, so that it may create posts).
    #[arg(long, value_name = "LOGIN")]
    login: String,
    /// That user's password.
    #[arg(
        long,
        value_name = "PASSWORD",
        env = "AUTHBROKER_ADMIN_PASSWORD",
        hide_env_values = true
    )]
    password: String,
}

/// What each request does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Kind {
    /// `GET /wp-json/wp/v2/users/me`.
    GetMe,
    /// `POST /wp-json/wp/v2/posts` with a JSON body (creates a draft).
    PostJson,
}

#[derive(Debug, Args)]
struct RunArgs {
    /// The site's home URL (must equal its home_url: signatures cover it); loopback only.
    #[arg(long, value_name = "URL")]
    base_url: String,
    #[arg(long, env = "CONSUMER_KEY", hide_env_values = true)]
    consumer_key: String,
    #[arg(long, env = "CONSUMER_SECRET", hide_env_values = true)]
    consumer_secret: String,
    #[arg(long, env = "TOKEN", hide_env_values = true)]
    token: String,
    #[arg(long, env = "TOKEN_SECRET", hide_env_values = true)]
    token_secret: String,
    /// Keep-alive connections, each with one request in flight at a time.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// How long to measure, in seconds (after the warm-up).
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds of load before measuring starts (connections, caches and the page cache warm up).
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Stop after this many requests in all (counting the warm-up), whatever the duration.
    #[arg(long)]
    requests: Option<u64>,
    /// The request to send.
    #[arg(long, value_enum, default_value = "get-me")]
    kind: Kind,
    /// Client runtime threads (1 leaves the most CPU to the server on a small machine).
    #[arg(long, default_value_t = 1)]
    threads: usize,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Setup(args) => runtime(1).and_then(|rt| rt.block_on(setup::run(args))),
        Command::Run(args) => runtime(args.threads).and_then(|rt| rt.block_on(load::run(args))),
    };
    match result {
        Ok(code) => code,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn runtime(threads: usize) -> Result<tokio::runtime::Runtime, String> {
    let mut builder = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(threads);
        b
    };
    builder
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))
}

/// Refuses targets that are not loopback: this tool generates load and must only hit the local machine.
fn loopback_url(base: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(base).map_err(|e| format!("--base-url {base:?}: {e}"))?;
    if url.scheme() != "http" {
        return Err(format!(
            "--base-url {base:?}: only plain http on loopback is supported"
        ));
    }
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d == "localhost",
        None => false,
    };
    if !loopback {
        return Err(format!("--base-url {base:?}: not a loopback address"));
    }
    Ok(url)
}

fn seconds(s: f64, name: &str) -> Result<Duration, String> {
    Duration::try_from_secs_f64(s).map_err(|_| format!("--{name} {s}: not a number of seconds"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_targets() {
        assert!(loopback_url("http://127.0.0.1:8080").is_ok());
        assert!(loopback_url("http://[::1]:8080/").is_ok());
        assert!(loopback_url("http://localhost:1").is_ok());
        assert!(loopback_url("http://192.0.2.1:8080").is_err());
        assert!(loopback_url("https://127.0.0.1:8443").is_err());
        assert!(loopback_url("http://example.com").is_err());
    }
}
