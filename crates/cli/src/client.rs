//! The client commands: `connect`, `sites`, `whoami`, `disconnect`, `post`, `posts`, `config path`.
//! Each parses its arguments, resolves the configuration, calls the SDK and prints the result (plain text,
//! or JSON with `--json`). Progress goes to standard error so that standard output stays parseable.

use std::path::{Path, PathBuf};

use authbroker_client::store::{Connection, SecretBackend, Secrets, TokenStore};
use authbroker_client::{
    Approval, BrokerProgress, Client, Credentials, Error, NewPost, Revocation, Session, Site,
};
use clap::{Args, Subcommand, ValueEnum};
use serde_json::json;

use crate::config::ClientConfig;
use crate::markdown;

/// A failed command: the message and the exit code (documented in `authbroker --help`).
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) message: String,
    pub(crate) code: u8,
}

/// Exit code: the stored connection no longer works (revoked, expired, secret gone); `connect` again.
pub(crate) const EXIT_RECONNECT: u8 = 3;
/// Exit code: no stored connection matches the site given (or none at all).
pub(crate) const EXIT_NOT_CONNECTED: u8 = 4;

impl From<String> for Failure {
    fn from(message: String) -> Self {
        Self { message, code: 1 }
    }
}

impl From<Error> for Failure {
    fn from(err: Error) -> Self {
        let code = match &err {
            err if err.needs_reconnect() => EXIT_RECONNECT,
            Error::Store(authbroker_client::store::StoreError::MissingSecret { .. }) => {
                EXIT_RECONNECT
            }
            _ => 1,
        };
        Self {
            message: err.to_string(),
            code,
        }
    }
}

impl From<authbroker_client::store::StoreError> for Failure {
    fn from(err: authbroker_client::store::StoreError) -> Self {
        Error::Store(err).into()
    }
}

type Outcome = Result<(), Failure>;

/// Flags every client command shares.
#[derive(Debug, Args, Clone)]
pub(crate) struct Common {
    /// Print machine-readable JSON on standard output.
    #[arg(long, global = true)]
    pub(crate) json: bool,
    /// A PEM file of extra certificate authorities to trust (ca_file).
    #[arg(long, value_name = "PEM", global = true)]
    pub(crate) ca_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct ConnectArgs {
    /// The site, as you would type it in a browser: blog.example, https://www.blog.example/.
    site: String,
    /// The broker that vouches for the app (broker_url).
    #[arg(long, value_name = "URL")]
    broker: Option<String>,
    /// Print the approval URL instead of opening a browser; paste the verifier (or the address the browser
    /// ended on) when the site cannot redirect back to this machine.
    #[arg(long)]
    no_browser: bool,
    /// Use consumer credentials registered directly on the site instead of a broker.
    #[arg(long, value_name = "KEY", requires = "consumer_secret")]
    consumer_key: Option<String>,
    /// The secret of --consumer-key. Prefer AUTHBROKER_CONSUMER_SECRET: other users can see command lines.
    #[arg(
        long,
        value_name = "SECRET",
        env = "AUTHBROKER_CONSUMER_SECRET",
        hide_env_values = true
    )]
    consumer_secret: Option<String>,
    /// The consumer was registered with the callback `oob`: the site shows a verifier to paste.
    #[arg(long, requires = "consumer_key")]
    oob: bool,
    /// Loopback port for the callback, for sites that compare the registered port (callback_port).
    #[arg(long, value_name = "PORT")]
    callback_port: Option<u16>,
    /// Give up waiting for the approval after this many seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 600)]
    timeout: u64,
    #[command(flatten)]
    common: Common,
}

