//! Replays run a few at once; the others are refused with Retry-After.

use super::*;

#[tokio::test]
async fn replays_run_a_few_at_once_and_the_others_are_refused_with_retry_after() {
    let app = TestApp::builder()
        .config(&[("api.max_replays", "1")])
        .spawn()
        .await;
    let from = "2020-01-01T00:00:00Z";
    let to = "2100-01-01T00:00:00Z";
    let candidate = json!({"decided_from": from, "decided_to": to,
                           "policy": {"version": "candidate-1", "score_reject_max": -20, "score_approve_min": 40}});
    // A replay that takes long: the decisions it reads are locked for now.
    let mut lock = app.db.begin().await.unwrap();
    sqlx::query("LOCK TABLE decisions IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *lock)
        .await
        .unwrap();
    let slow = {
        let (http, url, body) = (
            app.http.clone(),
            app.url("/v1/decisions/replay"),
            candidate.clone(),
        );
        tokio::spawn(async move {
            http.post(url)
                .bearer_auth(AUDITOR_KEY)
                .json(&body)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Every other replay, through the API or the console, is refused at once, not queued.
    let refused = |response: reqwest::Response, what: &str| {
        assert_eq!(response.status(), 503, "{what}");
        let wait: u64 = response.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(wait >= 1, "{what}");
    };
    let at_once = Duration::from_secs(5);
    let api = tokio::time::timeout(
        at_once,
        app.http
            .post(app.url("/v1/decisions/replay"))
            .bearer_auth(AUDITOR_KEY)
            .json(&candidate)
            .send(),
    )
    .await
    .expect("a second replay is answered at once, not queued behind the first")
    .unwrap();
    refused(api, "POST /v1/decisions/replay");
    let version = tokio::time::timeout(
        at_once,
        app.http
            .post(app.url("/v1/policies/2026-11-23.1/replay"))
            .bearer_auth(AUDITOR_KEY)
            .json(&json!({"decided_from": from, "decided_to": to}))
            .send(),
    )
    .await
    .expect("a version's replay is answered at once")
    .unwrap();
    refused(version, "POST /v1/policies/{version}/replay");
    let session = app.console_session(AUDITOR_KEY).await;
    let console = tokio::time::timeout(
        at_once,
        reqwest::Client::new()
            .get(app.url("/console/policies?version=2026-11-23.1"))
            .header("Cookie", &session)
            .send(),
    )
    .await
    .expect("the console's replay is answered at once")
    .unwrap();
    refused(console, "GET /console/policies");

    // Once the first is done, replays run again.
    lock.rollback().await.unwrap();
    assert_eq!(slow.await.unwrap(), 200);
    let (status, report) = app
        .post_json("/v1/decisions/replay", AUDITOR_KEY, &candidate)
        .await;
    assert_eq!(status, 200, "{report}");
    app.stop().await;
}
