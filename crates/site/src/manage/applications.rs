//! `/wp-admin/applications`: every consumer of the site, registering one by hand, and one consumer's
//! credentials, status and broker rules (administrators only).

use askama::Template;
use authbroker_web::input::{drop_nul, has_nul};
use axum::extract::rejection::FormRejection;
use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;

use super::{
    APPLICATIONS, Audience, DoneQuery, Nav, PageResult, Viewer, finish, format_time, required,
    store,
};
use crate::accounts::MaybeSession;
use crate::error::SiteError;
use crate::oauth1::consumers::{Consumer, NewConsumer, register_consumer};
use crate::pages::render;
use crate::state::SiteState;

const MAX_NAME_CHARS: usize = 200;
const MAX_DESCRIPTION_CHARS: usize = 2000;
const MAX_CALLBACK_LEN: usize = 2048;

#[derive(Template)]
#[template(path = "manage/applications.html")]
pub(super) struct ApplicationsPage<'a> {
    pub(super) site_name: &'a str,
    pub(super) nav: Nav<'a>,
    pub(super) notice: Option<&'a str>,
    pub(super) apps: Vec<ApplicationRow>,
}

/// One row of the list, ready to show.
#[derive(Debug, Clone)]
pub(super) struct ApplicationRow {
    pub(super) id: String,
    pub(super) name: String,
    pub(super) status: String,
    pub(super) broker: Option<String>,
    pub(super) broker_client_id: Option<String>,
    pub(super) details_url: Option<String>,
    pub(super) callback: String,
    pub(super) users: i64,
    pub(super) registered: String,
}

impl From<store::Application> for ApplicationRow {
    fn from(app: store::Application) -> Self {
        let details_url = app.consumer.details_url.filter(|u| is_web_url(u));
        Self {
            id: app.consumer.id,
            name: app.consumer.name,
            status: app.consumer.status,
            broker: app.consumer.broker_id,
            broker_client_id: app.consumer.broker_client_id,
            details_url,
            callback: app.consumer.callback,
            users: app.users,
            registered: format_time(app.created_at),
        }
    }
}

/// Only plain web URLs become links (brokers' `client_details` are filtered on the way in too).
fn is_web_url(url: &str) -> bool {
    url::Url::parse(url).is_ok_and(|u| matches!(u.scheme(), "https" | "http") && u.has_host())
}

pub(super) async fn list(
    State(state): State<SiteState>,
    session: MaybeSession,
    headers: HeaderMap,
    done: DoneQuery,
) -> Response {
    let result: PageResult = async {
        let viewer = Viewer::of(
            &state,
            session,
            &headers,
            Audience::Administrators,
            APPLICATIONS,
        )?;
        let apps = store::applications(&state)
            .await?
            .into_iter()
            .map(ApplicationRow::from)
            .collect();
        let page = ApplicationsPage {
            site_name: &state.config().name,
            nav: viewer.nav("applications"),
            notice: super::notice(&done),
            apps,
        };
        Ok(render(&page, StatusCode::OK, viewer.csrf_cookie.clone())?)
    }
    .await;
    finish(&state, result)
}

#[derive(Debug, Deserialize)]
pub(super) struct RegisterForm {
    #[serde(rename = "_csrf")]
    csrf: Option<String>,
    name: Option<String>,
    description: Option<String>,
    callback: Option<String>,
}

impl super::CsrfForm for RegisterForm {
    fn csrf(&self) -> Option<&str> {
        self.csrf.as_deref()
    }
}

/// Registers an application by hand (PROTOCOL.md §3), then shows its credentials.
pub(super) async fn register(
    State(state): State<SiteState>,
    session: MaybeSession,
    headers: HeaderMap,
    submitted: Result<Form<RegisterForm>, FormRejection>,
) -> Response {
    let result: PageResult = async {
        let (submitted, _) = Viewer::of_form(
            &state,
            session,
            &headers,
            submitted,
            Audience::Administrators,
            APPLICATIONS,
        )?;
        // NUL characters are dropped from the text people read (PostgreSQL cannot store them).
        let name = submitted.name.as_deref().map(|n| drop_nul(n).into_owned());
        let name = required(&name, "A name")?;
        let description = drop_nul(submitted.description.as_deref().unwrap_or_default());
        let description = description.trim();
        let callback = required(&submitted.callback, "A callback URL (or oob)")?;
        if name.chars().count() > MAX_NAME_CHARS
            || description.chars().count() > MAX_DESCRIPTION_CHARS
            || callback.len() > MAX_CALLBACK_LEN
        {
            return Err(SiteError::rest(
                "rest_invalid_param",
                400,
                format!(
                    "Names are at most {MAX_NAME_CHARS} characters, descriptions {MAX_DESCRIPTION_CHARS} and \
                     callback URLs {MAX_CALLBACK_LEN}."
                ),
            )
            .into());
        }
        let consumer = register_consumer(
            &state,
            NewConsumer {
                name,
                description,
                callback,
            },
        )
        .await?;
        tracing::info!(consumer = %consumer.id, "application registered by hand");
        Ok(super::done(&detail_path(&consumer.id), "registered"))
    }
    .await;
    finish(&state, result)
}

