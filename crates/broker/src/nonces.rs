//! Replay protection for R1: the same (consumer, token, timestamp, nonce) table as the site's, in the
//! broker's database, written by the same batched writer (`authbroker_store::nonces`, one per broker, in
//! the state). Its outcomes become the protocol's errors here: a replay is `json_oauth1_nonce_already_used`
//! (401), a store that cannot answer refuses the connection with 503.

use authbroker_oauth1::{NonceKey, VerifyError};
use authbroker_store::nonces as store;

use crate::error::BrokerError;
use crate::state::BrokerState;

/// Records the nonce through the broker's writer; a second use within the window is refused.
pub(crate) async fn record(
    state: &BrokerState,
    key: NonceKey<'_>,
    expires_at: i64,
) -> Result<(), BrokerError> {
    state
        .nonce_writer()
        .record(key.into(), expires_at)
        .await
        .map_err(|err| VerifyError::from(err).into())
}

/// Deletes nonces whose timestamp has left the window: a replay of them is refused for its timestamp.
pub(crate) async fn prune(state: &BrokerState) -> Result<u64, BrokerError> {
    Ok(store::prune(state.db(), state.now()).await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use authbroker_store::nonces::NonceError;

    #[test]
    fn store_outcomes_are_the_protocol_errors() {
        let replay = BrokerError::from(VerifyError::from(NonceError::AlreadyUsed));
        assert_eq!(replay.status(), 401);
        assert_eq!(replay.to_wire().code, "json_oauth1_nonce_already_used");
        let down = BrokerError::from(VerifyError::from(NonceError::Unavailable));
        assert_eq!(down.status(), 503);
    }
}
