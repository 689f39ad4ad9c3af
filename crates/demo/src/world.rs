//! Starting and stopping the demo world: a broker and a site over HTTPS on loopback, and their accounts.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use authbroker_broker::apps::{App, NewApp, ROLE_DEVELOPER, create_developer, register_app};
use authbroker_broker::{BrokerConfig, BrokerState};
use authbroker_site::{KnownBrokerConfig, Role, SiteConfig, SiteState, SystemClock, create_user};
use authbroker_store::sqlx::{self, Row};
use authbroker_web::serve::{Listener, ServeError};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::DemoError;
use crate::credentials::Credentials;
use crate::files::create_private_dir;
use crate::pki;

/// Step names, in the order [`World::start`] reports them.
pub const STEP_CERTIFICATES: &str = "local CA and certificates";
pub const STEP_BROKER: &str = "broker started";
pub const STEP_SITE: &str = "site started";
pub const STEP_APP: &str = "developer and app registered at the broker";
pub const STEP_USERS: &str = "site users created";

/// The developer who owns the demo app at the broker.
pub const DEVELOPER_EMAIL: &str = "dev@demo.example";
const DEVELOPER_NAME: &str = "Demo Developer";
/// The app registered at the broker, which `authbroker demo` connects as.
pub const APP_NAME: &str = "authbroker CLI";
const APP_DESCRIPTION: &str = "The authbroker command-line client: connects to WordPress sites through the broker and publishes posts.";
/// The registered callback: an IP-literal loopback URL, so the client may listen on any port (RFC 8252 §7.3).
pub const APP_CALLBACK: &str = "http://127.0.0.1/callback";
/// The site's administrator.
pub const ADMIN_LOGIN: &str = "admin";
/// The site user who approves the connection in the demo.
pub const AUTHOR_LOGIN: &str = "author";
/// The site's name in its REST index and on its pages.
pub const SITE_NAME: &str = "Demo Site";
const BROKER_NAME: &str = "authbroker demo broker";

/// Name of the credentials file in the data directory.
const CREDENTIALS_FILE: &str = "credentials.json";

/// How to start a [`World`].
#[derive(Debug, Clone, Default)]
pub struct WorldOptions {
    /// Where the certificates, both databases and the account passwords live. `None`: a fresh temporary
    /// directory, removed when the world is dropped. A directory holding a previous world is reused (see
    /// [`World::start`]).
    pub data_dir: Option<PathBuf>,
    /// The broker's port on 127.0.0.1; 0 picks a free one.
    pub broker_port: u16,
    /// The site's port on 127.0.0.1; 0 picks a free one.
    pub site_port: u16,
    /// Emit no `tracing` events of the world's own (its progress reaches only the `step` callback). The
    /// services' request logs go to whatever subscriber the caller installed, filtered as the caller chose:
    /// this library never installs one.
    pub quiet_logs: bool,
}

/// The app registered at the broker, with its credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct DemoApp {
    pub client_id: String,
    pub client_secret: String,
    pub name: String,
    pub callback_url: String,
}

impl std::fmt::Debug for DemoApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DemoApp")
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("name", &self.name)
            .field("callback_url", &self.callback_url)
            .finish()
    }
}

