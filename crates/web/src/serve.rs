//! Serving a router over HTTP or HTTPS, for `authbroker site serve` and `authbroker broker serve`.
//!
//! Serving is split in two so that callers can learn the port before serving (`listen = 127.0.0.1:0` in
//! tests and `demo`): [`Listener::bind`] checks the TLS files and the address and binds, then
//! [`Listener::serve`] runs the router until the shutdown future completes.
//!
//! HTTPS uses rustls with the `ring` provider (no process-wide provider is installed). Plain HTTP is refused
//! unless the listen address is loopback: OAuth 1.0a secrets, site credentials and session cookies must not
//! cross a network in the clear, and a reverse proxy in front of a plain-HTTP service runs on the same
//! machine.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::extract::connect_info::{ConnectInfo, Connected};
use axum::middleware::Next;
use axum::response::Response;
use axum::serve::IncomingStream;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;
use tokio_rustls::server::TlsStream;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

/// How long a client may take to finish its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// After shutdown is requested, how long requests in flight may take before the server stops anyway.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// Why a service could not be served.
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

/// A bound listening socket, plain or TLS, ready to serve a router.
#[derive(Debug)]
pub struct Listener {
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    local_addr: SocketAddr,
}

impl Listener {
    /// Loads the TLS certificate and key (if given), checks that plain HTTP is only served on loopback, and
    /// binds `listen`.
    pub async fn bind(
        listen: SocketAddr,
        tls_cert: Option<&Path>,
        tls_key: Option<&Path>,
    ) -> Result<Self, ServeError> {
        let tls = match (tls_cert, tls_key) {
            (Some(cert), Some(key)) => Some(tls_config(cert, key)?),
            (None, None) => None,
            _ => return Err(ServeError::IncompleteTls),
        };
        if tls.is_none() && !listen.ip().is_loopback() {
            return Err(ServeError::PlainHttpNotLoopback(listen));
        }
        let listener = TcpListener::bind(listen)
            .await
            .map_err(|source| ServeError::Bind {
                addr: listen,
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

    /// The URL of the bound socket, `http://127.0.0.1:8080/` or `https://[::1]:8443/` (not the service's
    /// home URL, which is what clients should use).
    pub fn url(&self) -> String {
        let scheme = if self.is_tls() { "https" } else { "http" };
        format!("{scheme}://{}/", self.local_addr)
    }

    /// Serves `app` until `shutdown` completes, then stops accepting connections and lets the requests in
    /// flight finish (at most [`SHUTDOWN_GRACE`]).
    pub async fn serve(
        self,
        app: Router,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        let app = app.layer(
            TraceLayer::new_for_http()
                .make_span_with(request_span)
                .on_response(DefaultOnResponse::new().level(Level::INFO)),
        );
        tracing::info!(url = %self.url(), "serving");
        match self.tls {
            None => {
                let listener = PlainListener(self.listener);
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
    for<'a> PeerAddr: Connected<IncomingStream<'a, L>>,
{
    // Handlers read the TCP peer as `ConnectInfo<SocketAddr>` (rate limits per client IP), whichever
    // listener accepted the connection.
    let app = app
        .layer(axum::middleware::from_fn(expose_peer))
        .into_make_service_with_connect_info::<PeerAddr>();
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

/// The TCP peer of a connection, for both the plain and the TLS listener (axum only knows its own
/// listeners' addresses).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerAddr(pub SocketAddr);

impl Connected<IncomingStream<'_, TlsListener>> for PeerAddr {
    fn connect_info(stream: IncomingStream<'_, TlsListener>) -> Self {
        Self(*stream.remote_addr())
    }
}

impl Connected<IncomingStream<'_, PlainListener>> for PeerAddr {
    fn connect_info(stream: IncomingStream<'_, PlainListener>) -> Self {
        Self(*stream.remote_addr())
    }
}

/// Plain TCP with `TCP_NODELAY` (small OAuth replies should not wait for Nagle).
#[derive(Debug)]
struct PlainListener(TcpListener);

impl axum::serve::Listener for PlainListener {
    type Io = TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.0.accept().await {
                Ok((stream, peer)) => {
                    if let Err(err) = stream.set_nodelay(true) {
                        tracing::trace!(%err, "cannot set TCP_NODELAY");
                    }
                    return (stream, peer);
                }
                Err(err) => handle_accept_error(err).await,
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.0.local_addr()
    }
}

/// Re-exposes the peer as `ConnectInfo<SocketAddr>`, the type handlers (and tests serving with axum's own
/// `into_make_service_with_connect_info::<SocketAddr>`) read.
async fn expose_peer(mut request: Request, next: Next) -> Response {
    if let Some(ConnectInfo(PeerAddr(addr))) =
        request.extensions().get::<ConnectInfo<PeerAddr>>().copied()
    {
        request.extensions_mut().insert(ConnectInfo(addr));
    }
    next.run(request).await
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
