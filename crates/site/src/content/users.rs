//! `GET /wp-json/wp/v2/users/me`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::accounts::{MaybeSession, User};
use crate::state::SiteState;

pub(super) async fn me(
    State(state): State<SiteState>,
    session: MaybeSession,
    parts: Parts,
    body: Bytes,
) -> Response {
    match super::rest_user(&state, &parts, &body, session).await {
        Ok(Some(user)) => Json(user_json(&state, &user)).into_response(),
        Ok(None) => super::not_logged_in().into_response(),
        Err(err) => err.into_response(),
    }
}

/// A user in the WordPress shape (`context=view` fields plus what `users/me` adds for the user themself).
pub(crate) fn user_json(state: &SiteState, user: &User) -> serde_json::Value {
    json!({
        "id": user.id,
        "name": user.display_name,
        "url": "",
        "description": "",
        "link": state.url(&format!("/author/{}/", user.login)),
        "slug": user.login,
        "username": user.login,
        "email": user.email,
        "roles": [user.role.as_str()],
        "avatar_urls": {},
        "meta": [],
    })
}
