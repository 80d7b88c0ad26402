//! Every event type arrives, signed.

use super::*;

#[tokio::test]
async fn every_event_type_arrives_signed() {
    let (receiver, url) = Receiver::start(vec![]).await;
    let app = app_for(&url, &[]).await;
    // A review verdict: onboarding.decided and review.opened.
    let response = app
        .onboard(&key(), &onboarding_body("900.000.019-02"), Some(10))
        .await;
    let view: Value = response.json().await.unwrap();
    let id = view["id"].as_str().unwrap().to_owned();
    let seen = receiver.until("decided and opened", |s| s.len() >= 2).await;
    let decided = seen
        .iter()
        .find(|d| d.kind == "onboarding.decided")
        .unwrap();
    assert_eq!(decided.body["data"]["id"], id.as_str());
    assert_eq!(decided.body["data"]["outcome"], "review");
    assert_eq!(
        decided.body["data"],
        app.onboarding(&id).await,
        "what GET answers"
    );
    assert!(decided.body["timestamp"].is_string());
    let opened = seen.iter().find(|d| d.kind == "review.opened").unwrap();
    let case_id = opened.body["data"]["id"].as_str().unwrap().to_owned();
    assert_eq!(opened.body["data"]["onboarding_id"], id.as_str());

    // The reviewer rejects: review.resolved and a second onboarding.decided.
    let case = format!("/v1/reviews/{case_id}");
    for (path, body) in [
        (format!("{case}/claim"), None),
        (
            format!("{case}/resolution"),
            Some(json!({"outcome": "rejected", "note": "fraude evidente"})),
        ),
    ] {
        let mut request = app
            .http
            .post(app.url(&path))
            .bearer_auth("vrd_sandbox_reviewer");
        if let Some(body) = body {
            request = request.json(&body);
        }
        assert_eq!(request.send().await.unwrap().status(), 200, "{path}");
    }
    let seen = receiver
        .until("resolved and decided again", |s| s.len() >= 4)
        .await;
    let resolved = seen.iter().find(|d| d.kind == "review.resolved").unwrap();
    assert_eq!(resolved.body["data"]["resolution"]["outcome"], "rejected");
    let by_reviewer = seen
        .iter()
        .filter(|d| d.kind == "onboarding.decided")
        .find(|d| d.body["data"]["decided_by"] == "reviewer")
        .expect("the reviewer's decision is announced");
    assert_eq!(by_reviewer.body["data"]["outcome"], "rejected");

    // A device validation.
    let (status, _, validation) = app
        .validate(
            &key(),
            &json!({"account_id": "acc-1", "person_id": "per-1", "session_id": "scan-2"}),
        )
        .await;
    assert_eq!(status, 200, "{validation}");
    let seen = receiver
        .until("validation", |s| {
            s.iter().any(|d| d.kind == "device_validation.decided")
        })
        .await;
    let validated = seen
        .iter()
        .find(|d| d.kind == "device_validation.decided")
        .unwrap();
    assert_eq!(validated.body["data"]["id"], validation["id"]);
    assert_eq!(validated.body["data"]["outcome"], "approved");
    // One delivery each, every one signed, each with its own id.
    assert_eq!(*receiver.forged.lock().unwrap(), 0);
    let ids: std::collections::BTreeSet<&str> = seen.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(ids.len(), seen.len(), "one webhook-id per event");
    // The receiver may hold the last delivery a moment before veredito records its 2xx.
    let mut delivered = 0;
    for _ in 0..50 {
        let (status, listed) = app.get("/v1/callbacks?status=delivered", AUDITOR_KEY).await;
        assert_eq!(status, 200);
        delivered = listed["items"].as_array().unwrap().len();
        if delivered == seen.len() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(delivered, seen.len());
    app.stop().await;
}
