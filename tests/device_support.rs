//! Helpers for the device tests: veredito on port 0 against a fresh database, and small fakes of
//! QI Tech and Zro that count and record what veredito sends them.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use reqwest::Client;
use serde_json::{Value, json};
use sqlx::{Connection, PgConnection, PgPool};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;
use veredito::config::{Settings, Sources};

pub const ONBOARDING_KEY: &str = "vrd_sandbox_onboarding";
pub const AUDITOR_KEY: &str = "vrd_sandbox_auditor";
/// The sandbox CPF that unico approves in CreateProcess's own answer.
pub const APPROVED_CPF: &str = "900.000.001-75";
pub const QITECH_KEY: &str = "sandbox-qitech-key";

async fn fresh_database() -> String {
    let server = std::env::var("VEREDITO_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_owned());
    let name = format!("veredito_test_{}", Uuid::new_v4().simple());
    let mut admin = PgConnection::connect(&format!("{server}/postgres"))
        .await
        .expect("PostgreSQL is reachable");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await
        .expect("create test database");
    admin.close().await.ok();
    format!("{server}/{name}")
}

fn defaults() -> Vec<(String, String)> {
    [
        ("server.addr", "127.0.0.1:0"),
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
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect()
}

pub struct TestApp {
    pub base: String,
    pub db: PgPool,
    pub http: Client,
    db_url: String,
    overrides: Vec<(String, String)>,
    stop: CancellationToken,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        Self::spawn_with(&[]).await
    }

    pub async fn spawn_with(extra: &[(&str, &str)]) -> TestApp {
        let db_url = fresh_database().await;
        let mut overrides = defaults();
        overrides.extend(
            extra
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        Self::start(db_url, overrides).await
    }

    /// Only unico simulated; QI Tech and Zro are the given fakes.
    pub async fn with_fakes(qitech: &str, zro: &str, extra: &[(&str, &str)]) -> TestApp {
        let mut all = vec![
            ("sandbox.device_providers", "false"),
            ("qitech.base_url", qitech),
            ("zro.base_url", zro),
        ];
        all.extend_from_slice(extra);
        Self::spawn_with(&all).await
    }

    async fn start(db_url: String, overrides: Vec<(String, String)>) -> TestApp {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let mut all = vec![("database.url".to_owned(), db_url.clone())];
        all.extend(overrides.iter().cloned());
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
            db,
            http: Client::new(),
            db_url,
            overrides,
            stop,
            task: Some(task),
        }
    }

    /// Stops this instance, as a deploy or a crash would, and starts another on the same database.
    pub async fn restart(mut self) -> TestApp {
        self.halt().await;
        self.db.close().await;
        Self::start(self.db_url.clone(), self.overrides.clone()).await
    }

    pub async fn stop(mut self) {
        self.halt().await;
    }

    async fn halt(&mut self) {
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn onboard(&self, body: &Value, wait: u64) -> reqwest::Response {
        self.http
            .post(self.url("/v1/onboardings"))
            .bearer_auth(ONBOARDING_KEY)
            .header("Idempotency-Key", Uuid::new_v4().to_string())
            .header("Prefer", format!("wait={wait}"))
            .json(body)
            .send()
            .await
            .expect("request sent")
    }

    /// Starts an onboarding and answers its id, whatever its state.
    pub async fn start_onboarding(&self, body: &Value) -> String {
        let response = self.onboard(body, 0).await;
        assert!(
            response.status() == 200 || response.status() == 202,
            "unexpected {}",
            response.status()
        );
        let view: Value = response.json().await.unwrap();
        view["id"].as_str().unwrap().to_owned()
    }

    pub async fn get(&self, path: &str, key: &str) -> (u16, Value) {
        let response = self
            .http
            .get(self.url(path))
            .bearer_auth(key)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn onboarding(&self, id: &str) -> Value {
        let (status, view) = self
            .get(&format!("/v1/onboardings/{id}"), ONBOARDING_KEY)
            .await;
        assert_eq!(status, 200, "{view}");
        view
    }

    pub async fn until_decided(&self, id: &str, limit: Duration) -> Value {
        let started = tokio::time::Instant::now();
        loop {
            let view = self.onboarding(id).await;
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

    /// Waits until `check` holds for the onboarding view, up to `limit`.
    pub async fn until(&self, id: &str, limit: Duration, check: impl Fn(&Value) -> bool) -> Value {
        let started = tokio::time::Instant::now();
        loop {
            let view = self.onboarding(id).await;
            if check(&view) {
                return view;
            }
            assert!(
                started.elapsed() < limit,
                "onboarding {id}: condition not met within {limit:?}: {view}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn validate(&self, key: &str, body: &Value) -> (u16, HeaderMap, Value) {
        let response = self
            .http
            .post(self.url("/v1/device-validations"))
            .bearer_auth(ONBOARDING_KEY)
            .header("Idempotency-Key", key)
            .json(body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        (
            status,
            headers,
            response.json().await.unwrap_or(Value::Null),
        )
    }

    /// How many calls of `operation` veredito made to `provider` for this onboarding.
    pub async fn calls(&self, onboarding_id: &str, provider: &str, operation: &str) -> i64 {
        // The call log is written in the background; give it a moment.
        tokio::time::sleep(Duration::from_millis(200)).await;
        sqlx::query_scalar(
            "SELECT count(*) FROM provider_calls WHERE onboarding_id = $1::uuid AND provider = $2 AND operation = $3",
        )
        .bind(onboarding_id)
        .bind(provider)
        .bind(operation)
        .fetch_one(&self.db)
        .await
        .unwrap()
    }
}

pub fn reason_codes(view: &Value) -> Vec<String> {
    view["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["code"].as_str().unwrap().to_owned())
        .collect()
}

/// An onboarding of the sandbox's synchronously approved person with the given device.
pub fn body(device_id: &str, signals: Value, enrollment: Option<&str>) -> Value {
    let mut body = json!({
        "reference": format!("ref-{}", Uuid::new_v4().simple()),
        "person": {"cpf": APPROVED_CPF, "name": "Maria Silva", "birth_date": "1990-01-31", "gender": "F",
                   "email": "m@example.com", "phone": "5511974749090"},
        "selfie": "c2VsZmll",
        "account": {"account_id": "acc-1", "person_id": "per-1"},
        "device": {"device_id": device_id, "session_id": "scan-session-1", "face_recognition_key": "face-key-1",
                   "risk_signals": signals},
    });
    if let Some(enrollment) = enrollment {
        body["open_finance"] = json!({ "enrollment_id": enrollment });
    }
    body
}

pub fn full_signals() -> Value {
    json!({"os_version": "14", "user_time_zone_offset": "-03", "language": "pt", "screen_width": 1080,
           "screen_height": 2400, "is_emulated": false, "is_rooted_device": false, "device_latitude": -23.5,
           "device_longitude": -46.6, "device_geolocation_type": "FINE"})
}

/// One request a fake received.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub headers: HeaderMap,
    pub body: Value,
}

/// What the QI Tech fake answers.
#[derive(Debug, Clone)]
pub struct QitechScript {
    pub account_conflict: bool,
    pub person_conflict: bool,
    /// The first N device POSTs answer 500 without registering.
    pub device_failures: usize,
    /// The device POST answers 409 (already registered).
    pub device_conflict: bool,
    /// The device as POST and GET answer it.
    pub device: Value,
}

impl Default for QitechScript {
    fn default() -> Self {
        QitechScript {
            account_conflict: false,
            person_conflict: false,
            device_failures: 0,
            device_conflict: false,
            device: json!({"device_id": "dev-fake", "status": "registered", "analysis_status": "automatically_approved",
                           "reason": "ok", "reason_description": "fine"}),
        }
    }
}

#[derive(Default)]
pub struct FakeState {
    pub qitech: QitechScript,
    /// The first N risk signals answer 503.
    pub zro_failures: usize,
    pub seen: Vec<Seen>,
}

/// One fake server playing both QI Tech (`/qitech`) and Zro (`/zro`).
#[derive(Clone)]
pub struct Fake {
    pub url: String,
    pub state: Arc<Mutex<FakeState>>,
}

impl Fake {
    pub async fn start(qitech: QitechScript, zro_failures: usize) -> Fake {
        let state = Arc::new(Mutex::new(FakeState {
            qitech,
            zro_failures,
            seen: Vec::new(),
        }));
        let shared = state.clone();
        let app = Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let state = shared.clone();
                async move { answer(&state, method, uri, headers, body) }
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Fake { url, state }
    }

    pub fn qitech_url(&self) -> String {
        format!("{}/qitech", self.url)
    }

    pub fn zro_url(&self) -> String {
        format!("{}/zro", self.url)
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.state.lock().unwrap().seen.clone()
    }

    /// "METHOD path" of every request, in order.
    pub fn log(&self) -> Vec<String> {
        self.seen()
            .iter()
            .map(|s| format!("{} {}", s.method, s.path))
            .collect()
    }

    pub fn script(&self, change: impl FnOnce(&mut FakeState)) {
        change(&mut self.state.lock().unwrap());
    }
}

fn answer(
    state: &Mutex<FakeState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut state = state.lock().unwrap();
    let path = uri.path().to_owned();
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    state.seen.push(Seen {
        method: method.to_string(),
        path: path.clone(),
        headers,
        body,
    });
    let post = method == Method::POST;
    let reply = |status: u16, body: Value| {
        (StatusCode::from_u16(status).unwrap(), axum::Json(body)).into_response()
    };
    if path == "/zro/auth/signin" {
        let n = state
            .seen
            .iter()
            .filter(|s| s.path == "/zro/auth/signin")
            .count();
        return reply(200, json!({ "access_token": format!("token-{n}") }));
    }
    if path.starts_with("/zro/open-finance/") {
        if state.zro_failures > 0 {
            state.zro_failures -= 1;
            return reply(503, json!({"code": "UNAVAILABLE", "message": "later"}));
        }
        return reply(200, json!({ "id": Uuid::new_v4() }));
    }
    let q = state.qitech.clone();
    if post && path.ends_with("/device_manager/account") {
        return if q.account_conflict {
            reply(409, json!({"title": "conflict"}))
        } else {
            reply(201, json!({}))
        };
    }
    if post && path.ends_with("/person") {
        return if q.person_conflict {
            reply(409, json!({"title": "conflict"}))
        } else {
            reply(201, json!({}))
        };
    }
    if post && path.ends_with("/device") {
        if state.qitech.device_failures > 0 {
            state.qitech.device_failures -= 1;
            return reply(500, json!({"title": "internal"}));
        }
        return if q.device_conflict {
            reply(409, json!({"title": "conflict"}))
        } else {
            reply(201, q.device)
        };
    }
    if !post && path.contains("/device/") {
        return reply(200, q.device);
    }
    reply(404, json!({"title": "not found"}))
}
