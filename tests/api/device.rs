//! The device half over HTTP: risk signals, QI Tech device registration, device validations and
//! the Open Finance risk signal, against the sandbox and against provider fakes.


use std::time::Duration;

use crate::common::*;
use crate::device_support::*;
use serde_json::{Value, json};
use uuid::Uuid;

const LIMIT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------- risk signals

#[tokio::test]
async fn review_flags_are_returned_and_stored_and_skip_registration() {
    let app = TestApp::spawn().await;
    for (flag, field) in [
        ("rooted", "is_rooted_device"),
        ("mock_location", "is_mock_gps"),
        ("call_in_progress", "is_call_in_progress"),
    ] {
        let mut signals = full_signals();
        signals[field] = json!(true);
        let response = app
            .onboard(&key(), &body("dev-1", signals, None), Some(5))
            .await;
        assert_eq!(response.status(), 200, "{flag}");
        let view: Value = response.json().await.unwrap();
        let id = view["id"].as_str().unwrap();
        assert_eq!(view["outcome"], "review", "{flag}: {view}");
        assert_eq!(reason_codes(&view)[0], format!("device.{flag}"));
        assert_eq!(view["device"]["risk_flags"], json!([flag]));
        // Not everything else approved, so QI Tech is not asked.
        assert_eq!(view["device"]["status"], Value::Null);
        assert_eq!(app.calls(id, "qitech", "register_device").await, 0);
        let stored: Value = sqlx::query_scalar(
            "SELECT detail->'risk_flags' FROM onboarding_events WHERE onboarding_id = $1::uuid AND kind = 'decided'",
        )
        .bind(id)
        .fetch_one(&app.db)
        .await
        .unwrap();
        assert_eq!(stored, json!([flag]));
        let evidence: Value =
            sqlx::query_scalar("SELECT evidence FROM decisions WHERE onboarding_id = $1::uuid")
                .bind(id)
                .fetch_one(&app.db)
                .await
                .unwrap();
        assert_eq!(evidence["risk_signals"][field], true);
    }
    app.stop().await;
}

