//! The developer portal: server-rendered pages, no JavaScript, a CSRF token on every form, every change a
//! `POST` answered with a redirect (post/redirect/get) whose fixed notice is chosen by `?done=`.
//!
//! * `GET|POST /signup`, `GET|POST /login`, `POST /logout` — accounts (passwords of 12+ characters,
//!   argon2id); sessions in the `ab_broker_session` cookie, stored as SHA-256.
//! * `GET|POST /apps` — my apps and registering one; `GET /apps/{client_id}` its client key and secret and its
//!   connection log; `POST /apps/{client_id}/secret` regenerates the secret, `POST /apps/{client_id}/delete`.
//! * `GET|POST /tokens`, `POST /tokens/revoke` — API tokens for the JSON API, shown once.
//! * `GET /admin/developers`, `GET /admin/apps` — administrators: every account and app, and
//!   `POST …/{id}/suspend` / `…/unsuspend` for either.
//! * `/api/v1/…` — the JSON API ([`crate::api`]).
//!
//! Signed-out visitors are sent to the login page, which brings them back. Another developer's app is a 404,
//! exactly like an app that does not exist. Errors are pages.

mod accounts;
mod admin;
mod apps;
mod tokens;

#[cfg(test)]
mod tests;

use askama::Template;
use authbroker_protocol::ErrorCode;
use authbroker_web::pages::redirect_done as done;
use axum::Router;
use axum::extract::rejection::FormRejection;
use axum::extract::{Form, Query};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use crate::apps::Developer;
use crate::error::BrokerError;
use crate::state::BrokerState;

pub(crate) fn routes() -> Router<BrokerState> {
    Router::new()
        .route("/", get(home))
        .route("/signup", get(accounts::signup_form).post(accounts::signup))
        .route("/login", get(accounts::login_form).post(accounts::login))
        .route("/logout", post(accounts::logout))
        .route(APPS, get(apps::list).post(apps::register))
        .route("/apps/{client_id}", get(apps::detail))
        .route("/apps/{client_id}/secret", post(apps::regenerate_secret))
        .route("/apps/{client_id}/delete", post(apps::delete))
        .route(TOKENS, get(tokens::page).post(tokens::create))
        .route("/tokens/revoke", post(tokens::revoke))
        .route("/admin", get(admin::home))
        .route(ADMIN_DEVELOPERS, get(admin::developers))
        .route(
            "/admin/developers/{id}/suspend",
            post(admin::suspend_developer),
        )
        .route(
            "/admin/developers/{id}/unsuspend",
            post(admin::unsuspend_developer),
        )
        .route(ADMIN_APPS, get(admin::apps))
        .route("/admin/apps/{client_id}/suspend", post(admin::suspend_app))
        .route(
            "/admin/apps/{client_id}/unsuspend",
            post(admin::unsuspend_app),
        )
        .merge(crate::api::routes())
        .layer(axum::middleware::from_fn(
            authbroker_web::pages::security_headers,
        ))
}

const APPS: &str = "/apps";
const TOKENS: &str = "/tokens";
const ADMIN_DEVELOPERS: &str = "/admin/developers";
const ADMIN_APPS: &str = "/admin/apps";

/// `/`: my apps (which sends signed-out visitors to log in).
async fn home() -> Redirect {
    Redirect::to(APPS)
}

/// Why a portal request did not get its page.
#[derive(Debug)]
enum PortalError {
    /// Nobody is signed in: log in, then come back to this local path.
    LogIn(String),
    /// Anything else, shown as an error page.
    Broker(BrokerError),
}

impl From<BrokerError> for PortalError {
    fn from(err: BrokerError) -> Self {
        Self::Broker(err)
    }
}

type PageResult = Result<Response, PortalError>;

/// A page-level error: `status` and a message for the person at the browser.
fn page_error(status: u16, message: impl Into<String>) -> BrokerError {
    let code = match status {
        401 => ErrorCode::RestNotLoggedIn,
        403 => ErrorCode::RestForbidden,
        404 => ErrorCode::RestNotFound,
        _ => ErrorCode::RestInvalidParam,
    };
    BrokerError::protocol(code, message).with_status(status)
}

/// The message a person sees for an error (internal details are logged, never shown).
fn message_of(err: &BrokerError) -> String {
    match err {
        BrokerError::Protocol { message, .. } | BrokerError::RateLimited { message, .. } => {
            message.clone()
        }
        BrokerError::Internal(detail) => {
            tracing::error!(%detail, "internal error");
            "The broker could not complete the request.".to_owned()
        }
    }
}

/// A page with a heading and a sentence (errors).
#[derive(Template)]
#[template(path = "message.html")]
struct MessagePage<'a> {
    broker_name: &'a str,
    heading: &'a str,
    text: &'a str,
}

/// An error as a page.
fn error_page(state: &BrokerState, err: &BrokerError) -> Response {
    let text = message_of(err);
    let page = MessagePage {
        broker_name: &state.config().name,
        heading: "Something went wrong",
        text: &text,
    };
    authbroker_web::pages::render(&page, err.status(), None)
        .unwrap_or_else(|_| (err.status(), text).into_response())
}

/// Renders a page.
fn render(
    template: &impl Template,
    status: StatusCode,
    cookies: impl IntoIterator<Item = HeaderValue>,
) -> Result<Response, BrokerError> {
    authbroker_web::pages::render(template, status, cookies)
        .map_err(|e| BrokerError::Internal(format!("template: {e}")))
}

/// The response of a portal handler: the page, the login redirect or the error page.
fn finish(state: &BrokerState, result: PageResult) -> Response {
    match result {
        Ok(response) => response,
        Err(PortalError::LogIn(back)) => Redirect::to(&format!(
            "/login?redirect_to={}",
            authbroker_oauth1::percent_encode(&back)
        ))
        .into_response(),
        Err(PortalError::Broker(err)) => error_page(state, &err),
    }
}

