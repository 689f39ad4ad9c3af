//! Storage plumbing shared by the broker and the site.
//!
//! Both services speak one portable SQL dialect (`$1` placeholders, TEXT ids we generate, BIGINT unix
//! seconds, no AUTOINCREMENT/SERIAL) through `sqlx::Any`, so a single query string runs on the embedded SQLite
//! file that `demo` uses and on the PostgreSQL that several nodes share. This crate opens the pool with the
//! right per-backend settings, applies a service's migrations, and makes throwaway databases for tests.
//!
//! It also holds the one storage component both services need word for word: the OAuth 1.0a nonce store
//! ([`nonces`]), whose writer task batches inserts so that concurrent signed requests share a commit
//! instead of queueing for SQLite's single writer, with the batching plumbing it shares with the site's
//! access grant reader ([`batch`]). Keeping it here means replay protection behaves the same on the broker's
//! R1 as on the site's endpoints. It reports replays and outages as its own [`nonces::NonceError`]; each
//! service maps that onto the protocol's error codes, so this crate knows nothing of OAuth's wire format.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, ConnectOptions, Executor, Row};

pub use sqlx;

pub mod batch;
pub mod nonces;

/// Connections of the SQLite pool, all opened up front. Each has its own worker thread; under WAL readers
/// never wait for the writer (the service's nonce writer holds one connection while it commits a batch).
/// On a 2-core machine 6 measured best for signed REST reads (4: −3 %, 8: no better; BENCHMARKS.md).
const SQLITE_CONNECTIONS: u32 = 6;

/// Which database is behind a [`Store`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A connection pool plus the backend it talks to.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
}

/// A storage failure. Callers map it to their service's internal error; it never reaches a client verbatim.
pub type Error = sqlx::Error;

/// One migration: a version and its SQL, statements separated by a line holding only `;`.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    pub version: i64,
    pub sql: &'static str,
}

impl Store {
    /// Opens `url` (`sqlite://path` or `postgres://…`).
    ///
    /// SQLite gets WAL, `synchronous=NORMAL` (durable across process crashes, which is what a single-node site
    /// needs), a busy timeout and foreign keys; the file is created with mode 0600 because it holds OAuth
    /// shared secrets, which must stay recoverable for HMAC.
    pub async fn connect(url: &str) -> Result<Self, Error> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(Error::Configuration(
                format!("unsupported database URL {url:?}: use sqlite:// or postgres://").into(),
            ));
        };
        let pool = match backend {
            Backend::Sqlite => {
                if let Some(path) = sqlite_path(url) {
                    create_private_file(Path::new(path))?;
                }
                let options = AnyConnectOptions::from_str(url)?.disable_statement_logging();
                AnyPoolOptions::new()
                    // SQLite allows one writer; a few connections serve concurrent readers under WAL.
                    .max_connections(SQLITE_CONNECTIONS)
                    .min_connections(SQLITE_CONNECTIONS)
                    // A connection to a local file does not go stale: pinging it on every acquire (sqlx's
                    // default) only costs a round trip to its worker thread per query.
                    .test_before_acquire(false)
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            conn.execute("PRAGMA journal_mode = WAL").await?;
                            conn.execute("PRAGMA synchronous = NORMAL").await?;
                            conn.execute("PRAGMA busy_timeout = 5000").await?;
                            conn.execute("PRAGMA foreign_keys = ON").await?;
                            Ok(())
                        })
                    })
                    .connect_with(options)
                    .await?
            }
            Backend::Postgres => {
                let options = AnyConnectOptions::from_str(url)?.disable_statement_logging();
                AnyPoolOptions::new()
                    .max_connections(16)
                    .acquire_timeout(Duration::from_secs(5))
                    .connect_with(options)
                    .await?
            }
        };
        Ok(Self { pool, backend })
    }

    /// The pool, for queries.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// The backend behind the pool.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Applies every migration newer than the database's version, each in its own transaction.
    ///
    /// On PostgreSQL the whole run holds an advisory lock: nodes sharing one database may start at the same
    /// moment, and without it both would see the old version and apply the same migration (the second
    /// failing on "already exists" and aborting its start). The version is read under the lock.
    pub async fn migrate(&self, migrations: &[Migration]) -> Result<(), Error> {
        let mut connection = self.pool.acquire().await?;
        let locked = self.backend == Backend::Postgres;
        if locked {
            sqlx::query("SELECT pg_advisory_lock($1)")
                .bind(MIGRATION_LOCK)
                .execute(&mut *connection)
                .await?;
        }
        let result = apply(&mut connection, migrations).await;
        if locked {
            let unlocked = sqlx::query("SELECT pg_advisory_unlock($1)")
                .bind(MIGRATION_LOCK)
                .execute(&mut *connection)
                .await;
            if unlocked.is_err() {
                // A session lock lives as long as its connection: make sure this one is closed, not pooled.
                drop(connection.detach());
            }
        }
        result
    }
}

