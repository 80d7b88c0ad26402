//! The service under test: started in this process on port 0, with the test settings, stopped
//! and restarted as a deploy or a crash would.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use reqwest::Client;
use sqlx::PgPool;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use veredito::config::{Settings, Sources};

use super::{TestDatabase, fresh_database};

/// What the tests change from config/default.toml: fast sandbox, polling and retries.
pub fn test_overrides() -> Vec<(String, String)> {
    [
        ("server.addr", "127.0.0.1:0"),
        ("sandbox.enabled", "true"),
        // Many requests from one key in a short test; the limit has a test of its own.
        ("api.rate_per_second", "100000"),
        ("api.rate_burst", "100000"),
        ("sandbox.processing_delay", "300ms"),
        ("sandbox.webhook_delay", "50ms"),
        ("sandbox.qitech_pending_delay", "600ms"),
        ("unico.poll_initial", "200ms"),
        ("unico.poll_max", "1s"),
        ("qitech.poll_initial", "150ms"),
        ("qitech.poll_max", "400ms"),
        ("qitech.timeout", "2s"),
        ("zro.retry_initial", "150ms"),
        ("zro.timeout", "2s"),
        ("policy.default_wait", "10s"),
        ("server.shutdown_grace", "2s"),
        // Every test person shares the same device, phone and e-mail: the default velocity and
        // linked-fraud rules would send most of a test's onboardings to review. The tests of
        // those rules (tests/api/risk_memory/) set their own.
        ("policy.velocity", "[]"),
        ("policy.linked_fraud", "null"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect()
}

pub struct TestApp {
    pub base: String,
    pub db_url: String,
    pub db: PgPool,
    pub http: Client,
    /// The running service's own flow services (its cipher, settings, pool).
    pub state: veredito::onboarding::services::Flow,
    overrides: Vec<(String, String)>,
    file: Option<PathBuf>,
    database: Arc<TestDatabase>,
    stop: CancellationToken,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

/// How a `TestApp` starts: on a fresh database unless `database` names one, with the test
/// defaults and `config` on top, and a configuration file if `file` gives one.
#[derive(Default)]
pub struct TestAppBuilder {
    database: Option<Arc<TestDatabase>>,
    overrides: Vec<(String, String)>,
    file: Option<PathBuf>,
}

impl TestAppBuilder {
    /// On `database` (a copy, a database another app used) instead of a fresh one.
    pub fn database(mut self, database: &Arc<TestDatabase>) -> Self {
        self.database = Some(database.clone());
        self
    }

    /// Settings on top of the test defaults (and of those given before).
    pub fn config(mut self, extra: &[(&str, &str)]) -> Self {
        self.overrides.extend(
            extra
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        self
    }

    /// Only unico simulated; QI Tech and Zro are the fakes at these addresses.
    pub fn device_fakes(self, qitech: &str, zro: &str) -> Self {
        self.config(&[
            ("sandbox.device_providers", "false"),
            ("qitech.base_url", qitech),
            ("zro.base_url", zro),
        ])
    }

    /// A configuration file read before the settings.
    pub fn file(mut self, file: PathBuf) -> Self {
        self.file = Some(file);
        self
    }

    pub async fn spawn(self) -> TestApp {
        let database = match self.database {
            Some(database) => database,
            None => fresh_database().await,
        };
        let mut overrides = test_overrides();
        overrides.extend(self.overrides);
        TestApp::start_from(database, overrides, self.file).await
    }
}

impl TestApp {
    pub fn builder() -> TestAppBuilder {
        TestAppBuilder::default()
    }

    /// On a fresh database with the test defaults.
    pub async fn spawn() -> TestApp {
        Self::builder().spawn().await
    }

    /// Another replica on the same database as `self`.
    pub async fn replica(&self, extra: &[(&str, &str)]) -> TestApp {
        Self::builder()
            .database(&self.database)
            .config(extra)
            .spawn()
            .await
    }

    async fn start_from(
        database: Arc<TestDatabase>,
        overrides: Vec<(String, String)>,
        file: Option<PathBuf>,
    ) -> TestApp {
        let db_url = database.url.clone();
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let mut all: Vec<(String, String)> = vec![("database.url".into(), db_url.clone())];
        all.extend(overrides.iter().cloned());
        let settings = Settings::load(&Sources {
            config_dir: Some(root.join("config")),
            file: file.clone(),
            overrides: all,
            ignore_env: true,
            environment: None,
        })
        .expect("test settings load");
        let app = veredito::app::App::build(settings)
            .await
            .expect("app builds");
        let base = format!("http://{}", app.addr());
        let state = app.state();
        let db = PgPool::connect(&db_url).await.expect("test pool");
        let stop = CancellationToken::new();
        let task = tokio::spawn(app.run(stop.clone()));
        TestApp {
            base,
            db_url,
            db,
            http: Client::new(),
            state,
            overrides,
            file,
            database,
            stop,
            task: Some(task),
        }
    }

    /// Stops this instance (as a deploy or a crash-restart would) and starts a new one on the
    /// same database.
    pub async fn restart(self) -> TestApp {
        let TestApp {
            overrides,
            file,
            db,
            database,
            ..
        } = self.stop_inner().await;
        db.close().await;
        Self::start_from(database, overrides, file).await
    }

    /// Stops this instance and closes the test's pool: no session is left on its database.
    pub async fn stop_keeping_database(self) -> Arc<TestDatabase> {
        let stopped = self.stop_inner().await;
        stopped.db.close().await;
        stopped.database.clone()
    }

    pub async fn stop(self) {
        let _ = self.stop_inner().await;
    }

    async fn stop_inner(mut self) -> TestApp {
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            // A service that crashed, panicked or hung on the way out fails the test.
            tokio::time::timeout(Duration::from_secs(15), task)
                .await
                .expect("the service stops within 15 s")
                .expect("the service task did not panic")
                .expect("the service ran and stopped without error");
        }
        self
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}
