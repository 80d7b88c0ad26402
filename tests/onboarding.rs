//! The core decision path, driven over HTTP the way the onboarding backend drives it.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::*;
use serde_json::{Value, json};

/// contract.md's verdict for each sandbox test CPF, written out here by hand (not read from the
/// policy or the sandbox) so a regression in either shows up.
const EXPECTED: &[(&str, &str, &[&str])] = &[
    (
        "900.000.001-75",
        "approved",
        &["identity.confirmed", "device.registered"],
    ),
    (
        "900.000.002-56",
        "review",
        &["biometrics.unexpected_result"],
    ),
    ("900.000.003-37", "rejected", &["liveness.not_live"]),
    ("900.000.004-18", "rejected", &["liveness.not_live"]),
    ("900.000.005-07", "review", &["score.unavailable"]),
    ("900.000.006-80", "rejected", &["identity.not_confirmed"]),
    (
        "900.000.007-60",
        "approved",
        &["score.low_risk", "device.registered"],
    ),
    (
        "900.000.008-41",
        "approved",
        &["identity.confirmed", "device.registered"],
    ),
    (
        "900.000.009-22",
        "rejected",
        &["fraudsters.match", "identity.confirmed"],
    ),
    ("900.000.010-66", "review", &["score.unavailable"]),
    (
        "900.000.011-47",
        "rejected",
        &["fraudsters.match", "identity.confirmed"],
    ),
    ("900.000.012-28", "rejected", &["identity.not_confirmed"]),
    (
        "900.000.013-09",
        "rejected",
        &["fraudsters.match", "identity.not_confirmed"],
    ),
    (
        "900.000.014-90",
        "rejected",
        &["fraudsters.match", "score.unavailable"],
    ),
    (
        "900.000.015-70",
        "approved",
        &["score.low_risk", "device.registered"],
    ),
    (
        "900.000.016-51",
        "review",
        &["fraudsters.suspicious", "identity.confirmed"],
    ),
    ("900.000.017-32", "retry", &["score.capture_error"]),
    ("900.000.018-13", "rejected", &["score.high_risk"]),
    ("900.000.019-02", "review", &["score.uncertain"]),
    ("900.000.020-38", "retry", &["biometrics.process_error"]),
    ("900.000.021-19", "retry", &["biometrics.process_cancelled"]),
    ("900.000.023-80", "retry", &["biometrics.process_error"]),
    ("900.000.024-61", "retry", &["biometrics.capture_refused"]),
    (
        "900.000.025-42",
        "approved",
        &["identity.confirmed", "device.registered"],
    ),
    // Any other valid CPF is approved.
    (
        "111.444.777-35",
        "approved",
        &["identity.confirmed", "device.registered"],
    ),
];

#[tokio::test]
async fn every_sandbox_cpf_gets_the_contract_verdict() {
    let app = TestApp::spawn().await;
    let runs = EXPECTED.iter().map(|(cpf, outcome, reasons)| {
        let app = &app;
        async move {
            let response = app.onboard(&key(), &onboarding_body(cpf), Some(15)).await;
            assert_eq!(response.status(), 200, "{cpf}");
            let view: Value = response.json().await.unwrap();
            assert_eq!(view["status"], "decided", "{cpf}: {view}");
            assert_eq!(view["outcome"], *outcome, "{cpf}: {view}");
            assert_eq!(reason_codes(&view), *reasons, "{cpf}: {view}");
            assert_eq!(view["policy_version"], "2026-11-23.1");
            assert!(view["decided_at"].is_string());
            // The waiting request's answer is built from the deciding transaction's rows, not
            // read back: it must be what any later read of the onboarding shows.
            let (status, read) = app
                .get(
                    &format!("/v1/onboardings/{}", view["id"].as_str().unwrap()),
                    ONBOARDING_KEY,
                )
                .await;
            assert_eq!(status, 200, "{cpf}");
            assert_eq!(
                view, read,
                "{cpf}: the answer differs from the stored onboarding"
            );
        }
    });
    futures_util::future::join_all(runs).await;
    app.stop().await;
}

#[tokio::test]
async fn synchronous_result_is_decided_without_polling() {
    let app = TestApp::spawn().await;
    let response = app
        .onboard(&key(), &onboarding_body("900.000.001-75"), Some(5))
        .await;
    // Decided from CreateProcess's own answer, within the wait and without a single poll.
    assert_eq!(response.status(), 200);
    let view: Value = response.json().await.unwrap();
    let id = view["id"].as_str().unwrap();
    assert_eq!(view["outcome"], "approved");
    assert_eq!(view["biometrics"]["status"], 3);
    assert_eq!(view["biometrics"]["unico_id"], "yes");
    assert_eq!(app.unico_calls(id, "create_process").await, 1);
    assert_eq!(app.unico_calls(id, "get_process").await, 0);
    assert_eq!(
        app.events(id).await,
        [
            "received",
            "process_created",
            "device_registration_queued",
            "device_registration_answered",
            "decided"
        ]
    );
    app.stop().await;
}

