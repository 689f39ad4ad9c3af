//! `/admin/…`: the broker's administrators see every developer and app and suspend or unsuspend them. A
//! suspended app (or any app of a suspended developer) is refused by R1 with `json_consumer_notfound`.

use askama::Template;
use authbroker_web::input::has_nul;
use authbroker_web::pages::format_time;
use axum::extract::rejection::FormRejection;
use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Redirect, Response};

use super::{
    ADMIN_APPS, ADMIN_DEVELOPERS, Audience, ButtonForm, DoneQuery, Nav, PageResult, Viewer, finish,
    page_error, render,
};
use crate::accounts::{self, DeveloperSummary};
use crate::apps::{self as registry, AppWithDeveloper, STATUS_ACTIVE, STATUS_SUSPENDED};
use crate::state::BrokerState;

pub(super) async fn home() -> Redirect {
    Redirect::to(ADMIN_DEVELOPERS)
}

#[derive(Template)]
#[template(path = "admin_developers.html")]
pub(super) struct DevelopersPage<'a> {
    pub(super) broker_name: &'a str,
    pub(super) nav: Nav<'a>,
    pub(super) notice: Option<&'a str>,
    pub(super) viewer_id: &'a str,
    pub(super) developers: Vec<DeveloperRow>,
}

#[derive(Debug, Clone)]
pub(super) struct DeveloperRow {
    pub(super) id: String,
    pub(super) email: String,
    pub(super) name: String,
    pub(super) role: String,
    pub(super) status: String,
    pub(super) apps: i64,
    pub(super) joined: String,
}

impl From<DeveloperSummary> for DeveloperRow {
    fn from(summary: DeveloperSummary) -> Self {
        let d = summary.developer;
        Self {
            id: d.id,
            email: d.email,
            name: d.name,
            role: d.role,
            status: d.status,
            apps: summary.apps,
            joined: format_time(summary.created_at),
        }
    }
}

pub(super) async fn developers(
    State(state): State<BrokerState>,
    headers: HeaderMap,
    done: DoneQuery,
) -> Response {
    let result: PageResult = async {
        let viewer =
            Viewer::of(&state, &headers, Audience::Administrators, ADMIN_DEVELOPERS).await?;
        let developers = accounts::all_developers(&state)
            .await?
            .into_iter()
            .map(DeveloperRow::from)
            .collect();
        let page = DevelopersPage {
            broker_name: &state.config().name,
            nav: viewer.nav("admin-developers"),
            notice: super::notice(&done),
            viewer_id: &viewer.developer.id,
            developers,
        };
        Ok(render(&page, StatusCode::OK, viewer.csrf_cookie.clone())?)
    }
    .await;
    finish(&state, result)
}

#[derive(Template)]
#[template(path = "admin_apps.html")]
pub(super) struct AppsPage<'a> {
    pub(super) broker_name: &'a str,
    pub(super) nav: Nav<'a>,
    pub(super) notice: Option<&'a str>,
    pub(super) apps: Vec<AdminAppRow>,
}

#[derive(Debug, Clone)]
pub(super) struct AdminAppRow {
    pub(super) client_id: String,
    pub(super) name: String,
    pub(super) developer: String,
    pub(super) developer_active: bool,
    pub(super) status: String,
    pub(super) registered: String,
}

impl From<AppWithDeveloper> for AdminAppRow {
    fn from(row: AppWithDeveloper) -> Self {
        Self {
            registered: format_time(row.app.created_at),
            client_id: row.app.client_id,
            name: row.app.name,
            developer: row.developer_email,
            developer_active: row.developer_status == STATUS_ACTIVE,
            status: row.app.status,
        }
    }
}

pub(super) async fn apps(
    State(state): State<BrokerState>,
    headers: HeaderMap,
    done: DoneQuery,
) -> Response {
    let result: PageResult = async {
        let viewer = Viewer::of(&state, &headers, Audience::Administrators, ADMIN_APPS).await?;
        let apps = registry::all_apps(&state)
            .await?
            .into_iter()
            .map(AdminAppRow::from)
            .collect();
        let page = AppsPage {
            broker_name: &state.config().name,
            nav: viewer.nav("admin-apps"),
            notice: super::notice(&done),
            apps,
        };
        Ok(render(&page, StatusCode::OK, viewer.csrf_cookie.clone())?)
    }
    .await;
    finish(&state, result)
}

async fn developer_status(
    state: BrokerState,
    headers: HeaderMap,
    id: String,
    submitted: Result<Form<ButtonForm>, FormRejection>,
    status: &'static str,
) -> Response {
    let result: PageResult = async {
        let (_, viewer) =
            Viewer::of_form(&state, &headers, submitted, Audience::Administrators, ADMIN_DEVELOPERS).await?;
        if id == viewer.developer.id {
            return Err(page_error(400, "You cannot suspend your own account.").into());
        }
        // An id with NUL names no developer (and PostgreSQL could not even look it up).
        if has_nul(&id) || !accounts::set_developer_status(&state, &id, status).await? {
            return Err(page_error(404, "There is no such developer.").into());
        }
        tracing::info!(developer = %id, status, by = %viewer.developer.id, "developer status changed");
        Ok(super::done(ADMIN_DEVELOPERS, done_of(status)))
    }
    .await;
    finish(&state, result)
}

fn done_of(status: &str) -> &'static str {
    if status == STATUS_ACTIVE {
        "unsuspended"
    } else {
        "suspended"
    }
}

pub(super) async fn suspend_developer(
    State(state): State<BrokerState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    submitted: Result<Form<ButtonForm>, FormRejection>,
) -> Response {
    developer_status(state, headers, id, submitted, STATUS_SUSPENDED).await
}

pub(super) async fn unsuspend_developer(
    State(state): State<BrokerState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    submitted: Result<Form<ButtonForm>, FormRejection>,
) -> Response {
    developer_status(state, headers, id, submitted, STATUS_ACTIVE).await
}

async fn app_status(
    state: BrokerState,
    headers: HeaderMap,
    client_id: String,
    submitted: Result<Form<ButtonForm>, FormRejection>,
    status: &'static str,
) -> Response {
    let result: PageResult = async {
        let (_, viewer) = Viewer::of_form(
            &state,
            &headers,
            submitted,
            Audience::Administrators,
            ADMIN_APPS,
        )
        .await?;
        // A client id with NUL names no app (and PostgreSQL could not even look it up).
        if has_nul(&client_id) || !registry::set_app_status(&state, &client_id, status).await? {
            return Err(page_error(404, "There is no such app.").into());
        }
        tracing::info!(%client_id, status, by = %viewer.developer.id, "app status changed");
        Ok(super::done(ADMIN_APPS, done_of(status)))
    }
    .await;
    finish(&state, result)
}

pub(super) async fn suspend_app(
    State(state): State<BrokerState>,
    headers: HeaderMap,
    Path(client_id): Path<String>,
    submitted: Result<Form<ButtonForm>, FormRejection>,
) -> Response {
    app_status(state, headers, client_id, submitted, STATUS_SUSPENDED).await
}

pub(super) async fn unsuspend_app(
    State(state): State<BrokerState>,
    headers: HeaderMap,
    Path(client_id): Path<String>,
    submitted: Result<Form<ButtonForm>, FormRejection>,
) -> Response {
    app_status(state, headers, client_id, submitted, STATUS_ACTIVE).await
}
