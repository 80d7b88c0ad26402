//! The Idempotency-Key: a retry resumes, another body conflicts, concurrent retries make one
//! process.

use super::*;

#[tokio::test]
async fn same_key_and_body_resumes_without_a_second_process() {
    let app = TestApp::spawn().await;
    let body = onboarding_body("900.000.007-60");
    let key = key();
    let first: Value = app
        .onboard(&key, &body, Some(0))
        .await
        .json()
        .await
        .unwrap();
    let second = app.onboard(&key, &body, Some(15)).await;
    assert_eq!(second.status(), 200);
    let second: Value = second.json().await.unwrap();
    assert_eq!(first["id"], second["id"]);
    assert_eq!(second["outcome"], "approved");
    let third: Value = app
        .onboard(&key, &body, Some(0))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(third["id"], first["id"]);
    assert_eq!(
        app.unico_calls(first["id"].as_str().unwrap(), "create_process")
            .await,
        1
    );
    app.stop().await;
}

#[tokio::test]
async fn same_key_with_another_body_is_a_conflict() {
    let app = TestApp::spawn().await;
    let key = key();
    let body = onboarding_body("900.000.001-75");
    assert_eq!(app.onboard(&key, &body, Some(5)).await.status(), 200);
    let mut changed = body.clone();
    changed["person"]["name"] = json!("Outra Pessoa");
    let response = app.onboard(&key, &changed, Some(5)).await;
    assert_eq!(response.status(), 409);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let processes: i64 = sqlx::query_scalar("SELECT count(*) FROM unico_processes")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(processes, 1);
    app.stop().await;
}

#[tokio::test]
async fn concurrent_retries_create_one_process() {
    let app = TestApp::spawn().await;
    let key = key();
    let body = onboarding_body("900.000.008-41");
    let responses =
        futures_util::future::join_all((0..12).map(|_| app.onboard(&key, &body, Some(15)))).await;
    let mut ids = Vec::new();
    for response in responses {
        assert_eq!(response.status(), 200);
        let view: Value = response.json().await.unwrap();
        assert_eq!(view["outcome"], "approved");
        ids.push(view["id"].as_str().unwrap().to_owned());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "every retry answers the same onboarding");
    assert_eq!(app.unico_calls(&ids[0], "create_process").await, 1);
    let onboardings: i64 = sqlx::query_scalar("SELECT count(*) FROM onboardings")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(onboardings, 1);
    app.stop().await;
}
