//! The management pages (PROTOCOL.md §3): what a user connected and how to revoke it, and, for
//! administrators, the applications, brokers and allow/deny rules of the site.
//!
//! * `GET /wp-admin/connected-apps` — any signed-in user: one row per application they granted access,
//!   `POST /wp-admin/connected-apps/revoke` disconnects one.
//! * `GET|POST /wp-admin/applications` — administrators: every consumer, and registering one by hand;
//!   `GET /wp-admin/applications/{id}` shows its key and secret, with `POST …/{id}/regenerate-secret`,
//!   `…/{id}/block`, `…/{id}/unblock`, `…/{id}/delete` and `…/{id}/rule`.
//! * `GET|POST /wp-admin/brokers` — administrators: the known brokers, adding one,
//!   `POST /wp-admin/brokers/remove` and `POST /wp-admin/brokers/rules/remove`.
//!
//! Every page is server-rendered without JavaScript; every change is a CSRF-checked `POST` answered with a
//! redirect back to a page (post/redirect/get), whose fixed notice is chosen by a `done` query parameter.
//! Signed-out visitors are sent to the login page, which brings them back; other users get 403 on
//! administrator pages. Errors are pages.

mod applications;
mod brokers;
mod connected;
mod store;

use authbroker_web::input::has_nul;
use authbroker_web::pages::format_time;
use authbroker_web::pages::redirect_done as done;
use axum::Router;
use axum::extract::Form;
use axum::extract::Query;
use axum::extract::rejection::FormRejection;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use crate::accounts::{MaybeSession, Role, User, csrf_cookie_value, require_csrf};
use crate::error::SiteError;
use crate::pages::error_page;
use crate::state::SiteState;

pub(crate) fn routes() -> Router<SiteState> {
    Router::new()
        .route("/wp-admin", get(dashboard))
        .route("/wp-admin/", get(dashboard))
        .route("/wp-admin/connected-apps", get(connected::page))
        .route("/wp-admin/connected-apps/revoke", post(connected::revoke))
        .route(
            "/wp-admin/applications",
            get(applications::list).post(applications::register),
        )
        .route("/wp-admin/applications/{id}", get(applications::detail))
        .route(
            "/wp-admin/applications/{id}/regenerate-secret",
            post(applications::regenerate_secret),
        )
        .route(
            "/wp-admin/applications/{id}/block",
            post(applications::block),
        )
        .route(
            "/wp-admin/applications/{id}/unblock",
            post(applications::unblock),
        )
        .route(
            "/wp-admin/applications/{id}/delete",
            post(applications::delete),
        )
        .route("/wp-admin/applications/{id}/rule", post(applications::rule))
        .route("/wp-admin/brokers", get(brokers::page).post(brokers::add))
        .route("/wp-admin/brokers/remove", post(brokers::remove))
        .route("/wp-admin/brokers/rules/remove", post(brokers::remove_rule))
}

/// `/wp-admin/`: the page every user may see.
async fn dashboard() -> Redirect {
    Redirect::to(CONNECTED_APPS)
}

const CONNECTED_APPS: &str = "/wp-admin/connected-apps";
const APPLICATIONS: &str = "/wp-admin/applications";
const BROKERS: &str = "/wp-admin/brokers";

/// Why a management request did not get its page.
#[derive(Debug)]
enum ManageError {
    /// Nobody is signed in: log in, then come back to this local path.
    LogIn(String),
    /// Anything else, shown as an error page.
    Site(SiteError),
}

impl From<SiteError> for ManageError {
    fn from(err: SiteError) -> Self {
        Self::Site(err)
    }
}

type PageResult = Result<Response, ManageError>;

/// The response of a management handler: the page, the login redirect or the error page.
fn finish(state: &SiteState, result: PageResult) -> Response {
    match result {
        Ok(response) => response,
        Err(ManageError::LogIn(back)) => Redirect::to(&format!(
            "/login?redirect_to={}",
            authbroker_oauth1::percent_encode(&back)
        ))
        .into_response(),
        Err(ManageError::Site(err)) => error_page(&state.config().name, &err),
    }
}

/// Who may open a page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Audience {
    /// Any signed-in user.
    Users,
    /// Administrators only.
    Administrators,
}

/// The signed-in user looking at a management page, with the CSRF token its forms repeat.
#[derive(Debug)]
struct Viewer {
    user: User,
    csrf: String,
    /// `Set-Cookie` for the CSRF cookie when the browser had none.
    csrf_cookie: Option<HeaderValue>,
}

