//! API tokens: bearer credentials for scripts and the CLI to use the JSON API (`/api/v1/`).
//!
//! A token is shown once, when it is created; the database keeps only its SHA-256
//! ([`authbroker_web::session::hash_id`]), which is also how a token is named when it is revoked.

use authbroker_store::sqlx::{self, Row};
use authbroker_web::session::hash_id;

use crate::accounts::{DEVELOPER_COLUMNS, developer_from_row};
use crate::apps::Developer;
use crate::error::BrokerError;
use crate::state::BrokerState;

/// Every token starts with this, so that secret scanners and people recognise one.
pub const TOKEN_PREFIX: &str = "abt_";
const TOKEN_RANDOM_LEN: usize = 40;
/// The longest label.
pub const MAX_LABEL_CHARS: usize = 100;

/// A token as the developer's list shows it: never the token itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiToken {
    /// The SHA-256 of the token (hex): its name for revocation.
    pub token_hash: String,
    pub label: String,
    /// Unix seconds.
    pub created_at: i64,
}

/// Creates a token for `developer_id`; returns the token, which is never shown again.
pub async fn create_token(
    state: &BrokerState,
    developer_id: &str,
    label: &str,
) -> Result<String, BrokerError> {
    let label = label.trim();
    let label: String = if label.is_empty() {
        "API token".to_owned()
    } else {
        label.chars().take(MAX_LABEL_CHARS).collect()
    };
    let token = format!(
        "{TOKEN_PREFIX}{}",
        authbroker_web::random::alnum(TOKEN_RANDOM_LEN)
    );
    sqlx::query(
        "INSERT INTO api_tokens (token_hash, developer_id, label, created_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(hash_id(&token))
    .bind(developer_id)
    .bind(&label)
    .bind(state.now())
    .execute(state.db())
    .await?;
    Ok(token)
}

/// The tokens of a developer, newest first.
pub async fn tokens_of(
    state: &BrokerState,
    developer_id: &str,
) -> Result<Vec<ApiToken>, BrokerError> {
    let rows = sqlx::query(
        "SELECT token_hash, label, created_at FROM api_tokens WHERE developer_id = $1 ORDER BY created_at DESC, token_hash",
    )
    .bind(developer_id)
    .fetch_all(state.db())
    .await?;
    rows.iter()
        .map(|row| {
            Ok(ApiToken {
                token_hash: row.try_get("token_hash")?,
                label: row.try_get("label")?,
                created_at: row.try_get("created_at")?,
            })
        })
        .collect()
}

/// Revokes one of the developer's tokens by its hash. Returns whether it existed.
pub async fn revoke_token(
    state: &BrokerState,
    developer_id: &str,
    token_hash: &str,
) -> Result<bool, BrokerError> {
    let done = sqlx::query("DELETE FROM api_tokens WHERE token_hash = $1 AND developer_id = $2")
        .bind(token_hash)
        .bind(developer_id)
        .execute(state.db())
        .await?;
    Ok(done.rows_affected() > 0)
}

/// The developer a bearer token belongs to (whatever their status: the caller decides).
pub async fn developer_for_token(
    state: &BrokerState,
    token: &str,
) -> Result<Option<Developer>, BrokerError> {
    if !token.starts_with(TOKEN_PREFIX) || token.len() != TOKEN_PREFIX.len() + TOKEN_RANDOM_LEN {
        return Ok(None);
    }
    sqlx::query(&format!(
        "SELECT {DEVELOPER_COLUMNS} FROM api_tokens t JOIN developers d ON d.id = t.developer_id WHERE t.token_hash = $1"
    ))
    .bind(hash_id(token))
    .fetch_optional(state.db())
    .await?
    .as_ref()
    .map(developer_from_row)
    .transpose()
}
