//! The storage behind the management pages: portable SQL (SQLite and PostgreSQL through sqlx `Any`).

use authbroker_store::sqlx::{self, Row, any::AnyRow};

use crate::error::SiteError;
use crate::oauth1::consumers::{self, Consumer, SECRET_LEN};
use crate::state::SiteState;

/// One application a user connected, however many access tokens they granted it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ConnectedApp {
    pub(super) consumer_id: String,
    pub(super) name: String,
    pub(super) description: String,
    pub(super) broker_id: Option<String>,
    pub(super) status: String,
    /// When the first of the user's tokens for the app was issued.
    pub(super) connected_at: i64,
    /// The latest use of any of them.
    pub(super) last_used_at: i64,
}

/// The user's access tokens grouped per application, by name.
pub(super) async fn connected_apps(
    state: &SiteState,
    user_id: &str,
) -> Result<Vec<ConnectedApp>, SiteError> {
    let rows = sqlx::query(
        "SELECT c.id AS id, c.name AS name, c.description AS description, c.broker_id AS broker_id, \
                c.status AS status, MIN(t.created_at) AS connected_at, MAX(t.last_used_at) AS last_used_at \
         FROM access_tokens t JOIN consumers c ON c.id = t.consumer_id \
         WHERE t.user_id = $1 \
         GROUP BY c.id, c.name, c.description, c.broker_id, c.status \
         ORDER BY c.name, c.id",
    )
    .bind(user_id)
    .fetch_all(state.db())
    .await?;
    rows.iter()
        .map(|row| {
            Ok(ConnectedApp {
                consumer_id: row.try_get("id")?,
                name: row.try_get("name")?,
                description: row.try_get("description")?,
                broker_id: row.try_get("broker_id")?,
                status: row.try_get("status")?,
                connected_at: row.try_get("connected_at")?,
                last_used_at: row.try_get("last_used_at")?,
            })
        })
        .collect()
}

