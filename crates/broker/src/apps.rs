//! The app registry: developers and their apps (the consumers of R1), and each app's connection log.

use authbroker_protocol::ErrorCode;
use authbroker_store::sqlx::{self, Row, any::AnyRow};
use authbroker_web::input::has_nul;

use crate::error::BrokerError;
use crate::state::BrokerState;

/// Lengths of the credentials an app gets at this broker (the shape WordPress consumers have).
pub const CLIENT_ID_LEN: usize = 12;
pub const CLIENT_SECRET_LEN: usize = 48;

/// A developer account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Developer {
    pub id: String,
    pub email: String,
    pub name: String,
    /// `developer` or `admin`.
    pub role: String,
    /// `active` or `suspended`.
    pub status: String,
}

impl Developer {
    pub fn is_admin(&self) -> bool {
        self.role == ROLE_ADMIN
    }

    pub fn is_active(&self) -> bool {
        self.status == STATUS_ACTIVE
    }
}

/// A registered app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct App {
    pub id: String,
    pub developer_id: String,
    pub client_id: String,
    pub client_secret: String,
    pub name: String,
    pub description: String,
    pub callback_url: String,
    pub details_url: String,
    /// `active` or `suspended` (by the broker's administrators).
    pub status: String,
    /// Unix seconds.
    pub created_at: i64,
}

impl App {
    pub fn is_active(&self) -> bool {
        self.status == STATUS_ACTIVE
    }
}

/// The status of a developer or an app that may act.
pub const STATUS_ACTIVE: &str = "active";
/// The status of a developer or an app stopped by the broker's administrators.
pub const STATUS_SUSPENDED: &str = "suspended";
/// The role of every developer who signed up.
pub const ROLE_DEVELOPER: &str = "developer";
/// The role of the broker's administrators.
pub const ROLE_ADMIN: &str = "admin";

/// Limits on what a developer types, so pages and the R4 form stay reasonable.
pub const MAX_NAME_CHARS: usize = 200;
pub const MAX_DESCRIPTION_CHARS: usize = 2000;
pub const MAX_URL_LEN: usize = 2048;

/// What a developer supplies to register an app.
#[derive(Debug, Clone)]
pub struct NewApp<'a> {
    pub name: &'a str,
    pub description: &'a str,
    pub callback_url: &'a str,
    pub details_url: &'a str,
}

const APP_COLUMNS: &str = "a.id AS id, a.developer_id AS developer_id, a.client_id AS client_id, a.client_secret AS client_secret, a.name AS name, a.description AS description, a.callback_url AS callback_url, a.details_url AS details_url, a.status AS status, a.created_at AS created_at";

fn app_from_row(row: &AnyRow) -> Result<App, BrokerError> {
    Ok(App {
        id: row.try_get("id")?,
        developer_id: row.try_get("developer_id")?,
        client_id: row.try_get("client_id")?,
        client_secret: row.try_get("client_secret")?,
        name: row.try_get("name")?,
        description: row.try_get("description")?,
        callback_url: row.try_get("callback_url")?,
        details_url: row.try_get("details_url")?,
        status: row.try_get("status")?,
        created_at: row.try_get("created_at")?,
    })
}

fn invalid(message: impl Into<String>) -> BrokerError {
    BrokerError::protocol(ErrorCode::RestInvalidParam, message)
}

/// Checks what a developer typed: a name, a callback that is `oob` or an absolute URL with a host (custom
/// schemes like `myapp://callback` are fine: native apps use them), and an optional http(s) details page.
pub fn check_new_app(new: &NewApp<'_>) -> Result<(), BrokerError> {
    let name = new.name.trim();
    let callback = new.callback_url.trim();
    let missing: Vec<&str> = [("name", name), ("callback_url", callback)]
        .into_iter()
        .filter(|(_, value)| value.is_empty())
        .map(|(field, _)| field)
        .collect();
    if !missing.is_empty() {
        return Err(BrokerError::protocol(
            ErrorCode::RestMissingCallbackParam,
            format!("Missing parameter(s): {}", missing.join(", ")),
        ));
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(invalid(format!(
            "The name is at most {MAX_NAME_CHARS} characters."
        )));
    }
    if new.description.trim().chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(invalid(format!(
            "The description is at most {MAX_DESCRIPTION_CHARS} characters."
        )));
    }
    if !valid_callback(callback) {
        return Err(invalid(
            "The callback URL must be an absolute URL with a host (myapp://callback works) or oob.",
        ));
    }
    let details = new.details_url.trim();
    if !details.is_empty() && !valid_details_url(details) {
        return Err(invalid(
            "The details URL must be an http:// or https:// URL with a host.",
        ));
    }
    Ok(())
}

