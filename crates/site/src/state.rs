//! Shared state and the router.

use std::sync::{Arc, Weak};
use std::time::Duration;

use authbroker_store::Store;
use axum::Router;
use axum::http::{HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::Response;

use crate::config::SiteConfig;
use crate::error::SiteError;
use authbroker_web::Clock;

/// The state every handler shares: configuration, storage, clock. Cheap to clone.
#[derive(Debug, Clone)]
pub struct SiteState(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    config: SiteConfig,
    store: Store,
    clock: Arc<dyn Clock>,
    link_header: HeaderValue,
    /// The client for outbound requests (verification requests to brokers): rustls with certificate
    /// verification, webpki roots plus `extra_root_certs`, HTTPS only, 5 s timeout, no redirects.
    http: reqwest::Client,
    /// The single writer that batches nonce inserts (see `authbroker_store::nonces`).
    nonces: authbroker_store::nonces::NonceWriter,
    /// The reader that batches access grant lookups (see `oauth1::tokens`).
    grants: crate::oauth1::tokens::GrantReader,
    /// Serializes post id allocation on this node (`content::posts::insert_post`).
    post_ids: tokio::sync::Mutex<()>,
    /// Failed-login throttling per login name and per client IP (see `accounts::limits`).
    login_limits: crate::accounts::LoginLimits,
}

impl SiteState {
    /// Opens the database named by the configuration, applies migrations, seeds the known brokers on first
    /// start, and starts the background pruning of expired nonces and request tokens.
    pub async fn open(config: SiteConfig, clock: Arc<dyn Clock>) -> Result<Self, SiteError> {
        let store = Store::connect(&config.database_url()).await?;
        Self::with_store(config, store, clock).await
    }

    /// Like [`SiteState::open`] with an already opened store.
    pub async fn with_store(
        config: SiteConfig,
        store: Store,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, SiteError> {
        url::Url::parse(&config.home_url)
            .map_err(|e| SiteError::Internal(format!("home_url {:?}: {e}", config.home_url)))?;
        store.migrate(crate::MIGRATIONS).await?;
        seed_known_brokers(&config, &store, clock.now()).await?;
        let http = outbound_client(&config)?;
        let store_pool = store.pool().clone();
        let link_header = HeaderValue::from_str(&format!(
            "<{}/wp-json/>; rel=\"https://api.w.org/\"",
            config.home()
        ))
        .map_err(|_| SiteError::Internal("home_url cannot be sent in a header".into()))?;
        let login_limits = crate::accounts::LoginLimits::from_config(&config);
        let state = Self(Arc::new(Inner {
            config,
            store,
            clock,
            link_header,
            http,
            nonces: authbroker_store::nonces::NonceWriter::spawn(store_pool.clone()),
            grants: crate::oauth1::tokens::GrantReader::spawn(store_pool),
            post_ids: tokio::sync::Mutex::new(()),
            login_limits,
        }));
        spawn_pruning(Arc::downgrade(&state.0));
        Ok(state)
    }

    pub fn config(&self) -> &SiteConfig {
        &self.0.config
    }

    pub fn store(&self) -> &Store {
        &self.0.store
    }

    pub(crate) fn db(&self) -> &authbroker_store::sqlx::AnyPool {
        self.0.store.pool()
    }

    /// The nonce writer every signed request records its nonce through.
    pub(crate) fn nonce_writer(&self) -> &authbroker_store::nonces::NonceWriter {
        &self.0.nonces
    }

    /// The reader every signed REST call looks its access token up through.
    pub(crate) fn grant_reader(&self) -> &crate::oauth1::tokens::GrantReader {
        &self.0.grants
    }

    /// Held while a post is inserted under the next free id, so that this node's inserts never race
    /// each other for an id.
    pub(crate) fn post_ids(&self) -> &tokio::sync::Mutex<()> {
        &self.0.post_ids
    }

    /// The throttle of failed logins.
    pub(crate) fn login_limits(&self) -> &crate::accounts::LoginLimits {
        &self.0.login_limits
    }

    /// The client for outbound requests (see [`outbound_client`]).
    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.0.http
    }

    /// Now, in unix seconds, from the injected clock.
    pub fn now(&self) -> i64 {
        self.0.clock.now()
    }

    /// An absolute URL on this site.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{}", self.0.config.home(), path)
    }
}