impl Viewer {
    /// The viewer of a request, or why there is none: `back` is where to return after logging in.
    fn of(
        state: &SiteState,
        session: MaybeSession,
        headers: &HeaderMap,
        audience: Audience,
        back: &str,
    ) -> Result<Self, ManageError> {
        let Some(session) = session.0 else {
            return Err(ManageError::LogIn(back.to_owned()));
        };
        if audience == Audience::Administrators && session.user.role != Role::Administrator {
            return Err(SiteError::rest(
                "rest_forbidden",
                403,
                "Sorry, you are not allowed to manage this site. Only administrators may.",
            )
            .into());
        }
        let (csrf, csrf_cookie) = csrf_cookie_value(state, headers)?;
        Ok(Self {
            user: session.user,
            csrf,
            csrf_cookie,
        })
    }

    /// The viewer of a form submission: the CSRF field must repeat the cookie first.
    fn submitting(
        state: &SiteState,
        session: MaybeSession,
        headers: &HeaderMap,
        csrf: Option<&str>,
        audience: Audience,
        back: &str,
    ) -> Result<Self, ManageError> {
        require_csrf(headers, csrf)?;
        Self::of(state, session, headers, audience, back)
    }

    /// The form of a submission and its viewer: a body that is not a form is a 400 page, then the CSRF field
    /// must repeat the cookie.
    fn of_form<T: CsrfForm>(
        state: &SiteState,
        session: MaybeSession,
        headers: &HeaderMap,
        submitted: Result<Form<T>, FormRejection>,
        audience: Audience,
        back: &str,
    ) -> Result<(T, Self), ManageError> {
        let submitted = form(submitted)?;
        let viewer = Self::submitting(state, session, headers, submitted.csrf(), audience, back)?;
        Ok((submitted, viewer))
    }

    fn is_admin(&self) -> bool {
        self.user.role == Role::Administrator
    }

    /// The navigation of a page in `section`.
    fn nav(&self, section: &'static str) -> Nav<'_> {
        Nav {
            user_name: &self.user.display_name,
            is_admin: self.is_admin(),
            csrf: &self.csrf,
            current: section,
        }
    }
}

/// What `templates/manage/nav.html` shows: who is signed in, the pages they may open, and log out.
#[derive(Debug, Clone, Copy)]
struct Nav<'a> {
    user_name: &'a str,
    is_admin: bool,
    csrf: &'a str,
    /// `connected-apps`, `applications` or `brokers`.
    current: &'static str,
}

/// The form of a submission, or a 400 page when the body is not a form.
/// A submitted form with its CSRF field (`_csrf`).
trait CsrfForm {
    fn csrf(&self) -> Option<&str>;
}

fn form<T>(form: Result<Form<T>, FormRejection>) -> Result<T, SiteError> {
    form.map(|Form(value)| value).map_err(|rejection| {
        SiteError::rest(
            "rest_invalid_param",
            400,
            format!("The form could not be read: {rejection}"),
        )
    })
}

/// A required form field, trimmed. Every such field names something (an id, a URL), so one holding NUL is
/// refused: it names nothing, and PostgreSQL could not even look it up.
fn required<'a>(value: &'a Option<String>, what: &str) -> Result<&'a str, SiteError> {
    let value = value
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| {
            SiteError::rest(
                "rest_missing_callback_param",
                400,
                format!("{what} is required."),
            )
        })?;
    if has_nul(value) {
        return Err(SiteError::rest(
            "rest_invalid_param",
            400,
            format!("{what} cannot contain NUL characters."),
        ));
    }
    Ok(value)
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
            "revoked" => {
                "The application was disconnected: every access you had granted it stopped working."
            }
            "registered" => {
                "The application is registered. Give its key and secret to its developer over a private channel."
            }
            "secret" => {
                "A new secret was generated. The old one stopped working: every copy of the app must be updated with the new secret."
            }
            "blocked" => "The application is blocked: it and every token issued to it are refused.",
            "unblocked" => "The application is active again.",
            "deleted" => "The application and every token issued to it were deleted.",
            "allowed" => "This app is now always allowed from its broker.",
            "denied" => {
                "This app is now denied from its broker: it cannot connect through it again."
            }
            "rule-removed" => "The rule was removed.",
            "broker-added" => "The broker was added.",
            "broker-removed" => {
                "The broker was removed: connection requests naming it are refused."
            }
            _ => return None,
        })
    }
}

type DoneQuery = authbroker_web::pages::DoneQuery<Done>;

fn notice(done: &DoneQuery) -> Option<&'static str> {
    done.as_ref().ok().and_then(|Query(done)| done.notice())
}

#[cfg(test)]
mod tests;
