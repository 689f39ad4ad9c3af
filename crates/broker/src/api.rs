//! The JSON API for scripts and the CLI, under `/api/v1/`, authenticated with
//! `Authorization: Bearer <api token>` (tokens are made on the portal's API tokens page).
//!
//! * `GET /api/v1/apps` — the caller's apps (without secrets).
//! * `POST /api/v1/apps` — JSON `{name, description?, callback_url, details_url?}` → 201 with the app,
//!   including `client_id` and `client_secret`.
//! * `GET /api/v1/apps/{client_id}` — one app with its secret and its recent connections.
//! * `POST /api/v1/apps/{client_id}/secret` — a new secret → the app with it.
//! * `DELETE /api/v1/apps/{client_id}` — `{"deleted":true,"previous":{…}}`.
//!
//! Errors are the WordPress envelope `{"code","message","data":{"status"}}`: 401 `rest_not_logged_in`
//! without a valid token, 403 `rest_forbidden` for a suspended account, 404 `rest_not_found` for an app that
//! is not the caller's (whether or not it exists), 400 for bad input, 404 `rest_no_route` elsewhere.

use authbroker_protocol::{ErrorCode, WpError};
use authbroker_web::input::{drop_nul, has_nul};
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::apps::{self as registry, App, Developer, NewApp};
use crate::error::BrokerError;
use crate::state::BrokerState;

/// How many connections `GET /api/v1/apps/{client_id}` includes.
const RECENT_CONNECTIONS: i64 = 50;

pub(crate) fn routes() -> Router<BrokerState> {
    Router::new()
        .route("/api/v1/apps", get(list).post(create).fallback(no_route))
        .route(
            "/api/v1/apps/{client_id}",
            get(show).delete(delete).fallback(no_route),
        )
        .route(
            "/api/v1/apps/{client_id}/secret",
            post(regenerate_secret).fallback(no_route),
        )
        .route("/api/v1", axum::routing::any(no_route))
        .route("/api/v1/", axum::routing::any(no_route))
        .route("/api/v1/{*rest}", axum::routing::any(no_route))
}

/// An API error: the WordPress envelope with the error's status.
#[derive(Debug)]
pub(crate) struct ApiError(BrokerError);

impl From<BrokerError> for ApiError {
    fn from(err: BrokerError) -> Self {
        Self(err)
    }
}

fn api_error(code: ErrorCode, message: impl Into<String>) -> ApiError {
    ApiError(BrokerError::protocol(code, message))
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.0.status();
        let (code, message) = match &self.0 {
            BrokerError::Protocol { code, message, .. } => (*code, message.clone()),
            BrokerError::RateLimited { message, .. } => (ErrorCode::ServerError, message.clone()),
            BrokerError::Internal(detail) => {
                tracing::error!(%detail, "internal error");
                (
                    ErrorCode::ServerError,
                    "The broker could not complete the request.".to_owned(),
                )
            }
        };
        let body = WpError::with_status(code, status.as_u16(), message);
        let mut response = (status, Json(body)).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if code == ErrorCode::RestNotLoggedIn {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"authbroker\""),
            );
        }
        if let BrokerError::RateLimited { retry_after, .. } = &self.0 {
            if let Ok(value) = HeaderValue::from_str(&retry_after.to_string()) {
                headers.insert(header::RETRY_AFTER, value);
            }
        }
        response
    }
}

type ApiResult = Result<Response, ApiError>;

async fn no_route() -> ApiError {
    api_error(
        ErrorCode::RestNoRoute,
        "No route was found matching the URL and request method.",
    )
}

/// The developer a request's bearer token belongs to.
#[derive(Debug)]
pub(crate) struct ApiDeveloper(Developer);

impl FromRequestParts<BrokerState> for ApiDeveloper {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &BrokerState) -> Result<Self, ApiError> {
        let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
            return Err(api_error(
                ErrorCode::RestNotLoggedIn,
                "Authentication required: send Authorization: Bearer <API token>.",
            ));
        };
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim())
            .filter(|token| !token.is_empty());
        let Some(token) = token else {
            return Err(api_error(
                ErrorCode::RestNotLoggedIn,
                "The Authorization header must be Bearer <API token>.",
            ));
        };
        match crate::tokens::developer_for_token(state, token).await? {
            None => Err(api_error(
                ErrorCode::RestNotLoggedIn,
                "The API token is not valid (it may have been revoked).",
            )),
            Some(developer) if !developer.is_active() => Err(api_error(
                ErrorCode::RestForbidden,
                "This account is suspended.",
            )),
            Some(developer) => Ok(Self(developer)),
        }
    }
}

/// An app as the API shows it.
#[derive(Debug, Serialize)]
struct AppView<'a> {
    client_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_secret: Option<&'a str>,
    name: &'a str,
    description: &'a str,
    callback_url: &'a str,
    details_url: &'a str,
    status: &'a str,
    /// Unix seconds.
    created_at: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    connections: Option<Vec<ConnectionView>>,
}

