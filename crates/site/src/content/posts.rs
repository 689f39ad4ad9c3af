//! `wp/v2/posts`.

use axum::Router;

use crate::state::SiteState;

pub(super) fn routes() -> Router<SiteState> {
    Router::new()
}
