//! Site credentials pass through the broker and are never kept: after 50 brokered connections with our real
//! site, no issued `client_token` or `client_secret` appears in any table of the broker's database (SQLite,
//! where the raw database and WAL files are searched too, and PostgreSQL), nor anywhere in the tracing
//! output captured during the run; nothing is left pending; and the connection log has one row per
//! connection with the site URL and the result.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use authbroker_broker::BrokerState;
use authbroker_store::Backend;
use authbroker_store::sqlx::{self, Row};
use authbroker_testkit::TestCa;
use common::{credentials_work, r1, real_site, register_apps, start_broker};

const CONNECTIONS: usize = 50;
/// The site keeps one consumer per (broker, app) and re-sends it on every connection, so each app's
/// connections bring the same credentials: ten apps make ten distinct pairs to look for.
const APPS: usize = 10;

/// Everything every thread of this test binary logs, at TRACE for our crates and DEBUG for the rest.
fn captured_logs() -> Arc<Mutex<Vec<u8>>> {
    static BUFFER: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    BUFFER
        .get_or_init(|| {
            let buffer = Arc::new(Mutex::new(Vec::new()));
            let sink = buffer.clone();
            let subscriber = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::new(
                    "debug,authbroker_broker=trace,authbroker_site=trace,authbroker_web=trace,authbroker_outbound=trace,authbroker_oauth1=trace",
                ))
                .with_ansi(false)
                .with_writer(move || Sink(sink.clone()))
                .finish();
            tracing::subscriber::set_global_default(subscriber).unwrap();
            buffer
        })
        .clone()
}

struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Every value of every table of the broker's database, as text.
async fn dump(state: &BrokerState) -> Vec<(String, String, String)> {
    let pool = state.store().pool();
    let backend = state.store().backend();
    let tables: Vec<String> = match backend {
        Backend::Sqlite => {
            sqlx::query("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        }
        Backend::Postgres => sqlx::query(
            "SELECT CAST(table_name AS TEXT) AS name FROM information_schema.tables WHERE table_schema = current_schema() ORDER BY table_name",
        ),
    }
    .fetch_all(pool)
    .await
    .unwrap()
    .iter()
    .map(|row| row.try_get::<String, _>("name").unwrap())
    .collect();
    assert!(tables.iter().any(|t| t == "connections"), "{tables:?}");
    let mut values = Vec::new();
    for table in tables {
        let sql = match backend {
            Backend::Sqlite => {
                format!("SELECT name FROM pragma_table_info('{table}') ORDER BY cid")
            }
            Backend::Postgres => format!(
                "SELECT CAST(column_name AS TEXT) AS name FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = '{table}' ORDER BY ordinal_position"
            ),
        };
        let columns: Vec<String> = sqlx::query(&sql)
            .fetch_all(pool)
            .await
            .unwrap()
            .iter()
            .map(|row| row.try_get::<String, _>("name").unwrap())
            .collect();
        assert!(!columns.is_empty(), "{table} has no columns?");
        for column in columns {
            let rows = sqlx::query(&format!(
                "SELECT CAST(\"{column}\" AS TEXT) AS v FROM \"{table}\""
            ))
            .fetch_all(pool)
            .await
            .unwrap();
            for row in rows {
                if let Some(value) = row.try_get::<Option<String>, _>("v").unwrap() {
                    values.push((table.clone(), column.clone(), value));
                }
            }
        }
    }
    values
}

async fn brokered_connections_leave_no_secrets(backend: Backend) {
    let logs = captured_logs();
    let ca = TestCa::new("privacy CA");
    let server = authbroker_store::testing::postgres_url();
    let mut pg_database = None;
    if backend == Backend::Postgres {
        let server = server.clone().expect(
            "AUTHBROKER_TEST_DATABASE_URL must name the test PostgreSQL (scripts/test sets it)",
        );
        pg_database = Some(
            authbroker_store::testing::create_postgres_database(&server)
                .await
                .unwrap(),
        );
    }
    let database_url = pg_database.clone();
    let broker = start_broker(&ca, move |config| {
        config.database_url = database_url;
        // 50 connections to one site within a minute: above the default per-site limit.
        config.rate_limits.per_server_per_minute = 0;
        config.rate_limits.per_ip_per_minute = 0;
    })
    .await;
    assert_eq!(broker.state.store().backend(), backend);
    let (site_base, _site, _site_dir) = real_site(&ca, &broker).await;
    let apps = register_apps(&broker.state, "Privacy", APPS).await;
    let server_url = format!("{site_base}/");
    let client = ca.client();

    // 50 connections, ten at a time.
    let mut issued: Vec<(String, String)> = Vec::new();
    let mut per_app = std::collections::HashMap::new();
    for batch in 0..CONNECTIONS / 10 {
        let replies = futures_util::future::join_all((0..10).map(|i| {
            let app = &apps[(batch * 10 + i) % apps.len()];
            let (client, broker, server_url) = (&client, &broker, &server_url);
            async move { (app, r1(client, broker, app, server_url).await) }
        }))
        .await;
        for (app, reply) in replies {
            assert_eq!(reply.status, 200);
            let value = reply.json();
            let token = value["client_token"]
                .as_str()
                .unwrap_or_else(|| panic!("no credentials: {value}"));
            let secret = value["client_secret"].as_str().unwrap();
            assert_eq!(token.len(), 12);
            assert_eq!(secret.len(), 48);
            issued.push((token.to_owned(), secret.to_owned()));
            let first = per_app
                .entry(app.client_id.clone())
                .or_insert_with(|| (token.to_owned(), secret.to_owned()));
            assert_eq!(
                first,
                &(token.to_owned(), secret.to_owned()),
                "one consumer per app"
            );
        }
    }
    assert_eq!(issued.len(), CONNECTIONS);
    let mut distinct: Vec<&String> = issued.iter().map(|(t, _)| t).collect();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), APPS, "each app its own credentials");
    // They are real: a few of them work at the site.
    for (token, secret) in per_app.values() {
        credentials_work(&site_base, token, secret).await;
    }
    assert!(broker.state.pending().is_empty(), "nothing left pending");

    // The connection log: one row per connection, with the site and the result, and nothing else.
    let rows = sqlx::query(
        "SELECT a.client_id AS client_id, c.site_url AS site_url, c.result AS result FROM connections c JOIN apps a ON a.id = c.app_id",
    )
    .fetch_all(broker.state.store().pool())
    .await
    .unwrap();
    assert_eq!(rows.len(), CONNECTIONS);
    for app in &apps {
        let count = rows
            .iter()
            .filter(|r| r.try_get::<String, _>("client_id").unwrap() == app.client_id)
            .count();
        assert!(count >= CONNECTIONS / apps.len(), "{count}");
    }
    for row in &rows {
        assert_eq!(row.try_get::<String, _>("site_url").unwrap(), server_url);
        assert_eq!(row.try_get::<String, _>("result").unwrap(), "success");
    }

    // No issued credential anywhere in the database.
    let values = dump(&broker.state).await;
    assert!(values.len() > CONNECTIONS, "the dump found the data");
    for (token, secret) in &issued {
        for (table, column, value) in &values {
            assert!(
                !value.contains(token.as_str()) && !value.contains(secret.as_str()),
                "an issued credential is stored in {table}.{column}"
            );
        }
    }
    if backend == Backend::Sqlite {
        // Also the raw files, free pages and WAL included.
        let mut files = 0;
        for entry in std::fs::read_dir(broker.data_dir()).unwrap() {
            let path = entry.unwrap().path();
            let bytes = std::fs::read(&path).unwrap();
            files += 1;
            for (token, secret) in &issued {
                assert!(
                    !contains(&bytes, token.as_bytes()) && !contains(&bytes, secret.as_bytes()),
                    "an issued credential is in {}",
                    path.display()
                );
            }
        }
        assert!(files >= 1);
    }

    // Nor in anything logged during the run.
    let text = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
    assert!(
        text.contains("brokered connection finished"),
        "the capture works"
    );
    for (token, secret) in &issued {
        assert!(
            !text.contains(secret.as_str()),
            "a client_secret was logged:\n{}",
            lines_with(&text, secret)
        );
        assert!(
            !text.contains(token.as_str()),
            "a client_token was logged:\n{}",
            lines_with(&text, token)
        );
    }

    if let (Some(server), Some(database)) = (server, pg_database) {
        broker.state.store().pool().close().await;
        authbroker_store::testing::drop_postgres_database(&server, &database)
            .await
            .unwrap();
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn lines_with(text: &str, needle: &str) -> String {
    text.lines()
        .filter(|l| l.contains(needle))
        .take(5)
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_broker_keeps_no_site_credentials() {
    brokered_connections_leave_no_secrets(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_broker_keeps_no_site_credentials() {
    brokered_connections_leave_no_secrets(Backend::Postgres).await;
}
