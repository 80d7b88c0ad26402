//! Device validations: each status, idempotency, validation of the request and scopes.

use super::*;

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
    let app = TestApp::builder()
        .device_fakes(&fake.qitech_url(), &fake.zro_url())
        .config(&[("zro.max_attempts", "3"), ("zro.retry_initial", "50ms")])
        .spawn()
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
        .await
        .iter()
        .filter(|l| l.ends_with("/risk-signal"))
        .count();
    assert_eq!(
        posts,
        3,
        "exactly max_attempts sends: {:?}",
        fake.log().await
    );
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
