//! Waits that run out: a unico that answers late, a service stopped while a request waits, a
//! process never created before the deadline.

use super::*;

#[tokio::test]
async fn slow_create_process_answers_202_and_decides_later() {
    let (fake, url) = Fake::start(Script {
        creates: [Create::SlowOk(Duration::from_secs(15))].into(),
        ..Default::default()
    })
    .await;
    let app = app_on(&url, &[("unico.timeout", "30s")]).await;
    // A second replica whose runner looks for due steps the whole time: the 15 s call outlasts
    // the step's 4 s lease many times, and its claim, renewed while it runs, keeps the step
    // from running twice at once.
    let second = app
        .replica(&[
            ("sandbox.unico_provider", "false"),
            ("unico.base_url", &url),
            ("unico.identity_url", &url),
            ("unico.timeout", "30s"),
        ])
        .await;
    let started = Instant::now();
    let (status, id) = onboard_absorbed(&app, 3).await;
    let answered = started.elapsed();
    assert_eq!(status, 202);
    assert!(
        answered >= Duration::from_secs(3) && answered < Duration::from_secs(5),
        "answered after {answered:?}"
    );
    // Meanwhile the service goes on serving: health, and another onboarding decided at once.
    let health = Instant::now();
    let live = app.http.get(app.url("/health/live")).send().await.unwrap();
    assert_eq!(live.status(), 200);
    assert!(health.elapsed() < Duration::from_millis(500));
    let (other_status, other) = onboard_absorbed(&app, 10).await;
    assert_eq!(other_status, 200);
    assert_eq!(app.onboarding(&other).await["outcome"], "approved");
    assert_eq!(app.onboarding(&id).await["status"], "processing");

    let view = app.until_decided(&id, Duration::from_secs(25)).await;
    assert_eq!(view["outcome"], "approved");
    assert_eq!(fake.created_count(), 2, "one process for each onboarding");
    assert_eq!(fake.creates().len(), 2, "one CreateProcess call for each");
    assert_eq!(app.unico_calls(&id, "create_process").await, 1);
    second.stop().await;
    app.stop().await;
}

#[tokio::test]
async fn stopping_answers_a_waiting_request_and_the_next_start_decides() {
    // The sandbox takes 3 s per process: the request is still waiting when the service stops.
    let app = TestApp::builder()
        .config(&[
            ("sandbox.processing_delay", "3s"),
            ("sandbox.webhook_delay", "50ms"),
            ("unico.poll_initial", "500ms"),
        ])
        .spawn()
        .await;
    let request = {
        let http = app.http.clone();
        let url = app.url("/v1/onboardings");
        tokio::spawn(async move {
            let started = Instant::now();
            let response = http
                .post(url)
                .bearer_auth(ONBOARDING_KEY)
                .header("Idempotency-Key", key())
                .header("Prefer", "wait=30")
                .json(&onboarding_body("900.000.007-60"))
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            let location = response
                .headers()
                .get("location")
                .map(|l| l.to_str().unwrap().to_owned());
            let body: Value = response.json().await.unwrap();
            (status, location, body, started.elapsed())
        })
    };
    // Stop once the process is open at unico.
    let id = first_open_process(&mut app.db.acquire().await.unwrap()).await;
    let stopping = Instant::now();
    let app = app.restart().await;
    let (status, location, body, _) = request.await.unwrap();
    assert_eq!(status, 202, "{body}");
    assert_eq!(
        location.as_deref(),
        Some(format!("/v1/onboardings/{id}").as_str())
    );
    assert_eq!(body["status"], "processing");
    assert!(stopping.elapsed() < Duration::from_secs(5));
    let view = app.until_decided(&id, Duration::from_secs(15)).await;
    assert_eq!(view["outcome"], "approved", "{view}");
    assert_eq!(app.unico_calls(&id, "create_process").await, 1);
    app.stop().await;
}

#[tokio::test]
async fn a_process_never_created_is_reviewed_at_the_deadline() {
    let (fake, url) = Fake::start(Script {
        creates: std::iter::repeat_n(Create::Status(503), 1000).collect(),
        ..Default::default()
    })
    .await;
    let app = app_on(&url, &[("policy.biometrics_deadline", "2s")]).await;
    let (status, id) = onboard_absorbed(&app, 1).await;
    assert_eq!(status, 202);
    let view = app.until_decided(&id, Duration::from_secs(15)).await;
    assert_eq!(view["outcome"], "review", "{view}");
    assert_eq!(reason_codes(&view), ["biometrics.timeout"]);
    assert_eq!(fake.created_count(), 0);
    let attempts = fake.creates().len();
    assert!(attempts >= 3, "retried until the deadline: {attempts}");
    assert_eq!(
        app.unico_calls(&id, "create_process").await as usize,
        attempts
    );
    // The selfie waited sealed for a retry; with the decision it is gone.
    let selfie: Option<Vec<u8>> =
        sqlx::query_scalar("SELECT selfie_ciphertext FROM onboardings WHERE id = $1::uuid")
            .bind(&id)
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(selfie, None);
    app.stop().await;
}
