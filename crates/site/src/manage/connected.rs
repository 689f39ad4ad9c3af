//! `/wp-admin/connected-apps`: the applications a user granted access, one row per application, and
//! revoking them.

use askama::Template;
use axum::extract::rejection::FormRejection;
use axum::extract::{Form, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;

use super::{
    Audience, CONNECTED_APPS, DoneQuery, Nav, PageResult, Viewer, finish, format_time, required,
    store,
};
use crate::accounts::MaybeSession;
use crate::pages::render;
use crate::state::SiteState;

#[derive(Template)]
#[template(path = "manage/connected_apps.html")]
pub(super) struct ConnectedAppsPage<'a> {
    pub(super) site_name: &'a str,
    pub(super) nav: Nav<'a>,
    pub(super) notice: Option<&'a str>,
    pub(super) apps: Vec<AppRow>,
}

/// One row of the page, ready to show.
#[derive(Debug, Clone)]
pub(super) struct AppRow {
    pub(super) id: String,
    pub(super) name: String,
    pub(super) description: String,
    pub(super) broker: Option<String>,
    pub(super) blocked: bool,
    pub(super) connected: String,
    pub(super) last_used: String,
}

impl From<store::ConnectedApp> for AppRow {
    fn from(app: store::ConnectedApp) -> Self {
        Self {
            blocked: app.status != "active",
            id: app.consumer_id,
            name: app.name,
            description: app.description,
            broker: app.broker_id,
            connected: format_time(app.connected_at),
            last_used: format_time(app.last_used_at),
        }
    }
}

pub(super) async fn page(
    State(state): State<SiteState>,
    session: MaybeSession,
    headers: HeaderMap,
    done: DoneQuery,
) -> Response {
    let result: PageResult = async {
        let viewer = Viewer::of(&state, session, &headers, Audience::Users, CONNECTED_APPS)?;
        let apps = store::connected_apps(&state, &viewer.user.id)
            .await?
            .into_iter()
            .map(AppRow::from)
            .collect();
        let page = ConnectedAppsPage {
            site_name: &state.config().name,
            nav: viewer.nav("connected-apps"),
            notice: super::notice(&done),
            apps,
        };
        Ok(render(&page, StatusCode::OK, viewer.csrf_cookie.clone())?)
    }
    .await;
    finish(&state, result)
}

#[derive(Debug, Deserialize)]
pub(super) struct RevokeForm {
    #[serde(rename = "_csrf")]
    csrf: Option<String>,
    consumer_id: Option<String>,
}

impl super::CsrfForm for RevokeForm {
    fn csrf(&self) -> Option<&str> {
        self.csrf.as_deref()
    }
}

/// Deletes every access token the user granted the application. Revoking an app that is not (or no longer)
/// connected changes nothing and lands on the same page: a second click is harmless.
pub(super) async fn revoke(
    State(state): State<SiteState>,
    session: MaybeSession,
    headers: HeaderMap,
    submitted: Result<Form<RevokeForm>, FormRejection>,
) -> Response {
    let result: PageResult = async {
        let (submitted, viewer) = Viewer::of_form(
            &state,
            session,
            &headers,
            submitted,
            Audience::Users,
            CONNECTED_APPS,
        )?;
        let consumer_id = required(&submitted.consumer_id, "The application")?;
        let revoked = store::revoke(&state, &viewer.user.id, consumer_id).await?;
        tracing::info!(user = %viewer.user.id, consumer = %consumer_id, revoked, "application revoked");
        Ok(super::done(CONNECTED_APPS, "revoked"))
    }
    .await;
    finish(&state, result)
}
