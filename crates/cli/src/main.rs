//! `authbroker`: one binary for every role. This crate is wiring only: it parses arguments, resolves the
//! configuration and calls the libraries (broker, site, the client SDK and the demo world).
//!
//! Exit codes: 0 success, 1 a runtime failure (configuration, network, storage, serving), 2 a usage error
//! (clap), 3 the stored connection no longer works (run `connect` again), 4 no connection for that site.

mod client;
mod config;
mod demo;
mod markdown;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use authbroker_broker::serve::{
    InitError as BrokerInitError, NewAdministrator as NewBrokerAdministrator,
};
use authbroker_broker::{BrokerConfig, BrokerError, BrokerState};
use authbroker_site::serve::{InitError, NewAdministrator, SiteListener, first_administrator};
use authbroker_site::{ServiceConfig, SiteConfig, SiteError, SiteState, SystemClock};
use clap::{Args, Parser, Subcommand};

/// Register an app once, connect it to every site.
///
/// authbroker runs a broker (the app registry that vouches for apps), a site (a WordPress-compatible REST API
/// with an OAuth 1.0a provider), and the client that connects apps to sites.
#[derive(Debug, Parser)]
#[command(name = "authbroker", version, about, long_about, after_long_help = EXIT_CODES)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

const EXIT_CODES: &str = "Exit codes:
  0  success
  1  failure (configuration, network, the site or broker refused; the message says what to do)
  2  usage error (unknown command or flag, missing argument)
  3  the stored connection no longer works (revoked or expired): run `authbroker connect <site>` again
  4  no connection for that site: run `authbroker connect <site>` first

Client commands read config.toml in the directory `authbroker config path` shows (AUTHBROKER_CONFIG_DIR
overrides it), then AUTHBROKER_* variables, then flags.";

#[derive(Debug, Subcommand)]
enum Command {
    /// Connect the app to a site: the broker vouches for the app, you approve it on the site in your
    /// browser, and the token is stored (OS keyring, or a 0600 file without one).
    Connect(client::ConnectArgs),
    /// List the connected sites.
    Sites(client::SitesArgs),
    /// Show who the app acts as on a site (and check that the connection still works).
    Whoami(client::WhoamiArgs),
    /// Revoke the app's token on a site and forget it here.
    Disconnect(client::DisconnectArgs),
    /// Publish a Markdown file as a post; prints the post's URL.
    Post(client::PostArgs),
    /// List recent posts of a connected site.
    Posts(client::PostsArgs),
    /// Where the client keeps its configuration and tokens.
    #[command(subcommand)]
    Config(client::ConfigCommand),
    /// Run the whole system once on this machine: a local CA, a broker and a site over HTTPS, a brokered
    /// connection, the OAuth 1.0a approval, a post published and read back. Prints every step with its
    /// duration; exits 0 only if all worked.
    Demo(demo::DemoArgs),
    /// Start the demo's broker and site and keep them running, printing their URLs and logins, so that you
    /// can click through the pages and connect the CLI to them.
    Up(demo::UpArgs),
    /// Run a broker: the registry where developers register apps once, which vouches for them to every
    /// site that trusts it (developer portal, JSON API, brokered connections).
    #[command(subcommand)]
    Broker(BrokerCommand),
    /// Run a site: a WordPress-compatible REST API with an OAuth 1.0a provider that accepts apps vouched
    /// for by its trusted brokers.
    #[command(subcommand)]
    Site(SiteCommand),
}

#[derive(Debug, Subcommand)]
enum SiteCommand {
    /// Serve the site: HTTPS with tls_cert and tls_key, plain HTTP only on a loopback address.
    ///
    /// Prints the address it listens on (the actual port when listen asks for port 0) and the home URL.
    /// Logs go to standard error; RUST_LOG filters them (default: info). SIGINT or SIGTERM stops the
    /// server gracefully.
    #[command(after_long_help = SiteConfig::keys_help())]
    Serve(ServeArgs),
    /// Set up a new site: create the database, apply migrations and create the first administrator.
    ///
    /// Without --admin-password a password of 24 letters and digits is generated and printed once.
    /// Refuses (exit code 1) when the site already has an administrator.
    #[command(after_long_help = SiteConfig::keys_help())]
    Init(InitArgs),
}

