//! Each test's own database, made fresh and dropped after, and what tests read or change in it
//! behind the service's back.

use std::sync::Arc;

use sqlx::{Connection, PgConnection, PgPool};
use uuid::Uuid;

use super::{TestApp, isolation};

pub fn server_url() -> String {
    std::env::var("VEREDITO_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_owned())
}

/// One test's database, dropped when the last handle on it goes, whether the test passed or
/// panicked.
pub struct TestDatabase {
    pub url: String,
    name: String,
    _share: isolation::Share,
}

impl TestDatabase {
    /// A new, empty database.
    pub async fn create() -> Arc<TestDatabase> {
        let database = Self::adopt(&format!("veredito_test_{}", Uuid::new_v4().simple()));
        let mut admin = PgConnection::connect(&format!("{}/postgres", server_url()))
            .await
            .expect("PostgreSQL is reachable");
        sqlx::query(&format!("CREATE DATABASE {}", database.name))
            .execute(&mut admin)
            .await
            .expect("create test database");
        admin.close().await.ok();
        database
    }

    /// A new database holding what `source` holds now. Sessions still open on `source` (a
    /// stopped service's last ones closing) are ended first, as PostgreSQL copies only a
    /// database nobody is connected to.
    pub async fn copy_of(source: &TestDatabase) -> Arc<TestDatabase> {
        let database = Self::adopt(&format!("veredito_test_{}", Uuid::new_v4().simple()));
        let mut admin = PgConnection::connect(&format!("{}/postgres", server_url()))
            .await
            .expect("PostgreSQL is reachable");
        sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1")
            .bind(&source.name)
            .execute(&mut admin)
            .await
            .expect("end the sessions on the source");
        sqlx::query(&format!(
            "CREATE DATABASE {} TEMPLATE {}",
            database.name, source.name
        ))
        .execute(&mut admin)
        .await
        .expect("copy the test database");
        admin.close().await.ok();
        database
    }

    /// A database named `name` that something else creates (the binary, say); dropped all the
    /// same.
    pub fn adopt(name: &str) -> Arc<TestDatabase> {
        Arc::new(TestDatabase {
            url: format!("{}/{name}", server_url()),
            name: name.to_owned(),
            _share: isolation::Share::take(),
        })
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // Drop runs inside the test's runtime, which cannot be blocked on: a thread of its own
        // with its own runtime drops the database (FORCE ends the connections still open).
        let name = self.name.clone();
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let mut admin = PgConnection::connect(&format!("{}/postgres", server_url()))
                    .await
                    .ok()?;
                sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut admin)
                    .await
                    .ok()?;
                admin.close().await.ok()
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(()))) {
            eprintln!("could not drop the test database {}", self.name);
        }
    }
}

/// A new, empty database for one test.
pub async fn fresh_database() -> Arc<TestDatabase> {
    TestDatabase::create().await
}

/// Every row of every table of the public schema as PostgreSQL prints it, with its table: what
/// a dump of the database would show in the clear.
pub async fn all_rows_as_text(db: &PgPool) -> Vec<(String, String)> {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public' ORDER BY 1",
    )
    .fetch_all(db)
    .await
    .unwrap();
    let mut rows = Vec::new();
    for table in tables {
        let texts: Vec<String> = sqlx::query_scalar(&format!("SELECT t::text FROM \"{table}\" t"))
            .fetch_all(db)
            .await
            .unwrap();
        rows.extend(texts.into_iter().map(|t| (table.clone(), t)));
    }
    rows
}

/// Moves an onboarding and its decisions `days` back in time, as far as retention can tell.
/// Decisions are append-only, so their trigger is set aside for the one statement.
pub async fn decided_days_ago(db: &PgPool, onboarding_id: &str, days: i32) {
    let mut tx = db.begin().await.unwrap();
    sqlx::query(
        "UPDATE onboardings SET decided_at = now() - make_interval(days => $2) WHERE id = $1::uuid",
    )
    .bind(onboarding_id)
    .bind(days)
    .execute(&mut *tx)
    .await
    .unwrap();
    sqlx::query("ALTER TABLE decisions DISABLE TRIGGER decisions_append_only")
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query(
        "UPDATE decisions SET decided_at = now() - make_interval(days => $2) WHERE onboarding_id = $1::uuid",
    )
    .bind(onboarding_id)
    .bind(days)
    .execute(&mut *tx)
    .await
    .unwrap();
    sqlx::query("ALTER TABLE decisions ENABLE TRIGGER decisions_append_only")
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

/// A login role in `veredito_app`, the group role the service is meant to connect as
/// (docs/audit.md), and the URL of a test database with it as the user.
pub struct AppRole {
    pub name: String,
    pub url: String,
}

impl AppRole {
    /// Made by `admin` (the tests' superuser) for the database at `db_url`.
    pub async fn create(admin: &PgPool, db_url: &str) -> AppRole {
        let name = format!("veredito_test_app_{}", Uuid::new_v4().simple());
        sqlx::query(&format!("CREATE ROLE {name} LOGIN IN ROLE veredito_app"))
            .execute(admin)
            .await
            .unwrap();
        let server = server_url();
        let (scheme, rest) = server.split_once("://").unwrap();
        let host = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
        let url = format!(
            "{scheme}://{name}@{host}/{}",
            db_url.rsplit('/').next().unwrap()
        );
        AppRole { name, url }
    }

    pub async fn connect(&self) -> PgConnection {
        PgConnection::connect(&self.url)
            .await
            .expect("the app role logs in")
    }

    /// Drops the role once its sessions are gone.
    pub async fn drop(self, admin: &PgPool) {
        sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1")
            .bind(&self.name)
            .execute(admin)
            .await
            .unwrap();
        sqlx::query(&format!("DROP ROLE {}", self.name))
            .execute(admin)
            .await
            .unwrap();
    }
}

/// How many reads `caller` left in the access record under `endpoint`.
pub async fn access_records(app: &TestApp, caller: &str, endpoint: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM audit_searches WHERE caller = $1 AND endpoint = $2")
        .bind(caller)
        .bind(endpoint)
        .fetch_one(&app.db)
        .await
        .unwrap()
}

/// The onboarding of the first unico process stored, once there is one: a test that stops the
/// service while a process is open waits for it here (10 s at most).
pub async fn first_open_process(db: &mut PgConnection) -> String {
    let started = std::time::Instant::now();
    loop {
        let open: Option<String> =
            sqlx::query_scalar("SELECT onboarding_id::text FROM unico_processes LIMIT 1")
                .fetch_optional(&mut *db)
                .await
                .unwrap();
        if let Some(id) = open {
            return id;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "no process created"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