#[derive(Debug, Args)]
pub(crate) struct SiteArg {
    /// The connected site (as listed by `authbroker sites`, or its host); optional with one connection.
    #[arg(long, value_name = "SITE")]
    site: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct WhoamiArgs {
    /// The connected site; optional when only one is connected.
    site: Option<String>,
    #[command(flatten)]
    common: Common,
}

#[derive(Debug, Args)]
pub(crate) struct DisconnectArgs {
    /// The connected site.
    site: String,
    /// Only forget the token here, without asking the site to revoke it.
    #[arg(long)]
    local: bool,
    #[command(flatten)]
    common: Common,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum PostStatus {
    Draft,
    Publish,
    Pending,
    Private,
}

impl PostStatus {
    fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::Publish => "publish",
            Self::Pending => "pending",
            Self::Private => "private",
        }
    }
}

#[derive(Debug, Args)]
pub(crate) struct PostArgs {
    /// A Markdown file, with optional front matter (title, status, slug) between `---` lines.
    file: PathBuf,
    #[command(flatten)]
    site: SiteArg,
    /// Overrides the front matter's status (default: draft).
    #[arg(long, value_enum)]
    status: Option<PostStatus>,
    #[command(flatten)]
    common: Common,
}

#[derive(Debug, Args)]
pub(crate) struct PostsArgs {
    #[command(flatten)]
    site: SiteArg,
    /// publish, draft, pending, private, or any.
    #[arg(long, default_value = "any")]
    status: String,
    /// How many posts (1–100).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=100))]
    per_page: u32,
    #[command(flatten)]
    common: Common,
}

