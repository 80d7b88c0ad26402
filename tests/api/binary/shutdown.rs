//! SIGTERM while a request waits: answered, and the next start decides the onboarding.

use super::*;

/// `serve` on `database` and `port`, with the sandbox's unico taking 3 s per process; answers
/// once it is ready.
async fn serve_slow_unico(database_url: &str, port: u16) -> std::process::Child {
    let mut child = veredito_command()
        .arg("serve")
        .env("VEREDITO__SERVER__ADDR", format!("127.0.0.1:{port}"))
        .env("VEREDITO__SERVER__SHUTDOWN_GRACE", "3s")
        .env("VEREDITO__DATABASE__URL", database_url)
        .env("VEREDITO__SANDBOX__PROCESSING_DELAY", "3s")
        .env("VEREDITO__UNICO__POLL_INITIAL", "500ms")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("binary starts");
    let http = reqwest::Client::new();
    for _ in 0..100 {
        if let Ok(response) = http
            .get(format!("http://127.0.0.1:{port}/health/ready"))
            .send()
            .await
        {
            if response.status() == 200 {
                return child;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    child.kill().ok();
    child.wait().ok();
    panic!("serve did not become ready");
}

#[tokio::test]
async fn sigterm_answers_a_waiting_request_and_the_next_start_decides() {
    let database = fresh_database().await;
    let url = database.url.clone();
    let port = free_port();
    let child = serve_slow_unico(&url, port).await;
    let base = format!("http://127.0.0.1:{port}");
    let waiting = {
        let base = base.clone();
        tokio::spawn(async move {
            let response = reqwest::Client::new()
                .post(format!("{base}/v1/onboardings"))
                .bearer_auth(ONBOARDING_KEY)
                .header("Idempotency-Key", key())
                .header("Prefer", "wait=30")
                .json(&onboarding_body("900.000.007-60"))
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            let location = response.headers().get("location").cloned();
            let body: Value = response.json().await.unwrap();
            (status, location, body)
        })
    };
    // SIGTERM once unico has the process, while the request waits for it.
    let mut db = PgConnection::connect(&url).await.unwrap();
    let id: String = first_open_process(&mut db).await;
    let term = std::time::Instant::now();
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let (status, location, body) = waiting.await.unwrap();
    assert_eq!(status, 202, "{body}");
    assert!(
        term.elapsed() < Duration::from_secs(2),
        "answered at once, not at the end of its wait"
    );
    assert_eq!(
        location.unwrap().to_str().unwrap(),
        format!("/v1/onboardings/{id}")
    );
    let exited = tokio::task::spawn_blocking(move || {
        let mut child = child;
        child.wait()
    })
    .await
    .unwrap()
    .unwrap();
    assert!(exited.success(), "serve exits cleanly: {exited:?}");
    let decided_before: Option<String> =
        sqlx::query_scalar("SELECT outcome FROM decisions WHERE onboarding_id = $1::uuid")
            .bind(&id)
            .fetch_optional(&mut db)
            .await
            .unwrap();
    assert_eq!(
        decided_before, None,
        "nothing was decided before the restart"
    );

    let mut again = serve_slow_unico(&url, port).await;
    let started = std::time::Instant::now();
    let outcome = loop {
        let outcome: Option<String> =
            sqlx::query_scalar("SELECT outcome FROM decisions WHERE onboarding_id = $1::uuid")
                .bind(&id)
                .fetch_optional(&mut db)
                .await
                .unwrap();
        if let Some(outcome) = outcome {
            break outcome;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "not decided after the restart"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(outcome, "approved");
    let processes: i64 = sqlx::query_scalar("SELECT count(*) FROM unico_processes")
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert_eq!(processes, 1, "one unico process");
    again.kill().ok();
    again.wait().ok();
}
