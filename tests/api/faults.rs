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

async fn decided_once(app: &TestApp, fake: &Fake, id: &str) -> Value {
    let view = app.until_decided(id, Duration::from_secs(20)).await;
    assert_eq!(view["outcome"], "approved", "{view}");
    assert_eq!(fake.created_count(), 1, "exactly one unico process");
    assert_eq!(
        app.unico_calls(id, "create_process").await as usize,
        fake.creates().len()
    );
    view
}

#[tokio::test]
async fn create_process_500_twice_then_ok() {
    let (fake, url) = Fake::start(Script {
        creates: [Create::Status(500), Create::Status(500)].into(),
        ..Default::default()
    })
    .await;
    let app = app_on(&url, &[]).await;
    let (status, id) = onboard_absorbed(&app, 10).await;
    assert_eq!(status, 200, "retried within the wait");
    decided_once(&app, &fake, &id).await;
    assert_eq!(fake.creates().len(), 3);
    let events = app.events(&id).await;
    assert_eq!(
        events
            .iter()
            .filter(|e| *e == "process_create_failed")
            .count(),
        2,
        "{events:?}"
    );
    // The provider's text (which here names the person) is kept nowhere but in the scrubbed
    // call log: the step records the code.
    let errors: Vec<Option<String>> =
        sqlx::query_scalar("SELECT last_error FROM steps WHERE onboarding_id = $1::uuid")
            .bind(&id)
            .fetch_all(&app.db)
            .await
            .unwrap();
    assert!(
        errors.iter().flatten().all(|e| !e.contains("Maria")),
        "{errors:?}"
    );
    for (table, column) in [
        ("onboarding_events", "detail::text"),
        ("decisions", "evidence::text"),
        ("steps", "coalesce(last_error, '')"),
    ] {
        let leaked: i64 = sqlx::query_scalar(&format!(
            "SELECT count(*) FROM {table}
              WHERE {column} LIKE '%Maria%' OR {column} LIKE '%11144477735%'"
        ))
        .fetch_one(&app.db)
        .await
        .unwrap();
        assert_eq!(leaked, 0, "{table}");
    }
    let view = app.onboarding(&id).await.to_string();
    assert!(
        !view.contains("Maria") && !view.contains("11144477735"),
        "{view}"
    );
    app.stop().await;
}

#[tokio::test]
async fn create_process_503_twice_then_ok() {
    let (fake, url) = Fake::start(Script {
        creates: [Create::Status(503), Create::Status(503)].into(),
        ..Default::default()
    })
    .await;
    let app = app_on(&url, &[]).await;
    let (_, id) = onboard_absorbed(&app, 10).await;
    decided_once(&app, &fake, &id).await;
    assert_eq!(fake.creates().len(), 3);
    app.stop().await;
}

#[tokio::test]
async fn rate_limited_create_process_waits_for_retry_after() {
    let (fake, url) = Fake::start(Script {
        creates: [Create::RateLimited {
            retry_after_secs: 2,
        }]
        .into(),
        ..Default::default()
    })
    .await;
    let app = app_on(&url, &[]).await;
    let (_, id) = onboard_absorbed(&app, 10).await;
    decided_once(&app, &fake, &id).await;
    let creates = fake.creates();
    assert_eq!(creates.len(), 2);
    let gap = creates[1] - creates[0];
    assert!(
        gap >= Duration::from_secs(2),
        "retried {gap:?} after a 429 asking for 2 s"
    );
    app.stop().await;
}

#[tokio::test]
async fn token_endpoint_503_twice_then_ok() {
    let (fake, url) = Fake::start(Script {
        token_failures: 2,
        ..Default::default()
    })
    .await;
    let app = app_on(&url, &[]).await;
    let (_, id) = onboard_absorbed(&app, 10).await;
    decided_once(&app, &fake, &id).await;
    assert_eq!(fake.seen.lock().unwrap().tokens.len(), 3);
    assert_eq!(
        fake.creates().len(),
        1,
        "CreateProcess only once a token was had"
    );
    app.stop().await;
}

