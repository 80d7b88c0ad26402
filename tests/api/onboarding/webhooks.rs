//! unico's webhooks: forged ones refused and bounded, every shape and duplicate, and those that
//! arrive before or while the process is stored.

use super::*;

/// An onboarding whose unico process is open for the next minute, with polling 30 s away: only
/// a webhook the test sends acts on it. The app, the onboarding's id and the process's.
async fn an_open_process() -> (TestApp, String, String) {
    an_open_process_of("900.000.008-41", &[("sandbox.processing_delay", "60s")]).await
}

/// Forged webhooks as the database keeps them: delivery rows, and the sum of the minute counts.
async fn forged_left(app: &TestApp) -> (i64, i64) {
    sqlx::query_as(
        "SELECT (SELECT count(*) FROM unico_webhooks WHERE NOT authenticated),
                (SELECT COALESCE(sum(deliveries), 0) FROM forged_webhooks)",
    )
    .fetch_one(&app.db)
    .await
    .unwrap()
}

/// An onboarding of `cpf` whose process unico has created, polled only 30 s later.
async fn an_open_process_of(cpf: &str, extra: &[(&str, &str)]) -> (TestApp, String, String) {
    let mut overrides = vec![("unico.poll_initial", "30s"), ("unico.poll_max", "60s")];
    overrides.extend_from_slice(extra);
    let app = TestApp::builder().config(&overrides).spawn().await;
    let id = app.start_onboarding(&onboarding_body(cpf)).await;
    let view = app
        .until(&id, Duration::from_secs(10), |v| {
            v["biometrics"]["process_id"].is_string()
        })
        .await;
    let process_id = view["biometrics"]["process_id"]
        .as_str()
        .unwrap()
        .to_owned();
    (app, id, process_id)
}

#[tokio::test]
async fn forged_webhooks_are_refused_and_change_nothing() {
    let (app, id, process_id) = an_open_process().await;
    let body = json!({"processId": process_id, "state": "PROCESS_STATE_FINISHED", "flow": "id"});
    for header in [
        None,
        Some("wrong-secret"),
        Some("sandbox-webhook-secre"),
        Some("sandbox-webhook-secret-"),
    ] {
        let mut request = app.http.post(app.url("/v1/webhooks/unico")).json(&body);
        if let Some(value) = header {
            request = request.header(WEBHOOK_HEADER, value);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 401, "{header:?}");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
    }
    // Counted in their minute's row, none kept as a delivery.
    let untrusted = forged_left(&app).await;
    assert_eq!(untrusted, (0, 4));
    let id = id.as_str();
    assert!(
        !app.events(id)
            .await
            .contains(&"webhook_received".to_owned())
    );
    let due_now: bool = sqlx::query_scalar(
        "SELECT run_at <= now() FROM steps WHERE onboarding_id = $1::uuid AND kind = 'read_process' AND status = 'pending'",
    )
    .bind(id)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert!(!due_now, "a forged webhook must not even wake the poller");
    // And nothing polled: the read-back step never ran, and GetProcess was never called (each
    // step stores its calls with its result).
    let runs: i32 = sqlx::query_scalar(
        "SELECT attempts FROM steps WHERE onboarding_id = $1::uuid AND kind = 'read_process'",
    )
    .bind(id)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(runs, 0);
    assert_eq!(app.unico_calls(id, "get_process").await, 0);
    app.stop().await;
}

