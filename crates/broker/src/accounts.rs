//! Developer accounts: signing up, passwords, login sessions, and the administrators' view of accounts.
//!
//! Sessions follow the site's pattern through the shared plumbing ([`authbroker_web::session`]): a random id
//! in the `ab_broker_session` cookie, only its SHA-256 in `sessions`. The cookie has its own name so that a
//! broker and a site on one host (cookies ignore ports) do not log each other out.

use authbroker_protocol::ErrorCode;
use authbroker_store::sqlx::{self, Row, any::AnyRow};
use authbroker_web::input::has_nul;
use authbroker_web::session::{NewSession, SessionCookie};
use axum::http::{HeaderMap, HeaderValue};

use crate::apps::{Developer, ROLE_ADMIN, ROLE_DEVELOPER, STATUS_ACTIVE, create_developer};
use crate::error::BrokerError;
use crate::state::BrokerState;

/// The shortest password an account may have.
pub const MIN_PASSWORD_LEN: usize = 12;
/// The longest (argon2 hashes anything, but a megabyte of password is an attack, not a password).
pub const MAX_PASSWORD_LEN: usize = 1024;
const MAX_EMAIL_LEN: usize = 254;
const MAX_DEVELOPER_NAME_CHARS: usize = 100;

const SESSION_COOKIE: &str = "ab_broker_session";
const SESSION_LIFETIME: i64 = 14 * 24 * 3600;

pub(crate) const DEVELOPER_COLUMNS: &str =
    "d.id AS id, d.email AS email, d.name AS name, d.role AS role, d.status AS status";

pub(crate) fn developer_from_row(row: &AnyRow) -> Result<Developer, BrokerError> {
    Ok(Developer {
        id: row.try_get("id")?,
        email: row.try_get("email")?,
        name: row.try_get("name")?,
        role: row.try_get("role")?,
        status: row.try_get("status")?,
    })
}

fn invalid(message: impl Into<String>) -> BrokerError {
    BrokerError::protocol(ErrorCode::RestInvalidParam, message)
}

/// Checks an email address, a display name and a password for a new account; returns the normalized email.
pub fn check_new_account(email: &str, name: &str, password: &str) -> Result<String, BrokerError> {
    let email = email.trim().to_ascii_lowercase();
    let plausible = email.len() <= MAX_EMAIL_LEN
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && !domain.is_empty() && !domain.contains('@')
        });
    if !plausible {
        return Err(invalid("Enter a valid email address."));
    }
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_DEVELOPER_NAME_CHARS {
        return Err(invalid(format!(
            "Enter a name of 1 to {MAX_DEVELOPER_NAME_CHARS} characters."
        )));
    }
    check_password(password)?;
    Ok(email)
}

/// Refuses passwords shorter than [`MIN_PASSWORD_LEN`] characters (or absurdly long).
pub fn check_password(password: &str) -> Result<(), BrokerError> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_LEN {
        return Err(invalid(format!(
            "Use a password of at least {MIN_PASSWORD_LEN} characters."
        )));
    }
    if password.len() > MAX_PASSWORD_LEN {
        return Err(invalid(format!(
            "Use a password of at most {MAX_PASSWORD_LEN} bytes."
        )));
    }
    Ok(())
}

/// Signs a developer up: checks the input, then creates an active `developer` account.
pub async fn sign_up(
    state: &BrokerState,
    email: &str,
    name: &str,
    password: &str,
) -> Result<Developer, BrokerError> {
    let email = check_new_account(email, name, password)?;
    create_developer(state, &email, name, password, ROLE_DEVELOPER).await
}

/// The developer whose email and password these are (active or not: the caller decides). Costs one argon2
/// verification whether or not the account exists, so timing does not reveal which accounts exist. An
/// email with NUL is no account's (sign up refuses control characters; PostgreSQL could not look it up).
pub async fn authenticate(
    state: &BrokerState,
    email: &str,
    password: &str,
) -> Result<Option<Developer>, BrokerError> {
    if password.len() > MAX_PASSWORD_LEN || has_nul(email) {
        return Ok(None);
    }
    let row = sqlx::query(&format!(
        "SELECT {DEVELOPER_COLUMNS}, d.password_hash AS password_hash FROM developers d WHERE d.email = $1"
    ))
    .bind(email.trim().to_ascii_lowercase())
    .fetch_optional(state.db())
    .await?;
    let (developer, hash) = match &row {
        Some(row) => (
            Some(developer_from_row(row)?),
            Some(row.try_get::<String, _>("password_hash")?),
        ),
        None => (None, None),
    };
    let ok = authbroker_web::password::verify(password.to_owned(), hash)
        .await
        .map_err(|e| BrokerError::Internal(e.to_string()))?;
    Ok(developer.filter(|_| ok))
}

/// A developer by id.
pub async fn developer_by_id(
    state: &BrokerState,
    id: &str,
) -> Result<Option<Developer>, BrokerError> {
    sqlx::query(&format!(
        "SELECT {DEVELOPER_COLUMNS} FROM developers d WHERE d.id = $1"
    ))
    .bind(id)
    .fetch_optional(state.db())
    .await?
    .as_ref()
    .map(developer_from_row)
    .transpose()
}

fn session_cookie(state: &BrokerState) -> SessionCookie {
    SessionCookie {
        name: SESSION_COOKIE,
        lifetime: SESSION_LIFETIME,
        secure: state.config().is_https(),
    }
}