fn detail_path(id: &str) -> String {
    format!("{APPLICATIONS}/{}", authbroker_oauth1::percent_encode(id))
}

#[derive(Template)]
#[template(path = "manage/application.html")]
pub(super) struct ApplicationPage<'a> {
    pub(super) site_name: &'a str,
    pub(super) nav: Nav<'a>,
    pub(super) notice: Option<&'a str>,
    pub(super) app: &'a Consumer,
    /// The app's page at its broker, when it is a web URL.
    pub(super) details_link: Option<&'a str>,
    pub(super) brokered: Option<Brokered<'a>>,
    pub(super) registered: String,
    pub(super) users: i64,
}

/// The broker side of a brokered application.
#[derive(Debug, Clone, Copy)]
pub(super) struct Brokered<'a> {
    pub(super) broker_id: &'a str,
    pub(super) client_id: &'a str,
    /// `allow`, `deny`, or `None` when the broker's default applies.
    pub(super) rule: Option<&'a str>,
}

async fn application(state: &SiteState, id: &str) -> Result<store::Application, SiteError> {
    known_id(id)?;
    store::application(state, id).await?.ok_or_else(not_found)
}

/// An id from the URL with NUL names no application (and PostgreSQL could not even look it up).
fn known_id(id: &str) -> Result<(), SiteError> {
    if has_nul(id) {
        Err(not_found())
    } else {
        Ok(())
    }
}

fn not_found() -> SiteError {
    SiteError::rest("rest_not_found", 404, "There is no such application.")
}

pub(super) async fn detail(
    State(state): State<SiteState>,
    session: MaybeSession,
    headers: HeaderMap,
    Path(id): Path<String>,
    done: DoneQuery,
) -> Response {
    let result: PageResult = async {
        let viewer = Viewer::of(
            &state,
            session,
            &headers,
            Audience::Administrators,
            &detail_path(&id),
        )?;
        let app = application(&state, &id).await?;
        let consumer = &app.consumer;
        let rule = match (&consumer.broker_id, &consumer.broker_client_id) {
            (Some(broker), Some(client)) => store::client_rule(&state, broker, client).await?,
            _ => None,
        };
        let brokered = match (&consumer.broker_id, &consumer.broker_client_id) {
            (Some(broker_id), Some(client_id)) => Some(Brokered {
                broker_id,
                client_id,
                rule: rule.as_deref(),
            }),
            _ => None,
        };
        let page = ApplicationPage {
            site_name: &state.config().name,
            nav: viewer.nav("applications"),
            notice: super::notice(&done),
            app: consumer,
            details_link: consumer.details_url.as_deref().filter(|u| is_web_url(u)),
            brokered,
            registered: format_time(app.created_at),
            users: app.users,
        };
        Ok(render(&page, StatusCode::OK, viewer.csrf_cookie.clone())?)
    }
    .await;
    finish(&state, result)
}

/// The form of the buttons on the application page.
#[derive(Debug, Deserialize)]
pub(super) struct ActionForm {
    #[serde(rename = "_csrf")]
    csrf: Option<String>,
    /// For `…/rule`: `allow`, `deny` or `clear`.
    rule: Option<String>,
}

impl super::CsrfForm for ActionForm {
    fn csrf(&self) -> Option<&str> {
        self.csrf.as_deref()
    }
}

/// Checks the submission of a button on the application page `id`.
fn admin_action(
    state: &SiteState,
    session: MaybeSession,
    headers: &HeaderMap,
    id: &str,
    submitted: Result<Form<ActionForm>, FormRejection>,
) -> Result<ActionForm, super::ManageError> {
    let (submitted, _) = Viewer::of_form(
        state,
        session,
        headers,
        submitted,
        Audience::Administrators,
        &detail_path(id),
    )?;
    known_id(id)?;
    Ok(submitted)
}

