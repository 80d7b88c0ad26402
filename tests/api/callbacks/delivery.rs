//! Delivery when the receiver fails: the same webhook id until it answers, after a restart,
//! without delaying any decision, and sent again on request.

use super::*;

#[tokio::test]
async fn a_failing_receiver_gets_the_same_webhook_id_until_it_answers() {
    let (receiver, url) = Receiver::start(vec![Reply::Status(500), Reply::Status(500)]).await;
    let app = app_for(&url, &[]).await;
    let response = app
        .onboard(&key(), &onboarding_body("900.000.001-75"), Some(10))
        .await;
    assert_eq!(response.status(), 200);
    let seen = receiver.until("three attempts", |s| s.len() >= 3).await;
    assert_eq!(seen.len(), 3);
    assert!(seen.iter().all(|d| d.id == seen[0].id), "{seen:?}");
    assert!(seen.iter().all(|d| d.body == seen[0].body));
    let (_, delivered) = app.get("/v1/callbacks?status=delivered", AUDITOR_KEY).await;
    let started = tokio::time::Instant::now();
    let mut delivered = delivered;
    while delivered["items"].as_array().unwrap().is_empty() {
        assert!(started.elapsed() < Duration::from_secs(5));
        tokio::time::sleep(Duration::from_millis(20)).await;
        delivered = app
            .get("/v1/callbacks?status=delivered", AUDITOR_KEY)
            .await
            .1;
    }
    assert_eq!(delivered["items"][0]["id"], seen[0].id.as_str());
    assert_eq!(delivered["items"][0]["attempts"], 3);
    app.stop().await;
}

#[tokio::test]
async fn undelivered_events_are_delivered_after_a_restart() {
    // The receiver refuses everything at first.
    let (receiver, url) = Receiver::start(vec![Reply::Status(503); 1000]).await;
    let app = app_for(
        &url,
        &[
            ("callbacks.retry_initial", "1s"),
            ("callbacks.retry_max", "1s"),
        ],
    )
    .await;
    let response = app
        .onboard(&key(), &onboarding_body("900.000.001-75"), Some(10))
        .await;
    assert_eq!(response.status(), 200);
    receiver.until("a first attempt", |s| !s.is_empty()).await;
    let app = app.restart().await;
    // Now it takes them.
    receiver.script.lock().unwrap().clear();
    let before = receiver.attempts().len();
    let seen = receiver
        .until("delivered after the restart", |s| s.len() > before)
        .await;
    assert!(seen.iter().all(|d| d.id == seen[0].id));
    let started = tokio::time::Instant::now();
    loop {
        let status: String = sqlx::query_scalar("SELECT status FROM callbacks")
            .fetch_one(&app.db)
            .await
            .unwrap();
        if status == "delivered" {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "{status}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    app.stop().await;
}

#[tokio::test]
async fn a_receiver_that_never_answers_delays_no_decision() {
    let (receiver, url) = Receiver::start(vec![Reply::Hang; 1000]).await;
    let app = app_for(&url, &[("callbacks.timeout", "30s")]).await;
    for _ in 0..20 {
        let started = tokio::time::Instant::now();
        let response = app
            .onboard(&key(), &onboarding_body("900.000.001-75"), Some(10))
            .await;
        assert_eq!(response.status(), 200);
        let view: Value = response.json().await.unwrap();
        assert_eq!(view["outcome"], "approved");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "decided in {:?}",
            started.elapsed()
        );
    }
    // The deliveries are hanging, not lost.
    receiver
        .until("deliveries under way", |s| s.len() >= 16)
        .await;
    let pending: i64 =
        sqlx::query_scalar("SELECT count(*) FROM callbacks WHERE status = 'pending'")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(pending, 20);
    app.stop().await;
}

#[tokio::test]
async fn a_failed_callback_can_be_sent_again() {
    let (receiver, url) = Receiver::start(vec![Reply::Status(410)]).await;
    // Retries stop at once: the first failure is past callbacks.max_age.
    let app = app_for(&url, &[("callbacks.max_age", "1ms")]).await;
    let response = app
        .onboard(&key(), &onboarding_body("900.000.001-75"), Some(10))
        .await;
    assert_eq!(response.status(), 200);
    let started = tokio::time::Instant::now();
    let failed = loop {
        let (_, page) = app.get("/v1/callbacks?status=failed", AUDITOR_KEY).await;
        if let Some(item) = page["items"].as_array().unwrap().first() {
            break item.clone();
        }
        assert!(started.elapsed() < Duration::from_secs(10));
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(failed["last_status"], 410);
    let id = failed["id"].as_str().unwrap();
    let retry = app
        .http
        .post(app.url(&format!("/v1/callbacks/{id}/retry")))
        .bearer_auth(ONBOARDING_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(retry.status(), 200);
    let seen = receiver.until("sent again", |s| s.len() >= 2).await;
    assert_eq!(seen[1].id, id, "the same webhook-id");
    let again = app
        .http
        .post(app.url(&format!("/v1/callbacks/{id}/retry")))
        .bearer_auth(ONBOARDING_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 409, "only a failed one is sent again");
    app.stop().await;
}
