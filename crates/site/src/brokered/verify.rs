//! The verification request (R5), run in the background after the 202.
//!
//! One consumer per (broker ID, client_id), matched on **both** (the reference plugin matches on client_id
//! alone and so hands one broker's app credentials to any broker naming the same id):
//!
//! * none yet: fresh key and secret are stored `pending` (unusable for OAuth), sent to the broker's configured
//!   verification URL, and activated only by an exact 200; anything else deletes them;
//! * an active one: its existing key and secret are re-sent; a 200 updates its name, description, callback
//!   and details page, anything else leaves it exactly as it was;
//! * a pending one (a concurrent request for the same app): wait until that verification is over, then
//!   decide again;
//! * a blocked one (revoked): nothing is sent.
//!
//! Outcomes are logged; keys, secrets and verifiers never are.

use std::time::Duration;

use authbroker_store::sqlx::{self, Row};
use tokio::sync::Semaphore;

use super::request::ConnectionRequest;
use crate::error::SiteError;
use crate::oauth1::consumers::{KEY_LEN, SECRET_LEN};
use crate::state::{OUTBOUND_TIMEOUT, SiteState};

/// At most this many verification requests are in flight at once, whatever brokers send.
static IN_FLIGHT: Semaphore = Semaphore::const_new(64);

/// How often the state of a concurrent verification is checked.
const POLL: Duration = Duration::from_millis(100);

/// A pending consumer older than this was left behind by a process that stopped mid-verification.
const STALE_PENDING_SECS: i64 = 60;

/// How many times the decision is re-taken after losing a race to a concurrent request.
const ATTEMPTS: usize = 3;

/// Runs the verification in the background; the caller has already answered 202.
pub(super) fn spawn(state: SiteState, request: ConnectionRequest) {
    tokio::spawn(async move {
        let Ok(_permit) = IN_FLIGHT.acquire().await else {
            return;
        };
        if let Err(err) = run(&state, &request).await {
            tracing::error!(
                broker = %request.broker_id,
                client_id = %request.client_id,
                %err,
                "brokered connection failed"
            );
        }
    });
}

/// The consumer already held for (broker, client_id), as far as this module needs it.
#[derive(Debug)]
struct Existing {
    id: String,
    key: String,
    secret: String,
    status: String,
    created_at: i64,
}

async fn run(state: &SiteState, request: &ConnectionRequest) -> Result<(), SiteError> {
    for _ in 0..ATTEMPTS {
        match existing(state, request).await? {
            None => {
                if let Some((id, key, secret)) = insert_pending(state, request).await? {
                    return verify_new(state, request, &id, &key, &secret).await;
                }
                // A concurrent request inserted first: decide again on what it left.
            }
            Some(consumer) if consumer.status == "active" => {
                return resend(state, request, &consumer).await;
            }
            Some(consumer) if consumer.status == "pending" => {
                if consumer.created_at < state.now() - STALE_PENDING_SECS {
                    tracing::warn!(
                        broker = %request.broker_id,
                        client_id = %request.client_id,
                        consumer = %consumer.id,
                        "discarding a pending consumer left behind by an interrupted verification"
                    );
                    delete_pending(state, &consumer.id).await?;
                } else {
                    wait_while_pending(state, &consumer.id).await?;
                }
            }
            Some(consumer) => {
                tracing::warn!(
                    broker = %request.broker_id,
                    client_id = %request.client_id,
                    consumer = %consumer.id,
                    status = %consumer.status,
                    "connection request for a consumer that is not active; nothing sent"
                );
                return Ok(());
            }
        }
    }
    tracing::warn!(
        broker = %request.broker_id,
        client_id = %request.client_id,
        "connection request dropped: concurrent requests for the same application kept racing"
    );
    Ok(())
}

/// The consumer for (broker ID, client_id): both must match.
async fn existing(
    state: &SiteState,
    request: &ConnectionRequest,
) -> Result<Option<Existing>, SiteError> {
    let row = sqlx::query(
        "SELECT id, consumer_key, consumer_secret, status, created_at FROM consumers WHERE broker_id = $1 AND broker_client_id = $2",
    )
    .bind(&request.broker_id)
    .bind(&request.client_id)
    .fetch_optional(state.db())
    .await?;
    let Some(row) = row else { return Ok(None) };
    Ok(Some(Existing {
        id: row.try_get("id")?,
        key: row.try_get("consumer_key")?,
        secret: row.try_get("consumer_secret")?,
        status: row.try_get("status")?,
        created_at: row.try_get("created_at")?,
    }))
}

/// Stores fresh credentials as `pending`; `None` when a concurrent request stored its own first (the
/// UNIQUE (broker_id, broker_client_id) constraint decides).
async fn insert_pending(
    state: &SiteState,
    request: &ConnectionRequest,
) -> Result<Option<(String, String, String)>, SiteError> {
    let id = crate::random::id();
    let key = crate::random::alnum(KEY_LEN);
    let secret = crate::random::alnum(SECRET_LEN);
    let inserted = sqlx::query(
        "INSERT INTO consumers (id, consumer_key, consumer_secret, name, description, callback, broker_id, broker_client_id, details_url, status, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'pending', $10)",
    )
    .bind(&id)
    .bind(&key)
    .bind(&secret)
    .bind(&request.name)
    .bind(&request.description)
    .bind(&request.callback)
    .bind(&request.broker_id)
    .bind(&request.client_id)
    .bind(request.details_url.as_deref())
    .bind(state.now())
    .execute(state.db())
    .await;
    match inserted {
        Ok(_) => Ok(Some((id, key, secret))),
        Err(err) if authbroker_store::is_unique_violation(&err) => Ok(None),
        Err(err) => Err(err.into()),
    }
}

