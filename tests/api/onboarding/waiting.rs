//! A process that unico finishes later: woken by the webhook, read by polling, reviewed at the
//! deadline, answered to waiting requests, surviving a restart.

use super::*;

/// Onboarding `id`'s unico process as stored (final and finished, its result) and its device
/// registration's step, if it has one.
async fn stored_process(app: &TestApp, id: &str) -> (bool, Value, Option<String>) {
    let id: uuid::Uuid = id.parse().unwrap();
    sqlx::query_as(
        "SELECT p.final AND p.finished_at IS NOT NULL, p.result, r.step
           FROM unico_processes p LEFT JOIN device_registrations r USING (onboarding_id)
          WHERE p.onboarding_id = $1",
    )
    .bind(id)
    .fetch_one(&app.db)
    .await
    .unwrap()
}

#[tokio::test]
async fn webhook_wakes_the_poller_before_its_backoff() {
    // Polling is slow here (first look after 30 s), so only the webhook can explain a fast verdict.
    let app = TestApp::builder()
        .config(&[("unico.poll_initial", "30s"), ("unico.poll_max", "60s")])
        .spawn()
        .await;
    let started = std::time::Instant::now();
    let response = app
        .onboard(&key(), &onboarding_body("900.000.008-41"), Some(20))
        .await;
    assert_eq!(response.status(), 200);
    let view: Value = response.json().await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(view["outcome"], "approved");
    let id = view["id"].as_str().unwrap();
    assert_eq!(
        app.events(id).await,
        [
            "received",
            "process_created",
            "webhook_received",
            "poll",
            "device_registration_queued",
            "device_registration_answered",
            "decided"
        ]
    );
    // The webhook is a wake-up: the result was still read with GetProcess, and stored so: the
    // process final with what GET answers, out of the polling queue, the device's registration
    // done.
    assert_eq!(app.unico_calls(id, "get_process").await, 1);
    let (final_, result, registration) = stored_process(&app, id).await;
    assert!(final_, "the process is final");
    assert_eq!(result, view["biometrics"]);
    assert_eq!(registration.as_deref(), Some("done"));
    let trusted: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM unico_webhooks WHERE authenticated AND known_process",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(trusted, 1);
    app.stop().await;
}

#[tokio::test]
async fn the_replica_that_receives_the_webhook_reads_the_process_itself() {
    // No runners on this replica and slow polling: only the webhook's own replica running the
    // read step at once can decide it within the wait.
    let app = TestApp::builder()
        .config(&[
            ("jobs.enabled", "false"),
            ("unico.poll_initial", "30s"),
            ("unico.poll_max", "60s"),
        ])
        .spawn()
        .await;
    let response = app
        .onboard(&key(), &onboarding_body("900.000.008-41"), Some(15))
        .await;
    assert_eq!(response.status(), 200);
    let view: Value = response.json().await.unwrap();
    assert_eq!(view["outcome"], "approved", "{view}");
    let id = view["id"].as_str().unwrap();
    assert_eq!(app.unico_calls(id, "get_process").await, 1);
    // The read step ran once, claimed by the webhook's transaction.
    let runs: Vec<(String, i32)> = sqlx::query_as(
        "SELECT status, attempts FROM steps WHERE onboarding_id = $1::uuid AND kind = 'read_process'",
    )
    .bind(id)
    .fetch_all(&app.db)
    .await
    .unwrap();
    assert_eq!(runs, [("done".to_owned(), 1)]);
    app.stop().await;
}