/// The PostgreSQL advisory lock key of migrations ("authmigr" in ASCII).
const MIGRATION_LOCK: i64 = 0x6175_7468_6d69_6772;

async fn apply(
    connection: &mut sqlx::pool::PoolConnection<sqlx::Any>,
    migrations: &[Migration],
) -> Result<(), Error> {
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)",
    )
    .execute(&mut **connection)
    .await?;
    let current: i64 = sqlx::query("SELECT COALESCE(MAX(version), 0) AS v FROM schema_migrations")
        .fetch_one(&mut **connection)
        .await?
        .try_get("v")?;
    for migration in migrations.iter().filter(|m| m.version > current) {
        let mut tx = sqlx::Connection::begin(&mut **connection).await?;
        for statement in statements(migration.sql) {
            sqlx::query(statement).execute(&mut *tx).await?;
        }
        sqlx::query("INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)")
            .bind(migration.version)
            .bind(unix_now())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
    }
    Ok(())
}

/// Whether `err` is a unique or primary-key violation (a lost race on insert).
pub fn is_unique_violation(err: &Error) -> bool {
    match err {
        Error::Database(db) => {
            matches!(db.kind(), sqlx::error::ErrorKind::UniqueViolation)
                // SQLite reports PRIMARY KEY conflicts with code 1555, UNIQUE with 2067.
                || matches!(db.code().as_deref(), Some("1555" | "2067" | "23505"))
        }
        _ => false,
    }
}

fn statements(sql: &str) -> impl Iterator<Item = &str> {
    sql.split("\n;")
        .map(|s| s.trim())
        .map(|s| s.trim_end_matches(';').trim())
        .filter(|s| {
            s.lines()
                .any(|line| !line.trim().is_empty() && !line.trim_start().starts_with("--"))
        })
}

fn sqlite_path(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or(rest);
    (!path.is_empty() && path != ":memory:").then_some(path)
}

fn create_private_file(path: &Path) -> Result<(), Error> {
    use std::fs::OpenOptions;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    let mut options = OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    options.mode(0o600);
    options.open(path)?;
    Ok(())
}

/// Seconds since the Unix epoch (for bookkeeping only; services take time from their injected clock).
fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Throwaway databases for tests, one per test so tests never depend on order.
pub mod testing {
    use super::*;

    /// The PostgreSQL server tests use, from `AUTHBROKER_TEST_DATABASE_URL` (set by `scripts/test`).
    pub fn postgres_url() -> Option<String> {
        std::env::var("AUTHBROKER_TEST_DATABASE_URL")
            .ok()
            .filter(|s| !s.is_empty())
    }

    /// A fresh SQLite file in `dir`.
    pub fn sqlite_url(dir: &Path) -> String {
        format!("sqlite://{}?mode=rwc", dir.join("test.db").display())
    }