/// Sends fresh credentials; activates them on a 200, deletes them otherwise.
async fn verify_new(
    state: &SiteState,
    request: &ConnectionRequest,
    id: &str,
    key: &str,
    secret: &str,
) -> Result<(), SiteError> {
    match verification_request(state, request, key, secret).await {
        Outcome::Verified => {
            let activated = sqlx::query(
                "UPDATE consumers SET status = 'active' WHERE id = $1 AND status = 'pending'",
            )
            .bind(id)
            .execute(state.db())
            .await?
            .rows_affected();
            if activated == 1 {
                tracing::info!(
                    broker = %request.broker_id,
                    client_id = %request.client_id,
                    consumer = %id,
                    "broker verified the connection; consumer active"
                );
            } else {
                tracing::warn!(
                    broker = %request.broker_id,
                    client_id = %request.client_id,
                    consumer = %id,
                    "broker verified the connection but the pending consumer is gone"
                );
            }
        }
        outcome => {
            delete_pending(state, id).await?;
            tracing::warn!(
                broker = %request.broker_id,
                client_id = %request.client_id,
                consumer = %id,
                outcome = %outcome,
                "broker did not verify the connection; credentials discarded"
            );
        }
    }
    Ok(())
}

/// Re-sends an active consumer's credentials; a 200 updates what the broker says about the app.
async fn resend(
    state: &SiteState,
    request: &ConnectionRequest,
    consumer: &Existing,
) -> Result<(), SiteError> {
    match verification_request(state, request, &consumer.key, &consumer.secret).await {
        Outcome::Verified => {
            sqlx::query(
                "UPDATE consumers SET name = $1, description = $2, callback = $3, details_url = $4 WHERE id = $5 AND status = 'active'",
            )
            .bind(&request.name)
            .bind(&request.description)
            .bind(&request.callback)
            .bind(request.details_url.as_deref())
            .bind(&consumer.id)
            .execute(state.db())
            .await?;
            tracing::info!(
                broker = %request.broker_id,
                client_id = %request.client_id,
                consumer = %consumer.id,
                "broker verified the connection; existing consumer re-sent and updated"
            );
        }
        outcome => {
            tracing::warn!(
                broker = %request.broker_id,
                client_id = %request.client_id,
                consumer = %consumer.id,
                outcome = %outcome,
                "broker did not verify the re-sent credentials; consumer left unchanged"
            );
        }
    }
    Ok(())
}

async fn delete_pending(state: &SiteState, id: &str) -> Result<(), SiteError> {
    sqlx::query("DELETE FROM consumers WHERE id = $1 AND status = 'pending'")
        .bind(id)
        .execute(state.db())
        .await?;
    Ok(())
}

/// Waits (bounded by the verification timeout plus a margin) until a concurrent verification is over.
async fn wait_while_pending(state: &SiteState, id: &str) -> Result<(), SiteError> {
    let deadline = tokio::time::Instant::now() + OUTBOUND_TIMEOUT + Duration::from_secs(2);
    while tokio::time::Instant::now() < deadline {
        let status: Option<String> = sqlx::query("SELECT status FROM consumers WHERE id = $1")
            .bind(id)
            .fetch_optional(state.db())
            .await?
            .map(|row| row.try_get("status"))
            .transpose()?;
        if status.as_deref() != Some("pending") {
            return Ok(());
        }
        tokio::time::sleep(POLL).await;
    }
    Ok(())
}

/// What came of one verification request.
#[derive(Debug)]
enum Outcome {
    /// Exactly 200.
    Verified,
    /// Any other status (4xx, 5xx, a redirect, even another 2xx).
    Refused(u16),
    /// No answer: connection, TLS or timeout failure, or a URL the client may not use (plain HTTP).
    Failed(String),
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Verified => f.write_str("verified"),
            Self::Refused(status) => write!(f, "HTTP {status}"),
            Self::Failed(reason) => write!(f, "no answer: {reason}"),
        }
    }
}

/// `POST`s `verifier`, `client_id`, `client_token`, `client_secret`, form-encoded, to the verification URL
/// configured for the broker (never one from the request), through the verifying, HTTPS-only, 5 s client.
async fn verification_request(
    state: &SiteState,
    request: &ConnectionRequest,
    key: &str,
    secret: &str,
) -> Outcome {
    let form = [
        ("verifier", request.verifier.as_str()),
        ("client_id", request.client_id.as_str()),
        ("client_token", key),
        ("client_secret", secret),
    ];
    match state
        .http()
        .post(&request.verification_url)
        .form(&form)
        .send()
        .await
    {
        Ok(response) if response.status() == reqwest::StatusCode::OK => Outcome::Verified,
        Ok(response) => Outcome::Refused(response.status().as_u16()),
        Err(err) => Outcome::Failed(describe_error(&err)),
    }
}

/// A reqwest error with its causes (the TLS reason is in the source chain), without the request body.
fn describe_error(err: &reqwest::Error) -> String {
    let mut text = if err.is_timeout() {
        "timed out".to_owned()
    } else {
        err.to_string()
    };
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