#[tokio::test]
async fn asynchronous_result_answers_202_then_the_verdict() {
    let app = TestApp::spawn().await;
    let response = app
        .http
        .post(app.url("/v1/onboardings"))
        .bearer_auth(ONBOARDING_KEY)
        .header("Idempotency-Key", key())
        .header("Prefer", "respond-async")
        .json(&onboarding_body("900.000.007-60"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    assert_eq!(response.headers()["preference-applied"], "respond-async");
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let view: Value = response.json().await.unwrap();
    assert_eq!(view["status"], "processing");
    assert_eq!(view["outcome"], Value::Null);
    let id = view["id"].as_str().unwrap().to_owned();
    assert_eq!(location, format!("/v1/onboardings/{id}"));
    let open = app
        .until(&id, Duration::from_secs(10), |v| !v["biometrics"].is_null())
        .await;
    assert_eq!(open["status"], "processing", "{open}");
    assert_eq!(open["biometrics"]["status"], 1, "{open}");

    let decided = app.until_decided(&id, Duration::from_secs(10)).await;
    assert_eq!(decided["outcome"], "approved");
    assert_eq!(
        reason_codes(&decided),
        ["score.low_risk", "device.registered"]
    );
    assert_eq!(decided["biometrics"]["score"], 50);
    app.stop().await;
}

#[tokio::test]
async fn waiting_request_gets_the_asynchronous_verdict() {
    let app = TestApp::spawn().await;
    let started = std::time::Instant::now();
    let response = app
        .onboard(&key(), &onboarding_body("900.000.009-22"), Some(20))
        .await;
    assert_eq!(response.status(), 200);
    let view: Value = response.json().await.unwrap();
    assert_eq!(view["outcome"], "rejected");
    assert_eq!(
        reason_codes(&view),
        ["fraudsters.match", "identity.confirmed"]
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "woken by the decision, not by the wait's end"
    );
    app.stop().await;
}

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
    let app =
        TestApp::spawn_with(&[("unico.poll_initial", "30s"), ("unico.poll_max", "60s")]).await;
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
    let app = TestApp::spawn_with(&[
        ("jobs.enabled", "false"),
        ("unico.poll_initial", "30s"),
        ("unico.poll_max", "60s"),
    ])
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
    let app = TestApp::spawn_with(&[("policy.biometrics_deadline", "2s")]).await;
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
async fn same_key_and_body_resumes_without_a_second_process() {
    let app = TestApp::spawn().await;
    let body = onboarding_body("900.000.007-60");
    let key = key();
    let first: Value = app
        .onboard(&key, &body, Some(0))
        .await
        .json()
        .await
        .unwrap();
    let second = app.onboard(&key, &body, Some(15)).await;
    assert_eq!(second.status(), 200);
    let second: Value = second.json().await.unwrap();
    assert_eq!(first["id"], second["id"]);
    assert_eq!(second["outcome"], "approved");
    let third: Value = app
        .onboard(&key, &body, Some(0))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(third["id"], first["id"]);
    assert_eq!(
        app.unico_calls(first["id"].as_str().unwrap(), "create_process")
            .await,
        1
    );
    app.stop().await;
}

#[tokio::test]
async fn same_key_with_another_body_is_a_conflict() {
    let app = TestApp::spawn().await;
    let key = key();
    let body = onboarding_body("900.000.001-75");
    assert_eq!(app.onboard(&key, &body, Some(5)).await.status(), 200);
    let mut changed = body.clone();
    changed["person"]["name"] = json!("Outra Pessoa");
    let response = app.onboard(&key, &changed, Some(5)).await;
    assert_eq!(response.status(), 409);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let processes: i64 = sqlx::query_scalar("SELECT count(*) FROM unico_processes")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(processes, 1);
    app.stop().await;
}

#[tokio::test]
async fn concurrent_retries_create_one_process() {
    let app = TestApp::spawn().await;
    let key = key();
    let body = onboarding_body("900.000.008-41");
    let responses =
        futures_util::future::join_all((0..12).map(|_| app.onboard(&key, &body, Some(15)))).await;
    let mut ids = Vec::new();
    for response in responses {
        assert_eq!(response.status(), 200);
        let view: Value = response.json().await.unwrap();
        assert_eq!(view["outcome"], "approved");
        ids.push(view["id"].as_str().unwrap().to_owned());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "every retry answers the same onboarding");
    assert_eq!(app.unico_calls(&ids[0], "create_process").await, 1);
    let onboardings: i64 = sqlx::query_scalar("SELECT count(*) FROM onboardings")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(onboardings, 1);
    app.stop().await;
}

#[tokio::test]
async fn restart_while_processes_are_pending_loses_nothing() {
    // Slow unico, no webhook for 25; the first instance stops before anything finishes.
    let app = TestApp::spawn_with(&[("sandbox.processing_delay", "1500ms")]).await;
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
async fn emulator_is_rejected_before_unico_is_paid() {
    let app = TestApp::spawn().await;
    let mut body = onboarding_body("900.000.001-75");
    body["device"]["risk_signals"]["is_emulated"] = json!(true);
    body["device"]["risk_signals"]["is_rooted_device"] = json!(true);
    let response = app.onboard(&key(), &body, Some(5)).await;
    assert_eq!(response.status(), 200);
    let view: Value = response.json().await.unwrap();
    assert_eq!(view["outcome"], "rejected");
    assert_eq!(reason_codes(&view), ["device.emulated", "device.rooted"]);
    assert_eq!(view["device"]["risk_flags"], json!(["emulated", "rooted"]));
    assert_eq!(view["biometrics"], Value::Null);
    let id = view["id"].as_str().unwrap();
    assert_eq!(app.unico_calls(id, "create_process").await, 0);
    // Decided in the request's own transaction; the answer is what a read shows.
    let (_, read) = app
        .get(&format!("/v1/onboardings/{id}"), ONBOARDING_KEY)
        .await;
    assert_eq!(view, read);
    app.stop().await;
}

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
    let app = TestApp::spawn_with(&overrides).await;
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

#[tokio::test]
async fn invalid_requests_get_problem_details() {
    let app = TestApp::spawn().await;
    let post = |key: Option<&str>, idem: Option<&str>, body: String| {
        let mut request = app
            .http
            .post(app.url("/v1/onboardings"))
            .header("content-type", "application/json")
            .body(body);
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        if let Some(idem) = idem {
            request = request.header("Idempotency-Key", idem);
        }
        request.send()
    };
    let valid = onboarding_body("900.000.001-75").to_string();

    let r = post(None, Some("k1"), valid.clone()).await.unwrap();
    assert_eq!(r.status(), 401);
    let r = post(Some("not-a-key"), Some("k1"), valid.clone())
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = post(Some(AUDITOR_KEY), Some("k1"), valid.clone())
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // The scope is checked before the body or the headers are looked at.
    for (key, body) in [
        (None, "{not json".to_owned()),
        (Some("k1"), "{}".to_owned()),
    ] {
        let r = post(Some(AUDITOR_KEY), key, body).await.unwrap();
        assert_eq!(r.status(), 403);
    }
    let r = post(Some(ONBOARDING_KEY), None, valid.clone())
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = post(Some(ONBOARDING_KEY), Some("k1"), "{not json".into())
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let r = post(
        Some(ONBOARDING_KEY),
        Some("k1"),
        format!("{{\"selfie\": \"{}\"}}", "a".repeat(2 * 1024 * 1024)),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 413);
    // Just under the limit is taken: a 1.9 MiB selfie is a valid onboarding.
    let mut big = onboarding_body("900.000.001-75");
    big["selfie"] = json!("QUJD".repeat(1_900 * 1024 / 4));
    let r = post(Some(ONBOARDING_KEY), Some(&key()), big.to_string())
        .await
        .unwrap();
    assert!(r.status() == 200 || r.status() == 202, "{}", r.status());

    let cases: Vec<(Value, &str)> = vec![
        (
            patch(|b| b["person"]["cpf"] = json!("111.444.777-36")),
            "person.cpf",
        ),
        (patch(|b| b["person"]["cpf"] = json!("123")), "person.cpf"),
        (patch(|b| b["selfie"] = json!("")), "selfie"),
        (
            patch(|b| b["person"]["birth_date"] = json!("31/01/1990")),
            "person.birth_date",
        ),
        (
            patch(|b| b["person"]["gender"] = json!("X")),
            "person.gender",
        ),
        (
            patch(|b| b["account"]["account_id"] = json!(" ")),
            "account.account_id",
        ),
        (
            patch(|b| b["device"]["risk_signals"]["is_teleporting"] = json!(true)),
            "device.risk_signals.is_teleporting",
        ),
        (
            patch(|b| b["device"]["risk_signals"]["screen_width"] = json!("wide")),
            "device.risk_signals.screen_width",
        ),
        (
            patch(|b| {
                b["device"].as_object_mut().unwrap().remove("session_id");
            }),
            "device.session_id",
        ),
        (
            patch(|b| {
                b.as_object_mut().unwrap().remove("person");
            }),
            "person",
        ),
    ];
    for (body, field) in cases {
        let r = post(Some(ONBOARDING_KEY), Some(&key()), body.to_string())
            .await
            .unwrap();
        assert_eq!(r.status(), 422, "{field}");
        let problem: Value = r.json().await.unwrap();
        assert_eq!(problem["status"], 422);
        assert_eq!(problem["errors"][0]["field"], field, "{problem}");
    }
    let r = app
        .http
        .get(app.url("/v1/onboardings/00000000-0000-0000-0000-000000000000"))
        .bearer_auth(ONBOARDING_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM onboardings")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(stored, 1, "only the valid 1.9 MiB onboarding was stored");
    app.stop().await;
}

fn patch(change: impl FnOnce(&mut Value)) -> Value {
    let mut body = onboarding_body("900.000.001-75");
    change(&mut body);
    body
}

#[tokio::test]
async fn health_metrics_and_openapi_need_no_key() {
    let app = TestApp::spawn().await;
    app.onboard(&key(), &onboarding_body("900.000.001-75"), Some(5))
        .await;
    assert_eq!(
        app.http
            .get(app.url("/health/live"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let ready: Value = app
        .http
        .get(app.url("/health/ready"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["database"], "ok");
    let metrics = app
        .http
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("veredito_decisions_total{outcome=\"approved\",reason="),
        "{metrics}"
    );
    assert!(metrics.contains("veredito_provider_calls_total{provider=\"unico\",operation=\"create_process\",status=\"200\"}"), "{metrics}");
    let openapi: Value = app
        .http
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // The document served is the one generated from the handlers (its coverage of the routes
    // is tested beside it), and the reference page is served from the service's own assets.
    let generated: Value = serde_json::from_str(&veredito::http::openapi::DOCUMENT).unwrap();
    assert_eq!(openapi, generated);
    assert!(openapi["openapi"].as_str().unwrap().starts_with("3.1"));
    let docs = app.http.get(app.url("/docs/")).send().await.unwrap();
    assert_eq!(docs.status(), 200);
    assert!(
        docs.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let page = docs.text().await.unwrap();
    assert!(page.contains("swagger-ui"), "{page}");
    let config = app
        .http
        .get(app.url("/docs/swagger-initializer.js"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(config.contains("/openapi.json"), "{config}");
    app.stop().await;
}

#[tokio::test]
async fn personal_data_is_sealed_at_rest() {
    let app = TestApp::spawn().await;
    let view: Value = app
        .onboard(&key(), &onboarding_body("111.444.777-35"), Some(5))
        .await
        .json()
        .await
        .unwrap();
    let row: String = sqlx::query_scalar("SELECT o::text FROM onboardings o WHERE id = $1::uuid")
        .bind(view["id"].as_str().unwrap())
        .fetch_one(&app.db)
        .await
        .unwrap();
    for secret in [
        "11144477735",
        "111.444.777-35",
        "Maria Teste",
        "maria.teste@example.com",
        "c2VsZmll",
    ] {
        assert!(!row.contains(secret), "{secret} stored in clear");
    }
    let dump: String = sqlx::query_scalar(
        "SELECT string_agg(t::text, '\n') FROM (SELECT p::text AS t FROM provider_calls p UNION ALL SELECT u::text FROM unico_processes u UNION ALL SELECT d::text FROM decisions d UNION ALL SELECT e::text FROM onboarding_events e) s",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    for secret in [
        "11144477735",
        "Maria Teste",
        "c2VsZmllLWJ5dGVz",
        "sandbox-api-key",
    ] {
        assert!(!dump.contains(secret), "{secret} leaked into another table");
    }
    app.stop().await;
}

#[tokio::test]
async fn decisions_cannot_be_changed() {
    let app = TestApp::spawn().await;
    app.onboard(&key(), &onboarding_body("900.000.001-75"), Some(5))
        .await;
    let update = sqlx::query("UPDATE decisions SET outcome = 'rejected'")
        .execute(&app.db)
        .await;
    assert!(update.is_err());
    let delete = sqlx::query("DELETE FROM decisions").execute(&app.db).await;
    assert!(delete.is_err());
    let outcome: String = sqlx::query_scalar("SELECT outcome FROM decisions")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(outcome, "approved");
    app.stop().await;
}

#[tokio::test]
async fn a_waiting_request_is_woken_by_another_replica_deciding() {
    // Replica A serves the request but runs no workers; only replica B can poll and decide.
    let api_only = TestApp::spawn_with(&[("jobs.enabled", "false")]).await;
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
    TestApp::spawn_with(&[
        ("sandbox.unico_provider", "false"),
        ("unico.base_url", unico),
        ("unico.identity_url", unico),
        ("unico.poll_initial", "30s"),
        ("unico.poll_max", "60s"),
    ])
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
    tokio::time::sleep(Duration::from_millis(300)).await;
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

/// A transaction keeps its timeline entries, provider calls and finished steps until COMMIT and
/// sends them in one statement: they land in the order recorded, only when it commits, and a
/// step finished and queued again in the same transaction is queued (the kept finish is sent
/// first, or the new step would collide with the pending one and be dropped).
#[tokio::test]
async fn a_transactions_kept_writes_land_at_commit_in_order() {
    use veredito::domain::transitions::StepKind;
    use veredito::store::steps::{self, Subject, When};

    let app = TestApp::spawn().await;
    let response = app
        .onboard(&key(), &onboarding_body("900.000.001-75"), Some(10))
        .await;
    let view: Value = response.json().await.unwrap();
    let id: uuid::Uuid = view["id"].as_str().unwrap().parse().unwrap();
    let before = app.events(&id.to_string()).await;

    // Dropped without a commit: nothing it kept is written.
    let mut tx = veredito::store::begin(&app.db).await.unwrap();
    tx.event(id, "kept_then_dropped", json!({}));
    drop(tx);
    assert_eq!(app.events(&id.to_string()).await, before);

    let lease = Duration::from_secs(30);
    let mut tx = veredito::store::begin(&app.db).await.unwrap();
    let step = steps::queue(
        &mut tx,
        StepKind::ReadProcess,
        Subject::Onboarding(id),
        When::Claimed(lease),
    )
    .await
    .unwrap()
    .expect("a new step is held by its writer");
    tx.commit().await.unwrap();

    let mut tx = veredito::store::begin(&app.db).await.unwrap();
    for kind in ["first", "second", "third"] {
        tx.event(id, kind, json!({ "kind": kind }));
    }
    tx.step_done(&step);
    steps::queue(
        &mut tx,
        StepKind::ReadProcess,
        Subject::Onboarding(id),
        When::In(Duration::from_secs(60)),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();

    let mut expected = before.clone();
    expected.extend(["first", "second", "third"].map(String::from));
    assert_eq!(app.events(&id.to_string()).await, expected);
    let read_steps: Vec<(i64, String)> = sqlx::query_as(
        "SELECT id, status FROM steps WHERE onboarding_id = $1 AND kind = 'read_process' ORDER BY id",
    )
    .bind(id)
    .fetch_all(&app.db)
    .await
    .unwrap();
    let statuses: Vec<&str> = read_steps.iter().map(|(_, s)| s.as_str()).collect();
    assert_eq!(
        statuses,
        ["done", "pending"],
        "the finished step and the one queued after it"
    );
    assert_eq!(read_steps[0].0, step.id);

    // A process stored and finished by the same transaction is stored final, under the id it
    // was stored with, with the last answer.
    let emulated = {
        let mut body = onboarding_body("900.000.001-75");
        body["device"]["risk_signals"]["is_emulated"] = json!(true);
        body
    };
    let view: Value = app
        .onboard(&key(), &emulated, Some(10))
        .await
        .json()
        .await
        .unwrap();
    let other: uuid::Uuid = view["id"].as_str().unwrap().parse().unwrap();
    let open = veredito::domain::evidence::BiometricResult {
        process_id: "kept-process".into(),
        status: 1,
        ..Default::default()
    };
    let last = veredito::domain::evidence::BiometricResult {
        process_id: "kept-process".into(),
        status: 1,
        score: Some(10),
        ..Default::default()
    };
    let mut tx = veredito::store::begin(&app.db).await.unwrap();
    tx.new_process(other, &open);
    tx.finish_process("kept-process", &last).await.unwrap();
    tx.commit().await.unwrap();
    let stored: (String, bool, Value) = sqlx::query_as(
        "SELECT process_id, final AND finished_at IS NOT NULL, result FROM unico_processes
          WHERE onboarding_id = $1",
    )
    .bind(other)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(stored.0, "kept-process");
    assert!(stored.1, "stored final although unico's status is not");
    assert_eq!(stored.2["score"], 10);
    app.stop().await;
}