/// `oob`, or an absolute URL with a non-empty host, no userinfo and no fragment, of reasonable length, and
/// without NUL (URL parsers strip it at either end, but PostgreSQL cannot store it).
pub fn valid_callback(url: &str) -> bool {
    if url == "oob" {
        return true;
    }
    if url.len() > MAX_URL_LEN || has_nul(url) {
        return false;
    }
    url::Url::parse(url).is_ok_and(|u| {
        u.host_str().is_some_and(|h| !h.is_empty())
            && u.username().is_empty()
            && u.password().is_none()
            && u.fragment().is_none()
    })
}

/// An http(s) URL with a host (and without NUL): the only kind of link a page about the app may be.
pub fn valid_details_url(url: &str) -> bool {
    url.len() <= MAX_URL_LEN
        && !has_nul(url)
        && url::Url::parse(url).is_ok_and(|u| {
            matches!(u.scheme(), "http" | "https")
                && u.host_str().is_some_and(|h| !h.is_empty())
                && u.username().is_empty()
                && u.password().is_none()
        })
}

/// Creates a developer account with an argon2id password hash.
pub async fn create_developer(
    state: &BrokerState,
    email: &str,
    name: &str,
    password: &str,
    role: &str,
) -> Result<Developer, BrokerError> {
    let hash = authbroker_web::password::hash(password.to_owned())
        .await
        .map_err(|e| BrokerError::Internal(e.to_string()))?;
    let developer = Developer {
        id: authbroker_web::random::id(),
        email: email.trim().to_ascii_lowercase(),
        name: name.trim().to_owned(),
        role: role.to_owned(),
        status: STATUS_ACTIVE.to_owned(),
    };
    sqlx::query(
        "INSERT INTO developers (id, email, name, password_hash, role, status, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&developer.id)
    .bind(&developer.email)
    .bind(&developer.name)
    .bind(&hash)
    .bind(&developer.role)
    .bind(&developer.status)
    .bind(state.now())
    .execute(state.db())
    .await
    .map_err(|err| {
        if authbroker_store::is_unique_violation(&err) {
            BrokerError::protocol(
                ErrorCode::RestInvalidParam,
                "An account with this email address already exists.",
            )
            .with_status(409)
        } else {
            err.into()
        }
    })?;
    Ok(developer)
}

/// Registers an app for a developer with fresh credentials, after [`check_new_app`].
pub async fn register_app(
    state: &BrokerState,
    developer_id: &str,
    new: NewApp<'_>,
) -> Result<App, BrokerError> {
    check_new_app(&new)?;
    let app = App {
        id: authbroker_web::random::id(),
        developer_id: developer_id.to_owned(),
        client_id: authbroker_web::random::alnum(CLIENT_ID_LEN),
        client_secret: authbroker_web::random::alnum(CLIENT_SECRET_LEN),
        name: new.name.trim().to_owned(),
        description: new.description.trim().to_owned(),
        callback_url: new.callback_url.trim().to_owned(),
        details_url: new.details_url.trim().to_owned(),
        status: STATUS_ACTIVE.to_owned(),
        created_at: state.now(),
    };
    sqlx::query(
        "INSERT INTO apps (id, developer_id, client_id, client_secret, name, description, callback_url, details_url, status, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(&app.id)
    .bind(&app.developer_id)
    .bind(&app.client_id)
    .bind(&app.client_secret)
    .bind(&app.name)
    .bind(&app.description)
    .bind(&app.callback_url)
    .bind(&app.details_url)
    .bind(&app.status)
    .bind(app.created_at)
    .execute(state.db())
    .await?;
    Ok(app)
}

/// The app with this client id, if it and its developer are active (a suspended app or developer cannot
/// connect anywhere).
pub async fn active_app(state: &BrokerState, client_id: &str) -> Result<Option<App>, BrokerError> {
    sqlx::query(&format!(
        "SELECT {APP_COLUMNS} FROM apps a JOIN developers d ON d.id = a.developer_id WHERE a.client_id = $1 AND a.status = 'active' AND d.status = 'active'"
    ))
    .bind(client_id)
    .fetch_optional(state.db())
    .await?
    .as_ref()
    .map(app_from_row)
    .transpose()
}

/// Records the outcome of one connection: which site, when, and the result code. Never credentials.
pub async fn log_connection(
    state: &BrokerState,
    app_id: &str,
    site_url: &str,
    result: &str,
) -> Result<(), BrokerError> {
    sqlx::query("INSERT INTO connections (id, app_id, site_url, result, created_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(authbroker_web::random::id())
        .bind(app_id)
        .bind(site_url)
        .bind(result)
        .bind(state.now())
        .execute(state.db())
        .await?;
    Ok(())
}

/// The apps of a developer, newest first.
pub async fn apps_of(state: &BrokerState, developer_id: &str) -> Result<Vec<App>, BrokerError> {
    sqlx::query(&format!(
        "SELECT {APP_COLUMNS} FROM apps a WHERE a.developer_id = $1 ORDER BY a.created_at DESC, a.id"
    ))
    .bind(developer_id)
    .fetch_all(state.db())
    .await?
    .iter()
    .map(app_from_row)
    .collect()
}

/// The app with this client id if it belongs to `developer_id` (whatever its status). Another developer's
/// app is `None`, exactly like an app that does not exist.
pub async fn app_of(
    state: &BrokerState,
    developer_id: &str,
    client_id: &str,
) -> Result<Option<App>, BrokerError> {
    sqlx::query(&format!(
        "SELECT {APP_COLUMNS} FROM apps a WHERE a.client_id = $1 AND a.developer_id = $2"
    ))
    .bind(client_id)
    .bind(developer_id)
    .fetch_optional(state.db())
    .await?
    .as_ref()
    .map(app_from_row)
    .transpose()
}

/// A fresh client secret for the app; the old one stops working for R1 at once. Returns the new secret.
pub async fn regenerate_secret(state: &BrokerState, app_id: &str) -> Result<String, BrokerError> {
    let secret = authbroker_web::random::alnum(CLIENT_SECRET_LEN);
    let done = sqlx::query("UPDATE apps SET client_secret = $1 WHERE id = $2")
        .bind(&secret)
        .bind(app_id)
        .execute(state.db())
        .await?;
    if done.rows_affected() == 0 {
        return Err(BrokerError::protocol(
            ErrorCode::RestNotFound,
            "There is no such app.",
        ));
    }
    Ok(secret)
}

/// Deletes the app and its connection log. Returns whether it existed.
pub async fn delete_app(state: &BrokerState, app_id: &str) -> Result<bool, BrokerError> {
    let mut tx = state.db().begin().await?;
    sqlx::query("DELETE FROM connections WHERE app_id = $1")
        .bind(app_id)
        .execute(&mut *tx)
        .await?;
    let done = sqlx::query("DELETE FROM apps WHERE id = $1")
        .bind(app_id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(done.rows_affected() > 0)
}

/// An app in the administrators' list, with its developer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppWithDeveloper {
    pub app: App,
    pub developer_email: String,
    pub developer_status: String,
}

/// Every app, newest first, with its developer (administrators).
pub async fn all_apps(state: &BrokerState) -> Result<Vec<AppWithDeveloper>, BrokerError> {
    let rows = sqlx::query(&format!(
        "SELECT {APP_COLUMNS}, d.email AS developer_email, d.status AS developer_status FROM apps a JOIN developers d ON d.id = a.developer_id ORDER BY a.created_at DESC, a.id"
    ))
    .fetch_all(state.db())
    .await?;
    rows.iter()
        .map(|row| {
            Ok(AppWithDeveloper {
                app: app_from_row(row)?,
                developer_email: row.try_get("developer_email")?,
                developer_status: row.try_get("developer_status")?,
            })
        })
        .collect()
}

/// Suspends or reactivates an app by client id (administrators). Returns whether the app exists.
pub async fn set_app_status(
    state: &BrokerState,
    client_id: &str,
    status: &str,
) -> Result<bool, BrokerError> {
    let done = sqlx::query("UPDATE apps SET status = $1 WHERE client_id = $2")
        .bind(status)
        .bind(client_id)
        .execute(state.db())
        .await?;
    Ok(done.rows_affected() > 0)
}

/// One entry of an app's connection log: which site, when, and how it ended (`success` or an error code).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    pub site_url: String,
    pub result: String,
    /// Unix seconds.
    pub created_at: i64,
}

/// The most recent `limit` connections of an app, newest first.
pub async fn connections(
    state: &BrokerState,
    app_id: &str,
    limit: i64,
) -> Result<Vec<Connection>, BrokerError> {
    let rows = sqlx::query(
        "SELECT site_url, result, created_at FROM connections WHERE app_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2",
    )
    .bind(app_id)
    .bind(limit)
    .fetch_all(state.db())
    .await?;
    rows.iter()
        .map(|row| {
            Ok(Connection {
                site_url: row.try_get("site_url")?,
                result: row.try_get("result")?,
                created_at: row.try_get("created_at")?,
            })
        })
        .collect()
}
