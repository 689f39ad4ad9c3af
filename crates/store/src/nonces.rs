//! The OAuth 1.0a nonce store both services use: a table keyed by (consumer, token, timestamp, nonce),
//! shared by every node and kept across restarts, pruned once a nonce's timestamp has left the window.
//!
//! Each service creates the same table in its own migrations:
//! `oauth1_nonces (consumer_key, token, ts, nonce, expires_at)` with that primary key and an index on
//! `expires_at` (a test here keeps the two migrations and this module in step). So nothing but the pool
//! differs between the site's writer and the broker's.
//!
//! Writes are batched by one writer task per service ([`NonceWriter`]): every request hands its nonce to
//! the writer and waits; the writer takes whatever has queued up (up to [`MAX_BATCH`]) and inserts it with
//! `INSERT … ON CONFLICT DO NOTHING … RETURNING` — one statement, or one transaction when the batch is split
//! into several statements — so concurrent requests share one commit instead of queueing for SQLite's single
//! writer one by one. A request is accepted only once the commit that inserted *its* row has succeeded:
//!
//! * its row was returned by the insert → accepted;
//! * its row was not returned (it was already in the table, written earlier by this or another node) →
//!   refused as a replay ([`NonceError::AlreadyUsed`]);
//! * the same key twice in one batch → the first is inserted as above, the others are refused as replays;
//! * the insert or the commit failed, or the writer is gone → every request of the batch is refused with
//!   [`NonceError::Unavailable`]: a nonce that may not have been recorded never admits a request.
//!
//! The primary key keeps the check atomic across connections and nodes; batching changes only how many
//! rows one commit carries. This crate does not depend on `authbroker-oauth1`: services map
//! [`NonceError`] onto its `VerifyError` (a replay is `json_oauth1_nonce_already_used`, 401; a store that
//! cannot answer is 503).

use std::collections::HashMap;
use std::fmt;

use sqlx::{AnyConnection, AnyPool, Connection, Row};
use tokio::sync::{mpsc, oneshot};

use crate::Error;
pub use crate::batch::MAX_BATCH;
use crate::batch::{CHUNKS, HeldConnection, split};

/// How many requests may wait for the writer before new ones wait to be queued.
const QUEUE: usize = 4 * MAX_BATCH;

/// A nonce's identity, as RFC 5849 §3.3 defines it (the fields of `authbroker_oauth1::NonceKey`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NonceKey<'a> {
    pub consumer_key: &'a str,
    /// The token, or `""` for requests without one.
    pub token: &'a str,
    pub timestamp: i64,
    pub nonce: &'a str,
}

impl<'a> From<authbroker_oauth1::NonceKey<'a>> for NonceKey<'a> {
    fn from(key: authbroker_oauth1::NonceKey<'a>) -> Self {
        Self {
            consumer_key: key.consumer_key,
            token: key.token,
            timestamp: key.timestamp,
            nonce: key.nonce,
        }
    }
}

/// Why a nonce was not recorded; the request carrying it must be refused either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceError {
    /// The nonce is in the table already: a replay.
    AlreadyUsed,
    /// The nonce cannot be known to be committed (the database failed, or the writer stopped).
    Unavailable,
}

/// The verifier's view of the outcome: a replay is `json_oauth1_nonce_already_used` (401), a store that
/// cannot answer refuses the request (503).
impl From<NonceError> for authbroker_oauth1::VerifyError {
    fn from(err: NonceError) -> Self {
        match err {
            NonceError::AlreadyUsed => Self::NonceAlreadyUsed,
            NonceError::Unavailable => Self::NonceStoreUnavailable,
        }
    }
}

impl fmt::Display for NonceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::AlreadyUsed => f.write_str("the nonce has already been used"),
            Self::Unavailable => f.write_str("the nonce store is unavailable"),
        }
    }
}

impl std::error::Error for NonceError {}

/// The handle requests use to record nonces; owned by the service's state and shared by reference. The
/// writer task stops when the handle is dropped.
#[derive(Debug)]
pub struct NonceWriter {
    queue: mpsc::Sender<Pending>,
}

#[derive(Debug)]
struct Pending {
    row: NonceRow,
    reply: oneshot::Sender<Outcome>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct NonceRow {
    consumer_key: String,
    token: String,
    ts: i64,
    nonce: String,
    expires_at: i64,
}

impl NonceRow {
    fn key(&self) -> (&str, &str, i64, &str) {
        (&self.consumer_key, &self.token, self.ts, &self.nonce)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Recorded,
    AlreadyUsed,
    Unavailable,
}

impl NonceWriter {
    /// Starts the writer task on the current runtime. It writes to `oauth1_nonces` through `pool`.
    pub fn spawn(pool: AnyPool) -> Self {
        let (queue, receiver) = mpsc::channel(QUEUE);
        tokio::spawn(write_batches(pool, receiver));
        Self { queue }
    }

