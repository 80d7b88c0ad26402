//! QI Tech device registration, against the sandbox and against a fake that records what it
//! receives.

use super::*;

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
    let app = TestApp::builder()
        .config(&[("policy.device_deadline", "1s")])
        .spawn()
        .await;
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
    let app = TestApp::builder()
        .device_fakes(&fake.qitech_url(), &fake.zro_url())
        .spawn()
        .await;
    let response = app
        .onboard(&key(), &body("dev-fake", full_signals(), None), Some(5))
        .await;
    assert_eq!(response.status(), 200);
    let view: Value = response.json().await.unwrap();
    // 409 on account and person means they exist: the device is still registered and approved.
    assert_eq!(view["outcome"], "approved", "{view}");
    assert_eq!(
        fake.log().await,
        [
            "POST /qitech/device_manager/account",
            "POST /qitech/device_manager/account/acc-1/person",
            "POST /qitech/device_manager/account/acc-1/person/per-1/device",
        ]
    );
    let seen = fake.seen().await;
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
    let app = TestApp::builder()
        .device_fakes(&fake.qitech_url(), &fake.zro_url())
        .spawn()
        .await;
    let id = app
        .start_onboarding(&body("dev-fake", full_signals(), None))
        .await;
    assert_eq!(app.onboarding(&id).await["status"], "processing");
    let decided = app.until_decided(&id, LIMIT).await;
    assert_eq!(decided["outcome"], "approved", "{decided}");
    let log = fake.log().await;
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
    let app = TestApp::builder()
        .device_fakes(&fake.qitech_url(), &fake.zro_url())
        .spawn()
        .await;
    let response = app
        .onboard(&key(), &body("dev-fake", full_signals(), None), Some(5))
        .await;
    let view: Value = response.json().await.unwrap();
    assert_eq!(view["outcome"], "rejected", "{view}");
    assert_eq!(reason_codes(&view)[0], "device.registration_reproved");
    let log = fake.log().await;
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
    let app = TestApp::builder()
        .device_fakes(&fake.qitech_url(), &fake.zro_url())
        .config(&[("policy.device_deadline", "3s")])
        .spawn()
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
    let log = fake.log().await;
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
    let app = TestApp::builder()
        .device_fakes(&fake.qitech_url(), &fake.zro_url())
        .spawn()
        .await;
    let id = app
        .start_onboarding(&body("dev-fake", full_signals(), None))
        .await;
    // Restart only once QI Tech has refused the device at least once.
    let started = tokio::time::Instant::now();
    while !fake.log().await.iter().any(|l| l.ends_with("/device")) {
        assert!(started.elapsed() < LIMIT, "no device registration attempt");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let app = app.restart().await;
    assert_eq!(app.onboarding(&id).await["status"], "processing");
    fake.devices_recover();
    let decided = app.until_decided(&id, LIMIT).await;
    assert_eq!(decided["outcome"], "approved", "{decided}");
    let log = fake.log().await;
    let successes = log.iter().filter(|l| l.ends_with("/device")).count();
    assert!(successes >= 2, "{log:?}");
    app.stop().await;
}
