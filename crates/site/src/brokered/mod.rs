//! The brokered connection endpoint (PROTOCOL.md R4/R5, site side).

use axum::Router;

use crate::state::SiteState;

pub(crate) fn routes() -> Router<SiteState> {
    Router::new()
}