#[derive(Debug, Args)]
pub(crate) struct SitesArgs {
    #[command(flatten)]
    common: Common,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ConfigCommand {
    /// Print the path of the configuration file (it need not exist yet) and of the token files.
    Path(SitesArgs),
}

/// The authbroker configuration directory.
pub(crate) fn config_dir() -> Result<PathBuf, Failure> {
    authbroker_client::store::default_dir().ok_or_else(|| {
        Failure::from(
            "cannot find a configuration directory: set AUTHBROKER_CONFIG_DIR or HOME".to_owned(),
        )
    })
}

/// Everything a client command needs: configuration, the SDK client and the token store.
struct Context {
    dir: PathBuf,
    config: ClientConfig,
    client: Client,
    store: TokenStore,
    json: bool,
}

impl Context {
    fn new(common: &Common, mut flags: Vec<(&'static str, String)>) -> Result<Self, Failure> {
        let dir = config_dir()?;
        if let Some(ca) = &common.ca_file {
            flags.push(("ca_file", ca.display().to_string()));
        }
        let config = ClientConfig::resolve(&dir, flags)?;
        let mut builder = Client::builder();
        if let Some(path) = &config.ca_file {
            let pem = std::fs::read(path).map_err(|err| {
                Failure::from(format!("ca_file: cannot read {}: {err}", path.display()))
            })?;
            builder = builder
                .add_root_pem(&pem)
                .map_err(|err| Failure::from(format!("ca_file {}: {err}", path.display())))?;
        }
        let client = builder.build()?;
        let store = TokenStore::open(dir.clone(), config.keyring)?;
        Ok(Self {
            dir,
            config,
            client,
            store,
            json: common.json,
        })
    }

    /// The stored connection for what the user typed (or the only one).
    fn connection(&self, site: Option<&str>) -> Result<Connection, Failure> {
        let not_connected = |message: String| Failure {
            message,
            code: EXIT_NOT_CONNECTED,
        };
        match site {
            Some(site) => self.store.get(site)?.ok_or_else(|| {
                not_connected(format!(
                    "not connected to {site}: run `authbroker connect {site}` first (`authbroker sites` lists the connected sites)"
                ))
            }),
            None => {
                let mut all = self.store.list()?;
                match all.len() {
                    0 => Err(not_connected(
                        "no site is connected yet: run `authbroker connect <site-url>` first".to_owned(),
                    )),
                    1 => Ok(all.remove(0)),
                    _ => Err(not_connected(format!(
                        "several sites are connected; name one with --site: {}",
                        all.iter().map(|c| c.site.as_str()).collect::<Vec<_>>().join(", ")
                    ))),
                }
            }
        }
    }

    fn session(&self, connection: &Connection) -> Session {
        self.client.session(
            Site::from_parts(&connection.site, &connection.api_root, &connection.name),
            Credentials::new(
                &connection.consumer_key,
                &connection.secrets.consumer_secret,
            ),
            Credentials::new(&connection.token, &connection.secrets.token_secret),
        )
    }
}

fn print_json(value: &serde_json::Value) {
    println!("{value:#}");
}

/// `authbroker connect <site>`.
pub(crate) async fn connect(args: ConnectArgs) -> Outcome {
    let mut flags = Vec::new();
    if let Some(broker) = &args.broker {
        flags.push(("broker_url", broker.clone()));
    }
    if let Some(port) = args.callback_port {
        flags.push(("callback_port", port.to_string()));
    }
    let context = Context::new(&args.common, flags)?;
    let site = context.client.discover(&args.site).await?;
    eprintln!("Found {:?} at {}", site.name, site.home);
    let (consumer, site, broker) = match (&args.consumer_key, &args.consumer_secret) {
        (Some(key), Some(secret)) => (Credentials::new(key, secret), site, None),
        _ => brokered(&context, site).await?,
    };
    let approval = if args.oob {
        Approval::out_of_band(read_pasted())
    } else {
        let approval =
            Approval::loopback(&context.config.callback_path).port(context.config.callback_port);
        if args.no_browser {
            approval.or_pasted(read_pasted())
        } else {
            approval
        }
    };
    let approval = approval.timeout(std::time::Duration::from_secs(args.timeout));
    let no_browser = args.no_browser || args.oob;
    let session = context
        .client
        .authorize(&site, &consumer, approval, |url| {
            show_authorize_url(url, no_browser)
        })
        .await?;
    let me = match session.me().await {
        Ok(me) => me,
        Err(err) => {
            // Never leave a live token behind that nobody stored.
            let _ = session.revoke().await;
            return Err(err.into());
        }
    };
    let previous = context
        .store
        .get(&site.home)
        .ok()
        .flatten()
        .filter(|previous| previous.site == site.home);
    let connection = Connection {
        site: site.home.clone(),
        api_root: site.api_root.clone(),
        name: site.name.clone(),
        user: me.name.clone(),
        broker: broker.clone(),
        consumer_key: consumer.key.clone(),
        token: session.token().key.clone(),
        connected_at: unix_now(),
        secrets: Secrets {
            consumer_secret: consumer.secret.clone(),
            token_secret: session.token().secret.clone(),
        },
    };
    let backend = context.store.save(&connection)?;
    if let Some(previous) = previous.filter(|p| p.token != connection.token) {
        // The new connection replaces the old one: its token must not stay valid on the site.
        match context.session(&previous).revoke().await {
            Ok(_) => eprintln!("The previous connection's token was revoked."),
            Err(err) => eprintln!("note: could not revoke the previous connection's token: {err}"),
        }
    }
    let stored_in = match backend {
        SecretBackend::Keyring => "the OS keyring".to_owned(),
        SecretBackend::File => format!(
            "{} (mode 0600; no OS keyring is available)",
            context.store.files().1.display()
        ),
    };
    if context.json {
        print_json(&json!({
            "site": connection.site,
            "name": connection.name,
            "user": connection.user,
            "broker": connection.broker,
            "stored_in": match backend { SecretBackend::Keyring => "keyring", SecretBackend::File => "file" },
        }));
    } else {
        println!(
            "Connected to {} ({}) as {}.",
            connection.name, connection.site, connection.user
        );
        println!("The token is stored in {stored_in}.");
    }
    Ok(())
}

/// R1–R6 through the configured broker.
async fn brokered(
    context: &Context,
    site: Site,
) -> Result<(Credentials, Site, Option<String>), Failure> {
    let broker = context.config.broker_url.clone().ok_or_else(|| {
        Failure::from(format!(
            "no broker given: pass --broker <url>, set broker_url in {} or AUTHBROKER_BROKER_URL; or use \
             credentials registered on the site with --consumer-key/--consumer-secret",
            ClientConfig::path(&context.dir).display()
        ))
    })?;
    if site.broker_endpoint.is_none() {
        return Err(Error::NoBrokerSupport { site: site.home }.into());
    }
    let app = context.config.app(&context.dir)?;
    let brokered = context
        .client
        .connect_via_broker(&broker, &app, &site, |progress| match progress {
            BrokerProgress::Sent => eprintln!("Asking the broker {broker} to vouch for the app…"),
            BrokerProgress::Accepted => {
                eprintln!(
                    "The broker is connecting to {} and waits for it to confirm…",
                    site.home
                )
            }
            BrokerProgress::Processing => {}
            _ => {}
        })
        .await?;
    eprintln!("The site issued credentials for the app.");
    Ok((brokered.credentials, brokered.site, Some(brokered.broker)))
}

fn show_authorize_url(url: &str, no_browser: bool) {
    if no_browser {
        eprintln!(
            "Open this address in a browser, log in to the site and approve the app:\n\n  {url}\n"
        );
        eprintln!(
            "If that browser cannot reach this machine, paste the verifier it shows (or the address it ended on) here and press Enter:"
        );
        return;
    }
    // Always print the URL too: the browser may open on another screen, or not at all.
    eprintln!("Approve the app in your browser. If it did not open, visit:\n\n  {url}\n");
    if let Err(err) = webbrowser::open(url) {
        eprintln!("(could not open a browser: {err})");
    }
    eprintln!("Waiting for the approval…");
}

/// One line from standard input; `None` at end of input. Read on a detached thread, not the runtime's
/// blocking pool: when the approval arrives through the browser instead, nobody types, and the runtime's
/// shutdown would wait for a blocking task forever.
async fn read_pasted() -> Option<String> {
    let (line, read) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let mut text = String::new();
        let result = match std::io::stdin().read_line(&mut text) {
            Ok(0) | Err(_) => None,
            Ok(_) => Some(text),
        };
        let _ = line.send(result);
    });
    read.await.ok().flatten()
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// `authbroker sites`.
pub(crate) async fn sites(args: SitesArgs) -> Outcome {
    let context = Context::new(&args.common, Vec::new())?;
    let connections = context.store.list()?;
    if context.json {
        let list: Vec<_> = connections
            .iter()
            .map(|c| {
                json!({"site": c.site, "name": c.name, "user": c.user, "broker": c.broker, "connected_at": c.connected_at})
            })
            .collect();
        print_json(&serde_json::Value::Array(list));
        return Ok(());
    }
    if connections.is_empty() {
        println!("No site is connected. Run `authbroker connect <site-url>`.");
        return Ok(());
    }
    for c in connections {
        let via = c
            .broker
            .as_deref()
            .map_or_else(|| "direct".to_owned(), |b| format!("via {b}"));
        println!("{}\t{}\t{}\t{via}", c.site, c.name, c.user);
    }
    Ok(())
}

/// `authbroker whoami [<site>]`: asks the site, so it also checks that the token still works.
pub(crate) async fn whoami(args: WhoamiArgs) -> Outcome {
    let context = Context::new(&args.common, Vec::new())?;
    let connection = context.connection(args.site.as_deref())?;
    let me = context.session(&connection).me().await?;
    if context.json {
        print_json(
            &json!({"site": connection.site, "id": me.id, "name": me.name, "slug": me.slug}),
        );
    } else {
        println!("{} ({}) on {}", me.name, me.slug, connection.site);
    }
    Ok(())
}

/// `authbroker disconnect <site>`: revokes the token on the site, then forgets it here.
pub(crate) async fn disconnect(args: DisconnectArgs) -> Outcome {
    let context = Context::new(&args.common, Vec::new())?;
    let connection = context.connection(Some(&args.site))?;
    let revocation = if args.local {
        None
    } else {
        Some(context.session(&connection).revoke().await?)
    };
    context.store.remove(&connection.site)?;
    let said = match revocation {
        None => {
            "forgot the token here; the site still knows it (revoke it on the site's Connected applications page)"
        }
        Some(Revocation::Revoked) => "revoked the token on the site and forgot it here",
        Some(Revocation::AlreadyInvalid) => {
            "the site had already revoked the token; forgot it here"
        }
        Some(Revocation::NotSupported) => {
            "the site has no revocation endpoint (a WordPress site): forgot the token here only; revoke the app on the site's Connected applications page too"
        }
    };
    if context.json {
        let revoked = matches!(
            revocation,
            Some(Revocation::Revoked | Revocation::AlreadyInvalid)
        );
        print_json(
            &json!({"site": connection.site, "revoked": revoked, "forgotten": true, "message": said}),
        );
    } else {
        println!("Disconnected from {}: {said}.", connection.site);
    }
    Ok(())
}

/// `authbroker post <file.md>`.
pub(crate) async fn post(args: PostArgs) -> Outcome {
    let context = Context::new(&args.common, Vec::new())?;
    let text = std::fs::read_to_string(&args.file)
        .map_err(|err| Failure::from(format!("cannot read {}: {err}", args.file.display())))?;
    let document = markdown::parse(&text)
        .map_err(|err| Failure::from(format!("{}: {err}", args.file.display())))?;
    for key in &document.ignored {
        eprintln!("note: front matter key {key:?} is not used (title, status and slug are)");
    }
    let status = args
        .status
        .map(|s| s.as_str().to_owned())
        .or(document.status)
        .unwrap_or_else(|| "draft".to_owned());
    let title = document
        .title
        .unwrap_or_else(|| title_from_path(&args.file));
    let connection = context.connection(args.site.site.as_deref())?;
    let created = context
        .session(&connection)
        .create_post(&NewPost {
            title,
            content: document.html,
            status,
            slug: document.slug,
        })
        .await?;
    if context.json {
        print_json(
            &json!({"id": created.id, "link": created.link, "status": created.status, "slug": created.slug, "title": created.title.rendered}),
        );
    } else {
        println!("{}", created.link);
        eprintln!(
            "Created post {} ({}) on {}.",
            created.id, created.status, connection.site
        );
    }
    Ok(())
}

fn title_from_path(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().replace(['-', '_'], " "))
        .unwrap_or_else(|| "Untitled".to_owned())
}

