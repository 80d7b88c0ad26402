//! NUL characters and wrong content types, refused by name.

use super::*;

#[tokio::test]
async fn nul_characters_and_wrong_content_types_are_refused_by_name() {
    let app = TestApp::spawn().await;
    // In a body: 422 with the field, nothing stored.
    for (field, body) in [
        ("reference", {
            let mut b = onboarding_body("111.444.777-35");
            b["reference"] = json!("ref-\u{0}");
            b
        }),
        ("device.device_id", {
            let mut b = onboarding_body("111.444.777-35");
            b["device"]["device_id"] = json!("dev\u{0}");
            b
        }),
        ("device.risk_signals.os_version", {
            let mut b = onboarding_body("111.444.777-35");
            b["device"]["risk_signals"]["os_version"] = json!("14\u{0}");
            b
        }),
    ] {
        let response = app.onboard(&key(), &body, Some(0)).await;
        assert_eq!(response.status(), 422, "{field}");
        let problem: Value = response.json().await.unwrap();
        assert_eq!(problem["errors"][0]["field"], field, "{problem}");
    }
    // Ids that travel in QI Tech's paths cannot step out of their segment.
    for (field, value) in [
        ("account.account_id", ".."),
        ("account.person_id", "../person"),
        ("device.device_id", "a/b"),
    ] {
        let mut body = onboarding_body("111.444.777-35");
        let (group, name) = field.split_once('.').unwrap();
        body[group][name] = json!(value);
        let response = app.onboard(&key(), &body, Some(0)).await;
        assert_eq!(response.status(), 422, "{field}");
        let problem: Value = response.json().await.unwrap();
        assert_eq!(problem["errors"][0]["field"], field, "{problem}");
    }
    let validation = app
        .http
        .post(app.url("/v1/device-validations"))
        .bearer_auth(ONBOARDING_KEY)
        .header("Idempotency-Key", key())
        .json(&json!({"account_id": "a\u{0}", "person_id": "p", "session_id": "s"}))
        .send()
        .await
        .unwrap();
    assert_eq!(validation.status(), 422);
    // In a query or a path: 422 naming the parameter.
    let (status, problem) = app.get("/v1/decisions?reference=a%00b", AUDITOR_KEY).await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(problem["errors"][0]["field"], "reference");
    let (status, _) = app
        .get("/v1/decisions/export?reason=%00", AUDITOR_KEY)
        .await;
    assert_eq!(status, 422);
    let (status, _) = app.get("/v1/policies/v%001", "vrd_sandbox_risk").await;
    assert_eq!(status, 422);
    let onboardings: i64 = sqlx::query_scalar("SELECT count(*) FROM onboardings")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(onboardings, 0);

    // A JSON body sent as something else: 415, as problem+json.
    let response = app
        .http
        .post(app.url("/v1/onboardings"))
        .bearer_auth(ONBOARDING_KEY)
        .header("Idempotency-Key", key())
        .header("content-type", "text/plain")
        .body(onboarding_body("111.444.777-35").to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 415);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    // The scope is checked before the body: a key without it hears 403, not 415 or 422.
    let response = app
        .http
        .post(app.url("/v1/onboardings"))
        .bearer_auth(AUDITOR_KEY)
        .header("Idempotency-Key", key())
        .header("content-type", "text/plain")
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    for (path, key) in [
        (
            format!("/v1/onboardings/{}/review-requests", uuid::Uuid::new_v4()),
            AUDITOR_KEY,
        ),
        (
            format!("/v1/reviews/{}/resolution", uuid::Uuid::new_v4()),
            ONBOARDING_KEY,
        ),
    ] {
        let response = app
            .http
            .post(app.url(&path))
            .bearer_auth(key)
            .header("content-type", "text/plain")
            .body("{ not json")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403, "{path}");
    }
    // An unknown route or method is problem+json too.
    let response = app.http.get(app.url("/v2/nothing")).send().await.unwrap();
    assert_eq!(response.status(), 404);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let response = app
        .http
        .delete(app.url("/v1/onboardings"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    app.stop().await;
}