    /// Records the nonce until `expires_at` (unix seconds), once the batch holding it is committed.
    /// `Err(AlreadyUsed)` for a replay, `Err(Unavailable)` whenever the row cannot be known to be committed.
    pub async fn record(&self, key: NonceKey<'_>, expires_at: i64) -> Result<(), NonceError> {
        let (reply, outcome) = oneshot::channel();
        let pending = Pending {
            row: NonceRow {
                consumer_key: key.consumer_key.to_owned(),
                token: key.token.to_owned(),
                ts: key.timestamp,
                nonce: key.nonce.to_owned(),
                expires_at,
            },
            reply,
        };
        if self.queue.send(pending).await.is_err() {
            tracing::error!("nonce writer stopped");
            return Err(NonceError::Unavailable);
        }
        // A dropped reply (the writer panicked or stopped mid-batch) is as good as a failed commit.
        match outcome.await.unwrap_or(Outcome::Unavailable) {
            Outcome::Recorded => Ok(()),
            Outcome::AlreadyUsed => Err(NonceError::AlreadyUsed),
            Outcome::Unavailable => Err(NonceError::Unavailable),
        }
    }
}

/// Deletes the nonces that expired before `now`: a replay of one of them is refused for its timestamp
/// anyway. Returns how many were deleted.
pub async fn prune(pool: &AnyPool, now: i64) -> Result<u64, Error> {
    Ok(
        sqlx::query("DELETE FROM oauth1_nonces WHERE expires_at < $1")
            .bind(now)
            .execute(pool)
            .await?
            .rows_affected(),
    )
}

/// The writer: takes what has queued up, inserts it, answers every waiting request; stops when every
/// handle is gone.
async fn write_batches(pool: AnyPool, mut receiver: mpsc::Receiver<Pending>) {
    let statements: Vec<(usize, String)> = CHUNKS.iter().map(|&n| (n, insert_sql(n))).collect();
    let mut connection = HeldConnection::new(pool);
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while connection
        .next_batch(&mut receiver, &mut batch, MAX_BATCH)
        .await
        > 0
    {
        let rows: Vec<&NonceRow> = batch.iter().map(|p| &p.row).collect();
        tracing::trace!(rows = rows.len(), "nonce batch");
        let result = match connection.get().await {
            Ok(conn) => insert(conn, &statements, &rows).await,
            Err(err) => Err(err),
        };
        let outcomes = match result {
            Ok(outcomes) => outcomes,
            Err(err) => {
                tracing::error!(%err, rows = rows.len(), "nonce store unavailable");
                connection.release();
                vec![Outcome::Unavailable; rows.len()]
            }
        };
        for (pending, outcome) in batch.drain(..).zip(outcomes) {
            // The request may have gone away (client disconnected); its nonce stays recorded.
            let _ = pending.reply.send(outcome);
        }
    }
}

/// `INSERT … VALUES (…), (…) ON CONFLICT DO NOTHING RETURNING` the key of each row actually inserted.
fn insert_sql(rows: usize) -> String {
    let mut sql = String::from(
        "INSERT INTO oauth1_nonces (consumer_key, token, ts, nonce, expires_at) VALUES ",
    );
    for row in 0..rows {
        if row > 0 {
            sql.push_str(", ");
        }
        let p = row * 5;
        sql.push_str(&format!(
            "(${}, ${}, ${}, ${}, ${})",
            p + 1,
            p + 2,
            p + 3,
            p + 4,
            p + 5
        ));
    }
    sql.push_str(" ON CONFLICT DO NOTHING RETURNING consumer_key, token, ts, nonce");
    sql
}

/// Inserts `rows` and says, for each, whether it was inserted by this commit. All or nothing: an error
/// means nothing may be taken as recorded.
async fn insert(
    conn: &mut AnyConnection,
    statements: &[(usize, String)],
    rows: &[&NonceRow],
) -> Result<Vec<Outcome>, Error> {
    // The first occurrence of each key goes to the database; repeats within the batch are replays of it.
    let mut first: HashMap<(&str, &str, i64, &str), usize> = HashMap::with_capacity(rows.len());
    let mut unique: Vec<&NonceRow> = Vec::with_capacity(rows.len());
    for (i, row) in rows.iter().enumerate() {
        first.entry(row.key()).or_insert_with(|| {
            unique.push(row);
            i
        });
    }
    let chunks = split(unique.len());
    let mut inserted: Vec<(String, String, i64, String)> = Vec::with_capacity(unique.len());
    if let [n] = chunks[..] {
        inserted.extend(run_chunk(&mut *conn, statement(statements, n), &unique).await?);
    } else {
        let mut tx = conn.begin().await?;
        let mut rest = unique.as_slice();
        for n in chunks {
            let (chunk, tail) = rest.split_at(n);
            rest = tail;
            inserted.extend(run_chunk(&mut *tx, statement(statements, n), chunk).await?);
        }
        tx.commit().await?;
    }
    let mut outcomes = vec![Outcome::AlreadyUsed; rows.len()];
    for (consumer_key, token, ts, nonce) in &inserted {
        if let Some(&i) = first.get(&(consumer_key.as_str(), token.as_str(), *ts, nonce.as_str())) {
            outcomes[i] = Outcome::Recorded;
        }
    }
    Ok(outcomes)
}

fn statement(statements: &[(usize, String)], rows: usize) -> &str {
    statements
        .iter()
        .find(|(n, _)| *n == rows)
        .map_or("", |(_, sql)| sql.as_str())
}

async fn run_chunk<'e, E>(
    executor: E,
    sql: &str,
    rows: &[&NonceRow],
) -> Result<Vec<(String, String, i64, String)>, Error>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    let mut query = sqlx::query(sql);
    for row in rows {
        query = query
            .bind(row.consumer_key.as_str())
            .bind(row.token.as_str())
            .bind(row.ts)
            .bind(row.nonce.as_str())
            .bind(row.expires_at);
    }
    query
        .fetch_all(executor)
        .await?
        .iter()
        .map(|row| {
            Ok((
                row.try_get("consumer_key")?,
                row.try_get("token")?,
                row.try_get("ts")?,
                row.try_get("nonce")?,
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Store, testing};

    /// The table as both services' migrations create it (`nonce_table_matches_the_services_migrations`).
    const TABLE: &str = "CREATE TABLE oauth1_nonces (
    consumer_key TEXT NOT NULL,
    token        TEXT NOT NULL,
    ts           BIGINT NOT NULL,
    nonce        TEXT NOT NULL,
    expires_at   BIGINT NOT NULL,
    PRIMARY KEY (consumer_key, token, ts, nonce)
)";
    const INDEX: &str = "CREATE INDEX oauth1_nonces_expiry ON oauth1_nonces (expires_at)";

    const SERVICE_MIGRATIONS: [(&str, &str); 2] = [
        (
            "site",
            include_str!("../../../migrations/site/0001_init.sql"),
        ),
        (
            "broker",
            include_str!("../../../migrations/broker/0001_init.sql"),
        ),
    ];

    fn normalized(sql: &str) -> String {
        sql.split_whitespace().collect::<Vec<_>>().join(" ")
    }

    #[test]
    fn nonce_table_matches_the_services_migrations() {
        for (service, sql) in SERVICE_MIGRATIONS {
            let statements: Vec<String> = crate::statements(sql).map(normalized).collect();
            for wanted in [TABLE, INDEX] {
                assert!(
                    statements.contains(&normalized(wanted)),
                    "the {service} migration does not create `{wanted}`: the nonce writer needs it as is"
                );
            }
        }
    }

    #[test]
    fn inserts_bind_five_parameters_per_row() {
        assert!(insert_sql(1).contains("($1, $2, $3, $4, $5) ON CONFLICT"));
        assert!(insert_sql(2).contains("($6, $7, $8, $9, $10)"));
    }

    /// A store holding the nonce table on `backend`, and what to drop afterwards.
    async fn store(postgres: bool) -> (Store, Option<(String, String)>, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("tempdir");
        let (url, pg) = if postgres {
            let server = testing::postgres_url().expect(
                "AUTHBROKER_TEST_DATABASE_URL must name the test PostgreSQL (scripts/test sets it)",
            );
            let url = testing::create_postgres_database(&server)
                .await
                .expect("create database");
            (url.clone(), Some((server, url)))
        } else {
            (testing::sqlite_url(dir.path()), None)
        };
        let store = Store::connect(&url).await.expect("connect");
        for statement in [TABLE, INDEX] {
            sqlx::query(statement)
                .execute(store.pool())
                .await
                .expect("create the nonce table");
        }
        (store, pg, dir)
    }

    async fn cleanup(store: Store, pg: Option<(String, String)>) {
        store.pool().close().await;
        if let Some((server, url)) = pg {
            let _ = testing::drop_postgres_database(&server, &url).await;
        }
    }

    fn key(nonce: &str) -> NonceKey<'_> {
        NonceKey {
            consumer_key: "ck",
            token: "tk",
            timestamp: 1_700_000_000,
            nonce,
        }
    }

    async fn count(store: &Store) -> i64 {
        sqlx::query("SELECT COUNT(*) AS n FROM oauth1_nonces")
            .fetch_one(store.pool())
            .await
            .expect("count")
            .try_get("n")
            .expect("n")
    }

    async fn concurrent_duplicates_are_accepted_once(postgres: bool) {
        let (store, pg, _dir) = store(postgres).await;
        let writer = std::sync::Arc::new(NonceWriter::spawn(store.pool().clone()));
        // 50 requests with the same nonce and 50 with distinct ones, all in flight at once.
        let tasks: Vec<_> = (0..100)
            .map(|i| {
                let writer = writer.clone();
                tokio::spawn(async move {
                    let nonce = if i % 2 == 0 {
                        "same".to_owned()
                    } else {
                        format!("n{i}")
                    };
                    (i, writer.record(key(&nonce), 1_700_000_600).await)
                })
            })
            .collect();
        let mut same_accepted = 0;
        for task in tasks {
            let (i, result) = task.await.expect("task");
            match result {
                Ok(()) if i % 2 == 0 => same_accepted += 1,
                Ok(()) => {}
                Err(NonceError::AlreadyUsed) => {
                    assert_eq!(i % 2, 0, "a distinct nonce was refused")
                }
                Err(other) => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(same_accepted, 1);
        // A later replay of either kind is refused; the rows are in the table.
        assert_eq!(
            writer.record(key("same"), 1_700_000_600).await,
            Err(NonceError::AlreadyUsed)
        );
        assert_eq!(
            writer.record(key("n1"), 1_700_000_600).await,
            Err(NonceError::AlreadyUsed)
        );
        assert_eq!(count(&store).await, 51);
        drop(writer);
        cleanup(store, pg).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_duplicates_are_accepted_once_sqlite() {
        concurrent_duplicates_are_accepted_once(false).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_duplicates_are_accepted_once_postgres() {
        concurrent_duplicates_are_accepted_once(true).await;
    }

    /// A nonce already committed by another writer (another node, or before a restart) is a replay.
    async fn nonces_written_elsewhere_are_replays(postgres: bool) {
        let (store, pg, _dir) = store(postgres).await;
        let first = NonceWriter::spawn(store.pool().clone());
        first.record(key("x"), 1_700_000_600).await.expect("first");
        drop(first);
        let second = NonceWriter::spawn(store.pool().clone());
        assert_eq!(
            second.record(key("x"), 1_700_000_600).await,
            Err(NonceError::AlreadyUsed)
        );
        // The same nonce with another token, timestamp or consumer is another nonce.
        for other in [
            NonceKey {
                token: "",
                ..key("x")
            },
            NonceKey {
                timestamp: 1_700_000_001,
                ..key("x")
            },
            NonceKey {
                consumer_key: "ck2",
                ..key("x")
            },
        ] {
            second
                .record(other, 1_700_000_600)
                .await
                .expect("a distinct key");
        }
        drop(second);
        cleanup(store, pg).await;
    }

    #[tokio::test]
    async fn nonces_written_elsewhere_are_replays_sqlite() {
        nonces_written_elsewhere_are_replays(false).await;
    }

    #[tokio::test]
    async fn nonces_written_elsewhere_are_replays_postgres() {
        nonces_written_elsewhere_are_replays(true).await;
    }

    /// When the store fails, every request waiting on the batch is refused as unavailable — none is
    /// accepted.
    async fn a_store_failure_refuses_every_waiting_request(postgres: bool) {
        let (store, pg, _dir) = store(postgres).await;
        sqlx::query("DROP TABLE oauth1_nonces")
            .execute(store.pool())
            .await
            .expect("drop");
        let writer = std::sync::Arc::new(NonceWriter::spawn(store.pool().clone()));
        let tasks: Vec<_> = (0..40)
            .map(|i| {
                let writer = writer.clone();
                tokio::spawn(async move {
                    let nonce = format!("n{}", i % 30);
                    writer.record(key(&nonce), 1_700_000_600).await
                })
            })
            .collect();
        for task in tasks {
            let result = task.await.expect("task");
            assert_eq!(
                result,
                Err(NonceError::Unavailable),
                "accepted or refused as a replay without a recorded nonce"
            );
        }
        drop(writer);
        cleanup(store, pg).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_store_failure_refuses_every_waiting_request_sqlite() {
        a_store_failure_refuses_every_waiting_request(false).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_store_failure_refuses_every_waiting_request_postgres() {
        a_store_failure_refuses_every_waiting_request(true).await;
    }

    /// A batch larger than one statement goes in one transaction; duplicates inside it and rows already
    /// in the table are replays, everything else is recorded.
    async fn a_large_batch_is_one_transaction(postgres: bool) {
        let (store, pg, _dir) = store(postgres).await;
        let statements: Vec<(usize, String)> = CHUNKS.iter().map(|&n| (n, insert_sql(n))).collect();
        let row = |nonce: String| NonceRow {
            consumer_key: "ck".into(),
            token: "tk".into(),
            ts: 1_700_000_000,
            nonce,
            expires_at: 1_700_000_600,
        };
        let earlier = [row("n7".into())];
        let earlier: Vec<&NonceRow> = earlier.iter().collect();
        let mut conn = store.pool().acquire().await.expect("acquire");
        insert(&mut conn, &statements, &earlier)
            .await
            .expect("earlier");
        // 0..200 plus repeats of 0..50: 250 rows, 200 unique (> 128, so several statements).
        let rows: Vec<NonceRow> = (0..200)
            .chain(0..50)
            .map(|i| row(format!("n{i}")))
            .collect();
        let refs: Vec<&NonceRow> = rows.iter().collect();
        let outcomes = insert(&mut conn, &statements, &refs).await.expect("batch");
        drop(conn);
        for (i, outcome) in outcomes.iter().enumerate() {
            let expected = if i >= 200 || i == 7 {
                Outcome::AlreadyUsed
            } else {
                Outcome::Recorded
            };
            assert_eq!(*outcome, expected, "row {i}");
        }
        assert_eq!(count(&store).await, 200);
        cleanup(store, pg).await;
    }

    #[tokio::test]
    async fn a_large_batch_is_one_transaction_sqlite() {
        a_large_batch_is_one_transaction(false).await;
    }

    #[tokio::test]
    async fn a_large_batch_is_one_transaction_postgres() {
        a_large_batch_is_one_transaction(true).await;
    }

    /// The writer keeps a connection between batches, but closing the pool does not wait for it; after
    /// the close every request is refused.
    async fn closing_the_pool_is_not_held_up(postgres: bool) {
        let (store, pg, _dir) = store(postgres).await;
        let writer = NonceWriter::spawn(store.pool().clone());
        writer
            .record(key("x"), 1_700_000_600)
            .await
            .expect("recorded");
        tokio::time::timeout(std::time::Duration::from_secs(10), store.pool().close())
            .await
            .expect("the pool closed while the writer was idle");
        let after = writer.record(key("y"), 1_700_000_600).await;
        assert_eq!(after, Err(NonceError::Unavailable));
        cleanup(store, pg).await;
    }

    #[tokio::test]
    async fn closing_the_pool_is_not_held_up_sqlite() {
        closing_the_pool_is_not_held_up(false).await;
    }

    #[tokio::test]
    async fn closing_the_pool_is_not_held_up_postgres() {
        closing_the_pool_is_not_held_up(true).await;
    }

    /// Pruning deletes the nonces that expired before now and keeps the rest.
    async fn expired_nonces_are_pruned(postgres: bool) {
        let (store, pg, _dir) = store(postgres).await;
        let writer = NonceWriter::spawn(store.pool().clone());
        writer.record(key("old"), 1_700_000_000).await.expect("old");
        writer
            .record(key("fresh"), 1_700_000_900)
            .await
            .expect("fresh");
        assert_eq!(prune(store.pool(), 1_700_000_001).await.expect("prune"), 1);
        assert_eq!(count(&store).await, 1);
        assert_eq!(
            writer.record(key("fresh"), 1_700_000_900).await,
            Err(NonceError::AlreadyUsed)
        );
        drop(writer);
        cleanup(store, pg).await;
    }

    #[tokio::test]
    async fn expired_nonces_are_pruned_sqlite() {
        expired_nonces_are_pruned(false).await;
    }

    #[tokio::test]
    async fn expired_nonces_are_pruned_postgres() {
        expired_nonces_are_pruned(true).await;
    }
}
