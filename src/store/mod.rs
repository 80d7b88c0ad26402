//! All SQL lives here, one file per aggregate. Functions take an executor so callers decide
//! what shares a transaction.

pub mod audit;
pub mod callbacks;
pub mod calls;
pub mod console;
pub mod decisions;
pub mod device_validations;
pub mod devices;
pub mod events;
pub mod figures;
pub mod flashes;
pub mod fraud_indications;
pub mod gauges;
pub mod idempotency;
pub mod links;
pub mod lists;
pub mod notes;
pub mod onboardings;
pub mod policies;
pub mod processes;
pub mod reviews;
pub mod steps;
pub mod subjects;
pub mod tx;
pub mod views;
pub mod webhooks;

use std::str::FromStr;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgPool};

pub use tx::Tx;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored data could not be read: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Crypto(#[from] crate::crypto::CryptoError),
}

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

fn connect_options(url: &SecretString) -> Result<PgConnectOptions, StoreError> {
    Ok(PgConnectOptions::from_str(url.expose_secret())?
        .log_statements(tracing::log::LevelFilter::Trace)
        .log_slow_statements(tracing::log::LevelFilter::Warn, Duration::from_secs(1)))
}

/// Creates the database named in `url` when it does not exist yet (the `serve` default, so a
/// newcomer needs nothing but a running PostgreSQL).
pub async fn create_database_if_missing(url: &SecretString) -> Result<(), StoreError> {
    let options = connect_options(url)?;
    let name = options.get_database().unwrap_or("postgres").to_owned();
    let mut admin = options.clone().database("postgres").connect().await?;
    let exists = sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1) AS "exists!""#,
        name,
    )
    .fetch_one(&mut admin)
    .await?;
    if !exists {
        let quoted = name.replace('"', "\"\"");
        // Built at run time: a database's name is an identifier, which no parameter can stand for.
        match sqlx::query(&format!("CREATE DATABASE \"{quoted}\""))
            .execute(&mut admin)
            .await
        {
            Ok(_) => tracing::info!(database = %name, "created database"),
            // Another replica created it between the check and the create.
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P04") => {}
            Err(e) => return Err(e.into()),
        }
    }
    admin.close().await?;
    Ok(())
}

/// Tasks waiting for a connection to begin a transaction (the pool's waiters gauge).
static WAITERS: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);

pub fn waiters() -> i64 {
    WAITERS.load(std::sync::atomic::Ordering::Relaxed)
}

/// How a write transaction starts, in the one round trip of its BEGIN. Its statements are keyed
/// reads and writes whose plan does not depend on the values, so PostgreSQL keeps one plan for
/// each instead of planning it again per run with the values in (a "custom plan"): it would
/// always do so for the statement that writes the kept rows, whose `unnest` it can size only
/// when it sees the arrays. Searches and exports run outside these transactions and keep
/// PostgreSQL's own choice.
const BEGIN: &str = "BEGIN; SET LOCAL plan_cache_mode = force_generic_plan";

/// Begins a transaction, counted among the pool's waiters while it waits for a connection.
/// Past `database.acquire_timeout` it fails with `PoolTimedOut` (a 503 to a caller).
pub async fn begin(pool: &PgPool) -> Result<Tx, sqlx::Error> {
    use std::sync::atomic::Ordering;
    struct Waiting;
    impl Drop for Waiting {
        fn drop(&mut self) {
            WAITERS.fetch_sub(1, Ordering::Relaxed);
        }
    }
    WAITERS.fetch_add(1, Ordering::Relaxed);
    let _waiting = Waiting;
    Ok(Tx::new(pool.begin_with(BEGIN).await?))
}

pub async fn connect(
    url: &SecretString,
    max_connections: u32,
    acquire_timeout: Duration,
) -> Result<PgPool, StoreError> {
    Ok(PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(acquire_timeout)
        // No round trip to test a connection before each use: a connection that broke fails
        // its statement and is closed, and that statement's work is retried like any other
        // database error (a step by its lease, a request by its caller).
        .test_before_acquire(false)
        .connect_with(connect_options(url)?)
        .await?)
}

/// The pool of a read replica (`database.read_url`). Every session on it is read-only, so
/// nothing written can go there even when the URL names the primary. It connects when first
/// used: a replica that is down makes the reads sent to it fail (503), not the service's start.
pub fn connect_reads(
    url: &SecretString,
    max_connections: u32,
    acquire_timeout: Duration,
) -> Result<PgPool, StoreError> {
    let options = connect_options(url)?
        .application_name("veredito-reads")
        .options([("default_transaction_read_only", "on")]);
    Ok(PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(acquire_timeout)
        .test_before_acquire(false)
        .connect_lazy_with(options))
}

pub async fn migrate(pool: &PgPool) -> Result<(), StoreError> {
    MIGRATOR.run(pool).await?;
    Ok(())
}
