//! `/tokens`: API tokens for the JSON API. A new token is shown once, on the page the creation redirects
//! to: it travels there in a short-lived cookie scoped to `/tokens`, which that page clears, and it is shown
//! only if it is one of the viewer's tokens.

use askama::Template;
use authbroker_web::cookies::{self, CookieOptions};
use authbroker_web::input::{drop_nul, has_nul};
use authbroker_web::pages::format_time;
use authbroker_web::session::hash_id;
use axum::extract::rejection::FormRejection;
use axum::extract::{Form, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use serde::Deserialize;

use super::{
    Audience, DoneQuery, Nav, PageResult, TOKENS, Viewer, cookie_error, finish, page_error, render,
};
use crate::state::BrokerState;
use crate::tokens::{self as store, ApiToken};

/// The cookie carrying a new token to the page that shows it once.
const NEW_TOKEN_COOKIE: &str = "ab_new_token";
/// How long it may wait there.
const NEW_TOKEN_SECONDS: i64 = 300;

#[derive(Template)]
#[template(path = "tokens.html")]
pub(super) struct TokensPage<'a> {
    pub(super) broker_name: &'a str,
    pub(super) nav: Nav<'a>,
    pub(super) notice: Option<&'a str>,
    /// The token just created, shown this once.
    pub(super) new_token: Option<&'a str>,
    pub(super) tokens: Vec<TokenRow>,
    pub(super) api_base: &'a str,
}

/// One token of the list (never the token itself).
#[derive(Debug, Clone)]
pub(super) struct TokenRow {
    pub(super) token_hash: String,
    pub(super) label: String,
    pub(super) created: String,
}

impl From<ApiToken> for TokenRow {
    fn from(token: ApiToken) -> Self {
        Self {
            created: format_time(token.created_at),
            token_hash: token.token_hash,
            label: token.label,
        }
    }
}

fn flash_options(state: &BrokerState) -> CookieOptions<'static> {
    CookieOptions::new(state.config().is_https()).path(TOKENS)
}

pub(super) async fn page(
    State(state): State<BrokerState>,
    headers: HeaderMap,
    done: DoneQuery,
) -> Response {
    let result: PageResult = async {
        let viewer = Viewer::of(&state, &headers, Audience::Developers, TOKENS).await?;
        let tokens = store::tokens_of(&state, &viewer.developer.id).await?;
        let flashed = cookies::get(&headers, NEW_TOKEN_COOKIE).filter(|t| !t.is_empty());
        let new_token = flashed.as_deref().filter(|token| {
            let hash = hash_id(token);
            tokens.iter().any(|t| t.token_hash == hash)
        });
        let api_base = format!("{}/api/v1", state.config().home());
        let page = TokensPage {
            broker_name: &state.config().name,
            nav: viewer.nav("tokens"),
            notice: super::notice(&done),
            new_token,
            tokens: tokens.into_iter().map(TokenRow::from).collect(),
            api_base: &api_base,
        };
        let mut response = render(&page, StatusCode::OK, viewer.csrf_cookie.clone())?;
        if flashed.is_some() {
            let clear =
                cookies::clear(NEW_TOKEN_COOKIE, flash_options(&state)).map_err(cookie_error)?;
            response.headers_mut().append(header::SET_COOKIE, clear);
        }
        Ok(response)
    }
    .await;
    finish(&state, result)
}

#[derive(Debug, Deserialize)]
pub(super) struct CreateForm {
    #[serde(rename = "_csrf")]
    csrf: Option<String>,
    #[serde(default)]
    label: String,
}

impl super::CsrfForm for CreateForm {
    fn csrf(&self) -> Option<&str> {
        self.csrf.as_deref()
    }
}

pub(super) async fn create(
    State(state): State<BrokerState>,
    headers: HeaderMap,
    submitted: Result<Form<CreateForm>, FormRejection>,
) -> Response {
    let result: PageResult = async {
        let (submitted, viewer) =
            Viewer::of_form(&state, &headers, submitted, Audience::Developers, TOKENS).await?;
        // NUL characters are dropped from the label people read (PostgreSQL cannot store them).
        let label = drop_nul(&submitted.label);
        let token = store::create_token(&state, &viewer.developer.id, &label).await?;
        tracing::info!(developer = %viewer.developer.id, "API token created");
        let flash = cookies::set(
            NEW_TOKEN_COOKIE,
            &token,
            flash_options(&state).max_age(NEW_TOKEN_SECONDS),
        )
        .map_err(cookie_error)?;
        let mut response = super::done(TOKENS, "token-created");
        response.headers_mut().append(header::SET_COOKIE, flash);
        Ok(response)
    }
    .await;
    finish(&state, result)
}

#[derive(Debug, Deserialize)]
pub(super) struct RevokeForm {
    #[serde(rename = "_csrf")]
    csrf: Option<String>,
    #[serde(default)]
    token: String,
}

impl super::CsrfForm for RevokeForm {
    fn csrf(&self) -> Option<&str> {
        self.csrf.as_deref()
    }
}

pub(super) async fn revoke(
    State(state): State<BrokerState>,
    headers: HeaderMap,
    submitted: Result<Form<RevokeForm>, FormRejection>,
) -> Response {
    let result: PageResult = async {
        let (submitted, viewer) =
            Viewer::of_form(&state, &headers, submitted, Audience::Developers, TOKENS).await?;
        // A token hash with NUL names no token (and PostgreSQL could not even look it up).
        if has_nul(&submitted.token)
            || !store::revoke_token(&state, &viewer.developer.id, &submitted.token).await?
        {
            return Err(page_error(404, "There is no such token among yours.").into());
        }
        tracing::info!(developer = %viewer.developer.id, "API token revoked");
        Ok(super::done(TOKENS, "token-revoked"))
    }
    .await;
    finish(&state, result)
}
