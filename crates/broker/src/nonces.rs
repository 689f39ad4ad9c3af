//! Replay protection for R1: the same (consumer, token, timestamp, nonce) table as the site's, in the
//! broker's database.

use authbroker_oauth1::{NonceKey, VerifyError};
use authbroker_store::sqlx;

use crate::error::BrokerError;
use crate::state::BrokerState;

pub(crate) async fn record(
    state: &BrokerState,
    key: NonceKey<'_>,
    expires_at: i64,
) -> Result<(), BrokerError> {
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
        BrokerError::from(VerifyError::NonceStoreUnavailable)
    })?
    .rows_affected();
    if inserted == 1 {
        Ok(())
    } else {
        Err(VerifyError::NonceAlreadyUsed.into())
    }
}

/// Deletes nonces whose timestamp has left the window: a replay of them is refused for its timestamp.
pub(crate) async fn prune(state: &BrokerState) -> Result<u64, BrokerError> {
    Ok(
        sqlx::query("DELETE FROM oauth1_nonces WHERE expires_at < $1")
            .bind(state.now())
            .execute(state.db())
            .await?
            .rows_affected(),
    )
}
