//! Request tokens (24 h, bound to their consumer) and access tokens.

use authbroker_store::sqlx::{self, Row};

use crate::error::SiteError;
use crate::state::SiteState;

pub(crate) const TOKEN_KEY_LEN: usize = 24;
pub(crate) const TOKEN_SECRET_LEN: usize = 48;
pub(crate) const VERIFIER_LEN: usize = 24;
pub(crate) const REQUEST_TOKEN_LIFETIME: i64 = 24 * 3600;

/// A temporary credential.
#[derive(Debug, Clone)]
pub(crate) struct RequestToken {
    pub(crate) key: String,
    pub(crate) secret: String,
    pub(crate) consumer_id: String,
    pub(crate) callback: Option<String>,
    pub(crate) verifier: Option<String>,
    pub(crate) user_id: Option<String>,
    pub(crate) expires_at: i64,
}

/// A token credential.
#[derive(Debug, Clone)]
pub(crate) struct AccessToken {
    pub(crate) key: String,
    pub(crate) secret: String,
    pub(crate) consumer_id: String,
    pub(crate) user_id: String,
    pub(crate) last_used_at: i64,
}

pub(crate) async fn create_request_token(
    state: &SiteState,
    consumer_id: &str,
    callback: Option<&str>,
) -> Result<RequestToken, SiteError> {
    let token = RequestToken {
        key: crate::random::alnum(TOKEN_KEY_LEN),
        secret: crate::random::alnum(TOKEN_SECRET_LEN),
        consumer_id: consumer_id.to_owned(),
        callback: callback.map(str::to_owned),
        verifier: None,
        user_id: None,
        expires_at: state.now() + REQUEST_TOKEN_LIFETIME,
    };
    sqlx::query(
        "INSERT INTO request_tokens (token_key, token_secret, consumer_id, callback, expires_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&token.key)
    .bind(&token.secret)
    .bind(&token.consumer_id)
    .bind(&token.callback)
    .bind(token.expires_at)
    .execute(state.db())
    .await?;
    Ok(token)
}

pub(crate) async fn request_token(
    state: &SiteState,
    key: &str,
) -> Result<Option<RequestToken>, SiteError> {
    let row = sqlx::query(
        "SELECT token_key, token_secret, consumer_id, callback, verifier, user_id, expires_at FROM request_tokens WHERE token_key = $1",
    )
    .bind(key)
    .fetch_optional(state.db())
    .await?;
    row.map(|row| {
        Ok(RequestToken {
            key: row.try_get("token_key")?,
            secret: row.try_get("token_secret")?,
            consumer_id: row.try_get("consumer_id")?,
            callback: row.try_get("callback")?,
            verifier: row.try_get("verifier")?,
            user_id: row.try_get("user_id")?,
            expires_at: row.try_get("expires_at")?,
        })
    })
    .transpose()
}

pub(crate) async fn set_request_token_callback(
    state: &SiteState,
    key: &str,
    callback: &str,
) -> Result<(), SiteError> {
    sqlx::query("UPDATE request_tokens SET callback = $1 WHERE token_key = $2")
        .bind(callback)
        .bind(key)
        .execute(state.db())
        .await?;
    Ok(())
}

/// Marks the token approved by `user_id` and returns its verifier. Approving twice returns the first
/// verifier, so a reloaded consent page redirects to the same place; a token another user approved (even
/// concurrently) is refused, so no one obtains another user's verifier.
pub(crate) async fn authorize_request_token(
    state: &SiteState,
    key: &str,
    user_id: &str,
) -> Result<String, SiteError> {
    let verifier = crate::random::alnum(VERIFIER_LEN);
    sqlx::query("UPDATE request_tokens SET verifier = $1, user_id = $2 WHERE token_key = $3 AND verifier IS NULL")
        .bind(&verifier)
        .bind(user_id)
        .bind(key)
        .execute(state.db())
        .await?;
    let stored: Option<String> =
        sqlx::query("SELECT verifier FROM request_tokens WHERE token_key = $1 AND user_id = $2")
            .bind(key)
            .bind(user_id)
            .fetch_optional(state.db())
            .await?
            .map(|row| row.try_get("verifier"))
            .transpose()?
            .flatten();
    stored.ok_or_else(|| {
        SiteError::protocol(
            authbroker_protocol::ErrorCode::OAuth1InvalidToken,
            "Invalid token",
        )
    })
}

pub(crate) async fn delete_request_token(state: &SiteState, key: &str) -> Result<(), SiteError> {
    sqlx::query("DELETE FROM request_tokens WHERE token_key = $1")
        .bind(key)
        .execute(state.db())
        .await?;
    Ok(())
}

/// Exchanges an approved request token for an access token, atomically: of two concurrent exchanges of
/// the same request token, exactly one succeeds.
pub(crate) async fn exchange(
    state: &SiteState,
    request: &RequestToken,
    user_id: &str,
) -> Result<AccessToken, SiteError> {
    let now = state.now();
    let token = AccessToken {
        key: crate::random::alnum(TOKEN_KEY_LEN),
        secret: crate::random::alnum(TOKEN_SECRET_LEN),
        consumer_id: request.consumer_id.clone(),
        user_id: user_id.to_owned(),
        last_used_at: now,
    };
    let mut tx = state.db().begin().await?;
    let deleted = sqlx::query("DELETE FROM request_tokens WHERE token_key = $1")
        .bind(&request.key)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if deleted != 1 {
        return Err(SiteError::protocol(
            authbroker_protocol::ErrorCode::OAuth1InvalidToken,
            "Invalid token",
        ));
    }
    sqlx::query(
        "INSERT INTO access_tokens (token_key, token_secret, consumer_id, user_id, created_at, last_used_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&token.key)
    .bind(&token.secret)
    .bind(&token.consumer_id)
    .bind(&token.user_id)
    .bind(now)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(token)
}

pub(crate) async fn access_token(
    state: &SiteState,
    key: &str,
) -> Result<Option<AccessToken>, SiteError> {
    let row = sqlx::query(
        "SELECT token_key, token_secret, consumer_id, user_id, last_used_at FROM access_tokens WHERE token_key = $1",
    )
    .bind(key)
    .fetch_optional(state.db())
    .await?;
    row.map(|row| {
        Ok(AccessToken {
            key: row.try_get("token_key")?,
            secret: row.try_get("token_secret")?,
            consumer_id: row.try_get("consumer_id")?,
            user_id: row.try_get("user_id")?,
            last_used_at: row.try_get("last_used_at")?,
        })
    })
    .transpose()
}

/// Records use of an access token, at most once a minute so signed reads do not each cost a write.
pub(crate) async fn touch_access_token(
    state: &SiteState,
    token: &AccessToken,
) -> Result<(), SiteError> {
    let now = state.now();
    if now - token.last_used_at < 60 {
        return Ok(());
    }
    sqlx::query("UPDATE access_tokens SET last_used_at = $1 WHERE token_key = $2")
        .bind(now)
        .bind(&token.key)
        .execute(state.db())
        .await?;
    Ok(())
}
