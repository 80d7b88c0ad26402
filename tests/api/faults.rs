//! Provider faults are absorbed: a unico that fails, rate-limits, stalls or loses its token
//! endpoint for a moment costs the caller a 202 at worst, never a 5xx, and the onboarding is
//! still decided with exactly one unico process. A service stopped while a request waits
//! answers it 202 and finishes the onboarding after it starts again.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::*;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use serde_json::{Value, json};

mod bursts;
mod failed_steps;
mod retries;
mod stalls;

/// What the fake answers to one CreateProcess.
#[derive(Clone, Debug)]
enum Create {
    Status(u16),
    RateLimited {
        retry_after_secs: u64,
    },
    /// Answers a final, approving process after this long.
    SlowOk(Duration),
}

#[derive(Default)]
struct Script {
    /// Answers to the next CreateProcess calls; once empty, every call succeeds at once.
    creates: VecDeque<Create>,
    /// How many token requests answer 503 before the endpoint recovers.
    token_failures: usize,
}

#[derive(Default)]
struct Seen {
    tokens: Vec<Instant>,
    creates: Vec<Instant>,
    /// Processes the fake created (answered 200 for).
    created: usize,
    reads: usize,
}

#[derive(Clone, Default)]
struct Fake {
    script: Arc<Mutex<Script>>,
    seen: Arc<Mutex<Seen>>,
}

impl Fake {
    async fn start(script: Script) -> (Fake, String) {
        let fake = Fake {
            script: Arc::new(Mutex::new(script)),
            seen: Arc::default(),
        };
        let (token, create, read) = (fake.clone(), fake.clone(), fake.clone());
        let router = axum::Router::new()
            .route(
                "/oauth2/token",
                post(move || {
                    let fake = token.clone();
                    async move { fake.token() }
                }),
            )
            .route(
                "/processes/v1",
                post(move |headers: HeaderMap| {
                    let fake = create.clone();
                    async move { fake.create(headers).await }
                }),
            )
            .route(
                "/processes/v1/{id}",
                get(
                    move |axum::extract::Path(id): axum::extract::Path<String>| {
                        read.seen.lock().unwrap().reads += 1;
                        async move { axum::Json(approved(&id)) }
                    },
                ),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await });
        (fake, url)
    }

    fn token(&self) -> axum::response::Response {
        self.seen.lock().unwrap().tokens.push(Instant::now());
        let mut script = self.script.lock().unwrap();
        if script.token_failures > 0 {
            script.token_failures -= 1;
            return (StatusCode::SERVICE_UNAVAILABLE, "identity host down").into_response();
        }
        axum::Json(
            json!({"access_token": "fake-token", "expires_in": 3600, "token_type": "Bearer"}),
        )
        .into_response()
    }

    async fn create(&self, headers: HeaderMap) -> axum::response::Response {
        assert_eq!(headers["authorization"], "Bearer fake-token");
        self.seen.lock().unwrap().creates.push(Instant::now());
        let next = self.script.lock().unwrap().creates.pop_front();
        match next {
            Some(Create::Status(status)) => {
                let status = StatusCode::from_u16(status).unwrap();
                (status, axum::Json(json!({"error": {"code": "99999", "description": "Maria da Silva 11144477735 failed"}}))).into_response()
            }
            Some(Create::RateLimited { retry_after_secs }) => (
                StatusCode::TOO_MANY_REQUESTS,
                [("retry-after", retry_after_secs.to_string())],
                "slow down",
            )
                .into_response(),
            Some(Create::SlowOk(delay)) => {
                tokio::time::sleep(delay).await;
                self.created()
            }
            None => self.created(),
        }
    }

    fn created(&self) -> axum::response::Response {
        let mut seen = self.seen.lock().unwrap();
        seen.created += 1;
        let id = format!("fake-process-{}", seen.created);
        axum::Json(approved(&id)).into_response()
    }

    fn created_count(&self) -> usize {
        self.seen.lock().unwrap().created
    }

    fn creates(&self) -> Vec<Instant> {
        self.seen.lock().unwrap().creates.clone()
    }
}

fn approved(id: &str) -> Value {
    json!({"id": id, "status": 3, "unicoId": {"result": "yes"}, "liveness": 1})
}

async fn app_on(unico: &str, extra: &[(&str, &str)]) -> TestApp {
    let mut all = vec![
        ("sandbox.unico_provider", "false"),
        ("unico.base_url", unico),
        ("unico.identity_url", unico),
    ];
    all.extend_from_slice(extra);
    TestApp::builder().config(&all).spawn().await
}

/// Onboards with `Prefer: wait=N`; the caller must get 200 or 202, never an error.
async fn onboard_absorbed(app: &TestApp, wait: u64) -> (u16, String) {
    let response = app
        .onboard(&key(), &onboarding_body("111.444.777-35"), Some(wait))
        .await;
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    assert!(
        status == 200 || status == 202,
        "a provider fault reached the caller as {status}: {body}"
    );
    (status, body["id"].as_str().unwrap().to_owned())
}