#[tokio::test]
async fn a_flood_of_forged_webhooks_is_bounded_and_unicos_still_gets_through() {
    // 900.000.025-42 finishes without a webhook from the sandbox: only unico's webhook (or a
    // poll 30 s later) can bring its result within the test.
    let (app, id, process_id) = an_open_process_of(
        "900.000.025-42",
        &[
            ("unico.forged_webhooks_per_second", "2"),
            ("unico.forged_webhooks_burst", "5"),
            ("sandbox.processing_delay", "100ms"),
        ],
    )
    .await;
    let body = json!({"processId": process_id, "state": "PROCESS_STATE_FINISHED", "flow": "id"});

    let forged = 300;
    let sends = (0..forged).map(|i| {
        let mut request = app.http.post(app.url("/v1/webhooks/unico")).json(&body);
        if i % 2 == 0 {
            request = request.header(WEBHOOK_HEADER, format!("forged-{i}"));
        }
        request.send()
    });
    let answers = futures_util::future::join_all(sends).await;
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    for answer in &answers {
        let answer = answer.as_ref().unwrap();
        *statuses.entry(answer.status().as_u16()).or_default() += 1;
        if answer.status() == 429 {
            let wait: u64 = answer.headers()["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!((1..=60).contains(&wait), "{wait}");
        }
    }
    let refused = statuses.get(&401).copied().unwrap_or(0);
    assert_eq!(
        refused + statuses.get(&429).copied().unwrap_or(0),
        forged,
        "{statuses:?}"
    );
    // The burst and what the rate refills while they arrive; the rest are 429.
    assert!((5..=15).contains(&refused), "{statuses:?}");
    let (deliveries, minutes, counted): (i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM unico_webhooks WHERE NOT authenticated),
                (SELECT count(*) FROM forged_webhooks),
                (SELECT COALESCE(sum(deliveries), 0) FROM forged_webhooks)",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(deliveries, 0, "no row per forged delivery");
    assert!((1..=2).contains(&minutes), "one row a minute: {minutes}");
    assert_eq!(counted, refused as i64);

    // unico's own delivery, with the secret, right after the flood (once the sandbox finished
    // the process, as unico notifies): taken at once, and it brings the result well before the
    // first poll.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let genuine = app
        .http
        .post(app.url("/v1/webhooks/unico"))
        .header(WEBHOOK_HEADER, WEBHOOK_SECRET)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(genuine.status(), 204);
    let decided = app.until_decided(&id, Duration::from_secs(10)).await;
    assert_eq!(decided["outcome"], "approved", "{decided}");
    app.stop().await;
}

#[tokio::test]
async fn a_webhook_for_a_read_a_runner_holds_makes_it_due_again_without_taking_it() {
    let (app, id, process_id) = an_open_process().await;
    let process_id = process_id.as_str();
    // A runner somewhere holds the read for the next ten minutes.
    let held: (i32, chrono::DateTime<chrono::Utc>) = sqlx::query_as(
        "UPDATE steps SET claimed_at = now(), claimed_until = now() + interval '10 minutes',
                run_at = now() + interval '1 hour'
          WHERE onboarding_id = $1::uuid AND kind = 'read_process' AND status = 'pending'
          RETURNING attempts, claimed_until",
    )
    .bind(&id)
    .fetch_one(&app.db)
    .await
    .unwrap();
    let response = app
        .http
        .post(app.url("/v1/webhooks/unico"))
        .header(WEBHOOK_HEADER, WEBHOOK_SECRET)
        .json(&json!({"processId": process_id, "state": "PROCESS_STATE_FINISHED"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    // Not taken from the runner (its lease and count stand), but due again, so it runs once
    // more when that runner is done; the webhook is on the timeline and recorded as known.
    let after: (i32, chrono::DateTime<chrono::Utc>, bool) = sqlx::query_as(
        "SELECT attempts, claimed_until, run_at <= now() FROM steps
          WHERE onboarding_id = $1::uuid AND kind = 'read_process' AND status = 'pending'",
    )
    .bind(&id)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!((after.0, after.1), held);
    assert!(after.2, "made due again");
    assert!(
        app.events(&id)
            .await
            .contains(&"webhook_received".to_owned())
    );
    let known: Vec<bool> = sqlx::query_scalar(
        "SELECT known_process FROM unico_webhooks WHERE authenticated AND process_id = $1",
    )
    .bind(process_id)
    .fetch_all(&app.db)
    .await
    .unwrap();
    assert_eq!(known, [true]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        app.unico_calls(&id, "get_process").await,
        0,
        "nothing read it meanwhile"
    );
    app.stop().await;
}

#[tokio::test]
async fn webhook_shapes_duplicates_and_unknown_processes() {
    let app = TestApp::spawn().await;
    let send = |body: Value| {
        app.http
            .post(app.url("/v1/webhooks/unico"))
            .header(WEBHOOK_HEADER, WEBHOOK_SECRET)
            .json(&body)
            .send()
    };
    // Unknown process: recorded, answered 204, ignored.
    assert_eq!(
        send(json!({"processId": "not-ours", "state": "PROCESS_STATE_FINISHED"}))
            .await
            .unwrap()
            .status(),
        204
    );
    // The partner's shape, delivered twice.
    for _ in 0..2 {
        let response = send(json!({"eventDate": "2026-11-23T10:00:00-03:00", "event": "update_process", "data": {"id": "other", "status": 3}})).await.unwrap();
        assert_eq!(response.status(), 204);
    }
    // Not a notification at all.
    assert_eq!(send(json!({"hello": "world"})).await.unwrap().status(), 400);
    let bad_json = app
        .http
        .post(app.url("/v1/webhooks/unico"))
        .header(WEBHOOK_HEADER, WEBHOOK_SECRET)
        .body("{")
        .send()
        .await
        .unwrap();
    assert_eq!(bad_json.status(), 400);
    // Bodies PostgreSQL could not store, or far past any notification: refused, never a 500.
    let nul = send(json!({"processId": "p-\u{0}", "state": "x"}))
        .await
        .unwrap();
    assert_eq!(nul.status(), 400);
    let huge = send(json!({"processId": "a".repeat(1_000_000)}))
        .await
        .unwrap();
    assert_eq!(huge.status(), 413);
    let long = send(json!({"processId": "a".repeat(5_000)})).await.unwrap();
    assert_eq!(long.status(), 400);
    // A forged delivery is refused before its body is read, and only counted.
    let forged = app
        .http
        .post(app.url("/v1/webhooks/unico"))
        .header(WEBHOOK_HEADER, "forged")
        .json(&json!({"processId": "x", "padding": "b".repeat(2_000_000)}))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 401);
    let forged_rows = forged_left(&app).await;
    assert_eq!(forged_rows, (0, 1));
    let recorded: Vec<(Option<String>, bool)> = sqlx::query_as(
        "SELECT process_id, known_process FROM unico_webhooks WHERE authenticated ORDER BY id",
    )
    .fetch_all(&app.db)
    .await
    .unwrap();
    assert_eq!(
        recorded,
        [
            (Some("not-ours".into()), false),
            (Some("other".into()), false),
            (Some("other".into()), false),
            (None, false),
            (None, false),
            (None, false),
            (None, false)
        ]
    );
    // Notifications for processes nobody has queue no work and touch no onboarding.
    let touched: (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM steps), (SELECT count(*) FROM onboarding_events)",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(touched, (0, 0));
    app.stop().await;
}

/// A bare unico for the one thing the sandbox cannot stage: a webhook that arrives before
/// veredito has stored the process it names. Its process id is fixed, so the test can deliver
/// the notification first.
async fn unico_fake(process_id: &'static str) -> (String, Arc<AtomicUsize>) {
    unico_fake_holding(process_id, None).await
}

/// A table lock that the fake unico takes, on the database `db` names once the app runs, before
/// it answers CreateProcess: veredito's transaction that stores the process then waits on it
/// until the test lets it go.
#[derive(Default)]
struct HeldLock {
    db: std::sync::OnceLock<sqlx::PgPool>,
    tx: tokio::sync::Mutex<Option<sqlx::Transaction<'static, sqlx::Postgres>>>,
}

/// `unico_fake`, whose CreateProcess first takes `LOCK TABLE onboardings IN SHARE MODE` in
/// `hold`'s transaction when there is one.
async fn unico_fake_holding(
    process_id: &'static str,
    hold: Option<Arc<HeldLock>>,
) -> (String, Arc<AtomicUsize>) {
    use axum::routing::{get, post};
    let reads = Arc::new(AtomicUsize::new(0));
    let counter = reads.clone();
    let create = move || {
        let hold = hold.clone();
        async move {
            if let Some(held) = hold {
                let mut tx = held.db.get().unwrap().begin().await.unwrap();
                sqlx::query("LOCK TABLE onboardings IN SHARE MODE")
                    .execute(&mut *tx)
                    .await
                    .unwrap();
                *held.tx.lock().await = Some(tx);
            }
            axum::Json(json!({"id": process_id, "status": 1}))
        }
    };
    let router = axum::Router::new()
        .route(
            "/oauth2/token",
            post(|| async {
                axum::Json(
                    json!({"access_token": "fake", "expires_in": 3600, "token_type": "Bearer"}),
                )
            }),
        )
        .route("/processes/v1", post(create))
        .route(
            "/processes/v1/{id}",
            get(move || {
                counter.fetch_add(1, Ordering::SeqCst);
                async move {
                    axum::Json(json!({"id": process_id, "status": 3, "unicoId": {"result": "yes"}}))
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    (url, reads)
}

/// The app calling the fake unico at `unico`, whose polls would first look after 30 s.
async fn on_fake_unico(unico: &str) -> TestApp {
    TestApp::builder()
        .config(&[
            ("sandbox.unico_provider", "false"),
            ("unico.base_url", unico),
            ("unico.identity_url", unico),
            ("unico.poll_initial", "30s"),
            ("unico.poll_max", "60s"),
        ])
        .spawn()
        .await
}

/// unico's webhook that `process_id` finished; the status veredito answered.
async fn process_finished(app: &TestApp, process_id: &str) -> u16 {
    app.http
        .post(app.url("/v1/webhooks/unico"))
        .header(WEBHOOK_HEADER, WEBHOOK_SECRET)
        .json(&json!({"processId": process_id, "state": "PROCESS_STATE_FINISHED"}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn a_webhook_that_arrives_before_the_process_is_stored_still_counts() {
    let (unico, reads) = unico_fake("early-process-1").await;
    let app = on_fake_unico(&unico).await;
    assert_eq!(process_finished(&app, "early-process-1").await, 204);
    let started = std::time::Instant::now();
    let response = app
        .onboard(&key(), &onboarding_body("111.444.777-35"), Some(15))
        .await;
    assert_eq!(response.status(), 200);
    let view: Value = response.json().await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the early webhook made the process due at once"
    );
    assert_eq!(view["outcome"], "approved");
    assert_eq!(view["biometrics"]["process_id"], "early-process-1");
    assert_eq!(
        reads.load(Ordering::SeqCst),
        1,
        "one GetProcess, right after CreateProcess"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_webhook_that_arrives_while_the_process_is_being_stored_still_counts() {
    let held = Arc::new(HeldLock::default());
    let (unico, reads) = unico_fake_holding("racing-process-1", Some(held.clone())).await;
    let app = on_fake_unico(&unico).await;
    held.db.set(app.db.clone()).unwrap();
    let started = std::time::Instant::now();
    let onboarding = tokio::spawn(
        app.http
            .post(app.url("/v1/onboardings"))
            .bearer_auth(ONBOARDING_KEY)
            .header("Idempotency-Key", key())
            .header("Prefer", "wait=15")
            .json(&onboarding_body("111.444.777-35"))
            .send(),
    );
    // CreateProcess has been answered; veredito's transaction that stores the process has
    // looked for an earlier webhook (none) and now waits on the lock to move the onboarding.
    while held.tx.lock().await.is_none() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eventually(
        Duration::from_secs(10),
        "veredito's transaction waits on the lock",
        || async {
            sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock')",
            )
            .fetch_one(&app.db)
            .await
            .unwrap()
        },
    )
    .await;
    // The webhook comes in between: it cannot see the process yet.
    assert_eq!(process_finished(&app, "racing-process-1").await, 204);
    let known: bool =
        sqlx::query_scalar("SELECT known_process FROM unico_webhooks WHERE process_id = $1")
            .bind("racing-process-1")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert!(!known, "the webhook came before the process was stored");
    held.tx
        .lock()
        .await
        .take()
        .unwrap()
        .rollback()
        .await
        .unwrap();
    let response = onboarding.await.unwrap().unwrap();
    assert_eq!(response.status(), 200);
    let view: Value = response.json().await.unwrap();
    assert_eq!(view["outcome"], "approved");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the webhook was looked at again once the process was stored, not left to the poll"
    );
    assert_eq!(reads.load(Ordering::SeqCst), 1, "one GetProcess");
    app.stop().await;
}