/// Timeout of every outbound request (PROTOCOL.md R5: 5 s).
pub(crate) const OUTBOUND_TIMEOUT: Duration = Duration::from_secs(5);

/// The outbound client, built once: rustls with certificate verification, trusting the webpki roots plus
/// the PEM certificates named in `extra_root_certs` (a private broker's CA), HTTPS only, no redirects, 5 s
/// for the whole exchange.
fn outbound_client(config: &SiteConfig) -> Result<reqwest::Client, SiteError> {
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(true)
        .https_only(true)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(OUTBOUND_TIMEOUT)
        .connect_timeout(OUTBOUND_TIMEOUT)
        .user_agent(concat!("authbroker-site/", env!("CARGO_PKG_VERSION")));
    for path in &config.extra_root_certs {
        let pem = std::fs::read(path).map_err(|e| {
            SiteError::Internal(format!("extra_root_certs: reading {}: {e}", path.display()))
        })?;
        let certificates = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
            SiteError::Internal(format!("extra_root_certs: parsing {}: {e}", path.display()))
        })?;
        if certificates.is_empty() {
            return Err(SiteError::Internal(format!(
                "extra_root_certs: {} holds no PEM certificate",
                path.display()
            )));
        }
        for certificate in certificates {
            builder = builder.add_root_certificate(certificate);
        }
    }
    builder
        .build()
        .map_err(|e| SiteError::Internal(format!("building the outbound HTTP client: {e}")))
}

/// Seeds `known_brokers` from the configuration when the table is empty (first start); afterwards the table
/// is managed on the Brokers page and the configuration no longer applies.
async fn seed_known_brokers(config: &SiteConfig, store: &Store, now: i64) -> Result<(), SiteError> {
    use authbroker_store::sqlx::{self, Row};
    let count: i64 = sqlx::query("SELECT COUNT(*) AS n FROM known_brokers")
        .fetch_one(store.pool())
        .await?
        .try_get("n")?;
    if count > 0 {
        return Ok(());
    }
    for broker in &config.known_brokers {
        if url::Url::parse(&broker.verification_url).is_err() {
            return Err(SiteError::Internal(format!(
                "known broker {:?}: verification_url {:?} is not an absolute URL",
                broker.id, broker.verification_url
            )));
        }
        sqlx::query(
            "INSERT INTO known_brokers (broker_id, verification_url, added_at) VALUES ($1, $2, $3) ON CONFLICT (broker_id) DO NOTHING",
        )
        .bind(&broker.id)
        .bind(&broker.verification_url)
        .bind(now)
        .execute(store.pool())
        .await?;
    }
    Ok(())
}

/// Deletes expired security state (nonces, request tokens, login sessions) once a minute; stops when the
/// state is dropped.
fn spawn_pruning(state: Weak<Inner>) {
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(Duration::from_secs(60));
        loop {
            interval.tick().await;
            let Some(inner) = state.upgrade() else { return };
            let state = SiteState(inner);
            if let Err(err) = crate::oauth1::prune_expired(&state).await {
                tracing::warn!(%err, "pruning expired OAuth state failed");
            }
            if let Err(err) = crate::accounts::prune_sessions(&state).await {
                tracing::warn!(%err, "pruning expired sessions failed");
            }
        }
    });
}

/// The whole site as one router.
pub fn router(state: SiteState) -> Router {
    let routes = Router::new()
        .merge(crate::content::routes())
        .merge(crate::oauth1::routes())
        .merge(crate::accounts::routes())
        .merge(crate::brokered::routes())
        .merge(crate::manage::routes())
        .layer(middleware::from_fn_with_state(
            state.clone(),
            common_headers,
        ))
        .layer(tower_http::limit::RequestBodyLimitLayer::new(1024 * 1024))
        .with_state(state);
    // `?rest_route=` must be rewritten before routing (a `Router::layer` runs after it), so the routes sit
    // behind a URI rewrite as the fallback of an otherwise empty router.
    Router::new().fallback_service(tower::ServiceExt::map_request(
        routes,
        crate::content::rewrite_rest_route,
    ))
}

/// Headers on every response: the REST API discovery link (WordPress sends it everywhere, and brokers look
/// for it), and the browser hardening every page wants.
async fn common_headers(
    axum::extract::State(state): axum::extract::State<SiteState>,
    request: axum::extract::Request,
    next: Next,
) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.append(header::LINK, state.0.link_header.clone());
    authbroker_web::pages::harden(headers);
    response
}