fn cookie_error(_: axum::http::header::InvalidHeaderValue) -> BrokerError {
    BrokerError::Internal("cookie value".into())
}

/// Starts a session for `developer_id`; returns the `Set-Cookie` value.
pub(crate) async fn start_session(
    state: &BrokerState,
    developer_id: &str,
) -> Result<HeaderValue, BrokerError> {
    let session = NewSession::generate();
    let now = state.now();
    // The developer's expired sessions go as a new one starts, so the table does not grow without bound.
    sqlx::query("DELETE FROM sessions WHERE developer_id = $1 AND expires_at <= $2")
        .bind(developer_id)
        .bind(now)
        .execute(state.db())
        .await?;
    sqlx::query(
        "INSERT INTO sessions (id_hash, developer_id, created_at, expires_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(&session.id_hash)
    .bind(developer_id)
    .bind(now)
    .bind(now + SESSION_LIFETIME)
    .execute(state.db())
    .await?;
    session_cookie(state).start(&session).map_err(cookie_error)
}

/// Ends the request's session (if any); returns the `Set-Cookie` that clears it.
pub(crate) async fn end_session(
    state: &BrokerState,
    headers: &HeaderMap,
) -> Result<HeaderValue, BrokerError> {
    let cookie = session_cookie(state);
    if let Some(id_hash) = cookie.id_hash(headers) {
        sqlx::query("DELETE FROM sessions WHERE id_hash = $1")
            .bind(id_hash)
            .execute(state.db())
            .await?;
    }
    cookie.clear().map_err(cookie_error)
}

/// The developer signed in on this request: a live session of an active account.
pub(crate) async fn session_developer(
    state: &BrokerState,
    headers: &HeaderMap,
) -> Result<Option<Developer>, BrokerError> {
    let Some(id_hash) = session_cookie(state).id_hash(headers) else {
        return Ok(None);
    };
    sqlx::query(&format!(
        "SELECT {DEVELOPER_COLUMNS} FROM sessions s JOIN developers d ON d.id = s.developer_id WHERE s.id_hash = $1 AND s.expires_at > $2 AND d.status = $3"
    ))
    .bind(id_hash)
    .bind(state.now())
    .bind(STATUS_ACTIVE)
    .fetch_optional(state.db())
    .await?
    .as_ref()
    .map(developer_from_row)
    .transpose()
}

/// Deletes expired sessions (run now and then; an expired session is refused anyway).
pub async fn prune_sessions(state: &BrokerState) -> Result<u64, BrokerError> {
    Ok(sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
        .bind(state.now())
        .execute(state.db())
        .await?
        .rows_affected())
}

/// A developer in the administrators' list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeveloperSummary {
    pub developer: Developer,
    pub apps: i64,
    /// Unix seconds.
    pub created_at: i64,
}

/// Every developer, oldest first, with how many apps each has.
pub async fn all_developers(state: &BrokerState) -> Result<Vec<DeveloperSummary>, BrokerError> {
    let rows = sqlx::query(&format!(
        "SELECT {DEVELOPER_COLUMNS}, d.created_at AS created_at, (SELECT COUNT(*) FROM apps a WHERE a.developer_id = d.id) AS apps FROM developers d ORDER BY d.created_at, d.id"
    ))
    .fetch_all(state.db())
    .await?;
    rows.iter()
        .map(|row| {
            Ok(DeveloperSummary {
                developer: developer_from_row(row)?,
                apps: row.try_get("apps")?,
                created_at: row.try_get("created_at")?,
            })
        })
        .collect()
}

/// Suspends or reactivates a developer (administrators). A suspended developer cannot log in or use API
/// tokens, and none of their apps can connect. Returns whether the developer exists.
pub async fn set_developer_status(
    state: &BrokerState,
    developer_id: &str,
    status: &str,
) -> Result<bool, BrokerError> {
    let mut tx = state.db().begin().await?;
    let done = sqlx::query("UPDATE developers SET status = $1 WHERE id = $2")
        .bind(status)
        .bind(developer_id)
        .execute(&mut *tx)
        .await?;
    if status != STATUS_ACTIVE {
        sqlx::query("DELETE FROM sessions WHERE developer_id = $1")
            .bind(developer_id)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(done.rows_affected() > 0)
}

/// The email of the oldest administrator, if the broker has one.
pub async fn first_admin(state: &BrokerState) -> Result<Option<String>, BrokerError> {
    let row =
        sqlx::query("SELECT email FROM developers WHERE role = $1 ORDER BY created_at, id LIMIT 1")
            .bind(ROLE_ADMIN)
            .fetch_optional(state.db())
            .await?;
    Ok(row
        .map(|row| row.try_get::<String, _>("email"))
        .transpose()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_accounts_are_checked() {
        assert_eq!(
            check_new_account(" Dev@Example.COM ", "Dev", "twelve chars").unwrap(),
            "dev@example.com"
        );
        for (email, name, password) in [
            ("dev", "Dev", "twelve chars"),
            ("dev@", "Dev", "twelve chars"),
            ("a@b@c", "Dev", "twelve chars"),
            ("d ev@example.com", "Dev", "twelve chars"),
            ("dev@example.com", " ", "twelve chars"),
            ("dev@example.com", "Dev", "eleven char"),
            ("dev@exam\0ple.com", "Dev", "twelve chars"),
        ] {
            let err = check_new_account(email, name, password).unwrap_err();
            assert_eq!(err.status(), 400, "{email} {name} {password}");
        }
    }
}
