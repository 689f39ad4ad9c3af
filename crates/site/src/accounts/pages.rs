//! `/login` and `/logout`.

use std::net::SocketAddr;
use std::time::Instant;

use askama::Template;
use authbroker_web::input::drop_nul;
use authbroker_web::limits::retry_after_secs;
use authbroker_web::pages::safe_redirect;
use axum::Router;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Form};
use serde::Deserialize;

use super::sessions::{end_session, start_session};
use super::{authenticate_password, csrf_cookie_value, require_csrf};
use crate::error::SiteError;
use crate::pages::{error_page, render};
use crate::state::SiteState;

pub(super) fn routes() -> Router<SiteState> {
    Router::new()
        .route("/login", get(login_form).post(login))
        .route("/wp-login.php", get(login_form).post(login))
        .route("/logout", post(logout))
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    site_name: &'a str,
    csrf: &'a str,
    redirect_to: &'a str,
    login: &'a str,
    error: Option<&'a str>,
    switching: bool,
}

#[derive(Debug, Deserialize)]
struct LoginQuery {
    redirect_to: Option<String>,
    #[serde(default)]
    switch: Option<String>,
}

async fn login_form(
    State(state): State<SiteState>,
    headers: HeaderMap,
    Query(q): Query<LoginQuery>,
) -> Response {
    let result = (|| {
        let (csrf, cookie) = csrf_cookie_value(&state, &headers)?;
        let page = LoginPage {
            site_name: &state.config().name,
            csrf: &csrf,
            redirect_to: safe_redirect(q.redirect_to.as_deref()),
            login: "",
            error: None,
            switching: q.switch.is_some(),
        };
        render(&page, StatusCode::OK, cookie)
    })();
    result.unwrap_or_else(|e| error_page(&state.config().name, &e))
}

#[derive(Debug, Deserialize)]
struct LoginForm {
    #[serde(default)]
    log: String,
    #[serde(default)]
    pwd: String,
    redirect_to: Option<String>,
    #[serde(rename = "_csrf")]
    csrf: Option<String>,
}

/// Logs in. Failed logins are throttled per login name and per client IP (see `accounts::limits`): an
/// attempt reserves a token of each before the password is verified and gives them back unless the password
/// was wrong; when either is exhausted the form comes back with `429` and `Retry-After` without any
/// verification, even with the right password.
async fn login(
    State(state): State<SiteState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let peer = peer.map(|Extension(ConnectInfo(addr))| addr.ip());
    let result = async {
        require_csrf(&headers, form.csrf.as_deref())?;
        let redirect_to = safe_redirect(form.redirect_to.as_deref());
        // A login with NUL is no user's (`authenticate_password`); the form shows it without them.
        let login = form.log.trim();
        let shown = drop_nul(login);
        let limits = state.login_limits();
        let again = |error: &str, status| {
            let (csrf, cookie) = csrf_cookie_value(&state, &headers)?;
            let page = LoginPage {
                site_name: &state.config().name,
                csrf: &csrf,
                redirect_to,
                login: &shown,
                error: Some(error),
                switching: false,
            };
            render(&page, status, cookie)
        };
        let attempt = match limits.begin(login, peer, Instant::now()) {
            Ok(attempt) => attempt,
            Err(refused) => {
                tracing::debug!(?refused, ?peer, "login refused: too many failed logins");
                let mut response = again(&refused.message(), StatusCode::TOO_MANY_REQUESTS)?;
                response.headers_mut().insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(retry_after_secs(refused.wait())),
                );
                return Ok(response);
            }
        };
        // Verified and settled in a task of its own: a client that goes away mid-verification drops this
        // handler, and the attempt must still end with its real outcome (a right password gives its tokens
        // back) rather than keep them.
        let settled = tokio::spawn({
            let state = state.clone();
            let login = login.to_owned();
            let password = form.pwd.clone();
            async move {
                let user = authenticate_password(&state, &login, &password).await;
                let limits = state.login_limits();
                match &user {
                    Ok(None) => limits.spend(attempt),
                    Ok(Some(_)) | Err(_) => limits.give_back(attempt, Instant::now()),
                }
                user
            }
        })
        .await
        .map_err(|err| SiteError::Internal(format!("the login verification stopped: {err}")))?;
        match settled? {
            Some(user) => {
                // A new session replaces whoever was signed in (the consent page's "switch user").
                let clear = end_session(&state, &headers).await?;
                let cookie = start_session(&state, &user.id).await?;
                let mut response = Redirect::to(redirect_to).into_response();
                response.headers_mut().append(header::SET_COOKIE, clear);
                response.headers_mut().append(header::SET_COOKIE, cookie);
                Ok(response)
            }
            None => again(
                "Unknown username or incorrect password.",
                StatusCode::UNAUTHORIZED,
            ),
        }
    }
    .await;
    result.unwrap_or_else(|e: SiteError| error_page(&state.config().name, &e))
}

#[derive(Debug, Deserialize)]
struct LogoutForm {
    #[serde(rename = "_csrf")]
    csrf: Option<String>,
    redirect_to: Option<String>,
}

async fn logout(
    State(state): State<SiteState>,
    headers: HeaderMap,
    Form(form): Form<LogoutForm>,
) -> Response {
    let result = async {
        require_csrf(&headers, form.csrf.as_deref())?;
        let clear = end_session(&state, &headers).await?;
        let mut response = Redirect::to(safe_redirect(form.redirect_to.as_deref())).into_response();
        response.headers_mut().append(header::SET_COOKIE, clear);
        Ok::<_, SiteError>(response)
    }
    .await;
    result.unwrap_or_else(|e| error_page(&state.config().name, &e))
}
