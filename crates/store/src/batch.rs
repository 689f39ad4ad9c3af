//! Plumbing for tasks that serve many requests with one query: the nonce writer ([`crate::nonces`]) and
//! the site's access grant reader.
//!
//! Such a task takes whatever has queued up (up to [`MAX_BATCH`]), runs it as a few multi-row statements
//! and answers every waiting request. Statements come in the fixed sizes of [`CHUNKS`], so a task prepares
//! at most that many distinct statements however its batches vary, and it keeps one connection between
//! batches ([`HeldConnection`]).

use std::time::{Duration, Instant};

use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, AnyPool};
use tokio::sync::mpsc;

/// A held connection idle for longer than this goes back to the pool before the next batch, which takes a
/// checked one instead: a server restart, a failover or a NAT that drops idle flows would otherwise fail the
/// first batch after a quiet spell (every request in it answered 503).
pub const IDLE_LIMIT: Duration = Duration::from_secs(30);

/// The most requests one batch carries.
pub const MAX_BATCH: usize = 256;

/// Rows per statement: a batch is split into chunks of these sizes (its binary decomposition), so that at
/// most this many distinct statements are ever prepared. 128 rows of the nonce writer are 640 parameters,
/// well inside SQLite's and PostgreSQL's limits.
pub const CHUNKS: [usize; 8] = [128, 64, 32, 16, 8, 4, 2, 1];

/// The chunk sizes whose sum is `n`, largest first.
pub fn split(mut n: usize) -> Vec<usize> {
    let mut chunks = Vec::new();
    for size in CHUNKS {
        while n >= size {
            chunks.push(size);
            n -= size;
        }
    }
    chunks
}

/// The pool connection a batching task keeps between batches, which saves the pool's acquire and its check
/// on release (a round trip to SQLite's worker thread) per batch. It goes back to the pool after a failure
/// (the pool closes it if it is broken, and the next batch takes another) and as soon as the pool is
/// closed, so that closing never waits for it, and once it has been idle for [`IDLE_LIMIT`].
#[derive(Debug)]
pub struct HeldConnection {
    pool: AnyPool,
    connection: Option<PoolConnection<Any>>,
    last_used: Instant,
    idle_limit: Duration,
}

impl HeldConnection {
    pub fn new(pool: AnyPool) -> Self {
        Self::with_idle_limit(pool, IDLE_LIMIT)
    }

    /// With another idle limit than [`IDLE_LIMIT`] (tests).
    pub fn with_idle_limit(pool: AnyPool, idle_limit: Duration) -> Self {
        Self {
            pool,
            connection: None,
            last_used: Instant::now(),
            idle_limit,
        }
    }

    /// The held connection, acquiring one if none is held. Once the pool is closed, none.
    pub async fn get(&mut self) -> Result<&mut AnyConnection, sqlx::Error> {
        if self.pool.is_closed() {
            self.connection = None;
            return Err(sqlx::Error::PoolClosed);
        }
        let now = Instant::now();
        let held = self
            .connection
            .take()
            .filter(|_| now.saturating_duration_since(self.last_used) < self.idle_limit);
        let connection = match held {
            Some(connection) => connection,
            None => self.pool.acquire().await?,
        };
        self.last_used = now;
        Ok(&mut **self.connection.insert(connection))
    }

    /// Gives the connection back to the pool (after a failure).
    pub fn release(&mut self) {
        self.connection = None;
    }

    /// Waits for the next batch (`recv_many`), giving the connection back if the pool closes meanwhile.
    /// Returns how many requests were received; 0 once every sender is gone.
    pub async fn next_batch<T>(
        &mut self,
        receiver: &mut mpsc::Receiver<T>,
        batch: &mut Vec<T>,
        limit: usize,
    ) -> usize {
        loop {
            if self.connection.is_none() {
                return receiver.recv_many(batch, limit).await;
            }
            // `recv_many` is cancel-safe: nothing is lost when the close event wins.
            tokio::select! {
                biased;
                () = self.pool.close_event() => self.connection = None,
                received = receiver.recv_many(batch, limit) => return received,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    /// A held connection whose server side died while it sat idle is not used again: the next batch gets a
    /// checked one from the pool.
    #[tokio::test]
    async fn an_idle_connection_is_not_trusted() {
        let Some(server) = crate::testing::postgres_url() else {
            panic!(
                "AUTHBROKER_TEST_DATABASE_URL must name the test PostgreSQL (scripts/test sets it)"
            );
        };
        let url = crate::testing::create_postgres_database(&server)
            .await
            .unwrap();
        let store = crate::Store::connect(&url).await.unwrap();
        let mut held =
            HeldConnection::with_idle_limit(store.pool().clone(), Duration::from_millis(100));
        let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
            .fetch_one(held.get().await.unwrap())
            .await
            .unwrap();
        // The server ends that backend (a restart, a failover, an idle timeout on the way).
        let killer = crate::Store::connect(&url).await.unwrap();
        sqlx::query("SELECT pg_terminate_backend($1)")
            .bind(pid)
            .execute(killer.pool())
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        let one: i32 = sqlx::query_scalar("SELECT 1")
            .fetch_one(held.get().await.unwrap())
            .await
            .expect("a fresh connection after the idle limit");
        assert_eq!(one, 1);
        drop(held);
        store.pool().close().await;
        killer.pool().close().await;
        let _ = crate::testing::drop_postgres_database(&server, &url).await;
    }

    #[test]
    fn batches_split_into_few_statement_shapes() {
        assert_eq!(split(0), Vec::<usize>::new());
        assert_eq!(split(1), [1]);
        assert_eq!(split(37), [32, 4, 1]);
        assert_eq!(split(MAX_BATCH), [128, 128]);
        for n in 0..=MAX_BATCH {
            let chunks = split(n);
            assert_eq!(chunks.iter().sum::<usize>(), n);
            assert!(chunks.iter().all(|c| CHUNKS.contains(c)));
        }
    }
}
