//! Users, passwords, sessions, the login/logout pages and the throttling of failed logins.

mod limits;
mod pages;
mod sessions;

pub(crate) use limits::{LoginLimits, PER_IP_BURST, PER_LOGIN_BURST};

pub(crate) use sessions::prune as prune_sessions;

use authbroker_store::sqlx::{self, Row, any::AnyRow};
use authbroker_web::input::has_nul;
use axum::Router;

use crate::error::SiteError;
use crate::state::SiteState;

pub(crate) use sessions::{MaybeSession, csrf_cookie_value, require_csrf, require_csrf_header};

/// What a user may do, as in WordPress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Everything, including the management pages.
    Administrator,
    /// Writes and publishes their own posts.
    Author,
    /// Reads; cannot publish.
    Subscriber,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Administrator => "administrator",
            Self::Author => "author",
            Self::Subscriber => "subscriber",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "administrator" => Some(Self::Administrator),
            "author" => Some(Self::Author),
            "subscriber" => Some(Self::Subscriber),
            _ => None,
        }
    }

    /// Whether the role may publish posts.
    pub fn can_publish(self) -> bool {
        matches!(self, Self::Administrator | Self::Author)
    }
}

/// A site user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: String,
    pub login: String,
    pub display_name: String,
    pub email: String,
    pub role: Role,
    pub created_at: i64,
}

const USER_COLUMNS: &str = "id, login, display_name, email, role, created_at";

fn user_from_row(row: &AnyRow) -> Result<User, SiteError> {
    let role: String = row.try_get("role")?;
    Ok(User {
        id: row.try_get("id")?,
        login: row.try_get("login")?,
        display_name: row.try_get("display_name")?,
        email: row.try_get("email")?,
        role: Role::parse(&role)
            .ok_or_else(|| SiteError::Internal(format!("unknown role {role:?}")))?,
        created_at: row.try_get("created_at")?,
    })
}

/// Creates a user with an argon2id password hash.
pub async fn create_user(
    state: &SiteState,
    login: &str,
    display_name: &str,
    email: &str,
    password: &str,
    role: Role,
) -> Result<User, SiteError> {
    if login.trim().is_empty() || login.len() > 60 {
        return Err(SiteError::rest(
            "rest_invalid_param",
            400,
            "A login of 1 to 60 characters is required.",
        ));
    }
    let hash = hash_password(password.to_owned()).await?;
    let user = User {
        id: crate::random::id(),
        login: login.to_owned(),
        display_name: display_name.to_owned(),
        email: email.to_owned(),
        role,
        created_at: state.now(),
    };
    sqlx::query(
        "INSERT INTO users (id, login, display_name, email, password_hash, role, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&user.id)
    .bind(&user.login)
    .bind(&user.display_name)
    .bind(&user.email)
    .bind(&hash)
    .bind(role.as_str())
    .bind(user.created_at)
    .execute(state.db())
    .await
    .map_err(|err| {
        if authbroker_store::is_unique_violation(&err) {
            SiteError::rest("existing_user_login", 400, "Sorry, that username already exists!")
        } else {
            err.into()
        }
    })?;
    Ok(user)
}

/// A user by id.
pub(crate) async fn user_by_id(state: &SiteState, id: &str) -> Result<Option<User>, SiteError> {
    sqlx::query(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"))
        .bind(id)
        .fetch_optional(state.db())
        .await?
        .as_ref()
        .map(user_from_row)
        .transpose()
}

/// The user whose login and password these are. Costs one argon2 verification whether or not the login
/// exists, so that timing does not reveal which logins exist. A login with NUL is no user's (and PostgreSQL
/// could not even look it up).
pub(crate) async fn authenticate_password(
    state: &SiteState,
    login: &str,
    password: &str,
) -> Result<Option<User>, SiteError> {
    let row = if has_nul(login) {
        None
    } else {
        sqlx::query(&format!(
            "SELECT {USER_COLUMNS}, password_hash FROM users WHERE login = $1"
        ))
        .bind(login)
        .fetch_optional(state.db())
        .await?
    };
    let (user, hash) = match &row {
        Some(row) => (
            Some(user_from_row(row)?),
            Some(row.try_get::<String, _>("password_hash")?),
        ),
        None => (None, None),
    };
    let ok = authbroker_web::password::verify(password.to_owned(), hash)
        .await
        .map_err(|e| SiteError::Internal(e.to_string()))?;
    Ok(user.filter(|_| ok))
}

async fn hash_password(password: String) -> Result<String, SiteError> {
    authbroker_web::password::hash(password)
        .await
        .map_err(|e| SiteError::Internal(e.to_string()))
}

pub(crate) fn routes() -> Router<SiteState> {
    pages::routes()
}