/// A login and its password (the broker's logins are email addresses).
#[derive(Clone, PartialEq, Eq)]
pub struct Login {
    pub login: String,
    pub password: String,
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Login")
            .field("login", &self.login)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// The whole system on loopback: a broker and a site over HTTPS with certificates from a local CA, a
/// developer with a registered app at the broker, and two users of the site. The servers run in the
/// background of the current Tokio runtime until [`World::shutdown`] or until the world is dropped (which
/// asks them to stop without waiting).
pub struct World {
    broker_url: String,
    site_url: String,
    data_dir: PathBuf,
    ca_pem: String,
    ca_pem_path: PathBuf,
    app: DemoApp,
    developer: Login,
    site_admin: Login,
    site_author: Login,
    reused: bool,
    broker: BrokerState,
    site: SiteState,
    /// Dropping it (or sending `true`) stops both servers.
    stop: watch::Sender<bool>,
    servers: Vec<(&'static str, JoinHandle<Result<(), ServeError>>)>,
    /// Declared last: removed after everything else let go of the files.
    _temp_dir: Option<tempfile::TempDir>,
}

impl std::fmt::Debug for World {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("World")
            .field("broker_url", &self.broker_url)
            .field("site_url", &self.site_url)
            .field("data_dir", &self.data_dir)
            .field("app", &self.app)
            .field("developer", &self.developer)
            .field("site_admin", &self.site_admin)
            .field("site_author", &self.site_author)
            .field("reused", &self.reused)
            .finish_non_exhaustive()
    }
}

/// The previous world's accounts found in the databases.
struct Existing {
    developer: Option<authbroker_broker::apps::Developer>,
    app: Option<App>,
    admin: bool,
    author: bool,
}

impl Existing {
    fn any(&self) -> bool {
        self.developer.is_some() || self.app.is_some() || self.admin || self.author
    }
}

impl World {
    /// Starts everything, calling `step(name, duration)` after each step (the `STEP_*` names, in order) so
    /// that a command can print its progress.
    ///
    /// The layout of the data directory: `tls/` (`ca.pem`, `server.pem`, `server.key`), `broker/broker.db`,
    /// `site/site.db` and `credentials.json` (the generated passwords, 0600). When it already holds a world,
    /// that world is reused: the certificates, the accounts and the app (same client id and secret) and the
    /// passwords from `credentials.json`; only what is missing is created. The site's list of trusted
    /// brokers is pointed at this run's broker (earlier demo brokers on 127.0.0.1 are removed from it, as
    /// their ports may have changed). A directory whose accounts exist but whose `credentials.json` is gone
    /// is refused: remove the directory to start afresh.
    pub async fn start(
        options: WorldOptions,
        step: &mut dyn FnMut(&str, Duration),
    ) -> Result<World, DemoError> {
        let quiet = options.quiet_logs;
        let mut report = |name: &str, elapsed: Duration| {
            if !quiet {
                tracing::info!(step = name, elapsed_ms = elapsed.as_millis(), "demo: done");
            }
            step(name, elapsed);
        };

        let (temp_dir, data_dir) = match options.data_dir {
            Some(dir) => (None, dir),
            None => {
                let temp = tempfile::Builder::new()
                    .prefix("authbroker-demo-")
                    .tempdir()
                    .map_err(|source| DemoError::Io {
                        what: "creating a temporary data directory",
                        path: std::env::temp_dir(),
                        source,
                    })?;
                let path = temp.path().to_owned();
                (Some(temp), path)
            }
        };
        create_private_dir(&data_dir)?;

        // 1. Certificates.
        let started = Instant::now();
        let tls_dir = data_dir.join("tls");
        create_private_dir(&tls_dir)?;
        let pki = pki::ensure(&tls_dir)?;
        let reused_certificates = pki.reused;
        report(STEP_CERTIFICATES, started.elapsed());

        // Dropping `stop` (when a later step fails, or with the world) stops the servers started so far.
        let (stop, stopping) = watch::channel(false);
        let clock = Arc::new(SystemClock);

        // 2. The broker: bound first, so that its URL (which is its ID) is known.
        let started = Instant::now();
        let listener = bind(options.broker_port, &pki, "broker").await?;
        let broker_addr = listener.local_addr();
        let broker_url = format!("https://{broker_addr}");
        let broker_id = format!("{broker_url}/");
        let mut config = BrokerConfig::new(broker_id.clone());
        config.name = BROKER_NAME.to_owned();
        config.data_dir = data_dir.join("broker");
        config.listen = broker_addr;
        config.tls_cert = Some(pki.chain_path.clone());
        config.tls_key = Some(pki.key_path.clone());
        config.allow_loopback_targets = true;
        config.extra_root_certs = vec![pki.ca_path.clone()];
        create_private_dir(&config.data_dir)?;
        let broker = BrokerState::open(config, clock.clone())
            .await
            .map_err(|source| DemoError::Broker {
                what: "opening the database",
                source,
            })?;
        let broker_server = tokio::spawn(listener.serve(
            authbroker_broker::router(broker.clone()),
            stopped(stopping.clone()),
        ));
        let mut servers = vec![("broker", broker_server)];
        report(STEP_BROKER, started.elapsed());

        // 3. The site, trusting that broker and the local CA (for the verification requests, R5).
        let started = Instant::now();
        let listener = bind(options.site_port, &pki, "site").await?;
        let site_addr = listener.local_addr();
        let site_url = format!("https://{site_addr}");
        let verification_url = format!("{broker_url}/broker/confirm/");
        let mut config = SiteConfig::new(site_url.clone());
        config.name = SITE_NAME.to_owned();
        config.description = "A WordPress-compatible site on your machine".to_owned();
        config.data_dir = data_dir.join("site");
        config.listen = site_addr;
        config.tls_cert = Some(pki.chain_path.clone());
        config.tls_key = Some(pki.key_path.clone());
        config.known_brokers = vec![KnownBrokerConfig {
            id: broker_id.clone(),
            verification_url: verification_url.clone(),
        }];
        config.extra_root_certs = vec![pki.ca_path.clone()];
        create_private_dir(&config.data_dir)?;
        let site = SiteState::open(config, clock)
            .await
            .map_err(|source| DemoError::Site {
                what: "opening the database",
                source,
            })?;
        trust_only_this_broker(&site, &broker_id, &verification_url).await?;
        let site_server = tokio::spawn(listener.serve(
            authbroker_site::router(site.clone()),
            stopped(stopping.clone()),
        ));
        servers.push(("site", site_server));
        report(STEP_SITE, started.elapsed());

        // 4 and 5, concurrently (password hashing dominates both): the broker's developer and app, the
        // site's users.
        let started = Instant::now();
        let (existing_broker, existing_site) =
            tokio::join!(broker_accounts(&broker), site_users(&site));
        let (developer, app) = existing_broker?;
        let (admin, author) = existing_site?;
        let existing = Existing {
            developer,
            app,
            admin,
            author,
        };
        let credentials_path = data_dir.join(CREDENTIALS_FILE);
        let credentials = match Credentials::load(&credentials_path)? {
            Some(credentials) => credentials,
            None if existing.any() => {
                return Err(DemoError::Credentials {
                    path: credentials_path,
                    message: format!(
                        "missing, but {} already holds demo accounts whose passwords only it knew; remove that directory to start afresh",
                        data_dir.display()
                    ),
                });
            }
            None => {
                // Saved before any account exists, so that no account is ever without its password.
                let credentials = Credentials::generate();
                credentials.save(&credentials_path)?;
                credentials
            }
        };
        let reused = reused_certificates || existing.any();

        let broker_side = async {
            let app = ensure_app(&broker, &existing, &credentials, &data_dir).await?;
            Ok::<_, DemoError>((app, started.elapsed()))
        };
        let site_side = async {
            let admin = async {
                if existing.admin {
                    return Ok(());
                }
                create_user(
                    &site,
                    ADMIN_LOGIN,
                    "Demo Administrator",
                    "admin@demo.example",
                    &credentials.admin_password,
                    Role::Administrator,
                )
                .await
                .map(drop)
                .map_err(|source| DemoError::Site {
                    what: "creating the administrator",
                    source,
                })
            };
            let author = async {
                if existing.author {
                    return Ok(());
                }
                create_user(
                    &site,
                    AUTHOR_LOGIN,
                    "Ada Author",
                    "author@demo.example",
                    &credentials.author_password,
                    Role::Author,
                )
                .await
                .map(drop)
                .map_err(|source| DemoError::Site {
                    what: "creating the author",
                    source,
                })
            };
            tokio::try_join!(admin, author)?;
            Ok::<_, DemoError>(started.elapsed())
        };
        let (broker_side, site_side) = tokio::join!(broker_side, site_side);
        let (app, elapsed) = broker_side?;
        report(STEP_APP, elapsed);
        report(STEP_USERS, site_side?);

        if !quiet {
            tracing::info!(%broker_url, %site_url, data_dir = %data_dir.display(), reused, "demo: world ready");
        }
        Ok(World {
            broker_url,
            site_url,
            data_dir,
            ca_pem: pki.ca_pem,
            ca_pem_path: pki.ca_path,
            app: DemoApp {
                client_id: app.client_id,
                client_secret: app.client_secret,
                name: app.name,
                callback_url: app.callback_url,
            },
            developer: Login {
                login: DEVELOPER_EMAIL.to_owned(),
                password: credentials.developer_password,
            },
            site_admin: Login {
                login: ADMIN_LOGIN.to_owned(),
                password: credentials.admin_password,
            },
            site_author: Login {
                login: AUTHOR_LOGIN.to_owned(),
                password: credentials.author_password,
            },
            reused,
            broker,
            site,
            stop,
            servers,
            _temp_dir: temp_dir,
        })
    }

