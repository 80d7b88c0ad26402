//! `serve` creates its database and serves, and its logs carry no personal data or secrets.

use super::*;

#[tokio::test]
async fn serve_creates_its_database_and_logs_no_personal_data() {
    let database = format!("veredito_test_{}", Uuid::new_v4().simple());
    let _dropped_at_the_end = TestDatabase::adopt(&database);
    let port = free_port();
    let child = veredito_command()
        .arg("serve")
        .env("VEREDITO__SERVER__ADDR", format!("127.0.0.1:{port}"))
        .env(
            "VEREDITO__DATABASE__URL",
            format!("{}/{database}", server_url()),
        )
        .env("VEREDITO__TELEMETRY__LOG_FORMAT", "json")
        .env("VEREDITO__SANDBOX__PROCESSING_DELAY", "300ms")
        .env("VEREDITO__UNICO__POLL_INITIAL", "200ms")
        .env("RUST_LOG", "debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary starts");
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let mut ready = false;
    for _ in 0..100 {
        if let Ok(response) = http.get(format!("{base}/health/ready")).send().await {
            ready = response.status() == 200;
            if ready {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ready, "serve did not become ready");

    let cpfs = [
        "900.000.001-75",
        "900.000.007-60",
        "900.000.009-22",
        "900.000.024-61",
        "111.444.777-35",
    ];
    for cpf in cpfs {
        let response = http
            .post(format!("{base}/v1/onboardings"))
            .bearer_auth(ONBOARDING_KEY)
            .header("Idempotency-Key", key())
            .header("Prefer", "wait=10")
            .json(&onboarding_body(cpf))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{cpf}");
    }
    let mut invalid = onboarding_body("111.444.777-35");
    invalid["person"]["cpf"] = json!("111.444.777-36");
    let response = http
        .post(format!("{base}/v1/onboardings"))
        .bearer_auth(ONBOARDING_KEY)
        .header("Idempotency-Key", key())
        .json(&invalid)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 422);
    let problem: Value = response.json().await.unwrap();
    assert!(
        !problem.to_string().contains("111.444.777-36"),
        "the problem does not echo the CPF"
    );
    http.post(format!("{base}/v1/webhooks/unico"))
        .header(WEBHOOK_HEADER, "forged")
        .json(&json!({"processId": "x"}))
        .send()
        .await
        .unwrap();

    let output = terminate(child).await;
    assert!(
        output.status.success(),
        "serve exits cleanly on SIGTERM: {:?}",
        output.status
    );
    let logs = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(logs.contains("veredito listening"), "logs were captured");
    assert!(
        logs.contains("\"level\":\"DEBUG\""),
        "debug lines were emitted, so the scan covers them"
    );
    assert!(logs.contains("decided"), "decisions are logged");
    assert!(
        logs.contains("serve is connected as a superuser"),
        "the tests connect as postgres, and serve says it should not"
    );
    let mut forbidden: Vec<String> = Vec::new();
    for cpf in cpfs.iter().chain(["111.444.777-36"].iter()) {
        forbidden.push((*cpf).to_owned());
        forbidden.push(cpf.replace(['.', '-'], ""));
    }
    forbidden.extend(
        [
            "Maria Teste",
            "maria.teste@example.com",
            "5511974749090",
            // The phone as QI Tech receives it, split into area code and number.
            "974749090",
            "c2VsZmllLWJ5dGVz",
            "vrd_sandbox_onboarding",
            "sandbox-webhook-secret",
            "sandbox-api-key",
            "BEGIN PRIVATE KEY",
        ]
        .map(str::to_owned),
    );
    for secret in forbidden {
        assert!(!logs.contains(&secret), "`{secret}` appears in the logs");
    }
    // The token endpoint's answer must not be logged either.
    assert!(
        !logs.contains("access_token\":\""),
        "an access token appears in the logs"
    );

    let mut admin = PgConnection::connect(&format!("{}/postgres", server_url()))
        .await
        .unwrap();
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(&database)
            .fetch_one(&mut admin)
            .await
            .unwrap();
    assert!(exists, "serve created its database");
}
