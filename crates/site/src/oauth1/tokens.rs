//! Request tokens (24 h, bound to their consumer) and access tokens.

use std::collections::HashMap;

use authbroker_store::batch::{CHUNKS, HeldConnection, MAX_BATCH, split};
use authbroker_store::sqlx::{self, AnyConnection, AnyPool, Row, any::AnyRow};
use tokio::sync::{mpsc, oneshot};

use super::consumers::Consumer;
use crate::accounts::{Role, User};
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

/// An access token with its consumer and its user: everything a signed REST call needs, read together.
#[derive(Debug, Clone)]
pub(crate) struct AccessGrant {
    pub(crate) token: AccessToken,
    pub(crate) consumer: Consumer,
    pub(crate) user: User,
}

/// The access token `key` joined with its consumer and user, read from the database now (through the
/// site's [`GrantReader`], together with the lookups of concurrent requests). `None` when any of the three is
/// missing; the caller checks the consumer's key and status.
pub(crate) async fn access_grant(
    state: &SiteState,
    key: &str,
) -> Result<Option<AccessGrant>, SiteError> {
    state.grant_reader().lookup(key).await
}

/// Reads access grants for concurrent requests together: one reader task takes every lookup that queued up
/// while the previous read ran and answers them with one `… WHERE token_key IN (…)` query per chunk.
///
/// Nothing is cached: each lookup is answered by a query that started after the lookup was made, so a
/// token revoked, a consumer blocked or a secret regenerated (once committed) is seen by the next request,
/// on this node and every other. What batching saves is the per-query cost of the SQLite driver (a round
/// trip to the connection's worker thread for the query and another for the pool's check on release),
/// paid once per batch instead of once per request.
#[derive(Debug)]
pub(crate) struct GrantReader {
    queue: mpsc::Sender<Lookup>,
}

type LookupReply = Result<Option<AccessGrant>, String>;

#[derive(Debug)]
struct Lookup {
    key: String,
    reply: oneshot::Sender<LookupReply>,
}

impl GrantReader {
    /// Starts the reader task on the current runtime; it stops when the handle is dropped.
    pub(crate) fn spawn(pool: AnyPool) -> Self {
        let (queue, receiver) = mpsc::channel(4 * MAX_BATCH);
        tokio::spawn(read_batches(pool, receiver));
        Self { queue }
    }

    /// The grant of the access token `key`, read by a query that starts after this call.
    pub(crate) async fn lookup(&self, key: &str) -> Result<Option<AccessGrant>, SiteError> {
        let (reply, answer) = oneshot::channel();
        let lookup = Lookup {
            key: key.to_owned(),
            reply,
        };
        if self.queue.send(lookup).await.is_err() {
            return Err(SiteError::Internal(
                "the access grant reader stopped".into(),
            ));
        }
        match answer.await {
            Ok(Ok(grant)) => Ok(grant),
            Ok(Err(err)) => Err(SiteError::Internal(err)),
            Err(_) => Err(SiteError::Internal(
                "the access grant reader dropped a lookup".into(),
            )),
        }
    }
}

async fn read_batches(pool: AnyPool, mut receiver: mpsc::Receiver<Lookup>) {
    let statements: Vec<(usize, String)> = CHUNKS.iter().map(|&n| (n, grant_sql(n))).collect();
    let mut connection = HeldConnection::new(pool);
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while connection
        .next_batch(&mut receiver, &mut batch, MAX_BATCH)
        .await
        > 0
    {
        let mut keys: Vec<&str> = batch.iter().map(|l| l.key.as_str()).collect();
        keys.sort_unstable();
        keys.dedup();
        tracing::trace!(
            lookups = batch.len(),
            keys = keys.len(),
            "access grant batch"
        );
        let result = match connection.get().await {
            Ok(conn) => read_grants(conn, &statements, &keys).await,
            Err(err) => Err(err.into()),
        };
        match result {
            Ok(grants) => {
                for lookup in batch.drain(..) {
                    let grant = grants.get(lookup.key.as_str()).cloned();
                    let _ = lookup.reply.send(Ok(grant));
                }
            }
            Err(err) => {
                connection.release();
                let message = match err {
                    SiteError::Internal(detail) => detail,
                    other => other.to_string(),
                };
                for lookup in batch.drain(..) {
                    let _ = lookup.reply.send(Err(message.clone()));
                }
            }
        }
    }
}