    /// The broker's base URL, `https://127.0.0.1:PORT` (no trailing slash).
    pub fn broker_url(&self) -> &str {
        &self.broker_url
    }

    /// The broker ID: its base URL with a trailing slash (what sites list as a known broker).
    pub fn broker_id(&self) -> String {
        format!("{}/", self.broker_url)
    }

    /// The site's home URL, `https://127.0.0.1:PORT` (no trailing slash).
    pub fn site_url(&self) -> &str {
        &self.site_url
    }

    /// The data directory (a temporary one unless [`WorldOptions::data_dir`] named one).
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The local CA certificate (PEM file) a client must trust to reach the broker and the site.
    pub fn ca_pem_path(&self) -> &Path {
        &self.ca_pem_path
    }

    /// The local CA certificate, PEM.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The app registered at the broker.
    pub fn app(&self) -> &DemoApp {
        &self.app
    }

    /// The developer's login to the broker's portal (an email address and a password).
    pub fn developer(&self) -> &Login {
        &self.developer
    }

    /// The site's administrator.
    pub fn site_admin(&self) -> &Login {
        &self.site_admin
    }

    /// The site's author (`author`), who approves the connection in the demo.
    pub fn site_author(&self) -> &Login {
        &self.site_author
    }

    /// Whether the data directory held a previous world that was reused.
    pub fn reused(&self) -> bool {
        self.reused
    }

