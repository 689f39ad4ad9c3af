//! Shared state and the router.

use std::sync::Arc;

use authbroker_outbound::{Allow, Outbound, OutboundConfig};
use authbroker_store::Store;
use authbroker_web::Clock;
use axum::Router;
use tokio::sync::Semaphore;

use crate::config::BrokerConfig;
use crate::discovery::DiscoveryCache;
use crate::error::BrokerError;
use crate::limits::Limits;
use crate::pending::PendingRegistry;

/// Prunes expired state once a minute; stops when the state is dropped.
fn spawn_pruning(state: std::sync::Weak<Inner>) {
    tokio::spawn(async move {
        let period = std::time::Duration::from_secs(60);
        // The first pass a period after start: nothing has expired in a state that was just opened.
        let mut interval = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        loop {
            interval.tick().await;
            let Some(inner) = state.upgrade() else { return };
            if let Err(err) = BrokerState(inner).prune_expired().await {
                tracing::warn!(%err, "pruning expired broker state failed");
            }
        }
    });
}

/// The broker's migrations.
pub const MIGRATIONS: &[authbroker_store::Migration] = &[authbroker_store::Migration {
    version: 1,
    sql: include_str!("../../../migrations/broker/0001_init.sql"),
}];

/// State shared by every handler. Cheap to clone.
#[derive(Debug, Clone)]
pub struct BrokerState(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    config: BrokerConfig,
    store: Store,
    clock: Arc<dyn Clock>,
    outbound: Outbound,
    discovery: DiscoveryCache,
    pending: PendingRegistry,
    held: Arc<Semaphore>,
    limits: Limits,
    /// The single writer that batches R1's nonce inserts (see `authbroker_store::nonces`).
    nonces: authbroker_store::nonces::NonceWriter,
}

impl BrokerState {
    /// Opens the database, applies migrations and builds the outbound client.
    pub async fn open(config: BrokerConfig, clock: Arc<dyn Clock>) -> Result<Self, BrokerError> {
        let store = Store::connect(&config.database_url()).await?;
        Self::with_store(config, store, clock).await
    }

    /// Like [`BrokerState::open`] with an already opened store.
    pub async fn with_store(
        config: BrokerConfig,
        store: Store,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, BrokerError> {
        if !config.broker_id.ends_with('/') || url::Url::parse(&config.broker_id).is_err() {
            return Err(BrokerError::Internal(format!(
                "broker_id {:?} must be an absolute URI ending in '/'",
                config.broker_id
            )));
        }
        store.migrate(MIGRATIONS).await?;
        let mut extra_roots = Vec::new();
        for path in &config.extra_root_certs {
            let pem = std::fs::read(path)
                .map_err(|e| BrokerError::Internal(format!("{}: {e}", path.display())))?;
            let certs = authbroker_outbound::Certificate::from_pem_bundle(&pem)
                .map_err(|e| BrokerError::Internal(format!("{}: {e}", path.display())))?;
            extra_roots.extend(certs);
        }
        let outbound = Outbound::new(OutboundConfig {
            allow: Allow {
                loopback: config.allow_loopback_targets,
                private: config.allow_private_targets,
            },
            extra_roots,
            ..OutboundConfig::default()
        })
        .map_err(|e| BrokerError::Internal(e.to_string()))?;
        let held = Arc::new(Semaphore::new(config.max_held_connections));
        let limits = Limits::new(&config.rate_limits).map_err(BrokerError::Internal)?;
        let nonces = authbroker_store::nonces::NonceWriter::spawn(store.pool().clone());
        let state = Self(Arc::new(Inner {
            config,
            store,
            clock,
            outbound,
            discovery: DiscoveryCache::default(),
            pending: PendingRegistry::new(),
            held,
            limits,
            nonces,
        }));
        spawn_pruning(Arc::downgrade(&state.0));
        Ok(state)
    }

    /// Deletes expired security state: nonces whose timestamp has left the window and expired sessions.
    pub async fn prune_expired(&self) -> Result<u64, BrokerError> {
        let nonces = crate::nonces::prune(self).await?;
        let sessions = crate::accounts::prune_sessions(self).await?;
        Ok(nonces + sessions)
    }

    pub fn config(&self) -> &BrokerConfig {
        &self.0.config
    }

    pub fn store(&self) -> &Store {
        &self.0.store
    }

    pub(crate) fn db(&self) -> &authbroker_store::sqlx::AnyPool {
        self.0.store.pool()
    }

    /// The nonce writer every R1 request records its nonce through.
    pub(crate) fn nonce_writer(&self) -> &authbroker_store::nonces::NonceWriter {
        &self.0.nonces
    }

    pub fn now(&self) -> i64 {
        self.0.clock.now()
    }

    pub(crate) fn outbound(&self) -> &Outbound {
        &self.0.outbound
    }

    pub(crate) fn discovery(&self) -> &DiscoveryCache {
        &self.0.discovery
    }

    /// The connections waiting for their verification (for tests and metrics).
    pub fn pending(&self) -> &PendingRegistry {
        &self.0.pending
    }

    pub(crate) fn held(&self) -> &Arc<Semaphore> {
        &self.0.held
    }

    pub(crate) fn limits(&self) -> &Limits {
        &self.0.limits
    }
}

/// The whole broker as one router.
pub fn router(state: BrokerState) -> Router {
    Router::new()
        .merge(crate::connect::routes())
        .merge(crate::confirm::routes())
        .merge(crate::portal::routes())
        .layer(tower_http::limit::RequestBodyLimitLayer::new(64 * 1024))
        .with_state(state)
}