#[tokio::test]
async fn slow_create_process_answers_202_and_decides_later() {
    let (fake, url) = Fake::start(Script {
        creates: [Create::SlowOk(Duration::from_secs(15))].into(),
        ..Default::default()
    })
    .await;
    let app = app_on(&url, &[("unico.timeout", "30s")]).await;
    // A second replica whose runner looks for due steps the whole time: the 15 s call outlasts
    // the step's 4 s lease many times, and its claim, renewed while it runs, keeps the step
    // from running twice at once.
    let second = app
        .replica(&[
            ("sandbox.unico_provider", "false"),
            ("unico.base_url", &url),
            ("unico.identity_url", &url),
            ("unico.timeout", "30s"),
        ])
        .await;
    let started = Instant::now();
    let (status, id) = onboard_absorbed(&app, 3).await;
    let answered = started.elapsed();
    assert_eq!(status, 202);
    assert!(
        answered >= Duration::from_secs(3) && answered < Duration::from_secs(5),
        "answered after {answered:?}"
    );
    // Meanwhile the service goes on serving: health, and another onboarding decided at once.
    let health = Instant::now();
    let live = app.http.get(app.url("/health/live")).send().await.unwrap();
    assert_eq!(live.status(), 200);
    assert!(health.elapsed() < Duration::from_millis(500));
    let (other_status, other) = onboard_absorbed(&app, 10).await;
    assert_eq!(other_status, 200);
    assert_eq!(app.onboarding(&other).await["outcome"], "approved");
    assert_eq!(app.onboarding(&id).await["status"], "processing");

    let view = app.until_decided(&id, Duration::from_secs(25)).await;
    assert_eq!(view["outcome"], "approved");
    assert_eq!(fake.created_count(), 2, "one process for each onboarding");
    assert_eq!(fake.creates().len(), 2, "one CreateProcess call for each");
    assert_eq!(app.unico_calls(&id, "create_process").await, 1);
    second.stop().await;
    app.stop().await;
}