fn cookie_error(_: axum::http::header::InvalidHeaderValue) -> BrokerError {
    BrokerError::Internal("cookie value".into())
}

/// The CSRF token for a form and the `Set-Cookie` when the browser has none yet.
fn csrf_token(
    state: &BrokerState,
    headers: &HeaderMap,
) -> Result<(String, Option<HeaderValue>), BrokerError> {
    authbroker_web::csrf::issue(headers, state.config().is_https()).map_err(cookie_error)
}

/// Refuses a submission whose CSRF field does not repeat the cookie (403).
fn require_csrf(headers: &HeaderMap, submitted: Option<&str>) -> Result<(), BrokerError> {
    authbroker_web::csrf::check(headers, submitted).map_err(|_| {
        page_error(
            403,
            "The form has expired. Go back, reload the page and try again.",
        )
    })
}

/// Who may open a page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Audience {
    /// Any signed-in developer.
    Developers,
    /// The broker's administrators only.
    Administrators,
}

/// The signed-in developer looking at a page, with the CSRF token its forms repeat.
#[derive(Debug)]
struct Viewer {
    developer: Developer,
    csrf: String,
    /// `Set-Cookie` for the CSRF cookie when the browser had none.
    csrf_cookie: Option<HeaderValue>,
}

impl Viewer {
    /// The viewer of a request, or why there is none: `back` is where to return after logging in.
    async fn of(
        state: &BrokerState,
        headers: &HeaderMap,
        audience: Audience,
        back: &str,
    ) -> Result<Self, PortalError> {
        let Some(developer) = crate::accounts::session_developer(state, headers).await? else {
            return Err(PortalError::LogIn(back.to_owned()));
        };
        if audience == Audience::Administrators && !developer.is_admin() {
            return Err(
                page_error(403, "Only the broker's administrators may open this page.").into(),
            );
        }
        let (csrf, csrf_cookie) = csrf_token(state, headers)?;
        Ok(Self {
            developer,
            csrf,
            csrf_cookie,
        })
    }

    /// The viewer of a form submission: the CSRF field must repeat the cookie first.
    async fn submitting(
        state: &BrokerState,
        headers: &HeaderMap,
        csrf: Option<&str>,
        audience: Audience,
        back: &str,
    ) -> Result<Self, PortalError> {
        require_csrf(headers, csrf)?;
        Self::of(state, headers, audience, back).await
    }

    /// The form of a submission and its viewer: a body that is not a form is a 400 page, then the CSRF field
    /// must repeat the cookie.
    async fn of_form<T: CsrfForm>(
        state: &BrokerState,
        headers: &HeaderMap,
        submitted: Result<Form<T>, FormRejection>,
        audience: Audience,
        back: &str,
    ) -> Result<(T, Self), PortalError> {
        let submitted = form(submitted)?;
        let viewer = Self::submitting(state, headers, submitted.csrf(), audience, back).await?;
        Ok((submitted, viewer))
    }

    /// The navigation of a page in `section`.
    fn nav(&self, section: &'static str) -> Nav<'_> {
        Nav {
            user_name: &self.developer.name,
            is_admin: self.developer.is_admin(),
            csrf: &self.csrf,
            current: section,
        }
    }
}

/// What `templates/nav.html` shows: who is signed in, the pages they may open, and log out.
#[derive(Debug, Clone, Copy)]
struct Nav<'a> {
    user_name: &'a str,
    is_admin: bool,
    csrf: &'a str,
    /// `apps`, `tokens`, `admin-developers` or `admin-apps`.
    current: &'static str,
}

/// The form of a submission, or a 400 page when the body is not a form.
fn form<T>(form: Result<Form<T>, FormRejection>) -> Result<T, BrokerError> {
    form.map(|Form(value)| value)
        .map_err(|rejection| page_error(400, format!("The form could not be read: {rejection}")))
}

/// A submitted form with its CSRF field (`_csrf`).
trait CsrfForm {
    fn csrf(&self) -> Option<&str>;
}

/// A form with nothing but the CSRF field (the buttons).
#[derive(Debug, Deserialize)]
struct ButtonForm {
    #[serde(rename = "_csrf")]
    csrf: Option<String>,
}

impl CsrfForm for ButtonForm {
    fn csrf(&self) -> Option<&str> {
        self.csrf.as_deref()
    }
}

/// The `?done=` of a page reached by the redirect after a change.
#[derive(Debug, Default, Deserialize)]
struct Done {
    done: Option<String>,
}

impl Done {
    /// The confirmation to show. Only fixed texts: nothing from the URL is echoed.
    fn notice(&self) -> Option<&'static str> {
        Some(match self.done.as_deref()? {
            "welcome" => "Welcome! Register your first app below.",
            "registered" => {
                "The app is registered. Its client key and secret are below: ship the key with your app and keep the secret out of public repositories."
            }
            "secret" => {
                "A new client secret was generated. The old one stopped working: update every copy of your app."
            }
            "deleted" => {
                "The app was deleted. Sites that connected it keep their own credentials until they revoke them."
            }
            "token-created" => "The token was created.",
            "token-revoked" => "The token was revoked: requests made with it are refused.",
            "suspended" => "Suspended: it cannot connect to any site until it is unsuspended.",
            "unsuspended" => "Active again.",
            _ => return None,
        })
    }
}

type DoneQuery = authbroker_web::pages::DoneQuery<Done>;

fn notice(done: &DoneQuery) -> Option<&'static str> {
    done.as_ref().ok().and_then(|Query(done)| done.notice())
}