/// A new secret. In OAuth 1.0a the consumer secret keys every signature, so every copy of the old one
/// stops working at once: that is the point (a leaked secret). Access tokens stay valid with the new secret.
pub(super) async fn regenerate_secret(
    State(state): State<SiteState>,
    session: MaybeSession,
    headers: HeaderMap,
    Path(id): Path<String>,
    submitted: Result<Form<ActionForm>, FormRejection>,
) -> Response {
    let result: PageResult = async {
        admin_action(&state, session, &headers, &id, submitted)?;
        if !store::regenerate_secret(&state, &id).await? {
            return Err(not_found().into());
        }
        tracing::info!(consumer = %id, "consumer secret regenerated");
        Ok(super::done(&detail_path(&id), "secret"))
    }
    .await;
    finish(&state, result)
}

/// `active` → `blocked`: every lookup of consumers requires `active`, so the app and its tokens are refused.
pub(super) async fn block(
    State(state): State<SiteState>,
    session: MaybeSession,
    headers: HeaderMap,
    Path(id): Path<String>,
    submitted: Result<Form<ActionForm>, FormRejection>,
) -> Response {
    change_status(state, session, headers, id, submitted, "active", "blocked").await
}

/// `blocked` → `active`.
pub(super) async fn unblock(
    State(state): State<SiteState>,
    session: MaybeSession,
    headers: HeaderMap,
    Path(id): Path<String>,
    submitted: Result<Form<ActionForm>, FormRejection>,
) -> Response {
    change_status(state, session, headers, id, submitted, "blocked", "active").await
}

async fn change_status(
    state: SiteState,
    session: MaybeSession,
    headers: HeaderMap,
    id: String,
    submitted: Result<Form<ActionForm>, FormRejection>,
    from: &'static str,
    to: &'static str,
) -> Response {
    let result: PageResult = async {
        admin_action(&state, session, &headers, &id, submitted)?;
        if !store::set_status(&state, &id, from, to).await? {
            let app = application(&state, &id).await?;
            // Already there (a second click) is fine; anything else (`pending`) is not ours to change.
            if app.consumer.status != to {
                return Err(SiteError::rest(
                    "rest_invalid_status",
                    409,
                    format!(
                        "The application is {}; only {from} applications can become {to}.",
                        app.consumer.status
                    ),
                )
                .into());
            }
        }
        tracing::info!(consumer = %id, status = to, "consumer status changed");
        let done = if to == "active" {
            "unblocked"
        } else {
            "blocked"
        };
        Ok(super::done(&detail_path(&id), done))
    }
    .await;
    finish(&state, result)
}

/// Deletes the application and, with it, every token issued to it.
pub(super) async fn delete(
    State(state): State<SiteState>,
    session: MaybeSession,
    headers: HeaderMap,
    Path(id): Path<String>,
    submitted: Result<Form<ActionForm>, FormRejection>,
) -> Response {
    let result: PageResult = async {
        admin_action(&state, session, &headers, &id, submitted)?;
        if !store::delete_application(&state, &id).await? {
            return Err(not_found().into());
        }
        tracing::info!(consumer = %id, "consumer deleted");
        Ok(super::done(APPLICATIONS, "deleted"))
    }
    .await;
    finish(&state, result)
}

/// Always allow, deny, or clear the rule for a brokered application at its broker.
pub(super) async fn rule(
    State(state): State<SiteState>,
    session: MaybeSession,
    headers: HeaderMap,
    Path(id): Path<String>,
    submitted: Result<Form<ActionForm>, FormRejection>,
) -> Response {
    let result: PageResult = async {
        let submitted = admin_action(&state, session, &headers, &id, submitted)?;
        let app = application(&state, &id).await?;
        let (Some(broker_id), Some(client_id)) =
            (&app.consumer.broker_id, &app.consumer.broker_client_id)
        else {
            return Err(SiteError::rest(
                "rest_invalid_param",
                400,
                "Rules apply to apps connected through a broker; this one was registered directly.",
            )
            .into());
        };
        let done = match submitted.rule.as_deref() {
            Some(rule @ ("allow" | "deny")) => {
                store::set_client_rule(&state, broker_id, client_id, rule).await?;
                if rule == "allow" { "allowed" } else { "denied" }
            }
            Some("clear") => {
                store::remove_client_rule(&state, broker_id, client_id).await?;
                "rule-removed"
            }
            _ => {
                return Err(SiteError::rest(
                    "rest_invalid_param",
                    400,
                    "The rule must be allow, deny or clear.",
                )
                .into());
            }
        };
        tracing::info!(%broker_id, %client_id, done, "client rule changed");
        Ok(super::done(&detail_path(&id), done))
    }
    .await;
    finish(&state, result)
}