/// Disconnects an application from a user: deletes every access token the user granted it, and the request
/// tokens the user approved that the app has not exchanged yet (else the app could still turn one into a
/// fresh access token). Returns how many access tokens went.
pub(super) async fn revoke(
    state: &SiteState,
    user_id: &str,
    consumer_id: &str,
) -> Result<u64, SiteError> {
    let mut tx = state.db().begin().await?;
    let deleted = sqlx::query("DELETE FROM access_tokens WHERE user_id = $1 AND consumer_id = $2")
        .bind(user_id)
        .bind(consumer_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    sqlx::query("DELETE FROM request_tokens WHERE user_id = $1 AND consumer_id = $2")
        .bind(user_id)
        .bind(consumer_id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(deleted)
}

/// A consumer as the Applications list shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Application {
    pub(super) consumer: Consumer,
    pub(super) created_at: i64,
    /// How many distinct users hold an access token for it.
    pub(super) users: i64,
}

const APPLICATION_COLUMNS: &str = "created_at, \
    (SELECT COUNT(DISTINCT t.user_id) FROM access_tokens t WHERE t.consumer_id = consumers.id) AS users";

fn application_from_row(row: &AnyRow) -> Result<Application, SiteError> {
    Ok(Application {
        consumer: consumers::from_row(row)?,
        created_at: row.try_get("created_at")?,
        users: row.try_get("users")?,
    })
}

/// Every consumer, newest first.
pub(super) async fn applications(state: &SiteState) -> Result<Vec<Application>, SiteError> {
    sqlx::query(&format!(
        "SELECT {}, {APPLICATION_COLUMNS} FROM consumers ORDER BY created_at DESC, id",
        consumers::COLUMNS
    ))
    .fetch_all(state.db())
    .await?
    .iter()
    .map(application_from_row)
    .collect()
}

/// One consumer, whatever its status.
pub(super) async fn application(
    state: &SiteState,
    id: &str,
) -> Result<Option<Application>, SiteError> {
    sqlx::query(&format!(
        "SELECT {}, {APPLICATION_COLUMNS} FROM consumers WHERE id = $1",
        consumers::COLUMNS
    ))
    .bind(id)
    .fetch_optional(state.db())
    .await?
    .as_ref()
    .map(application_from_row)
    .transpose()
}

/// Gives the consumer a fresh secret; returns whether it exists.
pub(super) async fn regenerate_secret(state: &SiteState, id: &str) -> Result<bool, SiteError> {
    let updated = sqlx::query("UPDATE consumers SET consumer_secret = $1 WHERE id = $2")
        .bind(crate::random::alnum(SECRET_LEN))
        .bind(id)
        .execute(state.db())
        .await?
        .rows_affected();
    Ok(updated == 1)
}

/// Moves the consumer from status `from` to `to`; returns whether it was in `from`. Only `active` ⇄
/// `blocked`: a `pending` consumer (credentials awaiting the broker's verification) is never activated here.
pub(super) async fn set_status(
    state: &SiteState,
    id: &str,
    from: &str,
    to: &str,
) -> Result<bool, SiteError> {
    let updated = sqlx::query("UPDATE consumers SET status = $1 WHERE id = $2 AND status = $3")
        .bind(to)
        .bind(id)
        .bind(from)
        .execute(state.db())
        .await?
        .rows_affected();
    Ok(updated == 1)
}

/// Deletes the consumer and every token issued to it; returns whether it existed.
pub(super) async fn delete_application(state: &SiteState, id: &str) -> Result<bool, SiteError> {
    let mut tx = state.db().begin().await?;
    // The foreign keys cascade too; deleting explicitly keeps that true whatever the connection settings.
    for table in ["access_tokens", "request_tokens"] {
        sqlx::query(&format!("DELETE FROM {table} WHERE consumer_id = $1"))
            .bind(id)
            .execute(&mut *tx)
            .await?;
    }
    let deleted = sqlx::query("DELETE FROM consumers WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    tx.commit().await?;
    Ok(deleted == 1)
}

/// A broker this site trusts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct KnownBroker {
    pub(super) broker_id: String,
    pub(super) verification_url: String,
    pub(super) added_at: i64,
}

pub(super) async fn known_brokers(state: &SiteState) -> Result<Vec<KnownBroker>, SiteError> {
    sqlx::query(
        "SELECT broker_id, verification_url, added_at FROM known_brokers ORDER BY broker_id",
    )
    .fetch_all(state.db())
    .await?
    .iter()
    .map(|row| {
        Ok(KnownBroker {
            broker_id: row.try_get("broker_id")?,
            verification_url: row.try_get("verification_url")?,
            added_at: row.try_get("added_at")?,
        })
    })
    .collect()
}

/// Adds a broker; returns `false` when one with this ID is already known.
pub(super) async fn add_broker(
    state: &SiteState,
    broker_id: &str,
    verification_url: &str,
) -> Result<bool, SiteError> {
    let inserted = sqlx::query(
        "INSERT INTO known_brokers (broker_id, verification_url, added_at) VALUES ($1, $2, $3) \
         ON CONFLICT (broker_id) DO NOTHING",
    )
    .bind(broker_id)
    .bind(verification_url)
    .bind(state.now())
    .execute(state.db())
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

/// Forgets a broker. Its allow/deny rules stay, so that adding it again does not re-admit a denied app.
pub(super) async fn remove_broker(state: &SiteState, broker_id: &str) -> Result<bool, SiteError> {
    let deleted = sqlx::query("DELETE FROM known_brokers WHERE broker_id = $1")
        .bind(broker_id)
        .execute(state.db())
        .await?
        .rows_affected();
    Ok(deleted == 1)
}

/// An allow/deny rule for one app of one broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ClientRule {
    pub(super) broker_id: String,
    pub(super) client_id: String,
    pub(super) rule: String,
}

pub(super) async fn client_rules(state: &SiteState) -> Result<Vec<ClientRule>, SiteError> {
    sqlx::query("SELECT broker_id, client_id, rule FROM client_rules ORDER BY broker_id, client_id")
        .fetch_all(state.db())
        .await?
        .iter()
        .map(|row| {
            Ok(ClientRule {
                broker_id: row.try_get("broker_id")?,
                client_id: row.try_get("client_id")?,
                rule: row.try_get("rule")?,
            })
        })
        .collect()
}

/// The rule for one app of one broker, if any.
pub(super) async fn client_rule(
    state: &SiteState,
    broker_id: &str,
    client_id: &str,
) -> Result<Option<String>, SiteError> {
    Ok(
        sqlx::query("SELECT rule FROM client_rules WHERE broker_id = $1 AND client_id = $2")
            .bind(broker_id)
            .bind(client_id)
            .fetch_optional(state.db())
            .await?
            .map(|row| row.try_get("rule"))
            .transpose()?,
    )
}

/// Sets (`allow` or `deny`) the rule for one app of one broker, replacing any earlier one.
pub(super) async fn set_client_rule(
    state: &SiteState,
    broker_id: &str,
    client_id: &str,
    rule: &str,
) -> Result<(), SiteError> {
    sqlx::query(
        "INSERT INTO client_rules (broker_id, client_id, rule) VALUES ($1, $2, $3) \
         ON CONFLICT (broker_id, client_id) DO UPDATE SET rule = excluded.rule",
    )
    .bind(broker_id)
    .bind(client_id)
    .bind(rule)
    .execute(state.db())
    .await?;
    Ok(())
}

/// Removes the rule for one app of one broker; returns whether there was one.
pub(super) async fn remove_client_rule(
    state: &SiteState,
    broker_id: &str,
    client_id: &str,
) -> Result<bool, SiteError> {
    let deleted = sqlx::query("DELETE FROM client_rules WHERE broker_id = $1 AND client_id = $2")
        .bind(broker_id)
        .bind(client_id)
        .execute(state.db())
        .await?
        .rows_affected();
    Ok(deleted == 1)
}
