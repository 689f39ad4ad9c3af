//! `/apps`: my apps, registering one, and one app's credentials and connection log.

use askama::Template;
use authbroker_web::input::{drop_nul, has_nul};
use authbroker_web::pages::format_time;
use axum::extract::rejection::FormRejection;
use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;

use super::{
    APPS, Audience, ButtonForm, DoneQuery, Nav, PageResult, Viewer, finish, page_error, render,
};
use crate::apps::{self as registry, App, NewApp, valid_details_url};
use crate::error::BrokerError;
use crate::state::BrokerState;

/// How many connections the app page lists.
const LOG_ROWS: i64 = 100;

#[derive(Template)]
#[template(path = "apps.html")]
pub(super) struct AppsPage<'a> {
    pub(super) broker_name: &'a str,
    pub(super) nav: Nav<'a>,
    pub(super) notice: Option<&'a str>,
    pub(super) apps: Vec<AppRow>,
    /// What was typed, when the registration was refused.
    pub(super) form: RegisterValues,
    pub(super) error: Option<String>,
}

/// One row of the list.
#[derive(Debug, Clone)]
pub(super) struct AppRow {
    pub(super) client_id: String,
    pub(super) name: String,
    pub(super) status: String,
    pub(super) callback_url: String,
    pub(super) registered: String,
}

impl From<App> for AppRow {
    fn from(app: App) -> Self {
        Self {
            registered: format_time(app.created_at),
            client_id: app.client_id,
            name: app.name,
            status: app.status,
            callback_url: app.callback_url,
        }
    }
}

/// The values of the registration form.
#[derive(Debug, Clone, Default)]
pub(super) struct RegisterValues {
    pub(super) name: String,
    pub(super) description: String,
    pub(super) callback_url: String,
    pub(super) details_url: String,
}

async fn apps_page(
    state: &BrokerState,
    viewer: &Viewer,
    notice: Option<&'static str>,
    form: RegisterValues,
    error: Option<(StatusCode, String)>,
) -> Result<Response, BrokerError> {
    let apps = registry::apps_of(state, &viewer.developer.id)
        .await?
        .into_iter()
        .map(AppRow::from)
        .collect();
    let (status, error) = match error {
        Some((status, message)) => (status, Some(message)),
        None => (StatusCode::OK, None),
    };
    let page = AppsPage {
        broker_name: &state.config().name,
        nav: viewer.nav("apps"),
        notice,
        apps,
        form,
        error,
    };
    render(&page, status, viewer.csrf_cookie.clone())
}

pub(super) async fn list(
    State(state): State<BrokerState>,
    headers: HeaderMap,
    done: DoneQuery,
) -> Response {
    let result: PageResult = async {
        let viewer = Viewer::of(&state, &headers, Audience::Developers, APPS).await?;
        Ok(apps_page(
            &state,
            &viewer,
            super::notice(&done),
            RegisterValues::default(),
            None,
        )
        .await?)
    }
    .await;
    finish(&state, result)
}

#[derive(Debug, Deserialize)]
pub(super) struct RegisterForm {
    #[serde(rename = "_csrf")]
    csrf: Option<String>,
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    callback_url: String,
    #[serde(default)]
    details_url: String,
}

impl super::CsrfForm for RegisterForm {
    fn csrf(&self) -> Option<&str> {
        self.csrf.as_deref()
    }
}

/// Registers an app, then shows its credentials; a refused registration shows the form again with what
/// was typed and why.
pub(super) async fn register(
    State(state): State<BrokerState>,
    headers: HeaderMap,
    submitted: Result<Form<RegisterForm>, FormRejection>,
) -> Response {
    let result: PageResult = async {
        let (submitted, viewer) =
            Viewer::of_form(&state, &headers, submitted, Audience::Developers, APPS).await?;
        // NUL characters are dropped from the text people read (PostgreSQL cannot store them); URLs with
        // one are refused by the registry's checks.
        let name = drop_nul(&submitted.name);
        let description = drop_nul(&submitted.description);
        let new = NewApp {
            name: &name,
            description: &description,
            callback_url: &submitted.callback_url,
            details_url: &submitted.details_url,
        };
        match registry::register_app(&state, &viewer.developer.id, new).await {
            Ok(app) => {
                tracing::info!(client_id = %app.client_id, developer = %viewer.developer.id, "app registered");
                Ok(super::done(&detail_path(&app.client_id), "registered"))
            }
            Err(err @ BrokerError::Protocol { .. }) => {
                let values = RegisterValues {
                    name: name.trim().to_owned(),
                    description: description.trim().to_owned(),
                    callback_url: drop_nul(submitted.callback_url.trim()).into_owned(),
                    details_url: drop_nul(submitted.details_url.trim()).into_owned(),
                };
                let error = Some((err.status(), super::message_of(&err)));
                Ok(apps_page(&state, &viewer, None, values, error).await?)
            }
            Err(err) => Err(err.into()),
        }
    }
    .await;
    finish(&state, result)
}

