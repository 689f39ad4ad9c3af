//! The site's nonce store: the batched writer of `authbroker_store::nonces` (one per site, in the state),
//! whose outcomes become the protocol's errors here — a replay is `json_oauth1_nonce_already_used` (401),
//! a store that cannot answer refuses the request with 503.

use authbroker_oauth1::{NonceKey, VerifyError};
use authbroker_store::nonces::{self as store, NonceError};

use crate::error::SiteError;
use crate::state::SiteState;

/// Records the nonce through the site's writer; a second use within the window is refused.
pub(crate) async fn record(
    state: &SiteState,
    key: NonceKey<'_>,
    expires_at: i64,
) -> Result<(), SiteError> {
    let key = store::NonceKey {
        consumer_key: key.consumer_key,
        token: key.token,
        timestamp: key.timestamp,
        nonce: key.nonce,
    };
    state
        .nonce_writer()
        .record(key, expires_at)
        .await
        .map_err(|err| verify_error(err).into())
}

fn verify_error(err: NonceError) -> VerifyError {
    match err {
        NonceError::AlreadyUsed => VerifyError::NonceAlreadyUsed,
        NonceError::Unavailable => VerifyError::NonceStoreUnavailable,
    }
}

/// Deletes nonces whose timestamp has left the window.
pub(crate) async fn prune(state: &SiteState) -> Result<u64, SiteError> {
    Ok(store::prune(state.db(), state.now()).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_outcomes_are_the_protocol_errors() {
        let replay = SiteError::from(verify_error(NonceError::AlreadyUsed));
        assert_eq!(replay.status(), 401);
        assert_eq!(replay.code(), "json_oauth1_nonce_already_used");
        let down = SiteError::from(verify_error(NonceError::Unavailable));
        assert_eq!(down.status(), 503);
    }
}