/// The grants of `keys` (distinct), by token key.
async fn read_grants(
    conn: &mut AnyConnection,
    statements: &[(usize, String)],
    keys: &[&str],
) -> Result<HashMap<String, AccessGrant>, SiteError> {
    let mut grants = HashMap::with_capacity(keys.len());
    let mut rest = keys;
    for n in split(keys.len()) {
        let (chunk, tail) = rest.split_at(n);
        rest = tail;
        let sql = statements
            .iter()
            .find(|(size, _)| *size == n)
            .map_or("", |(_, sql)| sql.as_str());
        let mut query = sqlx::query(sql);
        for key in chunk {
            query = query.bind(*key);
        }
        for row in query.fetch_all(&mut *conn).await? {
            let grant = grant_from_row(&row)?;
            grants.insert(grant.token.key.clone(), grant);
        }
    }
    Ok(grants)
}

/// The joined read for `n` token keys.
fn grant_sql(n: usize) -> String {
    let placeholders = (1..=n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ");
    format!("{ACCESS_GRANT_SELECT} WHERE t.token_key IN ({placeholders})")
}

const ACCESS_GRANT_SELECT: &str = "SELECT t.token_key, t.token_secret, t.consumer_id, t.user_id, t.last_used_at, \
     c.consumer_key, c.consumer_secret, c.name AS c_name, c.description AS c_description, \
     c.callback AS c_callback, c.broker_id, c.broker_client_id, c.details_url, c.status AS c_status, \
     u.login AS u_login, u.display_name AS u_display_name, u.email AS u_email, u.role AS u_role, \
     u.created_at AS u_created_at \
     FROM access_tokens t \
     JOIN consumers c ON c.id = t.consumer_id \
     JOIN users u ON u.id = t.user_id";

fn grant_from_row(row: &AnyRow) -> Result<AccessGrant, SiteError> {
    let token = AccessToken {
        key: row.try_get("token_key")?,
        secret: row.try_get("token_secret")?,
        consumer_id: row.try_get("consumer_id")?,
        user_id: row.try_get("user_id")?,
        last_used_at: row.try_get("last_used_at")?,
    };
    let consumer = Consumer {
        id: token.consumer_id.clone(),
        key: row.try_get("consumer_key")?,
        secret: row.try_get("consumer_secret")?,
        name: row.try_get("c_name")?,
        description: row.try_get("c_description")?,
        callback: row.try_get("c_callback")?,
        broker_id: row.try_get("broker_id")?,
        broker_client_id: row.try_get("broker_client_id")?,
        details_url: row.try_get("details_url")?,
        status: row.try_get("c_status")?,
    };
    let role: String = row.try_get("u_role")?;
    let user = User {
        id: token.user_id.clone(),
        login: row.try_get("u_login")?,
        display_name: row.try_get("u_display_name")?,
        email: row.try_get("u_email")?,
        role: Role::parse(&role)
            .ok_or_else(|| SiteError::Internal(format!("unknown role {role:?}")))?,
        created_at: row.try_get("u_created_at")?,
    };
    Ok(AccessGrant {
        token,
        consumer,
        user,
    })
}

/// Revokes one access token of `consumer_id`: it is deleted, as the Connected applications page deletes the
/// tokens it revokes, so the next request signed with it is refused as an unknown token
/// (`json_oauth1_invalid_token`), on this node and every other. Whether it was still there (a concurrent
/// revocation may have deleted it first).
pub(crate) async fn revoke_access_token(
    state: &SiteState,
    key: &str,
    consumer_id: &str,
) -> Result<bool, SiteError> {
    let deleted =
        sqlx::query("DELETE FROM access_tokens WHERE token_key = $1 AND consumer_id = $2")
            .bind(key)
            .bind(consumer_id)
            .execute(state.db())
            .await?
            .rows_affected();
    Ok(deleted > 0)
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::accounts::create_user;
    use crate::oauth1::consumers::{NewConsumer, register_consumer};
    use crate::{SiteConfig, SystemClock};

    /// A site state on SQLite or on a fresh PostgreSQL database, with one user and one consumer.
    struct Fixture {
        state: SiteState,
        user: User,
        consumer: Consumer,
        pg: Option<(String, String)>,
        _dir: tempfile::TempDir,
    }

    impl Fixture {
        async fn new(postgres: bool) -> Self {
            let dir = tempfile::tempdir().expect("tempdir");
            let mut config = SiteConfig::new("http://127.0.0.1:9");
            config.data_dir = dir.path().to_owned();
            let mut pg = None;
            if postgres {
                let server = authbroker_store::testing::postgres_url().expect(
                    "AUTHBROKER_TEST_DATABASE_URL must name the test PostgreSQL (scripts/test sets it)",
                );
                let url = authbroker_store::testing::create_postgres_database(&server)
                    .await
                    .expect("create database");
                config.database_url = Some(url.clone());
                pg = Some((server, url));
            }
            let state = SiteState::open(config, Arc::new(SystemClock))
                .await
                .expect("open");
            let user = create_user(&state, "ada", "Ada", "", "a password", Role::Author)
                .await
                .expect("user");
            let consumer = register_consumer(
                &state,
                NewConsumer {
                    name: "App",
                    description: "",
                    callback: "oob",
                },
            )
            .await
            .expect("consumer");
            Self {
                state,
                user,
                consumer,
                pg,
                _dir: dir,
            }
        }

        async fn token(&self) -> AccessToken {
            let request = create_request_token(&self.state, &self.consumer.id, None)
                .await
                .expect("request token");
            exchange(&self.state, &request, &self.user.id)
                .await
                .expect("exchange")
        }

        async fn cleanup(self) {
            if let Some((server, url)) = &self.pg {
                self.state.store().pool().close().await;
                let _ = authbroker_store::testing::drop_postgres_database(server, url).await;
            }
        }
    }

    /// Concurrent lookups (batched together) each get their own token's grant, and every lookup sees what
    /// was committed before it was made: a revoked token or a blocked consumer shows at once.
    async fn lookups_are_batched_and_never_stale(postgres: bool) {
        let f = Fixture::new(postgres).await;
        let (first, second) = (f.token().await, f.token().await);
        let reader = f.state.grant_reader();
        let keys = [first.key.as_str(), second.key.as_str(), "no-such-token"];
        let answers = lookup_all(&f.state, (0..60).map(|i| keys[i % 3].to_owned())).await;
        for (i, answer) in answers.into_iter().enumerate() {
            let grant = answer.expect("lookup");
            match i % 3 {
                2 => assert!(grant.is_none()),
                n => {
                    let grant = grant.expect("grant");
                    let expected = if n == 0 { &first } else { &second };
                    assert_eq!(grant.token.key, expected.key);
                    assert_eq!(grant.token.secret, expected.secret);
                    assert_eq!(grant.consumer, f.consumer);
                    assert_eq!(grant.user, f.user);
                }
            }
        }

        sqlx::query("DELETE FROM access_tokens WHERE token_key = $1")
            .bind(&first.key)
            .execute(f.state.db())
            .await
            .expect("revoke");
        assert!(reader.lookup(&first.key).await.expect("lookup").is_none());
        sqlx::query("UPDATE consumers SET status = 'blocked' WHERE id = $1")
            .bind(&f.consumer.id)
            .execute(f.state.db())
            .await
            .expect("block");
        let grant = reader.lookup(&second.key).await.expect("lookup");
        assert_eq!(grant.expect("grant").consumer.status, "blocked");
        f.cleanup().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn lookups_are_batched_and_never_stale_sqlite() {
        lookups_are_batched_and_never_stale(false).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn lookups_are_batched_and_never_stale_postgres() {
        lookups_are_batched_and_never_stale(true).await;
    }

    /// A failed read fails every lookup waiting on it (answered 500), none is taken as "no such token".
    async fn a_store_failure_fails_every_waiting_lookup(postgres: bool) {
        let f = Fixture::new(postgres).await;
        let token = f.token().await;
        sqlx::query("DROP TABLE access_tokens")
            .execute(f.state.db())
            .await
            .expect("drop");
        let answers = lookup_all(&f.state, (0..20).map(|_| token.key.clone())).await;
        for answer in answers {
            let err = answer.expect_err("a lookup succeeded without its table");
            assert_eq!(err.status(), 500);
        }
        f.cleanup().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_store_failure_fails_every_waiting_lookup_sqlite() {
        a_store_failure_fails_every_waiting_lookup(false).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_store_failure_fails_every_waiting_lookup_postgres() {
        a_store_failure_fails_every_waiting_lookup(true).await;
    }

    /// Looks every key up concurrently, each from its own task; the answers in order.
    async fn lookup_all(
        state: &SiteState,
        keys: impl Iterator<Item = String>,
    ) -> Vec<Result<Option<AccessGrant>, SiteError>> {
        let tasks: Vec<_> = keys
            .map(|key| {
                let state = state.clone();
                tokio::spawn(async move { state.grant_reader().lookup(&key).await })
            })
            .collect();
        let mut answers = Vec::with_capacity(tasks.len());
        for task in tasks {
            answers.push(task.await.expect("lookup task"));
        }
        answers
    }
}
