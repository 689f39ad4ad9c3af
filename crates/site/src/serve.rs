//! Serving the site over HTTP or HTTPS (used by `authbroker site serve`), and setting up a new site's first
//! administrator (`authbroker site init`).
//!
//! Serving is split in two so that callers can learn the port before serving (`listen = 127.0.0.1:0` in
//! tests and `demo`): [`SiteListener::bind`] checks the TLS files and the address and binds, then
//! [`SiteListener::serve`] runs the router until the shutdown future completes. [`serve`] does both.
//!
//! HTTPS uses rustls with the `ring` provider (no process-wide provider is installed). Plain HTTP is refused
//! unless the listen address is loopback: a site's OAuth 1.0a secrets and session cookies must not cross a
//! network in the clear, and a reverse proxy in front of a plain-HTTP site runs on the same machine.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use authbroker_store::sqlx::{self, Row};
use axum::Router;
use axum::extract::Request;
use axum::serve::ListenerExt;
use rand::Rng;
use rand::distributions::Alphanumeric;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;
use tokio_rustls::server::TlsStream;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

use crate::accounts::{Role, create_user};
use crate::error::SiteError;
use crate::{SiteConfig, SiteState, router};

/// How long a client may take to finish its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// After shutdown is requested, how long requests in flight may take before the server stops anyway.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// Why the site could not be served.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Plain HTTP was asked for on an address other programs on the network can reach.
    #[error(
        "listen: refusing to serve plain HTTP on {0}, which is not a loopback address; set tls_cert and tls_key to serve HTTPS, or listen on 127.0.0.1 or [::1]"
    )]
    PlainHttpNotLoopback(SocketAddr),
    /// Only one of `tls_cert` and `tls_key` is set.
    #[error("tls_cert and tls_key: set both to serve HTTPS, or neither to serve plain HTTP")]
    IncompleteTls,
    /// A certificate or key file could not be read or holds no usable PEM block.
    #[error("{key} {}: {message}", path.display())]
    TlsFile {
        key: &'static str,
        path: PathBuf,
        message: String,
    },
    /// rustls refused the certificate and key (for instance, the key does not match the certificate).
    #[error("tls_cert and tls_key: {0}")]
    Tls(#[from] rustls::Error),
    /// The address could not be bound.
    #[error("listen: cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
    /// Serving failed.
    #[error("serving failed: {0}")]
    Io(#[from] io::Error),
}

/// A bound listening socket, plain or TLS, ready to serve a site.
#[derive(Debug)]
pub struct SiteListener {
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    local_addr: SocketAddr,
}

impl SiteListener {
    /// Loads the TLS certificate and key (if configured), checks that plain HTTP is only served on loopback,
    /// and binds `config.listen`.
    pub async fn bind(config: &SiteConfig) -> Result<Self, ServeError> {
        let tls = match (&config.tls_cert, &config.tls_key) {
            (Some(cert), Some(key)) => Some(tls_config(cert, key)?),
            (None, None) => None,
            _ => return Err(ServeError::IncompleteTls),
        };
        if tls.is_none() && !config.listen.ip().is_loopback() {
            return Err(ServeError::PlainHttpNotLoopback(config.listen));
        }
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| ServeError::Bind {
                    addr: config.listen,
                    source,
                })?;
        let local_addr = listener.local_addr()?;
        Ok(Self {
            listener,
            tls,
            local_addr,
        })
    }

    /// The address actually bound (the port chosen when the configuration asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Whether connections are served over TLS.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// The URL of the bound socket, `http://127.0.0.1:8080/` or `https://[::1]:8443/` (not the site's home
    /// URL, which is what clients should use).
    pub fn url(&self) -> String {
        let scheme = if self.is_tls() { "https" } else { "http" };
        format!("{scheme}://{}/", self.local_addr)
    }

    /// Serves the site until `shutdown` completes, then stops accepting connections and lets the requests in
    /// flight finish (at most [`SHUTDOWN_GRACE`]).
    pub async fn serve(
        self,
        state: SiteState,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        let app = router(state).layer(
            TraceLayer::new_for_http()
                .make_span_with(request_span)
                .on_response(DefaultOnResponse::new().level(Level::INFO)),
        );
        tracing::info!(url = %self.url(), "serving");
        match self.tls {
            None => {
                let listener = self.listener.tap_io(|stream| {
                    if let Err(err) = stream.set_nodelay(true) {
                        tracing::trace!(%err, "cannot set TCP_NODELAY");
                    }
                });
                run(listener, app, shutdown).await
            }
            Some(tls) => {
                let acceptor = TlsAcceptor::from(tls);
                let (sender, receiver) = mpsc::channel(64);
                tokio::spawn(accept_tls(self.listener, acceptor, sender));
                let listener = TlsListener {
                    receiver,
                    local_addr: self.local_addr,
                };
                run(listener, app, shutdown).await
            }
        }
    }
}

