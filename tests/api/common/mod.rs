//! Starts veredito on port 0 against a fresh PostgreSQL database, and talks to it over HTTP.

pub mod browser;
pub mod identity_provider;
pub mod isolation;

use std::path::PathBuf;
use std::sync::Arc;
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
        // those rules (tests/api/risk_memory.rs) set their own.
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

    /// GET `path` with `key`, the response as it came.
    pub async fn get_response(&self, path: &str, key: &str) -> Response {
        self.http
            .get(self.url(path))
            .bearer_auth(key)
            .send()
            .await
            .expect("request sent")
    }

    /// POST `body` to `path` with `key`: the status and the JSON answer (Null when there is none).
    pub async fn post_json(&self, path: &str, key: &str, body: &Value) -> (u16, Value) {
        let response = self
            .http
            .post(self.url(path))
            .bearer_auth(key)
            .json(body)
            .send()
            .await
            .expect("request sent");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// `/metrics` as scraped.
    pub async fn metrics(&self) -> String {
        let response = self.http.get(self.url("/metrics")).send().await;
        response.expect("metrics answer").text().await.unwrap()
    }

    /// GET `path` with `key`: the status and the JSON body (Null when there is none).
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

    /// Signs in to the console with `key` (as a browser does: the sign-in page first, for its
    /// pre-session token) and answers the session's `Cookie` header.
    pub async fn console_session(&self, key: &str) -> String {
        ConsoleSession::sign_in(self, key).await.cookie
    }

    /// GET a console page with a session's cookie: the status and the HTML.
    pub async fn console_get(&self, cookie: &str, path: &str) -> (u16, String) {
        let response = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
            .get(self.url(path))
            .header("Cookie", cookie)
            .send()
            .await
            .expect("console request sent");
        let status = response.status().as_u16();
        (status, response.text().await.unwrap_or_default())
    }

    /// Starts an onboarding without waiting and answers its id, whatever its state.
    pub async fn start_onboarding(&self, body: &Value) -> String {
        let response = self.onboard(&key(), body, Some(0)).await;
        assert!(
            response.status() == 200 || response.status() == 202,
            "unexpected {}",
            response.status()
        );
        let view: Value = response.json().await.unwrap();
        view["id"].as_str().unwrap().to_owned()
    }

    pub async fn validate(
        &self,
        idempotency_key: &str,
        body: &Value,
    ) -> (u16, reqwest::header::HeaderMap, Value) {
        let response = self
            .http
            .post(self.url("/v1/device-validations"))
            .bearer_auth(ONBOARDING_KEY)
            .header("Idempotency-Key", idempotency_key)
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

    pub async fn onboarding(&self, id: &str) -> Value {
        let (status, view) = self
            .get(&format!("/v1/onboardings/{id}"), ONBOARDING_KEY)
            .await;
        assert_eq!(status, 200, "{view}");
        view
    }

    /// Polls GET until the onboarding is decided, up to `limit`.
    pub async fn until_decided(&self, id: &str, limit: Duration) -> Value {
        self.until(id, limit, |view| view["status"] == "decided")
            .await
    }

    /// Polls GET until `check` holds for the onboarding, up to `limit`.
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

    /// How many calls of `operation` veredito made to `provider` for this onboarding. Every
    /// step stores its calls in the transaction that stores their result, so the count is
    /// complete for whatever the onboarding's state shows.
    pub async fn calls(&self, onboarding_id: &str, provider: &str, operation: &str) -> i64 {
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

    pub async fn unico_calls(&self, onboarding_id: &str, operation: &str) -> i64 {
        self.calls(onboarding_id, "unico", operation).await
    }

    /// One retention pass, as the job runs it; answers how many onboardings it erased.
    pub async fn retention_pass(&self) -> usize {
        veredito::jobs::retention::erase_expired(&self.state, &CancellationToken::new())
            .await
            .expect("retention runs")
    }

    /// The sealed statement of the review case `case_id`, as stored.
    pub async fn sealed_statement(&self, case_id: &str) -> Option<Vec<u8>> {
        sqlx::query_scalar("SELECT statement_ciphertext FROM review_cases WHERE id = $1::uuid")
            .bind(case_id)
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

/// A valid CPF made from `n` (its nine first digits), so every test person is distinct.
pub fn cpf_from(n: u32) -> String {
    let base = format!("{:09}", 123_000_000 + n);
    let digits: Vec<u32> = base.chars().map(|c| c.to_digit(10).unwrap()).collect();
    let check = |ds: &[u32]| {
        let start = ds.len() as u32 + 1;
        let sum: u32 = ds
            .iter()
            .enumerate()
            .map(|(i, d)| d * (start - i as u32))
            .sum();
        let rest = (sum * 10) % 11;
        if rest == 10 { 0 } else { rest }
    };
    let mut all = digits.clone();
    all.push(check(&all));
    all.push(check(&all));
    let d: String = all
        .iter()
        .map(|d| char::from_digit(*d, 10).unwrap())
        .collect();
    format!("{}.{}.{}-{}", &d[0..3], &d[3..6], &d[6..9], &d[9..11])
}

/// Waits until `holds` answers true, looking every 20 ms, and fails the test if it does not
/// within `limit`: what a test waits for, instead of sleeping for as long as it usually takes.
pub async fn eventually<F, Fut>(limit: Duration, what: &str, mut holds: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = tokio::time::Instant::now();
    while !holds().await {
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A port free at the time of asking, for a `serve` started as its own process.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The built binary, run from the project folder with the sandbox on and none of this
/// process's veredito variables.
pub fn veredito_command() -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_veredito"));
    command.current_dir(env!("CARGO_MANIFEST_DIR"));
    for (key, _) in std::env::vars() {
        if key.starts_with("VEREDITO") || key == "DATABASE_URL" || key == "RUST_LOG" {
            command.env_remove(key);
        }
    }
    command.env("VEREDITO_ENV", "sandbox");
    // As in test_overrides: the test people share a device, a phone and an e-mail.
    command.env("VEREDITO__POLICY__VELOCITY", "[]");
    command.env("VEREDITO__POLICY__LINKED_FRAUD", "null");
    command
}

/// Waits until `base` answers ready, at most 10 s.
pub async fn wait_ready(base: &str) {
    let http = Client::new();
    for _ in 0..100 {
        if let Ok(response) = http.get(format!("{base}/health/ready")).send().await {
            if response.status() == 200 {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{base} did not become ready");
}

/// Sends SIGTERM to a `serve` started as its own process and answers what it wrote.
pub async fn terminate(child: std::process::Child) -> std::process::Output {
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap()
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

/// A console session opened over HTTP as a browser opens one: the sign-in page, then its form
/// with the key; redirects are not followed, so each answer can be looked at.
pub struct ConsoleSession {
    pub http: Client,
    pub base: String,
    pub cookie: String,
    pub csrf: String,
}

/// The value of the hidden form field `name` in `html`, if the page has one.
pub fn hidden_field(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].to_owned())
}

/// The `name=value` part of the cookie `name` that `response` sets.
pub fn set_cookie(response: &Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .find(|pair| pair.starts_with(&format!("{name}=")))
        .map(str::to_owned)
}

impl ConsoleSession {
    pub async fn sign_in(app: &TestApp, key: &str) -> ConsoleSession {
        let http = Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let page = http.get(app.url("/console/sign-in")).send().await.unwrap();
        let pre_session = set_cookie(&page, "veredito_sign_in");
        let html = page.text().await.unwrap();
        let mut form = vec![("api_key", key.to_owned())];
        if let Some(token) = hidden_field(&html, "sign_in_token") {
            form.push(("sign_in_token", token));
        }
        let mut request = http
            .post(app.url("/console/sign-in"))
            .header("Sec-Fetch-Site", "same-origin")
            .form(&form);
        if let Some(cookie) = &pre_session {
            request = request.header(reqwest::header::COOKIE, cookie);
        }
        let signed_in = request.send().await.unwrap();
        assert_eq!(signed_in.status(), 303, "the console takes {key}");
        let cookie = set_cookie(&signed_in, "veredito_console").expect("a session cookie");
        let mut session = ConsoleSession {
            http,
            base: app.base.clone(),
            cookie,
            csrf: String::new(),
        };
        // The first page the key may see carries the token in its sign-out form.
        let home = signed_in
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("/console/reviews")
            .to_owned();
        let first = session.get(&home).await.text().await.unwrap();
        session.csrf = hidden_field(&first, "csrf").expect("the session's form token");
        session
    }

    pub async fn get(&self, path: &str) -> Response {
        self.http
            .get(format!("{}{path}", self.base))
            .header(reqwest::header::COOKIE, &self.cookie)
            .send()
            .await
            .unwrap()
    }

    /// Posts a console form with the session's token and `fields`.
    pub async fn post(&self, path: &str, fields: &[(&str, &str)]) -> Response {
        let mut form = vec![("csrf", self.csrf.as_str())];
        form.extend_from_slice(fields);
        self.http
            .post(format!("{}{path}", self.base))
            .header(reqwest::header::COOKIE, &self.cookie)
            .header("Sec-Fetch-Site", "same-origin")
            .form(&form)
            .send()
            .await
            .unwrap()
    }
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