#[tokio::test]
async fn stopping_answers_a_waiting_request_and_the_next_start_decides() {
    // The sandbox takes 3 s per process: the request is still waiting when the service stops.
    let app = TestApp::builder()
        .config(&[
            ("sandbox.processing_delay", "3s"),
            ("sandbox.webhook_delay", "50ms"),
            ("unico.poll_initial", "500ms"),
        ])
        .spawn()
        .await;
    let request = {
        let http = app.http.clone();
        let url = app.url("/v1/onboardings");
        tokio::spawn(async move {
            let started = Instant::now();
            let response = http
                .post(url)
                .bearer_auth(ONBOARDING_KEY)
                .header("Idempotency-Key", key())
                .header("Prefer", "wait=30")
                .json(&onboarding_body("900.000.007-60"))
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            let location = response
                .headers()
                .get("location")
                .map(|l| l.to_str().unwrap().to_owned());
            let body: Value = response.json().await.unwrap();
            (status, location, body, started.elapsed())
        })
    };
    // Stop once the process is open at unico.
    let started = Instant::now();
    let id = loop {
        let open: Option<String> =
            sqlx::query_scalar("SELECT onboarding_id::text FROM unico_processes LIMIT 1")
                .fetch_optional(&app.db)
                .await
                .unwrap();
        if let Some(id) = open {
            break id;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no process created"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let stopping = Instant::now();
    let app = app.restart().await;
    let (status, location, body, _) = request.await.unwrap();
    assert_eq!(status, 202, "{body}");
    assert_eq!(
        location.as_deref(),
        Some(format!("/v1/onboardings/{id}").as_str())
    );
    assert_eq!(body["status"], "processing");
    assert!(stopping.elapsed() < Duration::from_secs(5));
    let view = app.until_decided(&id, Duration::from_secs(15)).await;
    assert_eq!(view["outcome"], "approved", "{view}");
    assert_eq!(app.unico_calls(&id, "create_process").await, 1);
    app.stop().await;
}

#[tokio::test]
async fn a_process_never_created_is_reviewed_at_the_deadline() {
    let (fake, url) = Fake::start(Script {
        creates: std::iter::repeat_n(Create::Status(503), 1000).collect(),
        ..Default::default()
    })
    .await;
    let app = app_on(&url, &[("policy.biometrics_deadline", "2s")]).await;
    let (status, id) = onboard_absorbed(&app, 1).await;
    assert_eq!(status, 202);
    let view = app.until_decided(&id, Duration::from_secs(15)).await;
    assert_eq!(view["outcome"], "review", "{view}");
    assert_eq!(reason_codes(&view), ["biometrics.timeout"]);
    assert_eq!(fake.created_count(), 0);
    let attempts = fake.creates().len();
    assert!(attempts >= 3, "retried until the deadline: {attempts}");
    assert_eq!(
        app.unico_calls(&id, "create_process").await as usize,
        attempts
    );
    // The selfie waited sealed for a retry; with the decision it is gone.
    let selfie: Option<Vec<u8>> =
        sqlx::query_scalar("SELECT selfie_ciphertext FROM onboardings WHERE id = $1::uuid")
            .bind(&id)
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(selfie, None);
    app.stop().await;
}

#[tokio::test]
async fn a_burst_past_the_inline_bound_is_left_to_the_runners_and_all_decided() {
    // Reads counters of the process's one metrics registry: alone in a process.
    if isolation::own_process(
        module_path!(),
        "a_burst_past_the_inline_bound_is_left_to_the_runners_and_all_decided",
        isolation::Server::Shared,
    )
    .await
    {
        return;
    }
    // Each CreateProcess takes 4 s, so 150 requests at once hold more steps than a replica
    // runs inline (64): the rest go to the runners through the queue.
    let (fake, url) = Fake::start(Script {
        creates: std::iter::repeat_n(Create::SlowOk(Duration::from_millis(4000)), 150).collect(),
        ..Default::default()
    })
    .await;
    let app = app_on(&url, &[]).await;
    let ids: Vec<String> = futures_util::future::join_all((0..150).map(|_| async {
        let response = app
            .http
            .post(app.url("/v1/onboardings"))
            .bearer_auth(ONBOARDING_KEY)
            .header("Idempotency-Key", key())
            .header("Prefer", "respond-async")
            .json(&onboarding_body("111.444.777-35"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 202);
        response.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }))
    .await;
    for id in &ids {
        let view = app.until_decided(id, Duration::from_secs(30)).await;
        assert_eq!(view["outcome"], "approved");
        assert_eq!(
            app.unico_calls(id, "create_process").await,
            1,
            "one process each"
        );
    }
    assert_eq!(fake.created_count(), 150);
    let metrics = app
        .http
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let handed: f64 = metrics
        .lines()
        .find(|l| l.starts_with("veredito_steps_handed_to_runners_total "))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    assert!(
        handed > 0.0,
        "some steps were handed to the runners: {handed} {}",
        metrics
            .lines()
            .filter(|l| l.contains("handed"))
            .collect::<Vec<_>>()
            .join(" / ")
    );
    app.stop().await;
}

#[tokio::test]
async fn a_burst_toward_unico_is_paced_instead_of_refused() {
    let (fake, url) = Fake::start(Script::default()).await;
    let app = app_on(&url, &[("unico.requests_per_second", "5")]).await;
    let requests = (0..10).map(|n| {
        let app = &app;
        async move {
            let response = app
                .onboard(&key(), &onboarding_body(&cpf_from(700 + n)), Some(15))
                .await;
            assert_eq!(response.status(), 200);
        }
    });
    futures_util::future::join_all(requests).await;
    let creates = fake.creates();
    assert_eq!(
        creates.len(),
        10,
        "each onboarding created once, none refused"
    );
    // 5 a second: ten calls (and the token exchange) spread over more than a second and a half.
    let span = creates[9] - creates[0];
    assert!(span >= Duration::from_millis(1500), "10 calls in {span:?}");
    for pair in creates.windows(6) {
        assert!(
            pair[5] - pair[0] >= Duration::from_millis(900),
            "six calls within {:?}",
            pair[5] - pair[0]
        );
    }
    app.stop().await;
}

/// A step that fails on veredito's own side (here PostgreSQL refuses every decision) backs off
/// and, at `jobs.step_max_failures`, ends `failed`: counted in /metrics, written in the
/// onboarding's timeline, and run again by `veredito retry-steps` once the fault is fixed.
#[tokio::test]
async fn a_step_failing_on_our_side_backs_off_ends_failed_and_an_operator_retries_it() {
    // Reads counters of the process's one metrics registry: alone in a process.
    if isolation::own_process(
        module_path!(),
        "a_step_failing_on_our_side_backs_off_ends_failed_and_an_operator_retries_it",
        isolation::Server::Shared,
    )
    .await
    {
        return;
    }
    let app = TestApp::builder()
        .config(&[
            ("jobs.step_retry_initial", "200ms"),
            ("jobs.step_retry_max", "1s"),
            ("jobs.step_max_failures", "3"),
        ])
        .spawn()
        .await;
    sqlx::query(
        "CREATE FUNCTION refuse_decisions() RETURNS trigger LANGUAGE plpgsql AS
         $$ BEGIN RAISE EXCEPTION 'decisions refused by the test'; END $$",
    )
    .execute(&app.db)
    .await
    .unwrap();
    sqlx::query(
        "CREATE TRIGGER refuse_decisions BEFORE INSERT ON decisions
         FOR EACH ROW EXECUTE FUNCTION refuse_decisions()",
    )
    .execute(&app.db)
    .await
    .unwrap();
    // unico rejects this one at once; storing the decision is what fails.
    let id = app
        .start_onboarding(&onboarding_body("900.000.006-80"))
        .await;
    let started = Instant::now();
    let (status, failures, last_error): (String, i32, Option<String>) = loop {
        let row: (String, i32, Option<String>) = sqlx::query_as(
            "SELECT status, failures, last_error FROM steps
              WHERE onboarding_id = $1::uuid AND kind = 'create_process'",
        )
        .bind(&id)
        .fetch_one(&app.db)
        .await
        .unwrap();
        if row.0 != "pending" || started.elapsed() > Duration::from_secs(10) {
            break row;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let took = started.elapsed();
    assert_eq!(status, "failed");
    assert_eq!(failures, 3);
    assert_eq!(last_error.as_deref(), Some("database.refused"));
    // Backed off between runs (200 ms then 400 ms, less 20 % jitter), not run again at once.
    assert!(took >= Duration::from_millis(480), "{took:?}");
    assert!(app.events(&id).await.contains(&"step_failed".to_owned()));
    let metrics = app.http.get(app.url("/metrics")).send().await.unwrap();
    let text = metrics.text().await.unwrap();
    assert!(
        text.lines()
            .any(|l| l == "veredito_steps_failed{kind=\"create_process\"} 1"),
        "{}",
        text.lines()
            .filter(|l| l.contains("steps_failed"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    // It stays failed: no runner takes it again on its own.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let runs: i32 = sqlx::query_scalar(
        "SELECT attempts FROM steps WHERE onboarding_id = $1::uuid AND kind = 'create_process'",
    )
    .bind(&id)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(runs, 3, "not run again while failed");

    // The operator fixes the fault and retries it.
    sqlx::query("DROP TRIGGER refuse_decisions ON decisions")
        .execute(&app.db)
        .await
        .unwrap();
    let retried = veredito_command()
        .args(["retry-steps", "--all"])
        .env("VEREDITO__DATABASE__URL", &app.db_url)
        .output()
        .unwrap();
    assert!(retried.status.success(), "{retried:?}");
    let printed = String::from_utf8_lossy(&retried.stdout);
    assert_eq!(
        printed.lines().count(),
        1,
        "one step queued again: {printed}"
    );
    let view = app.until_decided(&id, Duration::from_secs(10)).await;
    assert_eq!(view["outcome"], "rejected");
    let events = app.events(&id).await;
    let failed_at = events.iter().position(|e| e == "step_failed").unwrap();
    let retried_at = events.iter().position(|e| e == "step_retried").unwrap();
    assert!(failed_at < retried_at, "{events:?}");
    app.stop().await;
}

/// At unico's documented 10 requests a second, 40 onboardings at once: the GetProcess that a
/// webhook asks for goes before the CreateProcess calls still waiting, so each decision follows
/// its webhook within 1.5 s while the burst's new processes are still being created.
#[tokio::test]
async fn at_unicos_rate_a_webhook_is_answered_before_new_processes_are_created() {
    let app = TestApp::builder()
        .config(&[
            ("unico.requests_per_second", "10"),
            ("sandbox.processing_delay", "1s"),
            // Polling is the fallback; here the webhooks drive every decision.
            ("unico.poll_initial", "20s"),
            ("unico.poll_max", "30s"),
        ])
        .spawn()
        .await;
    let asynchronous = [
        "900.000.007-60",
        "900.000.008-41",
        "900.000.009-22",
        "900.000.012-28",
        "900.000.015-70",
        "900.000.016-51",
        "900.000.018-13",
        "900.000.019-02",
    ];
    let ids = futures_util::future::join_all((0..40).map(|n| {
        let app = &app;
        async move {
            app.start_onboarding(&onboarding_body(asynchronous[n % asynchronous.len()]))
                .await
        }
    }))
    .await;
    for id in &ids {
        app.until_decided(id, Duration::from_secs(30)).await;
    }
    let lags: Vec<(String, f64, i64)> = sqlx::query_as(
        "SELECT d.onboarding_id::text,
                extract(epoch FROM d.decided_at - w.at)::float8,
                (SELECT count(*) FROM onboarding_events e
                  WHERE e.onboarding_id = d.onboarding_id AND e.kind = 'webhook_received')
           FROM decisions d
           JOIN LATERAL (SELECT min(at) AS at FROM onboarding_events e
                          WHERE e.onboarding_id = d.onboarding_id
                            AND e.kind = 'webhook_received') w ON true",
    )
    .fetch_all(&app.db)
    .await
    .unwrap();
    assert_eq!(lags.len(), 40);
    assert!(
        lags.iter().all(|(_, _, webhooks)| *webhooks >= 1),
        "every decision followed a webhook: {lags:?}"
    );
    let slowest = lags.iter().map(|(_, lag, _)| *lag).fold(0.0, f64::max);
    // The last CreateProcess went out about 4 s after the first: the burst was still being
    // created while the first webhooks came.
    let created: (f64,) = sqlx::query_as(
        "SELECT extract(epoch FROM max(created_at) - min(created_at))::float8 FROM unico_processes",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    eprintln!(
        "webhook to decision, slowest of 40: {slowest:.3} s; processes created over {:.1} s",
        created.0
    );
    assert!(created.0 > 3.0, "paced to 10 a second: {}", created.0);
    assert!(slowest < 1.5, "slowest webhook to decision: {slowest:.3} s");
    app.stop().await;
}
