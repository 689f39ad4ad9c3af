//! The nonce store: a table keyed by (consumer, token, timestamp, nonce), shared by every node and kept
//! across restarts, pruned once a nonce's timestamp has left the window.

use authbroker_oauth1::{NonceKey, VerifyError};
use authbroker_store::sqlx;

use crate::error::SiteError;
use crate::state::SiteState;

/// Records the nonce; a second use within the window is refused. The primary key makes the check atomic
/// across connections and nodes.
pub(crate) async fn record(
    state: &SiteState,
    key: NonceKey<'_>,
    expires_at: i64,
) -> Result<(), SiteError> {
    let inserted = sqlx::query(
        "INSERT INTO oauth1_nonces (consumer_key, token, ts, nonce, expires_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
    )
    .bind(key.consumer_key)
    .bind(key.token)
    .bind(key.timestamp)
    .bind(key.nonce)
    .bind(expires_at)
    .execute(state.db())
    .await
    .map_err(|err| {
        tracing::error!(%err, "nonce store unavailable");
        SiteError::from(VerifyError::NonceStoreUnavailable)
    })?
    .rows_affected();
    if inserted == 1 {
        Ok(())
    } else {
        Err(VerifyError::NonceAlreadyUsed.into())
    }
}

pub(crate) async fn prune(state: &SiteState) -> Result<u64, SiteError> {
    Ok(
        sqlx::query("DELETE FROM oauth1_nonces WHERE expires_at < $1")
            .bind(state.now())
            .execute(state.db())
            .await?
            .rows_affected(),
    )
}
