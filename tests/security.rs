//! What an attacker or an auditor would try: searching by CPF without `pii:read`, reading who
//! searched for what, NUL characters anywhere, wrong content types, forged webhooks piling up.

mod common;

use common::*;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

const AUDITOR_PII_KEY: &str = "vrd_sandbox_auditor_pii";

#[tokio::test]
async fn a_cpf_search_needs_pii_read_and_every_search_is_recorded() {
    let app = TestApp::spawn().await;
    let cpf = "111.444.777-35";
    let response = app.onboard(&key(), &onboarding_body(cpf), Some(10)).await;
    assert_eq!(response.status(), 200);

    // Without pii:read the CPF filter is refused, whatever its value: no guessing by search.
    let (status, problem) = app.get("/v1/decisions?cpf=11144477735", AUDITOR_KEY).await;
    assert_eq!(status, 403, "{problem}");
    assert_eq!(problem["type"], "/problems/forbidden");
    let (status, _) = app
        .get("/v1/decisions/export?cpf=11144477735", AUDITOR_KEY)
        .await;
    assert_eq!(status, 403);
    let (status, page) = app
        .get("/v1/decisions?cpf=11144477735", AUDITOR_PII_KEY)
        .await;
    assert_eq!(status, 200);
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    let decision_id = page["items"][0]["id"].as_str().unwrap().to_owned();
    let (status, _) = app
        .get(&format!("/v1/decisions/{decision_id}"), AUDITOR_KEY)
        .await;
    assert_eq!(status, 200);
    let (status, _) = app.get("/v1/decisions?outcome=approved", AUDITOR_KEY).await;
    assert_eq!(status, 200);

    // The log: who, what, when; the CPF only masked and hashed.
    let (status, log) = app.get("/v1/audit-searches", AUDITOR_KEY).await;
    assert_eq!(status, 200, "{log}");
    let items = log["items"].as_array().unwrap();
    let seen: Vec<(&str, &str)> = items
        .iter()
        .map(|i| {
            (
                i["caller"].as_str().unwrap(),
                i["endpoint"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("sandbox-auditor", "GET /v1/decisions"),
            ("sandbox-auditor", "GET /v1/decisions/{id}"),
            ("sandbox-auditor-pii", "GET /v1/decisions"),
        ],
        "newest first; refused searches are not searches"
    );
    assert_eq!(items[0]["filters"], json!({"outcome": "approved"}));
    assert_eq!(items[1]["filters"]["decision_id"], decision_id);
    let by_cpf = &items[2]["filters"]["cpf"];
    assert_eq!(by_cpf["masked"], "***.444.777-**");
    assert_eq!(by_cpf["hmac"].as_str().unwrap().len(), 64);
    assert!(!log.to_string().contains("11144477735"));
    assert!(!log.to_string().contains(cpf));
    // Pages, and nobody rewrites the log.
    let (_, first) = app.get("/v1/audit-searches?limit=2", AUDITOR_KEY).await;
    assert_eq!(first["items"].as_array().unwrap().len(), 2);
    let cursor = first["next_cursor"].as_str().unwrap().to_owned();
    let (_, second) = app
        .get(
            &format!("/v1/audit-searches?limit=2&cursor={cursor}"),
            AUDITOR_KEY,
        )
        .await;
    assert_eq!(second["items"][0], items[2]);
    assert_eq!(second["items"].as_array().unwrap().len(), 1);
    assert!(second["next_cursor"].is_null());
    let changed = sqlx::query("UPDATE audit_searches SET caller = 'someone else'")
        .execute(&app.db)
        .await;
    assert!(changed.is_err(), "the search log is append-only");
    let (status, _) = app.get("/v1/audit-searches", ONBOARDING_KEY).await;
    assert_eq!(status, 403);
    app.stop().await;
}

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

#[tokio::test]
async fn old_webhook_deliveries_are_deleted_by_retention() {
    let app = TestApp::spawn().await;
    sqlx::query(
        "INSERT INTO unico_webhooks (received_at, authenticated, process_id)
         VALUES (now() - interval '31 days', false, NULL),
                (now() - interval '31 days', true, 'old'),
                (now() - interval '1 day', true, 'recent')",
    )
    .execute(&app.db)
    .await
    .unwrap();
    veredito::jobs::retention::erase_expired_by(&app.state, 500, &CancellationToken::new())
        .await
        .unwrap();
    let left: Vec<Option<String>> =
        sqlx::query_scalar("SELECT process_id FROM unico_webhooks ORDER BY id")
            .fetch_all(&app.db)
            .await
            .unwrap();
    assert_eq!(left, [Some("recent".to_owned())]);
    app.stop().await;
}
