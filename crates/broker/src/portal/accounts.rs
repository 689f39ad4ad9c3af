//! `/signup`, `/login` and `/logout`.

use askama::Template;
use authbroker_web::input::drop_nul;
use authbroker_web::pages::safe_redirect;
use axum::extract::rejection::FormRejection;
use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::{APPS, PageResult, csrf_token, error_page, finish, form, render, require_csrf};
use crate::accounts::{
    MIN_PASSWORD_LEN, authenticate, end_session, session_developer, sign_up, start_session,
};
use crate::error::BrokerError;
use crate::state::BrokerState;

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    broker_name: &'a str,
    csrf: &'a str,
    redirect_to: &'a str,
    email: &'a str,
    error: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "signup.html")]
struct SignUpPage<'a> {
    broker_name: &'a str,
    csrf: &'a str,
    email: &'a str,
    name: &'a str,
    error: Option<&'a str>,
    min_password: usize,
}

#[derive(Debug, Deserialize)]
pub(super) struct RedirectQuery {
    redirect_to: Option<String>,
}

pub(super) async fn login_form(
    State(state): State<BrokerState>,
    headers: HeaderMap,
    query: Result<Query<RedirectQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let redirect_to = query.ok().and_then(|Query(q)| q.redirect_to);
    let result = (|| {
        let (csrf, cookie) = csrf_token(&state, &headers)?;
        let page = LoginPage {
            broker_name: &state.config().name,
            csrf: &csrf,
            redirect_to: safe_redirect(redirect_to.as_deref()),
            email: "",
            error: None,
        };
        render(&page, StatusCode::OK, cookie)
    })();
    result.unwrap_or_else(|e| error_page(&state, &e))
}

#[derive(Debug, Deserialize)]
pub(super) struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    redirect_to: Option<String>,
    #[serde(rename = "_csrf")]
    csrf: Option<String>,
}

pub(super) async fn login(
    State(state): State<BrokerState>,
    headers: HeaderMap,
    submitted: Result<Form<LoginForm>, FormRejection>,
) -> Response {
    let result: Result<Response, BrokerError> = async {
        let submitted = form(submitted)?;
        require_csrf(&headers, submitted.csrf.as_deref())?;
        let redirect_to = match safe_redirect(submitted.redirect_to.as_deref()) {
            "/" => APPS,
            other => other,
        };
        let error = match authenticate(&state, &submitted.email, &submitted.password).await? {
            Some(developer) if developer.is_active() => {
                // A new session replaces whoever was signed in on this browser.
                let clear = end_session(&state, &headers).await?;
                let cookie = start_session(&state, &developer.id).await?;
                let mut response = Redirect::to(redirect_to).into_response();
                response.headers_mut().append(header::SET_COOKIE, clear);
                response.headers_mut().append(header::SET_COOKIE, cookie);
                return Ok(response);
            }
            Some(_) => (
                StatusCode::FORBIDDEN,
                "This account is suspended. Contact the broker's administrators.",
            ),
            None => (
                StatusCode::UNAUTHORIZED,
                "Unknown email address or incorrect password.",
            ),
        };
        let (csrf, cookie) = csrf_token(&state, &headers)?;
        let page = LoginPage {
            broker_name: &state.config().name,
            csrf: &csrf,
            redirect_to,
            email: &drop_nul(submitted.email.trim()),
            error: Some(error.1),
        };
        render(&page, error.0, cookie)
    }
    .await;
    result.unwrap_or_else(|e| error_page(&state, &e))
}

pub(super) async fn signup_form(State(state): State<BrokerState>, headers: HeaderMap) -> Response {
    let result: PageResult = async {
        if session_developer(&state, &headers).await?.is_some() {
            return Ok(Redirect::to(APPS).into_response());
        }
        let (csrf, cookie) = csrf_token(&state, &headers)?;
        let page = SignUpPage {
            broker_name: &state.config().name,
            csrf: &csrf,
            email: "",
            name: "",
            error: None,
            min_password: MIN_PASSWORD_LEN,
        };
        Ok(render(&page, StatusCode::OK, cookie)?)
    }
    .await;
    finish(&state, result)
}

#[derive(Debug, Deserialize)]
pub(super) struct SignUpForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: String,
    #[serde(rename = "_csrf")]
    csrf: Option<String>,
}

/// Creates the account and signs it in, then to My apps.
pub(super) async fn signup(
    State(state): State<BrokerState>,
    headers: HeaderMap,
    submitted: Result<Form<SignUpForm>, FormRejection>,
) -> Response {
    let result: Result<Response, BrokerError> = async {
        let submitted = form(submitted)?;
        require_csrf(&headers, submitted.csrf.as_deref())?;
        // NUL characters are dropped from the name people read (PostgreSQL cannot store them); an email
        // with one is refused as invalid with every other control character.
        let name = drop_nul(&submitted.name);
        match sign_up(&state, &submitted.email, &name, &submitted.password).await {
            Ok(developer) => {
                tracing::info!(developer = %developer.id, "developer signed up");
                let clear = end_session(&state, &headers).await?;
                let cookie = start_session(&state, &developer.id).await?;
                let mut response = super::done(APPS, "welcome");
                response.headers_mut().append(header::SET_COOKIE, clear);
                response.headers_mut().append(header::SET_COOKIE, cookie);
                Ok(response)
            }
            Err(err @ BrokerError::Protocol { .. }) => {
                let message = super::message_of(&err);
                let (csrf, cookie) = csrf_token(&state, &headers)?;
                let page = SignUpPage {
                    broker_name: &state.config().name,
                    csrf: &csrf,
                    email: &drop_nul(submitted.email.trim()),
                    name: name.trim(),
                    error: Some(&message),
                    min_password: MIN_PASSWORD_LEN,
                };
                render(&page, err.status(), cookie)
            }
            Err(err) => Err(err),
        }
    }
    .await;
    result.unwrap_or_else(|e| error_page(&state, &e))
}

#[derive(Debug, Deserialize)]
pub(super) struct LogoutForm {
    #[serde(rename = "_csrf")]
    csrf: Option<String>,
}

pub(super) async fn logout(
    State(state): State<BrokerState>,
    headers: HeaderMap,
    submitted: Result<Form<LogoutForm>, FormRejection>,
) -> Response {
    let result: Result<Response, BrokerError> = async {
        let submitted = form(submitted)?;
        require_csrf(&headers, submitted.csrf.as_deref())?;
        let clear = end_session(&state, &headers).await?;
        let mut response = Redirect::to("/login").into_response();
        response.headers_mut().append(header::SET_COOKIE, clear);
        Ok(response)
    }
    .await;
    result.unwrap_or_else(|e| error_page(&state, &e))
}

#[cfg(test)]
pub(super) mod tests_support {
    use super::*;

    pub(in crate::portal) fn login_page(
        redirect_to: &str,
        email: &str,
        error: Option<&str>,
    ) -> String {
        LoginPage {
            broker_name: "Broker",
            csrf: "CSRF",
            redirect_to,
            email,
            error,
        }
        .render()
        .unwrap()
    }

    pub(in crate::portal) fn signup_page(email: &str, name: &str, error: Option<&str>) -> String {
        SignUpPage {
            broker_name: "Broker",
            csrf: "CSRF",
            email,
            name,
            error,
            min_password: MIN_PASSWORD_LEN,
        }
        .render()
        .unwrap()
    }
}