#[derive(Debug, Serialize)]
struct ConnectionView {
    site_url: String,
    result: String,
    /// Unix seconds.
    time: i64,
}

impl<'a> AppView<'a> {
    fn of(app: &'a App) -> Self {
        Self {
            client_id: &app.client_id,
            client_secret: None,
            name: &app.name,
            description: &app.description,
            callback_url: &app.callback_url,
            details_url: &app.details_url,
            status: &app.status,
            created_at: app.created_at,
            connections: None,
        }
    }

    fn with_secret(app: &'a App) -> Self {
        Self {
            client_secret: Some(&app.client_secret),
            ..Self::of(app)
        }
    }
}

fn json(status: StatusCode, body: impl Serialize) -> Response {
    let mut response = (status, Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

async fn list(
    State(state): State<BrokerState>,
    ApiDeveloper(developer): ApiDeveloper,
) -> ApiResult {
    let apps = registry::apps_of(&state, &developer.id).await?;
    let views: Vec<AppView<'_>> = apps.iter().map(AppView::of).collect();
    Ok(json(StatusCode::OK, views))
}

/// The body of `POST /api/v1/apps`.
#[derive(Debug, Deserialize)]
struct NewAppBody {
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    callback_url: String,
    #[serde(default)]
    details_url: Option<String>,
}

async fn create(
    State(state): State<BrokerState>,
    ApiDeveloper(developer): ApiDeveloper,
    body: Result<Json<NewAppBody>, JsonRejection>,
) -> ApiResult {
    let Json(body) = body.map_err(|rejection| {
        api_error(
            ErrorCode::RestInvalidParam,
            format!("The body must be a JSON object: {}", rejection.body_text()),
        )
    })?;
    // NUL characters are dropped from the text people read (PostgreSQL cannot store them); URLs with one
    // are refused by the registry's checks.
    let name = drop_nul(&body.name);
    let description = drop_nul(&body.description);
    let app = registry::register_app(
        &state,
        &developer.id,
        NewApp {
            name: &name,
            description: &description,
            callback_url: &body.callback_url,
            details_url: body.details_url.as_deref().unwrap_or_default(),
        },
    )
    .await?;
    tracing::info!(client_id = %app.client_id, developer = %developer.id, "app registered through the API");
    let mut response = json(StatusCode::CREATED, AppView::with_secret(&app));
    if let Ok(location) = HeaderValue::from_str(&format!(
        "{}/api/v1/apps/{}",
        state.config().home(),
        app.client_id
    )) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// The caller's app, or 404 whether it is another developer's or does not exist (a client id with NUL names
/// no app, and PostgreSQL could not even look it up).
async fn own_app(
    state: &BrokerState,
    developer: &Developer,
    client_id: &str,
) -> Result<App, ApiError> {
    let not_found = || api_error(ErrorCode::RestNotFound, "There is no such app among yours.");
    if has_nul(client_id) {
        return Err(not_found());
    }
    registry::app_of(state, &developer.id, client_id)
        .await?
        .ok_or_else(not_found)
}

async fn show(
    State(state): State<BrokerState>,
    ApiDeveloper(developer): ApiDeveloper,
    Path(client_id): Path<String>,
) -> ApiResult {
    let app = own_app(&state, &developer, &client_id).await?;
    let connections = registry::connections(&state, &app.id, RECENT_CONNECTIONS)
        .await?
        .into_iter()
        .map(|c| ConnectionView {
            site_url: c.site_url,
            result: c.result,
            time: c.created_at,
        })
        .collect();
    Ok(json(
        StatusCode::OK,
        AppView {
            connections: Some(connections),
            ..AppView::with_secret(&app)
        },
    ))
}

async fn regenerate_secret(
    State(state): State<BrokerState>,
    ApiDeveloper(developer): ApiDeveloper,
    Path(client_id): Path<String>,
) -> ApiResult {
    let mut app = own_app(&state, &developer, &client_id).await?;
    app.client_secret = registry::regenerate_secret(&state, &app.id).await?;
    tracing::info!(client_id = %app.client_id, "client secret regenerated through the API");
    Ok(json(StatusCode::OK, AppView::with_secret(&app)))
}

#[derive(Debug, Serialize)]
struct Deleted<'a> {
    deleted: bool,
    previous: AppView<'a>,
}

async fn delete(
    State(state): State<BrokerState>,
    ApiDeveloper(developer): ApiDeveloper,
    Path(client_id): Path<String>,
) -> ApiResult {
    let app = own_app(&state, &developer, &client_id).await?;
    if !registry::delete_app(&state, &app.id).await? {
        return Err(api_error(
            ErrorCode::RestNotFound,
            "There is no such app among yours.",
        ));
    }
    tracing::info!(client_id = %app.client_id, "app deleted through the API");
    Ok(json(
        StatusCode::OK,
        Deleted {
            deleted: true,
            previous: AppView::of(&app),
        },
    ))
}