#[tokio::test]
async fn emulator_and_automation_reject_before_unico_and_qitech() {
    let app = TestApp::spawn().await;
    for (field, code) in [
        ("is_emulated", "device.emulated"),
        ("is_monkey_runner", "device.automation"),
    ] {
        let mut signals = full_signals();
        signals[field] = json!(true);
        let response = app
            .onboard(&key(), &body("dev-1", signals, Some("enr-1")), Some(5))
            .await;
        assert_eq!(response.status(), 200);
        let view: Value = response.json().await.unwrap();
        let id = view["id"].as_str().unwrap();
        assert_eq!(view["outcome"], "rejected");
        assert_eq!(reason_codes(&view)[0], code);
        assert_eq!(app.calls(id, "unico", "create_process").await, 0);
        assert_eq!(app.calls(id, "qitech", "register_device").await, 0);
        assert_eq!(
            view.get("open_finance"),
            None,
            "no risk signal for a rejection"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn unknown_or_mistyped_risk_signals_are_422() {
    let app = TestApp::spawn().await;
    let mut signals = full_signals();
    signals["is_emulator"] = json!(true);
    let response = app
        .onboard(&key(), &body("dev-1", signals, None), Some(0))
        .await;
    assert_eq!(response.status(), 422);
    let problem: Value = response.json().await.unwrap();
    assert_eq!(
        problem["errors"][0]["field"], "device.risk_signals.is_emulator",
        "{problem}"
    );

    let mut signals = full_signals();
    signals["screen_width"] = json!("wide");
    let response = app
        .onboard(&key(), &body("dev-1", signals, None), Some(0))
        .await;
    assert_eq!(response.status(), 422);
    let problem: Value = response.json().await.unwrap();
    assert_eq!(
        problem["errors"][0]["field"], "device.risk_signals.screen_width",
        "{problem}"
    );
    app.stop().await;
}

#[tokio::test]
async fn enrollment_ids_that_could_leave_their_path_segment_are_422() {
    let fake = Fake::start(QitechScript::default(), 0).await;
    let app = TestApp::with_fakes(&fake.qitech_url(), &fake.zro_url(), &[]).await;
    // Each would change the path of Zro's URL, where the bearer token goes, or its query.
    for enrollment in [
        "..",
        ".",
        "../../auth/signin",
        "enr/../../x",
        "enr?admin=1",
        "enr#x",
        "%2e%2e",
        "enr 1",
    ] {
        let response = app
            .onboard(
                &key(),
                &body("dev-1", full_signals(), Some(enrollment)),
                Some(5),
            )
            .await;
        assert_eq!(response.status(), 422, "{enrollment}");
        let problem: Value = response.json().await.unwrap();
        assert_eq!(
            problem["errors"][0]["field"], "open_finance.enrollment_id",
            "{enrollment}: {problem}"
        );
    }
    assert!(
        fake.log().is_empty(),
        "no provider was called: {:?}",
        fake.log()
    );
    app.stop().await;
}

// ---------------------------------------------------------------- registration, sandbox

#[tokio::test]
async fn sandbox_device_ids_give_every_registration_row() {
    let app = TestApp::spawn().await;
    let cases = [
        (
            "dev-any",
            "approved",
            "device.registered",
            "registered",
            "automatically_approved",
        ),
        (
            "sandbox-device-reproved",
            "rejected",
            "device.registration_reproved",
            "not_registered",
            "automatically_reproved",
        ),
        (
            "sandbox-device-not-registered",
            "review",
            "device.not_registered",
            "not_registered",
            "automatically_approved",
        ),
        (
            "sandbox-device-deactivated",
            "review",
            "device.not_registered",
            "deactivated",
            "automatically_approved",
        ),
    ];
    for (device_id, outcome, code, status, analysis) in cases {
        let response = app
            .onboard(&key(), &body(device_id, full_signals(), None), Some(5))
            .await;
        assert_eq!(response.status(), 200, "{device_id}");
        let view: Value = response.json().await.unwrap();
        assert_eq!(view["outcome"], outcome, "{device_id}: {view}");
        let codes = reason_codes(&view);
        assert_eq!(
            codes[0],
            if outcome == "approved" {
                "identity.confirmed"
            } else {
                code
            },
            "{device_id}"
        );
        assert!(codes.contains(&code.to_owned()), "{device_id}: {codes:?}");
        assert_eq!(view["device"]["status"], status);
        assert_eq!(view["device"]["analysis_status"], analysis);
        assert!(view["device"]["reason"].is_string());
        // The decision carries QI Tech's answer as evidence.
        let evidence: Value = sqlx::query_scalar(
            "SELECT evidence->'device' FROM decisions WHERE onboarding_id = $1::uuid",
        )
        .bind(view["id"].as_str().unwrap())
        .fetch_one(&app.db)
        .await
        .unwrap();
        assert_eq!(evidence["state"], "answered");
        assert_eq!(evidence["analysis_status"], analysis);
        // The answer, built from the deciding transaction's rows, is what a read shows.
        let (_, read) = app
            .get(
                &format!("/v1/onboardings/{}", view["id"].as_str().unwrap()),
                ONBOARDING_KEY,
            )
            .await;
        assert_eq!(view, read, "{device_id}");
    }
    app.stop().await;
}

#[tokio::test]
async fn pending_registration_is_read_back_until_approved() {
    let app = TestApp::spawn().await;
    let id = app
        .start_onboarding(&body("sandbox-device-pending", full_signals(), None))
        .await;
    // The request answers before QI Tech does; its step then finds the analysis pending.
    let processing = app
        .until(&id, LIMIT, |v| v["device"]["analysis_status"] == "pending")
        .await;
    assert_eq!(processing["status"], "processing", "{processing}");
    let decided = app.until_decided(&id, LIMIT).await;
    assert_eq!(decided["outcome"], "approved");
    assert_eq!(
        reason_codes(&decided),
        ["identity.confirmed", "device.registered"]
    );
    assert_eq!(app.calls(&id, "qitech", "register_device").await, 1);
    assert!(app.calls(&id, "qitech", "get_device").await >= 1);
    app.stop().await;
}

#[tokio::test]
async fn registration_still_pending_at_the_deadline_is_reviewed() {
    let app = TestApp::spawn_with(&[("policy.device_deadline", "1s")]).await;
    let id = app
        .start_onboarding(&body(
            "sandbox-device-pending-forever",
            full_signals(),
            None,
        ))
        .await;
    assert_eq!(app.onboarding(&id).await["status"], "processing");
    let decided = app.until_decided(&id, LIMIT).await;
    assert_eq!(decided["outcome"], "review");
    assert_eq!(reason_codes(&decided)[0], "device.registration_pending");
    assert_eq!(decided["device"]["analysis_status"], "pending");
    app.stop().await;
}

#[tokio::test]
async fn sandbox_failures_are_retried_without_registering_twice() {
    let app = TestApp::spawn().await;
    // 503 before registering: the POST is repeated once.
    let id = app
        .start_onboarding(&body(
            "sandbox-device-unavailable-once",
            full_signals(),
            None,
        ))
        .await;
    let decided = app.until_decided(&id, LIMIT).await;
    assert_eq!(decided["outcome"], "approved", "{decided}");
    assert_eq!(app.calls(&id, "qitech", "register_device").await, 2);
    // Registered but the answer lost: the second POST gets 409 and the device is read back.
    let id = app
        .start_onboarding(&body("sandbox-device-lost-answer", full_signals(), None))
        .await;
    let decided = app.until_decided(&id, LIMIT).await;
    assert_eq!(decided["outcome"], "approved", "{decided}");
    assert_eq!(app.calls(&id, "qitech", "register_device").await, 2);
    assert_eq!(app.calls(&id, "qitech", "get_device").await, 1);
    app.stop().await;
}

// ---------------------------------------------------------------- registration, fakes

#[tokio::test]
async fn account_person_device_in_order_with_the_documented_bodies() {
    let fake = Fake::start(
        QitechScript {
            account_conflict: true,
            person_conflict: true,
            ..Default::default()
        },
        0,
    )
    .await;
    let app = TestApp::with_fakes(&fake.qitech_url(), &fake.zro_url(), &[]).await;
    let response = app
        .onboard(&key(), &body("dev-fake", full_signals(), None), Some(5))
        .await;
    assert_eq!(response.status(), 200);
    let view: Value = response.json().await.unwrap();
    // 409 on account and person means they exist: the device is still registered and approved.
    assert_eq!(view["outcome"], "approved", "{view}");
    assert_eq!(
        fake.log(),
        [
            "POST /qitech/device_manager/account",
            "POST /qitech/device_manager/account/acc-1/person",
            "POST /qitech/device_manager/account/acc-1/person/per-1/device",
        ]
    );
    let seen = fake.seen();
    for request in &seen {
        assert_eq!(
            request.headers["authorization"], QITECH_KEY,
            "the bare key, no scheme"
        );
    }
    let account = &seen[0].body;
    assert_eq!(account["account_id"], "acc-1");
    assert_eq!(account["account_type"], "natural_person");
    let person = &seen[1].body;
    assert_eq!(person["person_id"], "per-1");
    assert_eq!(person["document_number"], APPROVED_CPF);
    assert_eq!(person["person_data"]["name"], "Maria Silva");
    assert_eq!(person["person_data"]["email"], "m@example.com");
    assert_eq!(
        person["person_data"]["phone"],
        json!({"international_dial_code": "55", "area_code": "11", "number": "974749090"})
    );
    let device = &seen[2].body;
    assert_eq!(device["device_id"], "dev-fake");
    assert_eq!(device["session_id"], "scan-session-1");
    assert_eq!(device["face_recognition_key"], "face-key-1");
    assert_eq!(device["document_number"], APPROVED_CPF);
    assert_eq!(device["mfa_status"], "approved");
    for date in [
        &account["registration_date"],
        &person["registration_date"],
        &device["registration_date"],
    ] {
        let date = date.as_str().unwrap();
        assert!(
            chrono::DateTime::parse_from_rfc3339(date).is_ok() && date.ends_with("-03:00"),
            "{date}"
        );
    }
    // The provider call log keeps no personal data.
    let logged: Vec<Value> =
        sqlx::query_scalar("SELECT request FROM provider_calls WHERE provider = 'qitech'")
            .fetch_all(&app.db)
            .await
            .unwrap();
    // Account, person and device: each stored with the step that made it.
    assert_eq!(logged.len(), 3, "{logged:?}");
    assert!(logged.iter().all(|r| r.is_object()), "{logged:?}");
    let text = serde_json::to_string(&logged).unwrap();
    assert!(
        !text.contains("Maria") && !text.contains("900.000.001") && !text.contains("974749090"),
        "{text}"
    );
    app.stop().await;
}

#[tokio::test]
async fn transient_failures_keep_processing_and_retry_the_device_post_only() {
    let fake = Fake::start(
        QitechScript {
            device_failures: 3,
            ..Default::default()
        },
        0,
    )
    .await;
    let app = TestApp::with_fakes(&fake.qitech_url(), &fake.zro_url(), &[]).await;
    let id = app
        .start_onboarding(&body("dev-fake", full_signals(), None))
        .await;
    assert_eq!(app.onboarding(&id).await["status"], "processing");
    let decided = app.until_decided(&id, LIMIT).await;
    assert_eq!(decided["outcome"], "approved", "{decided}");
    let log = fake.log();
    let count = |suffix: &str| {
        log.iter()
            .filter(|l| l.starts_with("POST") && l.ends_with(suffix))
            .count()
    };
    assert_eq!(count("/account"), 1, "{log:?}");
    assert_eq!(count("/person"), 1, "{log:?}");
    // Three failures, one success, never a POST after the success.
    assert_eq!(count("/device"), 4, "{log:?}");
    assert!(log.last().unwrap().ends_with("/device"));
    app.stop().await;
}

#[tokio::test]
async fn device_conflict_is_read_back_not_registered_again() {
    let fake = Fake::start(
        QitechScript {
            device_conflict: true,
            device: json!({"device_id": "dev-fake", "status": "not_registered", "analysis_status": "automatically_reproved"}),
            ..Default::default()
        },
        0,
    )
    .await;
    let app = TestApp::with_fakes(&fake.qitech_url(), &fake.zro_url(), &[]).await;
    let response = app
        .onboard(&key(), &body("dev-fake", full_signals(), None), Some(5))
        .await;
    let view: Value = response.json().await.unwrap();
    assert_eq!(view["outcome"], "rejected", "{view}");
    assert_eq!(reason_codes(&view)[0], "device.registration_reproved");
    let log = fake.log();
    assert_eq!(
        log.iter()
            .filter(|l| l.starts_with("POST") && l.ends_with("/device"))
            .count(),
        1,
        "{log:?}"
    );
    assert_eq!(
        log.last().unwrap(),
        "GET /qitech/device_manager/account/acc-1/person/per-1/device/dev-fake"
    );
    app.stop().await;
}

#[tokio::test]
async fn registration_survives_a_restart_and_gives_up_at_the_deadline() {
    let fake = Fake::start(
        QitechScript {
            device_failures: usize::MAX,
            ..Default::default()
        },
        0,
    )
    .await;
    let app = TestApp::with_fakes(
        &fake.qitech_url(),
        &fake.zro_url(),
        &[("policy.device_deadline", "3s")],
    )
    .await;
    let id = app
        .start_onboarding(&body("dev-fake", full_signals(), None))
        .await;
    assert_eq!(app.onboarding(&id).await["status"], "processing");
    let app = app.restart().await;
    // The job is in PostgreSQL: the new instance carries on, and at the deadline decides review.
    let decided = app.until_decided(&id, LIMIT).await;
    assert_eq!(decided["outcome"], "review", "{decided}");
    assert_eq!(reason_codes(&decided)[0], "device.registration_pending");
    let log = fake.log();
    assert_eq!(
        log.iter().filter(|l| l.ends_with("/account")).count(),
        1,
        "account created once: {log:?}"
    );
    assert!(
        log.iter().filter(|l| l.ends_with("/device")).count() >= 2,
        "{log:?}"
    );
    app.stop().await;
}

#[tokio::test]
async fn recovery_after_restart_approves() {
    let fake = Fake::start(
        QitechScript {
            device_failures: usize::MAX,
            ..Default::default()
        },
        0,
    )
    .await;
    let app = TestApp::with_fakes(&fake.qitech_url(), &fake.zro_url(), &[]).await;
    let id = app
        .start_onboarding(&body("dev-fake", full_signals(), None))
        .await;
    // Restart only once QI Tech has refused the device at least once.
    let started = tokio::time::Instant::now();
    while !fake.log().iter().any(|l| l.ends_with("/device")) {
        assert!(started.elapsed() < LIMIT, "no device registration attempt");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let app = app.restart().await;
    assert_eq!(app.onboarding(&id).await["status"], "processing");
    fake.script(|s| s.qitech.device_failures = 0);
    let decided = app.until_decided(&id, LIMIT).await;
    assert_eq!(decided["outcome"], "approved", "{decided}");
    let log = fake.log();
    let successes = log.iter().filter(|l| l.ends_with("/device")).count();
    assert!(successes >= 2, "{log:?}");
    app.stop().await;
}

// ---------------------------------------------------------------- Open Finance

#[tokio::test]
async fn zro_gets_the_risk_signal_with_stable_transaction_and_fresh_nonce() {
    let fake = Fake::start(QitechScript::default(), 2).await;
    let app = TestApp::with_fakes(&fake.qitech_url(), &fake.zro_url(), &[]).await;
    let response = app
        .onboard(
            &key(),
            &body("dev-fake", full_signals(), Some("enr-42")),
            Some(5),
        )
        .await;
    let view: Value = response.json().await.unwrap();
    assert_eq!(view["outcome"], "approved");
    let id = view["id"].as_str().unwrap().to_owned();
    let done = app
        .until(&id, LIMIT, |v| v["open_finance"]["status"] == "sent")
        .await;
    assert_eq!(done["open_finance"]["attempts"], 3);
    assert_eq!(
        done["outcome"], "approved",
        "Zro failures do not change the verdict"
    );

    let seen = fake.seen();
    let signins: Vec<_> = seen
        .iter()
        .filter(|s| s.path == "/zro/auth/signin")
        .collect();
    assert_eq!(signins.len(), 1, "the token is cached");
    assert_eq!(
        signins[0].body,
        json!({"api_id": "sandbox-zro-id", "api_key": "sandbox-zro-key"})
    );
    let signals: Vec<_> = seen
        .iter()
        .filter(|s| s.path == "/zro/open-finance/enrollments/enr-42/device/risk-signal")
        .collect();
    assert_eq!(signals.len(), 3);
    let header = |s: &Seen, name: &str| s.headers[name].to_str().unwrap().to_owned();
    let transaction = header(signals[0], "x-transaction-uuid");
    assert_eq!(Uuid::parse_str(&transaction).unwrap().get_version_num(), 4);
    let mut nonces = Vec::new();
    for s in &signals {
        assert_eq!(
            header(s, "x-transaction-uuid"),
            transaction,
            "stable per onboarding"
        );
        assert_eq!(header(s, "x-include-replay-protection-schema"), "nonce");
        assert_eq!(header(s, "authorization"), "Bearer token-1");
        let nonce = header(s, "nonce");
        assert_eq!(Uuid::parse_str(&nonce).unwrap().get_version_num(), 4);
        nonces.push(nonce);
    }
    nonces.sort();
    nonces.dedup();
    assert_eq!(nonces.len(), 3, "a fresh nonce per attempt");
    let sent = &signals[0].body;
    assert_eq!(sent["device_id"], "dev-fake");
    assert_eq!(sent["os_version"], "14");
    assert_eq!(sent["user_time_zone_offset"], "-03");
    assert_eq!(sent["screen_width"], 1080);
    assert_eq!(sent["device_geolocation_type"], "FINE");
    app.stop().await;
}

#[tokio::test]
async fn sandbox_zro_sent_retried_failed_and_skipped() {
    let app = TestApp::spawn().await;
    let cases = [
        ("enr-ok", "sent", 1),
        ("sandbox-enrollment-unavailable-once", "sent", 2),
        ("sandbox-enrollment-invalid", "failed", 1),
    ];
    for (enrollment, status, attempts) in cases {
        let response = app
            .onboard(
                &key(),
                &body("dev-1", full_signals(), Some(enrollment)),
                Some(5),
            )
            .await;
        let view: Value = response.json().await.unwrap();
        assert_eq!(view["outcome"], "approved");
        let id = view["id"].as_str().unwrap().to_owned();
        let done = app
            .until(&id, LIMIT, |v| v["open_finance"]["status"] != "pending")
            .await;
        assert_eq!(
            done["open_finance"]["status"], status,
            "{enrollment}: {done}"
        );
        assert_eq!(done["open_finance"]["attempts"], attempts, "{enrollment}");
        assert_eq!(done["open_finance"]["enrollment_id"], enrollment);
        assert_eq!(done["outcome"], "approved");
        if status == "failed" {
            assert_eq!(done["open_finance"]["http_status"], 422);
            assert!(done["open_finance"]["error"].is_string());
        }
    }
    // Not approved: nothing is sent.
    let response = app
        .onboard(
            &key(),
            &body("sandbox-device-reproved", full_signals(), Some("enr-ok")),
            Some(5),
        )
        .await;
    let view: Value = response.json().await.unwrap();
    assert_eq!(view["outcome"], "rejected");
    // The signal would be queued in the decision's own transaction: there is none to wait for.
    let queued: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM steps WHERE onboarding_id = $1::uuid AND kind = 'open_finance_signal'",
    )
    .bind(view["id"].as_str().unwrap())
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(queued, 0);
    assert_eq!(
        app.onboarding(view["id"].as_str().unwrap())
            .await
            .get("open_finance"),
        None
    );
    app.stop().await;
}

// ---------------------------------------------------------------- device validations

fn validation(account_id: &str) -> Value {
    json!({"account_id": account_id, "person_id": "per-1", "session_id": "scan-2", "face_recognition_key": null,
           "reference": "login-1"})
}

async fn until_validation(app: &TestApp, id: &str, check: impl Fn(&Value) -> bool) -> Value {
    let started = tokio::time::Instant::now();
    loop {
        let (status, view) = app
            .get(&format!("/v1/device-validations/{id}"), ONBOARDING_KEY)
            .await;
        assert_eq!(status, 200);
        if check(&view) {
            return view;
        }
        assert!(started.elapsed() < LIMIT, "validation {id}: {view}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn device_validation_in_each_status() {
    let app = TestApp::spawn().await;
    // Final at once: 200.
    for (account, outcome, analysis) in [
        ("acc-any", "approved", "automatically_approved"),
        (
            "sandbox-account-reproved",
            "rejected",
            "automatically_reproved",
        ),
    ] {
        let (status, _, view) = app
            .validate(&Uuid::new_v4().to_string(), &validation(account))
            .await;
        assert_eq!(status, 200, "{account}: {view}");
        assert_eq!(view["status"], "decided");
        assert_eq!(view["outcome"], outcome);
        assert_eq!(view["analysis_status"], analysis);
        assert!(view["reason"].is_string() && view["decided_at"].is_string());
        assert_eq!(view["reference"], "login-1");
    }
    // Not final at first: 202, then polled until final.
    for (account, first, last, outcome) in [
        (
            "sandbox-account-pending",
            "pending",
            "automatically_approved",
            "approved",
        ),
        (
            "sandbox-account-in-queue",
            "in_queue",
            "automatically_approved",
            "approved",
        ),
        (
            "sandbox-account-manual-approved",
            "in_manual_analysis",
            "manually_approved",
            "approved",
        ),
        (
            "sandbox-account-manual-reproved",
            "in_manual_analysis",
            "manually_reproved",
            "rejected",
        ),
    ] {
        let (status, headers, view) = app
            .validate(&Uuid::new_v4().to_string(), &validation(account))
            .await;
        assert_eq!(status, 202, "{account}: {view}");
        assert_eq!(view["status"], "processing");
        assert_eq!(view["outcome"], Value::Null);
        assert_eq!(view["analysis_status"], first);
        let id = view["id"].as_str().unwrap();
        assert_eq!(
            headers["location"],
            format!("/v1/device-validations/{id}").as_str()
        );
        let done = until_validation(&app, id, |v| v["status"] == "decided").await;
        assert_eq!(done["outcome"], outcome, "{account}");
        assert_eq!(done["analysis_status"], last);
    }
    // Never final: stays processing, never approved.
    for (account, analysis) in [
        ("sandbox-account-challenge", "automatically_challenge"),
        ("sandbox-account-not-analysed", "not_analysed"),
        ("sandbox-account-unknown-status", "under_review"),
    ] {
        let (status, _, view) = app
            .validate(&Uuid::new_v4().to_string(), &validation(account))
            .await;
        assert_eq!(status, 202, "{account}");
        assert_eq!(view["analysis_status"], analysis);
        // Read back several times, and still open.
        let started = tokio::time::Instant::now();
        loop {
            let reads: i32 =
                sqlx::query_scalar("SELECT attempts FROM device_validations WHERE id = $1::uuid")
                    .bind(view["id"].as_str().unwrap())
                    .fetch_one(&app.db)
                    .await
                    .unwrap();
            if reads >= 3 {
                break;
            }
            assert!(
                started.elapsed() < LIMIT,
                "{account}: read back {reads} times"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let (_, later) = app
            .get(
                &format!("/v1/device-validations/{}", view["id"].as_str().unwrap()),
                AUDITOR_KEY,
            )
            .await;
        assert_eq!(later["status"], "processing", "{account}: {later}");
        assert_eq!(later["outcome"], Value::Null);
    }
    // QI Tech down on the first send: processing, then resent with the same event id.
    let (status, _, view) = app
        .validate(
            &Uuid::new_v4().to_string(),
            &validation("sandbox-account-unavailable-once"),
        )
        .await;
    assert_eq!(status, 202, "{view}");
    assert_eq!(view["analysis_status"], Value::Null);
    let done = until_validation(&app, view["id"].as_str().unwrap(), |v| {
        v["status"] == "decided"
    })
    .await;
    assert_eq!(done["outcome"], "approved");
    let events: Vec<Value> = sqlx::query_scalar(
        "SELECT request->'id' FROM provider_calls WHERE operation = 'send_device_validation' AND device_validation_id = $1::uuid",
    )
    .bind(view["id"].as_str().unwrap())
    .fetch_all(&app.db)
    .await
    .unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0], events[1], "the same event id on the resend");
    app.stop().await;
}

#[tokio::test]
async fn device_validation_idempotency_validation_and_scopes() {
    let app = TestApp::spawn().await;
    let key = Uuid::new_v4().to_string();
    let (status, _, first) = app.validate(&key, &validation("acc-any")).await;
    assert_eq!(status, 200);
    let (status, _, again) = app.validate(&key, &validation("acc-any")).await;
    assert_eq!(status, 200);
    assert_eq!(again["id"], first["id"]);
    let sends: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM provider_calls WHERE operation = 'send_device_validation'",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(sends, 1, "a replay sends nothing");
    let (status, _, problem) = app.validate(&key, &validation("acc-other")).await;
    assert_eq!(status, 409, "{problem}");

    let mut unknown = validation("acc-any");
    unknown["device"] = json!("x");
    let (status, _, problem) = app.validate(&Uuid::new_v4().to_string(), &unknown).await;
    assert_eq!(status, 422);
    assert_eq!(problem["errors"][0]["field"], "device");
    let (status, _, problem) = app
        .validate(
            &Uuid::new_v4().to_string(),
            &json!({"account_id": "", "person_id": "p", "session_id": "s"}),
        )
        .await;
    assert_eq!(status, 422);
    assert_eq!(problem["errors"][0]["field"], "account_id");
    let response = app
        .http
        .post(app.url("/v1/device-validations"))
        .bearer_auth(ONBOARDING_KEY)
        .json(&validation("acc-any"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400, "Idempotency-Key is required");
    let response = app
        .http
        .post(app.url("/v1/device-validations"))
        .bearer_auth(AUDITOR_KEY)
        .header("Idempotency-Key", "k")
        .json(&validation("acc-any"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let id = first["id"].as_str().unwrap();
    assert_eq!(
        app.get(&format!("/v1/device-validations/{id}"), AUDITOR_KEY)
            .await
            .0,
        200
    );
    assert_eq!(
        app.get(
            &format!("/v1/device-validations/{}", Uuid::new_v4()),
            AUDITOR_KEY
        )
        .await
        .0,
        404
    );
    assert_eq!(
        app.get(&format!("/v1/device-validations/{id}"), "nope")
            .await
            .0,
        401
    );
    app.stop().await;
}

#[tokio::test]
async fn zro_failing_every_time_is_reported_failed_after_max_attempts() {
    let fake = Fake::start(QitechScript::default(), usize::MAX).await;
    let app = TestApp::with_fakes(
        &fake.qitech_url(),
        &fake.zro_url(),
        &[("zro.max_attempts", "3"), ("zro.retry_initial", "50ms")],
    )
    .await;
    let response = app
        .onboard(
            &key(),
            &body("dev-fake", full_signals(), Some("enr-down")),
            Some(5),
        )
        .await;
    let view: Value = response.json().await.unwrap();
    assert_eq!(view["outcome"], "approved", "{view}");
    let id = view["id"].as_str().unwrap().to_owned();
    let done = app
        .until(&id, LIMIT, |v| v["open_finance"]["status"] != "pending")
        .await;
    assert_eq!(done["open_finance"]["status"], "failed", "{done}");
    assert_eq!(done["open_finance"]["attempts"], 3);
    assert_eq!(done["outcome"], "approved", "the verdict stands");
    let posts = fake
        .log()
        .iter()
        .filter(|l| l.ends_with("/risk-signal"))
        .count();
    assert_eq!(posts, 3, "exactly max_attempts sends: {:?}", fake.log());
    let pending: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM steps WHERE onboarding_id = $1::uuid AND status = 'pending'",
    )
    .bind(&id)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(pending, 0, "nothing left to retry");
    app.stop().await;
}