#[tokio::test]
async fn waiting_requests_are_answered_over_http2() {
    // An asynchronous CPF: each request waits for unico's webhook, all of them at once, as
    // streams of the client's HTTP/2 connection (h2c, prior knowledge).
    let app = TestApp::spawn().await;
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let requests = (0..20).map(|_| {
        h2.post(app.url("/v1/onboardings"))
            .bearer_auth(ONBOARDING_KEY)
            .header("Idempotency-Key", key())
            .header("Prefer", "wait=20")
            .json(&onboarding_body("900.000.008-41"))
            .send()
    });
    let answers = futures_util::future::join_all(requests).await;
    for answer in answers {
        let answer = answer.expect("answered over HTTP/2");
        assert_eq!(answer.version(), reqwest::Version::HTTP_2);
        assert_eq!(answer.status(), 200);
        let view: Value = answer.json().await.unwrap();
        assert_eq!(view["outcome"], "approved", "{view}");
    }
    let decided: i64 = sqlx::query_scalar(
        "SELECT count(DISTINCT onboarding_id) FROM onboarding_events WHERE kind = 'decided'",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(decided, 20);
    app.stop().await;
}

#[tokio::test]
async fn polling_alone_finishes_a_process_without_webhook() {
    let app = TestApp::spawn().await;
    let response = app
        .onboard(&key(), &onboarding_body("900.000.025-42"), Some(20))
        .await;
    assert_eq!(response.status(), 200);
    let view: Value = response.json().await.unwrap();
    assert_eq!(view["outcome"], "approved");
    let id = view["id"].as_str().unwrap();
    let events = app.events(id).await;
    assert!(
        !events.contains(&"webhook_received".to_owned()),
        "{events:?}"
    );
    assert_eq!(events.last().map(String::as_str), Some("decided"));
    assert!(app.unico_calls(id, "get_process").await >= 1);
    app.stop().await;
}

#[tokio::test]
async fn process_that_never_finishes_is_reviewed_at_the_deadline() {
    let app = TestApp::builder()
        .config(&[("policy.biometrics_deadline", "2s")])
        .spawn()
        .await;
    let response = app
        .onboard(&key(), &onboarding_body("900.000.022-08"), Some(15))
        .await;
    assert_eq!(response.status(), 200);
    let view: Value = response.json().await.unwrap();
    assert_eq!(view["outcome"], "review");
    assert_eq!(reason_codes(&view), ["biometrics.timeout"]);
    // Given up at the deadline: out of the polling queue although unico never finished it.
    let (final_, result, registration) = stored_process(&app, view["id"].as_str().unwrap()).await;
    assert!(final_, "the process left the polling queue");
    assert_ne!(result["status"], 3, "{result}");
    assert_eq!(registration, None, "no device stage");
    app.stop().await;
}

#[tokio::test]
async fn restart_while_processes_are_pending_loses_nothing() {
    // Slow unico, no webhook for 25; the first instance stops before anything finishes.
    let app = TestApp::builder()
        .config(&[("sandbox.processing_delay", "1500ms")])
        .spawn()
        .await;
    let mut ids = Vec::new();
    for cpf in ["900.000.025-42", "900.000.018-13", "900.000.007-60"] {
        let response = app.onboard(&key(), &onboarding_body(cpf), Some(0)).await;
        assert_eq!(response.status(), 202);
        let view: Value = response.json().await.unwrap();
        ids.push(view["id"].as_str().unwrap().to_owned());
    }
    let decided: i64 = sqlx::query_scalar("SELECT count(*) FROM decisions")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(decided, 0, "nothing is decided before the restart");
    let app = app.restart().await;
    let mut outcomes = Vec::new();
    for id in &ids {
        let view = app.until_decided(id, Duration::from_secs(15)).await;
        outcomes.push(view["outcome"].as_str().unwrap().to_owned());
    }
    assert_eq!(outcomes, ["approved", "rejected", "approved"]);
    let decisions: i64 = sqlx::query_scalar("SELECT count(*) FROM decisions")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(decisions, 3);
    app.stop().await;
}

#[tokio::test]
async fn a_waiting_request_is_woken_by_another_replica_deciding() {
    // Replica A serves the request but runs no workers; only replica B can poll and decide.
    let api_only = TestApp::builder()
        .config(&[("jobs.enabled", "false")])
        .spawn()
        .await;
    let worker = api_only.replica(&[]).await;
    let started = std::time::Instant::now();
    let response = api_only
        .onboard(&key(), &onboarding_body("900.000.008-41"), Some(20))
        .await;
    assert_eq!(response.status(), 200);
    let view: Value = response.json().await.unwrap();
    assert_eq!(view["outcome"], "approved");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "woken by NOTIFY, not by the end of the wait"
    );
    let id = view["id"].as_str().unwrap();
    assert!(api_only.events(id).await.contains(&"poll".to_owned()));
    worker.stop().await;
    api_only.stop().await;
}