/// Binds the configured address and serves the site until `shutdown` completes.
pub async fn serve(
    state: SiteState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    SiteListener::bind(state.config())
        .await?
        .serve(state, shutdown)
        .await
}

/// A span per request with the method and the path only: query strings carry OAuth tokens and verifiers,
/// which do not belong in logs.
fn request_span(request: &Request) -> tracing::Span {
    tracing::info_span!("request", method = %request.method(), path = %request.uri().path())
}

/// Runs axum's server on `listener` with graceful shutdown, bounded by [`SHUTDOWN_GRACE`].
async fn run<L>(
    listener: L,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError>
where
    L: axum::serve::Listener,
    L::Addr: std::fmt::Debug,
{
    let (stopping_tx, mut stopping_rx) = watch::channel(false);
    let signal = async move {
        shutdown.await;
        tracing::info!("shutting down: no new connections, finishing requests in flight");
        let _ = stopping_tx.send(true);
    };
    let server = std::future::IntoFuture::into_future(
        axum::serve(listener, app).with_graceful_shutdown(signal),
    );
    let deadline = async move {
        if stopping_rx.wait_for(|stopping| *stopping).await.is_err() {
            // The server ended without a shutdown request; nothing to time out.
            std::future::pending::<()>().await;
        }
        tokio::time::sleep(SHUTDOWN_GRACE).await;
    };
    tokio::select! {
        result = server => result.map_err(ServeError::Io),
        () = deadline => {
            tracing::warn!(grace = ?SHUTDOWN_GRACE, "requests still in flight after the grace period; stopping anyway");
            Ok(())
        }
    }
}

/// The server side of TLS: completed handshakes, fed by [`accept_tls`], so that one slow client's handshake
/// never holds up the others.
#[derive(Debug)]
struct TlsListener {
    receiver: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local_addr: SocketAddr,
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.receiver.recv().await {
            Some(connection) => connection,
            // The acceptor only stops once this listener is dropped, so this does not happen; never
            // returning is what "no more connections" means to axum.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local_addr)
    }
}

/// Accepts TCP connections and runs each TLS handshake in its own task; stops when the [`TlsListener`] is
/// dropped (axum drops it when shutdown begins).
async fn accept_tls(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    sender: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
) {
    loop {
        let (stream, peer) = tokio::select! {
            () = sender.closed() => return,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    handle_accept_error(err).await;
                    continue;
                }
            },
        };
        if let Err(err) = stream.set_nodelay(true) {
            tracing::trace!(%err, "cannot set TCP_NODELAY");
        }
        let acceptor = acceptor.clone();
        let sender = sender.clone();
        tokio::spawn(async move {
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(stream)) => {
                    // Fails only when the server is shutting down; the connection is then dropped.
                    let _ = sender.send((stream, peer)).await;
                }
                Ok(Err(err)) => tracing::debug!(%peer, %err, "TLS handshake failed"),
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
            }
        });
    }
}