    /// Creates an empty PostgreSQL database on the test server and returns its URL. The database is left
    /// behind (named `authbroker_t_*`); [`drop_postgres_database`] removes it.
    pub async fn create_postgres_database(server_url: &str) -> Result<String, Error> {
        use rand::Rng;
        sqlx::any::install_default_drivers();
        let name: String = format!(
            "authbroker_t_{}",
            rand::thread_rng()
                .sample_iter(rand::distributions::Alphanumeric)
                .take(16)
                .map(|b| char::from(b).to_ascii_lowercase())
                .collect::<String>()
        );
        let admin = AnyPoolOptions::new()
            .max_connections(1)
            .connect(server_url)
            .await?;
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&admin)
            .await?;
        admin.close().await;
        let (base, _) = server_url.rsplit_once('/').ok_or_else(|| {
            Error::Configuration("the test database URL has no database name".into())
        })?;
        Ok(format!("{base}/{name}"))
    }

    /// Drops a database made by [`create_postgres_database`].
    pub async fn drop_postgres_database(server_url: &str, url: &str) -> Result<(), Error> {
        let Some((_, name)) = url.rsplit_once('/') else {
            return Ok(());
        };
        let admin = AnyPoolOptions::new()
            .max_connections(1)
            .connect(server_url)
            .await?;
        sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&admin)
            .await?;
        admin.close().await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_split_on_lone_semicolons_and_skip_comments() {
        let sql = "-- comment\nCREATE TABLE a (x TEXT)\n;\n-- only a comment\n;\nCREATE TABLE b (y TEXT);\n";
        let parts: Vec<&str> = statements(sql).collect();
        assert_eq!(
            parts,
            [
                "-- comment\nCREATE TABLE a (x TEXT)",
                "CREATE TABLE b (y TEXT)"
            ]
        );
    }

    #[test]
    fn sqlite_paths_are_found() {
        assert_eq!(
            sqlite_path("sqlite:///tmp/x.db?mode=rwc"),
            Some("/tmp/x.db")
        );
        assert_eq!(sqlite_path("sqlite://data/site.db"), Some("data/site.db"));
        assert_eq!(sqlite_path("sqlite::memory:"), None);
    }

    const MIGRATIONS: &[Migration] = &[
        Migration {
            version: 1,
            sql: "CREATE TABLE t (id TEXT PRIMARY KEY, n BIGINT NOT NULL)\n;\nCREATE INDEX t_n ON t (n)",
        },
        Migration {
            version: 2,
            sql: "ALTER TABLE t ADD COLUMN label TEXT",
        },
    ];

    async fn exercise(store: &Store) {
        store.migrate(MIGRATIONS).await.unwrap();
        // Applying again is a no-op.
        store.migrate(MIGRATIONS).await.unwrap();
        sqlx::query("INSERT INTO t (id, n, label) VALUES ($1, $2, $3)")
            .bind("a")
            .bind(1_i64)
            .bind("x")
            .execute(store.pool())
            .await
            .unwrap();
        let err = sqlx::query("INSERT INTO t (id, n) VALUES ($1, $2)")
            .bind("a")
            .bind(2_i64)
            .execute(store.pool())
            .await
            .unwrap_err();
        assert!(is_unique_violation(&err), "{err:?}");
        let n: i64 = sqlx::query("SELECT n FROM t WHERE id = $1")
            .bind("a")
            .fetch_one(store.pool())
            .await
            .unwrap()
            .get("n");
        assert_eq!(n, 1);
    }

    /// Nodes starting together on one PostgreSQL database: every one of them migrates successfully, and
    /// each migration is applied once.
    #[tokio::test]
    async fn concurrent_starts_migrate_once() {
        let server = testing::postgres_url().expect(
            "AUTHBROKER_TEST_DATABASE_URL must name the test PostgreSQL (scripts/test sets it)",
        );
        let url = testing::create_postgres_database(&server).await.unwrap();
        let mut stores = Vec::new();
        for _ in 0..6 {
            stores.push(Store::connect(&url).await.unwrap());
        }
        let results =
            futures_util::future::join_all(stores.iter().map(|s| s.migrate(MIGRATIONS))).await;
        for result in results {
            result.unwrap();
        }
        let versions: Vec<i64> =
            sqlx::query_scalar("SELECT version FROM schema_migrations ORDER BY version")
                .fetch_all(stores[0].pool())
                .await
                .unwrap();
        assert_eq!(versions, [1, 2]);
        for store in stores {
            store.pool().close().await;
        }
        testing::drop_postgres_database(&server, &url)
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn sqlite_file_is_private_and_migrates() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::connect(&testing::sqlite_url(dir.path()))
            .await
            .unwrap();
        assert_eq!(store.backend(), Backend::Sqlite);
        exercise(&store).await;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("test.db"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(
                mode & 0o077,
                0,
                "database file must not be group/world readable"
            );
        }
    }

    #[tokio::test]
    async fn postgres_migrates() {
        let server = testing::postgres_url().expect(
            "AUTHBROKER_TEST_DATABASE_URL must name the test PostgreSQL (scripts/test sets it)",
        );
        let url = testing::create_postgres_database(&server).await.unwrap();
        let store = Store::connect(&url).await.unwrap();
        assert_eq!(store.backend(), Backend::Postgres);
        exercise(&store).await;
        store.pool().close().await;
        testing::drop_postgres_database(&server, &url)
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn unknown_urls_are_refused() {
        assert!(Store::connect("mysql://x").await.is_err());
    }
}