    /// The running broker's state (for tests and diagnostics).
    pub fn broker_state(&self) -> &BrokerState {
        &self.broker
    }

    /// The running site's state (for tests and diagnostics).
    pub fn site_state(&self) -> &SiteState {
        &self.site
    }

    /// Stops both servers: no new connections, requests in flight finish (at most
    /// [`authbroker_web::serve::SHUTDOWN_GRACE`]); then closes both databases. A temporary data directory
    /// is removed.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        for (service, server) in self.servers.drain(..) {
            match server.await {
                Ok(Ok(())) => {}
                Ok(Err(err)) => tracing::warn!(service, %err, "demo: serving failed"),
                Err(err) => tracing::warn!(service, %err, "demo: server task failed"),
            }
        }
        self.broker.store().pool().close().await;
        self.site.store().pool().close().await;
    }
}

/// Completes once the world asks the servers to stop, or is gone.
async fn stopped(mut stopping: watch::Receiver<bool>) {
    // An error means the sender was dropped: the world is gone, so stop too.
    let _ = stopping.wait_for(|stop| *stop).await;
}

/// Binds 127.0.0.1:`port` with the demo's server certificate.
async fn bind(port: u16, pki: &pki::Pki, service: &'static str) -> Result<Listener, DemoError> {
    Listener::bind(
        SocketAddr::from(([127, 0, 0, 1], port)),
        Some(&pki.chain_path),
        Some(&pki.key_path),
    )
    .await
    .map_err(|source| DemoError::Listen { service, source })
}

