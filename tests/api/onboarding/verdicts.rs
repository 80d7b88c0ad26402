//! The verdict for each sandbox CPF, synchronous and asynchronous, and an emulator rejected before
//! unico is paid.

use super::*;

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