/// `authbroker posts`.
pub(crate) async fn posts(args: PostsArgs) -> Outcome {
    let context = Context::new(&args.common, Vec::new())?;
    let connection = context.connection(args.site.site.as_deref())?;
    let list = context
        .session(&connection)
        .posts(1, args.per_page, &args.status)
        .await?;
    if context.json {
        let posts: Vec<_> = list
            .posts
            .iter()
            .map(|p| json!({"id": p.id, "date": p.date, "status": p.status, "title": p.title.rendered, "link": p.link}))
            .collect();
        print_json(&json!({"total": list.total, "posts": posts}));
        return Ok(());
    }
    if list.posts.is_empty() {
        println!("No posts.");
    }
    for p in &list.posts {
        println!(
            "{}\t{}\t{}\t{}\t{}",
            p.id, p.date, p.status, p.title.rendered, p.link
        );
    }
    Ok(())
}

/// `authbroker config path`.
pub(crate) fn config_path(args: &SitesArgs) -> Outcome {
    let dir = config_dir()?;
    let config = ClientConfig::path(&dir);
    if args.common.json {
        // Opening the store reads nothing and creates nothing; it only knows where its files are.
        let (connections, credentials) =
            TokenStore::open(dir, authbroker_client::store::KeyringPolicy::Never)?.files();
        print_json(&json!({
            "config": config,
            "connections": connections,
            "credentials": credentials,
        }));
    } else {
        println!("{}", config.display());
    }
    Ok(())
}