/// Makes this run's broker the site's trusted demo broker. The site seeds its known brokers from the
/// configuration only into an empty table, so a reused site still lists the broker of the previous run,
/// whose port may differ.
async fn trust_only_this_broker(
    site: &SiteState,
    broker_id: &str,
    verification_url: &str,
) -> Result<(), DemoError> {
    let storage = |what| move |source| DemoError::SiteStorage { what, source };
    sqlx::query("DELETE FROM known_brokers WHERE broker_id <> $1 AND broker_id LIKE $2")
        .bind(broker_id)
        .bind("https://127.0.0.1:%")
        .execute(site.store().pool())
        .await
        .map_err(storage("removing the previous demo broker"))?;
    sqlx::query(
        "INSERT INTO known_brokers (broker_id, verification_url, added_at) VALUES ($1, $2, $3) \
         ON CONFLICT (broker_id) DO UPDATE SET verification_url = excluded.verification_url",
    )
    .bind(broker_id)
    .bind(verification_url)
    .bind(site.now())
    .execute(site.store().pool())
    .await
    .map_err(storage("adding the demo broker"))?;
    Ok(())
}

/// The demo developer and app at the broker, if a previous run created them.
async fn broker_accounts(
    broker: &BrokerState,
) -> Result<(Option<authbroker_broker::apps::Developer>, Option<App>), DemoError> {
    let developers = authbroker_broker::accounts::all_developers(broker)
        .await
        .map_err(|source| DemoError::Broker {
            what: "listing developers",
            source,
        })?;
    let developer = developers
        .into_iter()
        .map(|summary| summary.developer)
        .find(|developer| developer.email == DEVELOPER_EMAIL);
    let Some(developer) = developer else {
        return Ok((None, None));
    };
    let apps = authbroker_broker::apps::apps_of(broker, &developer.id)
        .await
        .map_err(|source| DemoError::Broker {
            what: "listing the developer's apps",
            source,
        })?;
    // Newest first: the latest registration wins if there are several.
    let app = apps.into_iter().find(|app| app.name == APP_NAME);
    Ok((Some(developer), app))
}

/// Whether the site already has the administrator and the author.
async fn site_users(site: &SiteState) -> Result<(bool, bool), DemoError> {
    let rows = sqlx::query("SELECT login FROM users WHERE login = $1 OR login = $2")
        .bind(ADMIN_LOGIN)
        .bind(AUTHOR_LOGIN)
        .fetch_all(site.store().pool())
        .await
        .map_err(|source| DemoError::SiteStorage {
            what: "looking up users",
            source,
        })?;
    let mut found = (false, false);
    for row in rows {
        let login: String = row
            .try_get("login")
            .map_err(|source| DemoError::SiteStorage {
                what: "looking up users",
                source,
            })?;
        found.0 |= login == ADMIN_LOGIN;
        found.1 |= login == AUTHOR_LOGIN;
    }
    Ok(found)
}

/// The demo app: the existing one (which must be active) or a new registration, with a new developer if
/// needed.
async fn ensure_app(
    broker: &BrokerState,
    existing: &Existing,
    credentials: &Credentials,
    data_dir: &Path,
) -> Result<App, DemoError> {
    let refuse = |message: String| DemoError::Reuse {
        path: data_dir.to_owned(),
        message,
    };
    let developer_id = match &existing.developer {
        Some(developer) if !developer.is_active() => {
            return Err(refuse(format!(
                "the developer {DEVELOPER_EMAIL} is suspended at the broker; reactivate them or remove the directory"
            )));
        }
        Some(developer) => developer.id.clone(),
        None => {
            create_developer(
                broker,
                DEVELOPER_EMAIL,
                DEVELOPER_NAME,
                &credentials.developer_password,
                ROLE_DEVELOPER,
            )
            .await
            .map_err(|source| DemoError::Broker {
                what: "creating the developer",
                source,
            })?
            .id
        }
    };
    match &existing.app {
        Some(app) if !app.is_active() => Err(refuse(format!(
            "the app {APP_NAME:?} ({}) is suspended at the broker; reactivate it or remove the directory",
            app.client_id
        ))),
        Some(app) => Ok(app.clone()),
        None => register_app(
            broker,
            &developer_id,
            NewApp {
                name: APP_NAME,
                description: APP_DESCRIPTION,
                callback_url: APP_CALLBACK,
                details_url: env!("CARGO_PKG_REPOSITORY"),
            },
        )
        .await
        .map_err(|source| DemoError::Broker {
            what: "registering the app",
            source,
        }),
    }
}
