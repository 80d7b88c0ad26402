//! Starts veredito on port 0 against a fresh PostgreSQL database, and talks to it over HTTP.
#![allow(dead_code)]

use std::path::PathBuf;
use std::time::Duration;

use reqwest::{Client, Response};
use serde_json::{Value, json};
use sqlx::{Connection, PgConnection, PgPool};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;
use veredito::config::{Settings, Sources};

pub const ONBOARDING_KEY: &str = "vrd_sandbox_onboarding";
pub const AUDITOR_KEY: &str = "vrd_sandbox_auditor";
pub const WEBHOOK_HEADER: &str = "X-Veredito-Webhook-Token";
pub const WEBHOOK_SECRET: &str = "sandbox-webhook-secret";

pub fn server_url() -> String {
    std::env::var("VEREDITO_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_owned())
}

/// A new, empty database for one test.
pub async fn fresh_database() -> String {
    let name = format!("veredito_test_{}", Uuid::new_v4().simple());
    let mut admin = PgConnection::connect(&format!("{}/postgres", server_url()))
        .await
        .expect("PostgreSQL is reachable");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await
        .expect("create test database");
    admin.close().await.ok();
    format!("{}/{name}", server_url())
}

/// What the tests change from config/default.toml: fast sandbox and polling.
pub fn test_overrides() -> Vec<(&'static str, String)> {
    vec![
        ("server.addr", "127.0.0.1:0".into()),
        ("sandbox.processing_delay", "400ms".into()),
        ("sandbox.webhook_delay", "50ms".into()),
        ("unico.poll_initial", "300ms".into()),
        ("unico.poll_max", "1s".into()),
        ("policy.default_wait", "10s".into()),
        ("server.shutdown_grace", "2s".into()),
    ]
}

pub struct TestApp {
    pub base: String,
    pub db_url: String,
    pub db: PgPool,
    pub http: Client,
    overrides: Vec<(&'static str, String)>,
    stop: CancellationToken,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        Self::spawn_with(&[]).await
    }

    /// Starts the app on a fresh database with `extra` overrides on top of the test defaults.
    pub async fn spawn_with(extra: &[(&'static str, &str)]) -> TestApp {
        let db_url = fresh_database().await;
        let mut overrides = test_overrides();
        overrides.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
        Self::start(db_url, overrides).await
    }

    /// The app on an existing database, with the test defaults.
    pub async fn spawn_on(db_url: &str) -> TestApp {
        Self::start(db_url.to_owned(), test_overrides()).await
    }

    /// Another replica on the same database as `self`.
    pub async fn replica(&self, extra: &[(&'static str, &str)]) -> TestApp {
        let mut overrides = test_overrides();
        overrides.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
        Self::start(self.db_url.clone(), overrides).await
    }

    async fn start(db_url: String, overrides: Vec<(&'static str, String)>) -> TestApp {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let mut all: Vec<(String, String)> = vec![("database.url".into(), db_url.clone())];
        all.extend(overrides.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
        let settings = Settings::load(&Sources {
            config_dir: Some(root.join("config")),
            file: None,
            overrides: all,
            ignore_env: true,
        })
        .expect("test settings load");
        let app = veredito::app::App::build(settings)
            .await
            .expect("app builds");
        let base = format!("http://{}", app.addr());
        let db = PgPool::connect(&db_url).await.expect("test pool");
        let stop = CancellationToken::new();
        let task = tokio::spawn(app.run(stop.clone()));
        TestApp {
            base,
            db_url,
            db,
            http: Client::new(),
            overrides,
            stop,
            task: Some(task),
        }
    }

    /// Stops this instance (as a deploy or a crash-restart would) and starts a new one on the
    /// same database.
    pub async fn restart(self) -> TestApp {
        let TestApp {
            db_url,
            overrides,
            db,
            ..
        } = self.stop_inner().await;
        db.close().await;
        Self::start(db_url, overrides).await
    }

    pub async fn stop(self) {
        let _ = self.stop_inner().await;
    }

    async fn stop_inner(mut self) -> TestApp {
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        }
        self
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn onboard(
        &self,
        idempotency_key: &str,
        body: &Value,
        wait: Option<u64>,
    ) -> Response {
        let mut request = self
            .http
            .post(self.url("/v1/onboardings"))
            .bearer_auth(ONBOARDING_KEY)
            .header("Idempotency-Key", idempotency_key)
            .json(body);
        if let Some(wait) = wait {
            request = request.header("Prefer", format!("wait={wait}"));
        }
        request.send().await.expect("request sent")
    }

    pub async fn get_onboarding(&self, id: &str) -> Value {
        let response = self
            .http
            .get(self.url(&format!("/v1/onboardings/{id}")))
            .bearer_auth(ONBOARDING_KEY)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }

    /// Polls GET until the onboarding is decided, up to `limit`.
    pub async fn until_decided(&self, id: &str, limit: Duration) -> Value {
        let started = tokio::time::Instant::now();
        loop {
            let view = self.get_onboarding(id).await;
            if view["status"] == "decided" {
                return view;
            }
            assert!(
                started.elapsed() < limit,
                "onboarding {id} not decided within {limit:?}: {view}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// How many times veredito called `operation` on unico for this onboarding.
    pub async fn unico_calls(&self, onboarding_id: &str, operation: &str) -> i64 {
        // The call log is written in the background; give it a moment.
        tokio::time::sleep(Duration::from_millis(200)).await;
        sqlx::query_scalar("SELECT count(*) FROM provider_calls WHERE onboarding_id = $1::uuid AND provider = 'unico' AND operation = $2")
            .bind(onboarding_id)
            .bind(operation)
            .fetch_one(&self.db)
            .await
            .unwrap()
    }

    pub async fn events(&self, onboarding_id: &str) -> Vec<String> {
        sqlx::query_scalar(
            "SELECT kind FROM onboarding_events WHERE onboarding_id = $1::uuid ORDER BY id",
        )
        .bind(onboarding_id)
        .fetch_all(&self.db)
        .await
        .unwrap()
    }
}

/// A complete, valid onboarding request for `cpf`.
pub fn onboarding_body(cpf: &str) -> Value {
    json!({
        "reference": format!("ref-{}", Uuid::new_v4().simple()),
        "person": {"cpf": cpf, "name": "Maria Teste da Silva", "birth_date": "1990-01-31", "gender": "F",
                   "email": "maria.teste@example.com", "phone": "5511974749090"},
        "selfie": "c2VsZmllLWJ5dGVzLW5vdC1hLXJlYWwtaW1hZ2U=",
        "account": {"account_id": "acc-1", "person_id": "per-1"},
        "device": {"device_id": "dev-1", "session_id": "scan-session-1", "face_recognition_key": null,
                   "risk_signals": {"os_version": "14", "user_time_zone_offset": "-03", "language": "pt",
                                    "screen_width": 1080, "screen_height": 2400, "is_emulated": false}}
    })
}

pub fn key() -> String {
    Uuid::new_v4().to_string()
}

pub fn reason_codes(view: &Value) -> Vec<String> {
    view["reasons"]
        .as_array()
        .expect("reasons")
        .iter()
        .map(|r| r["code"].as_str().unwrap().to_owned())
        .collect()
}
