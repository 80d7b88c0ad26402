//! The Open Finance risk signal sent to Zro: retried, failed and skipped as documented.

use super::*;

#[tokio::test]
async fn zro_gets_the_risk_signal_with_stable_transaction_and_fresh_nonce() {
    let fake = Fake::start(QitechScript::default(), 2).await;
    let app = TestApp::builder()
        .device_fakes(&fake.qitech_url(), &fake.zro_url())
        .spawn()
        .await;
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

    let seen = fake.seen().await;
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
