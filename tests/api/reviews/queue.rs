//! Cases the policy opens, in the queue, the overdue ones first and counted.

use super::*;

#[tokio::test]
async fn a_review_verdict_opens_a_case_in_the_queue() {
    let app = TestApp::spawn().await;
    let id = reviewed(&app).await;
    let case = case_of(&app, &id).await;
    assert_eq!(case["status"], "open");
    assert_eq!(case["opened_by"], "policy");
    assert_eq!(case["reasons"], json!(["score.uncertain"]));
    assert_eq!(case["assignee"], Value::Null);
    assert_eq!(case["resolution"], Value::Null);
    let opened = chrono::DateTime::parse_from_rfc3339(case["opened_at"].as_str().unwrap()).unwrap();
    let due = chrono::DateTime::parse_from_rfc3339(case["due_at"].as_str().unwrap()).unwrap();
    assert_eq!((due - opened).num_hours(), 24, "review.sla");
    // The case explains the decision it is about; auditors may read it too.
    let path = format!("/v1/reviews/{}", case["id"].as_str().unwrap());
    let (status, full) = app.get(&path, AUDITOR_KEY).await;
    assert_eq!(status, 200, "{full}");
    assert_eq!(full["decision"]["outcome"], "review");
    assert!(full["decision"]["evaluations"].is_array(), "{full}");
    assert!(full["decision"]["timeline"].is_array(), "{full}");
    // An approved onboarding opens none.
    decided(&app, "900.000.001-75", "approved").await;
    let (_, page) = app.get("/v1/reviews", REVIEWER).await;
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn overdue_cases_are_listed_first_and_counted() {
    // Reads counters of the process's one metrics registry: alone in a process.
    if isolation::own_process(
        module_path!(),
        "overdue_cases_are_listed_first_and_counted",
        isolation::Server::Shared,
    )
    .await
    {
        return;
    }
    let app = TestApp::builder()
        .config(&[("review.sla", "1s")])
        .spawn()
        .await;
    let first = reviewed(&app).await;
    // Wait until the first case is past due, then open a second that is not.
    let started = tokio::time::Instant::now();
    loop {
        let (_, page) = app.get("/v1/reviews?overdue=true", REVIEWER).await;
        if page["items"].as_array().unwrap().len() == 1 {
            assert_eq!(page["items"][0]["onboarding_id"], first.as_str());
            assert_eq!(page["items"][0]["overdue"], true);
            break;
        }
        assert!(started.elapsed() < LIMIT, "never overdue: {page}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let second = reviewed(&app).await;
    let (_, overdue) = app.get("/v1/reviews?overdue=true", REVIEWER).await;
    let ids: Vec<&str> = overdue["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["onboarding_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [first.as_str()], "the new case is not overdue yet");
    // The whole queue, soonest due first, one per page.
    let (_, page) = app.get("/v1/reviews?limit=1", REVIEWER).await;
    assert_eq!(page["items"][0]["onboarding_id"], first.as_str());
    let cursor = page["next_cursor"].as_str().unwrap();
    let (_, next) = app
        .get(&format!("/v1/reviews?limit=1&cursor={cursor}"), REVIEWER)
        .await;
    assert_eq!(next["items"][0]["onboarding_id"], second.as_str());
    assert_eq!(next["next_cursor"], Value::Null);
    let (status, problem) = app.get("/v1/reviews?overdue=maybe", REVIEWER).await;
    assert_eq!(status, 422, "{problem}");
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("veredito_review_cases_overdue 1"),
        "{metrics}"
    );
    assert!(metrics.contains("veredito_review_cases_unresolved 2"));
    app.stop().await;
}