/// Accept errors are per connection (the peer went away) or resource exhaustion (too many open files);
/// the latter gets a pause so the loop does not spin.
async fn handle_accept_error(err: io::Error) {
    if matches!(
        err.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    ) {
        return;
    }
    tracing::error!(%err, "accepting a connection failed");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// The rustls server configuration for a PEM certificate chain and key, with the `ring` provider.
fn tls_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, ServeError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};

    let file_error = |key_name: &'static str, path: &Path| {
        let path = path.to_owned();
        move |err: rustls::pki_types::pem::Error| ServeError::TlsFile {
            key: key_name,
            path,
            message: err.to_string(),
        }
    };
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(file_error("tls_cert", cert))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(file_error("tls_cert", cert))?;
    if chain.is_empty() {
        return Err(ServeError::TlsFile {
            key: "tls_cert",
            path: cert.to_owned(),
            message: "no CERTIFICATE block".to_owned(),
        });
    }
    let private_key = PrivateKeyDer::from_pem_file(key).map_err(file_error("tls_key", key))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, private_key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The first administrator of a new site, for [`init`].
#[derive(Debug, Clone)]
pub struct NewAdministrator {
    pub login: String,
    pub email: String,
    /// `None` generates a password of 24 letters and digits.
    pub password: Option<String>,
}

/// What [`init`] did.
#[derive(Debug, Clone)]
pub struct Initialized {
    /// The administrator's user id.
    pub user_id: String,
    pub login: String,
    /// The password, when it was generated (it is shown once and stored only as a hash).
    pub generated_password: Option<String>,
}

/// Why [`init`] did nothing.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// The site already has an administrator: `init` is for new sites only.
    #[error(
        "the site already has an administrator ({login:?}); init only sets up a new site, nothing was changed"
    )]
    AdministratorExists { login: String },
    /// The chosen password is too short.
    #[error("admin password: use at least {min} characters", min = MIN_PASSWORD_LEN)]
    PasswordTooShort,
    /// Storage failed, or the login was refused.
    #[error("{0}")]
    Site(#[from] SiteError),
}

/// The shortest administrator password [`init`] accepts.
pub const MIN_PASSWORD_LEN: usize = 12;

/// Creates the first administrator of a site whose database was just opened (and migrated) by
/// [`SiteState::open`]. Refuses when an administrator already exists.
pub async fn init(state: &SiteState, admin: NewAdministrator) -> Result<Initialized, InitError> {
    if let Some(login) = first_administrator(state).await? {
        return Err(InitError::AdministratorExists { login });
    }
    let (password, generated) = match admin.password {
        Some(password) if password.chars().count() < MIN_PASSWORD_LEN => {
            return Err(InitError::PasswordTooShort);
        }
        Some(password) => (password, false),
        None => (generate_password(), true),
    };
    let user = create_user(
        state,
        &admin.login,
        &admin.login,
        &admin.email,
        &password,
        Role::Administrator,
    )
    .await?;
    tracing::info!(login = %user.login, "created the first administrator");
    Ok(Initialized {
        user_id: user.id,
        login: user.login,
        generated_password: generated.then_some(password),
    })
}

/// The login of the oldest administrator, if the site has one.
pub async fn first_administrator(state: &SiteState) -> Result<Option<String>, SiteError> {
    let row =
        sqlx::query("SELECT login FROM users WHERE role = $1 ORDER BY created_at, id LIMIT 1")
            .bind(Role::Administrator.as_str())
            .fetch_optional(state.store().pool())
            .await
            .map_err(|err| SiteError::Internal(format!("storage: {err}")))?;
    row.map(|row| row.try_get::<String, _>("login"))
        .transpose()
        .map_err(|err| SiteError::Internal(format!("storage: {err}")))
}