pub(super) fn detail_path(client_id: &str) -> String {
    format!("{APPS}/{}", authbroker_oauth1::percent_encode(client_id))
}

fn not_found() -> BrokerError {
    page_error(404, "There is no such app among yours.")
}

/// The viewer's app `client_id`, or 404 (also for another developer's app, and for a client id with NUL,
/// which names no app).
async fn own_app(
    state: &BrokerState,
    viewer: &Viewer,
    client_id: &str,
) -> Result<App, BrokerError> {
    if has_nul(client_id) {
        return Err(not_found());
    }
    registry::app_of(state, &viewer.developer.id, client_id)
        .await?
        .ok_or_else(not_found)
}

#[derive(Template)]
#[template(path = "app.html")]
pub(super) struct AppPage<'a> {
    pub(super) broker_name: &'a str,
    pub(super) nav: Nav<'a>,
    pub(super) notice: Option<&'a str>,
    pub(super) app: &'a App,
    /// The details URL when it is a web URL (only those become links).
    pub(super) details_link: Option<&'a str>,
    pub(super) registered: String,
    pub(super) connections: Vec<ConnectionRow>,
}

/// One entry of the connection log, ready to show.
#[derive(Debug, Clone)]
pub(super) struct ConnectionRow {
    pub(super) site_url: String,
    pub(super) time: String,
    pub(super) result: String,
    pub(super) ok: bool,
}

pub(super) async fn detail(
    State(state): State<BrokerState>,
    headers: HeaderMap,
    Path(client_id): Path<String>,
    done: DoneQuery,
) -> Response {
    let result: PageResult = async {
        let viewer = Viewer::of(
            &state,
            &headers,
            Audience::Developers,
            &detail_path(&client_id),
        )
        .await?;
        let app = own_app(&state, &viewer, &client_id).await?;
        let connections = registry::connections(&state, &app.id, LOG_ROWS)
            .await?
            .into_iter()
            .map(|c| ConnectionRow {
                ok: c.result == "success",
                time: format_time(c.created_at),
                site_url: c.site_url,
                result: c.result,
            })
            .collect();
        let page = AppPage {
            broker_name: &state.config().name,
            nav: viewer.nav("apps"),
            notice: super::notice(&done),
            app: &app,
            details_link: Some(app.details_url.as_str()).filter(|u| valid_details_url(u)),
            registered: format_time(app.created_at),
            connections,
        };
        Ok(render(&page, StatusCode::OK, viewer.csrf_cookie.clone())?)
    }
    .await;
    finish(&state, result)
}

/// A new client secret: the old one stops working for R1 at once (sites keep the credentials they issued).
pub(super) async fn regenerate_secret(
    State(state): State<BrokerState>,
    headers: HeaderMap,
    Path(client_id): Path<String>,
    submitted: Result<Form<ButtonForm>, FormRejection>,
) -> Response {
    let result: PageResult = async {
        let (_, viewer) = Viewer::of_form(
            &state,
            &headers,
            submitted,
            Audience::Developers,
            &detail_path(&client_id),
        )
        .await?;
        let app = own_app(&state, &viewer, &client_id).await?;
        registry::regenerate_secret(&state, &app.id).await?;
        tracing::info!(client_id = %app.client_id, "client secret regenerated");
        Ok(super::done(&detail_path(&app.client_id), "secret"))
    }
    .await;
    finish(&state, result)
}

/// Deletes the app and its connection log.
pub(super) async fn delete(
    State(state): State<BrokerState>,
    headers: HeaderMap,
    Path(client_id): Path<String>,
    submitted: Result<Form<ButtonForm>, FormRejection>,
) -> Response {
    let result: PageResult = async {
        let (_, viewer) = Viewer::of_form(
            &state,
            &headers,
            submitted,
            Audience::Developers,
            &detail_path(&client_id),
        )
        .await?;
        let app = own_app(&state, &viewer, &client_id).await?;
        if !registry::delete_app(&state, &app.id).await? {
            return Err(not_found().into());
        }
        tracing::info!(client_id = %app.client_id, "app deleted");
        Ok(super::done(APPS, "deleted"))
    }
    .await;
    finish(&state, result)
}
