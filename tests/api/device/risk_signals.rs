//! The phone's risk signals: stored, reviewed, rejected before unico, or refused when malformed.

use super::*;

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
    let app = TestApp::builder()
        .device_fakes(&fake.qitech_url(), &fake.zro_url())
        .spawn()
        .await;
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
    let log = fake.log().await;
    assert!(log.is_empty(), "no provider was called: {log:?}");
    app.stop().await;
}