/// 24 letters and digits from the thread's CSPRNG (about 143 bits).
fn generate_password() -> String {
    rand::thread_rng()
        .sample_iter(Alphanumeric)
        .take(24)
        .map(char::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SystemClock;

    async fn state(dir: &Path) -> SiteState {
        let mut config = SiteConfig::new("http://127.0.0.1:8080");
        config.data_dir = dir.to_owned();
        SiteState::open(config, Arc::new(SystemClock))
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn plain_http_is_refused_off_loopback() {
        let mut config = SiteConfig::new("http://127.0.0.1:8080");
        config.listen = "0.0.0.0:0".parse().unwrap();
        let err = SiteListener::bind(&config).await.unwrap_err();
        assert!(matches!(err, ServeError::PlainHttpNotLoopback(_)), "{err}");
        assert!(err.to_string().contains("loopback"), "{err}");
    }

    #[tokio::test]
    async fn half_a_tls_pair_is_refused() {
        let mut config = SiteConfig::new("https://127.0.0.1:8443");
        config.listen = "127.0.0.1:0".parse().unwrap();
        config.tls_cert = Some("cert.pem".into());
        let err = SiteListener::bind(&config).await.unwrap_err();
        assert!(matches!(err, ServeError::IncompleteTls), "{err}");
    }

    #[tokio::test]
    async fn unreadable_tls_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        let mut config = SiteConfig::new("https://127.0.0.1:8443");
        config.listen = "0.0.0.0:0".parse().unwrap();
        config.tls_cert = Some(dir.path().join("missing.pem"));
        config.tls_key = Some(empty.clone());
        let err = SiteListener::bind(&config).await.unwrap_err();
        assert!(err.to_string().starts_with("tls_cert "), "{err}");
        assert!(err.to_string().contains("missing.pem"), "{err}");

        config.tls_cert = Some(empty);
        let err = SiteListener::bind(&config).await.unwrap_err();
        assert!(err.to_string().contains("no CERTIFICATE"), "{err}");
    }

    #[tokio::test]
    async fn port_zero_binds_a_free_port_and_serves_until_shutdown() {
        let dir = tempfile::tempdir().unwrap();
        let state = state(dir.path()).await;
        let mut config = state.config().clone();
        config.listen = "127.0.0.1:0".parse().unwrap();
        let listener = SiteListener::bind(&config).await.unwrap();
        let addr = listener.local_addr();
        assert_ne!(addr.port(), 0);
        assert_eq!(listener.url(), format!("http://{addr}/"));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(listener.serve(state, async move {
            let _ = stopped.await;
        }));
        let response = reqwest::get(format!("http://{addr}/wp-json/"))
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert!(
            response
                .headers()
                .get("link")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.contains("<http://127.0.0.1:8080/wp-json/>"))
        );
        stop.send(()).unwrap();
        server.await.unwrap().unwrap();
        assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    }

    #[tokio::test]
    async fn init_creates_one_administrator_and_refuses_a_second() {
        let dir = tempfile::tempdir().unwrap();
        let state = state(dir.path()).await;
        assert_eq!(first_administrator(&state).await.unwrap(), None);
        let done = init(
            &state,
            NewAdministrator {
                login: "admin".into(),
                email: "admin@example.com".into(),
                password: None,
            },
        )
        .await
        .unwrap();
        let password = done.generated_password.unwrap();
        assert_eq!(password.len(), 24);
        assert!(password.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_eq!(
            first_administrator(&state).await.unwrap().as_deref(),
            Some("admin")
        );
        assert!(
            crate::accounts::authenticate_password(&state, "admin", &password)
                .await
                .unwrap()
                .is_some()
        );

        let err = init(
            &state,
            NewAdministrator {
                login: "other".into(),
                email: String::new(),
                password: Some("a long enough password".into()),
            },
        )
        .await
        .unwrap_err();
        assert!(
            matches!(err, InitError::AdministratorExists { .. }),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_short_password_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let state = state(dir.path()).await;
        let err = init(
            &state,
            NewAdministrator {
                login: "admin".into(),
                email: String::new(),
                password: Some("short".into()),
            },
        )
        .await
        .unwrap_err();
        assert!(matches!(err, InitError::PasswordTooShort), "{err}");
        assert_eq!(first_administrator(&state).await.unwrap(), None);
    }
}
