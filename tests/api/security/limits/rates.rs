//! Each key's rate: a flood gets 429 with Retry-After, and console sessions spend their key's.

use super::*;

#[tokio::test]
async fn each_key_has_its_rate_and_a_flood_gets_429_with_retry_after() {
    // Reads counters of the process's one metrics registry: alone in a process.
    if isolation::own_process(
        module_path!(),
        "each_key_has_its_rate_and_a_flood_gets_429_with_retry_after",
        isolation::Server::Shared,
    )
    .await
    {
        return;
    }
    let app = TestApp::builder()
        .config(&[("api.rate_per_second", "2"), ("api.rate_burst", "3")])
        .spawn()
        .await;
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for _ in 0..6 {
        let response = app
            .http
            .get(app.url("/v1/decisions"))
            .bearer_auth(AUDITOR_KEY)
            .send()
            .await
            .unwrap();
        statuses.push(response.status().as_u16());
        if response.status() == 429 {
            assert_eq!(
                response.headers()["content-type"],
                "application/problem+json"
            );
            retry_after = response.headers().get("retry-after").cloned();
        }
    }
    assert_eq!(
        &statuses[..3],
        [200, 200, 200],
        "the burst passes: {statuses:?}"
    );
    assert!(statuses[3..].contains(&429), "{statuses:?}");
    let seconds: u64 = retry_after.unwrap().to_str().unwrap().parse().unwrap();
    assert!((1..=2).contains(&seconds));
    // Another key is not slowed by the first one's flood.
    let (status, _) = app.get("/v1/decisions", AUDITOR_PII_KEY).await;
    assert_eq!(status, 200);
    // After the wait, the first key is served again.
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let (status, _) = app.get("/v1/decisions", AUDITOR_KEY).await;
    assert_eq!(status, 200);
    let metrics = app.metrics().await;
    assert!(!metrics.contains("veredito_requests_rejected_total{reason=\"rate_limited\"} 0\n"));
    app.stop().await;
}

#[tokio::test]
async fn console_sessions_spend_their_keys_rate() {
    let app = TestApp::builder()
        .config(&[("api.rate_per_second", "1"), ("api.rate_burst", "3")])
        .spawn()
        .await;
    let session = app.console_session(AUDITOR_KEY).await;
    let mut answered = 0;
    let mut refused = 0;
    for _ in 0..20 {
        let response = reqwest::Client::new()
            .get(app.url("/console/decisions"))
            .header("Cookie", &session)
            .send()
            .await
            .unwrap();
        match response.status().as_u16() {
            200 => answered += 1,
            429 => {
                refused += 1;
                let wait: u64 = response.headers()["retry-after"]
                    .to_str()
                    .unwrap()
                    .parse()
                    .unwrap();
                assert!(wait >= 1);
            }
            other => panic!("console answered {other}"),
        }
    }
    assert!(
        answered >= 1 && refused >= 15,
        "{answered} answered, {refused} refused"
    );
    // What was refused left no access record: the log grows at the key's rate, not the flood's.
    assert_eq!(
        access_records(&app, "sandbox-auditor", "console /console/decisions").await,
        answered
    );
    app.stop().await;
}
