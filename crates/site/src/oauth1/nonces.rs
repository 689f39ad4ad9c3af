//! The site's nonce store: the batched writer of `authbroker_store::nonces` (one per site, in the state),
//! whose outcomes become the protocol's errors here — a replay is `json_oauth1_nonce_already_used` (401),
//! a store that cannot answer refuses the request with 503.

use authbroker_oauth1::{NonceKey, VerifyError};
use authbroker_store::nonces as store;

use crate::error::SiteError;
use crate::state::SiteState;

/// Records the nonce through the site's writer; a second use within the window is refused.
pub(crate) async fn record(
    state: &SiteState,
    key: NonceKey<'_>,
    expires_at: i64,
) -> Result<(), SiteError> {
    state
        .nonce_writer()
        .record(key.into(), expires_at)
        .await
        .map_err(|err| VerifyError::from(err).into())
}

/// Deletes nonces whose timestamp has left the window.
pub(crate) async fn prune(state: &SiteState) -> Result<u64, SiteError> {
    Ok(store::prune(state.db(), state.now()).await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use authbroker_store::nonces::NonceError;

    #[test]
    fn store_outcomes_are_the_protocol_errors() {
        let replay = SiteError::from(VerifyError::from(NonceError::AlreadyUsed));
        assert_eq!(replay.status(), 401);
        assert_eq!(replay.code(), "json_oauth1_nonce_already_used");
        let down = SiteError::from(VerifyError::from(NonceError::Unavailable));
        assert_eq!(down.status(), 503);
    }
}
