//! An exhausted database pool: a request waits for a connection at most the acquire timeout,
//! and submissions past their turns wait with their bodies unread, then are refused.

use super::*;

/// A service with a pool of two connections that a request waits for at most 500 ms, and no
/// runners.
async fn two_connections_half_a_second() -> TestApp {
    TestApp::builder()
        .config(&[
            ("database.max_connections", "2"),
            ("database.acquire_timeout", "500ms"),
            ("jobs.enabled", "false"),
        ])
        .spawn()
        .await
}

/// An onboarding the service answers 503: how long it took, its Retry-After and its problem.
async fn refused_onboarding(app: &TestApp) -> (Duration, String, Value) {
    let started = std::time::Instant::now();
    let response = app
        .onboard(&key(), &onboarding_body("111.444.777-35"), Some(5))
        .await;
    let waited = started.elapsed();
    assert_eq!(response.status(), 503);
    let retry_after = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .to_owned();
    (waited, retry_after, response.json().await.unwrap())
}

#[tokio::test]
async fn a_request_waits_for_a_connection_at_most_the_acquire_timeout() {
    let app = two_connections_half_a_second().await;
    // Every connection of the service's pool is taken, as when the database stalls (the
    // listener holds one of them already).
    let mut held = Vec::new();
    while let Ok(connection) = app.state.db.acquire().await {
        held.push(connection);
    }
    assert!(!held.is_empty());
    let (waited, _, problem) = refused_onboarding(&app).await;
    assert_eq!(
        problem["detail"], "the database is unreachable",
        "no internal detail"
    );
    assert!(waited < Duration::from_secs(3), "answered after {waited:?}");
    drop(held);
    let response = app
        .onboard(&key(), &onboarding_body("111.444.777-35"), Some(5))
        .await;
    assert_eq!(response.status(), 200);
    app.stop().await;
}

#[tokio::test]
async fn submissions_past_their_turns_wait_with_their_bodies_unread_and_then_are_refused() {
    use tokio::io::AsyncWriteExt;
    // Two pool connections: four submissions may be read and stored at once.
    let app = two_connections_half_a_second().await;
    let addr = app.base.trim_start_matches("http://").to_owned();
    // Four submissions send their headers and hold back their bodies: each has its turn and
    // waits for the body it was promised.
    let mut holding = Vec::new();
    for n in 0..4 {
        let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let head = format!(
            "POST /v1/onboardings HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {ONBOARDING_KEY}\r\n\
             idempotency-key: held-{n}\r\ncontent-type: application/json\r\n\
             content-length: 1000\r\n\r\n"
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        holding.push(stream);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    // A fifth is not read: it waits for a turn for database.acquire_timeout, then is refused as
    // an overloaded service refuses, with Retry-After.
    let (waited, retry_after, problem) = refused_onboarding(&app).await;
    assert_eq!(retry_after, "1");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("too many submissions"),
        "{problem}"
    );
    assert!(
        waited >= Duration::from_millis(450) && waited < Duration::from_secs(3),
        "refused after {waited:?}"
    );
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM onboardings")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(stored, 0, "nothing was stored for the refused one");
    // The turns come back when the held submissions end: the next one is stored and decided.
    drop(holding);
    let mut status = 0;
    for _ in 0..20 {
        let response = app
            .onboard(&key(), &onboarding_body("111.444.777-35"), Some(5))
            .await;
        status = response.status().as_u16();
        if status != 503 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(status, 200);
    app.stop().await;
}
