//! Invalid requests get problem details; health, metrics and the OpenAPI document need no key.

use super::*;

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
    // Reads counters of the process's one metrics registry: alone in a process.
    if isolation::own_process(
        module_path!(),
        "health_metrics_and_openapi_need_no_key",
        isolation::Server::Shared,
    )
    .await
    {
        return;
    }
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
    let metrics = app.metrics().await;
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