#[derive(Debug, Subcommand)]
enum BrokerCommand {
    /// Serve the broker: HTTPS with tls_cert and tls_key, plain HTTP only on a loopback address.
    ///
    /// Prints the address it listens on (the actual port when listen asks for port 0) and the broker ID.
    /// Logs go to standard error; RUST_LOG filters them (default: info). SIGINT or SIGTERM stops the
    /// server gracefully.
    #[command(after_long_help = BrokerConfig::keys_help())]
    Serve(BrokerServeArgs),
    /// Set up a new broker: create the database, apply migrations and create the first administrator.
    ///
    /// Without --admin-password a password of 24 letters and digits is generated and printed once.
    /// Refuses (exit code 1) when the broker already has an administrator.
    #[command(after_long_help = BrokerConfig::keys_help())]
    Init(BrokerInitArgs),
}

/// Where the broker's configuration comes from, and the flags every broker command shares.
#[derive(Debug, Args)]
struct BrokerArgs {
    /// TOML configuration file; AUTHBROKER_* variables and flags override its keys.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// The broker ID, an absolute URI ending in '/' (broker_id).
    #[arg(long, value_name = "URL")]
    broker_id: Option<String>,
    /// The canonical public URL, when it differs from the broker ID (home_url).
    #[arg(long, value_name = "URL")]
    home_url: Option<String>,
    /// The broker's name on its pages (name).
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
    /// sqlite://PATH or postgres://… (database_url).
    #[arg(long, value_name = "URL")]
    database_url: Option<String>,
    /// Directory of the SQLite database (data_dir).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<String>,
}

/// Where a service listens, shared by `site serve` and `broker serve`.
#[derive(Debug, Args)]
struct ListenArgs {
    /// Address and port to listen on; port 0 picks a free port (listen).
    #[arg(long, value_name = "ADDR")]
    listen: Option<std::net::SocketAddr>,
    /// PEM certificate chain for HTTPS (tls_cert).
    #[arg(long, value_name = "PEM")]
    tls_cert: Option<String>,
    /// PEM private key for HTTPS (tls_key).
    #[arg(long, value_name = "PEM")]
    tls_key: Option<String>,
}

impl ListenArgs {
    /// The flags that were given, as configuration values.
    fn flags(self) -> Vec<(&'static str, String)> {
        present([
            ("listen", self.listen.map(|addr| addr.to_string())),
            ("tls_cert", self.tls_cert),
            ("tls_key", self.tls_key),
        ])
    }
}

#[derive(Debug, Args)]
struct BrokerServeArgs {
    #[command(flatten)]
    broker: BrokerArgs,
    #[command(flatten)]
    listen: ListenArgs,
    /// Let discovery and connection requests reach loopback addresses (allow_loopback_targets).
    #[arg(long)]
    allow_loopback_targets: bool,
}

#[derive(Debug, Args)]
struct BrokerInitArgs {
    #[command(flatten)]
    broker: BrokerArgs,
    /// Email address of the first administrator (their login).
    #[arg(long, value_name = "EMAIL")]
    admin_email: String,
    /// Display name of the first administrator.
    #[arg(long, value_name = "NAME", default_value = "Administrator")]
    admin_name: String,
    /// Password of the first administrator (at least 12 characters); generated and printed once when
    /// not given. Prefer the environment variable: other users can see command lines.
    #[arg(
        long,
        value_name = "PASSWORD",
        env = "AUTHBROKER_ADMIN_PASSWORD",
        hide_env_values = true
    )]
    admin_password: Option<String>,
}

impl BrokerArgs {
    /// The file, then the environment, then these flags (and `extra`, the command's own flags).
    fn resolve(&self, extra: Vec<(&'static str, String)>) -> Result<BrokerConfig, String> {
        let mut flags = present([
            ("broker_id", self.broker_id.clone()),
            ("home_url", self.home_url.clone()),
            ("name", self.name.clone()),
            ("database_url", self.database_url.clone()),
            ("data_dir", self.data_dir.clone()),
        ]);
        flags.extend(extra);
        BrokerConfig::load_with_flags(self.config.as_deref(), std::env::vars_os(), flags)
            .map_err(|err| err.to_string())
    }
}

/// The flags that were given.
fn present<const N: usize>(
    flags: [(&'static str, Option<String>); N],
) -> Vec<(&'static str, String)> {
    flags
        .into_iter()
        .filter_map(|(key, value)| value.map(|value| (key, value)))
        .collect()
}

/// Where the configuration comes from, and the flags every site command shares.
#[derive(Debug, Args)]
struct SiteArgs {
    /// TOML configuration file; AUTHBROKER_* variables and flags override its keys.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// The canonical home URL (home_url).
    #[arg(long, value_name = "URL")]
    home_url: Option<String>,
    /// The site's name (name).
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
    /// sqlite://PATH or postgres://… (database_url).
    #[arg(long, value_name = "URL")]
    database_url: Option<String>,
    /// Directory of the SQLite database (data_dir).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<String>,
}

#[derive(Debug, Args)]
struct ServeArgs {
    #[command(flatten)]
    site: SiteArgs,
    #[command(flatten)]
    listen: ListenArgs,
}

#[derive(Debug, Args)]
struct InitArgs {
    #[command(flatten)]
    site: SiteArgs,
    /// Login of the first administrator.
    #[arg(long, value_name = "LOGIN", default_value = "admin")]
    admin_login: String,
    /// Email address of the first administrator.
    #[arg(long, value_name = "EMAIL", default_value = "")]
    admin_email: String,
    /// Password of the first administrator (at least 12 characters); generated and printed once when
    /// not given. Prefer the environment variable: other users can see command lines.
    #[arg(
        long,
        value_name = "PASSWORD",
        env = "AUTHBROKER_ADMIN_PASSWORD",
        hide_env_values = true
    )]
    admin_password: Option<String>,
}

impl SiteArgs {
    /// The file, then the environment, then these flags (and `extra`, the command's own flags).
    fn resolve(&self, extra: Vec<(&'static str, String)>) -> Result<SiteConfig, String> {
        let mut flags = present([
            ("home_url", self.home_url.clone()),
            ("name", self.name.clone()),
            ("database_url", self.database_url.clone()),
            ("data_dir", self.data_dir.clone()),
        ]);
        flags.extend(extra);
        SiteConfig::load_with_flags(self.config.as_deref(), std::env::vars_os(), flags)
            .map_err(|err| err.to_string())
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(match cli.command {
        Command::Broker(_) | Command::Site(_) | Command::Up(_) => "info",
        _ => "warn",
    });
    let result = match cli.command {
        Command::Connect(args) => client_runtime(client::connect(args)),
        Command::Sites(args) => client_runtime(client::sites(args)),
        Command::Whoami(args) => client_runtime(client::whoami(args)),
        Command::Disconnect(args) => client_runtime(client::disconnect(args)),
        Command::Post(args) => client_runtime(client::post(args)),
        Command::Posts(args) => client_runtime(client::posts(args)),
        Command::Config(client::ConfigCommand::Path(args)) => client::config_path(&args),
        Command::Demo(args) => runtime(true)
            .map_err(client::Failure::from)
            .and_then(|rt| rt.block_on(demo::demo(args))),
        Command::Up(args) => runtime(true).map_err(client::Failure::from).and_then(|rt| {
            rt.block_on(async {
                let shutdown = shutdown_signal().map_err(client::Failure::from)?;
                demo::up(args, shutdown).await
            })
        }),
        Command::Broker(BrokerCommand::Serve(args)) => service_runtime(true, broker_serve(args)),
        Command::Broker(BrokerCommand::Init(args)) => service_runtime(false, broker_init(args)),
        Command::Site(SiteCommand::Serve(args)) => service_runtime(true, site_serve(args)),
        Command::Site(SiteCommand::Init(args)) => service_runtime(false, site_init(args)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("error: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}

/// Logs to standard error, filtered by RUST_LOG; without it, `default` (the services' request logs are
/// `info`, which is noise in front of a client command's own output).
fn init_logging(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

/// Runs a service command (`serve` on a multi-threaded runtime); its errors exit with code 1.
fn service_runtime(
    multi_thread: bool,
    command: impl Future<Output = Result<(), String>>,
) -> Result<(), client::Failure> {
    runtime(multi_thread)
        .and_then(|rt| rt.block_on(command))
        .map_err(client::Failure::from)
}

/// Runs a client command on a current-thread runtime.
fn client_runtime(
    command: impl Future<Output = Result<(), client::Failure>>,
) -> Result<(), client::Failure> {
    runtime(false)
        .map_err(client::Failure::from)?
        .block_on(command)
}

fn runtime(multi_thread: bool) -> Result<tokio::runtime::Runtime, String> {
    let mut builder = if multi_thread {
        tokio::runtime::Builder::new_multi_thread()
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    builder
        .enable_all()
        .build()
        .map_err(|err| format!("cannot start the async runtime: {err}"))
}

/// `authbroker site serve`: resolve, bind (so that address and TLS problems come first), open, serve.
async fn site_serve(args: ServeArgs) -> Result<(), String> {
    let extra = args.listen.flags();
    let config = args.site.resolve(extra)?;
    let listener = SiteListener::bind(&config)
        .await
        .map_err(|err| err.to_string())?;
    let state = SiteState::open(config, Arc::new(SystemClock))
        .await
        .map_err(describe)?;
    if first_administrator(&state)
        .await
        .map_err(describe)?
        .is_none()
    {
        tracing::warn!(
            "the site has no administrator yet: run `authbroker site init` with the same configuration"
        );
    }
    let shutdown = shutdown_signal()?;
    println!(
        "authbroker site {:?} listening on {}",
        state.config().name,
        listener.url()
    );
    println!("home URL: {}", state.config().home_url);
    listener
        .serve(state, shutdown)
        .await
        .map_err(|err| err.to_string())
}

/// `authbroker site init`: resolve, open (creates the database and applies migrations), create the admin.
async fn site_init(args: InitArgs) -> Result<(), String> {
    let config = args.site.resolve(Vec::new())?;
    let state = SiteState::open(config, Arc::new(SystemClock))
        .await
        .map_err(describe)?;
    let admin = NewAdministrator {
        login: args.admin_login,
        email: args.admin_email,
        password: args.admin_password,
    };
    let done = authbroker_site::serve::init(&state, admin)
        .await
        .map_err(|err| match err {
            InitError::Site(err) => describe(err),
            other => other.to_string(),
        })?;
    println!(
        "Site {:?} initialized at {}.",
        state.config().name,
        state.config().home_url
    );
    println!("Administrator: {}", done.login);
    print_generated(done.generated_password, "site");
    Ok(())
}

/// `authbroker broker serve`: resolve, bind (so that address and TLS problems come first), open, serve.
async fn broker_serve(args: BrokerServeArgs) -> Result<(), String> {
    let mut extra = args.listen.flags();
    if args.allow_loopback_targets {
        extra.push(("allow_loopback_targets", "true".to_owned()));
    }
    let config = args.broker.resolve(extra)?;
    let listener = authbroker_broker::serve::bind(&config)
        .await
        .map_err(|err| err.to_string())?;
    let state = BrokerState::open(config, Arc::new(SystemClock))
        .await
        .map_err(describe_broker)?;
    if authbroker_broker::accounts::first_admin(&state)
        .await
        .map_err(describe_broker)?
        .is_none()
    {
        tracing::warn!(
            "the broker has no administrator yet: run `authbroker broker init` with the same configuration"
        );
    }
    let shutdown = shutdown_signal()?;
    println!(
        "authbroker broker {:?} listening on {}",
        state.config().name,
        listener.url()
    );
    println!("broker ID: {}", state.config().broker_id);
    println!("developer portal: {}/", state.config().home());
    listener
        .serve(authbroker_broker::router(state), shutdown)
        .await
        .map_err(|err| err.to_string())
}

/// `authbroker broker init`: resolve, open (creates the database and applies migrations), create the admin.
async fn broker_init(args: BrokerInitArgs) -> Result<(), String> {
    let config = args.broker.resolve(Vec::new())?;
    let state = BrokerState::open(config, Arc::new(SystemClock))
        .await
        .map_err(describe_broker)?;
    let admin = NewBrokerAdministrator {
        email: args.admin_email,
        name: args.admin_name,
        password: args.admin_password,
    };
    let done = authbroker_broker::serve::init(&state, admin)
        .await
        .map_err(|err| match err {
            BrokerInitError::Broker(err) => describe_broker(err),
            other => other.to_string(),
        })?;
    println!(
        "Broker {:?} initialized with broker ID {}.",
        state.config().name,
        state.config().broker_id
    );
    println!("Administrator: {}", done.email);
    print_generated(done.generated_password, "broker");
    Ok(())
}

/// Prints the first administrator's password when `init` generated it (`service` keeps only its hash).
fn print_generated(password: Option<String>, service: &str) {
    if let Some(password) = password {
        println!("Password: {password}");
        println!("The password is shown only this once; the {service} keeps only its hash.");
    }
}

/// A broker error for the operator, with the internal details.
fn describe_broker(err: BrokerError) -> String {
    match err {
        BrokerError::Internal(detail) => detail,
        other => other.to_string(),
    }
}

/// A site error for the operator: unlike a client, the operator gets the internal details.
fn describe(err: SiteError) -> String {
    match err {
        SiteError::Internal(detail) => detail,
        other => other.to_string(),
    }
}

/// A future that completes on SIGINT (Ctrl-C) or, on Unix, SIGTERM. The handlers are installed now, before
/// the address is printed, so a signal sent as soon as the server is up is never missed.
fn shutdown_signal() -> Result<impl Future<Output = ()> + Send + 'static, String> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let install = |kind: SignalKind| {
            signal(kind).map_err(|err| format!("cannot install a signal handler: {err}"))
        };
        let mut interrupt = install(SignalKind::interrupt())?;
        let mut terminate = install(SignalKind::terminate())?;
        Ok(async move {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
        })
    }
}
