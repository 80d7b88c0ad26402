//! unico failing for a moment (500s, 503s, a 429 with Retry-After, a token endpoint down):
//! retried, and decided with exactly one process.

use super::*;

async fn decided_once(app: &TestApp, fake: &Fake, id: &str) -> Value {
    let view = app.until_decided(id, Duration::from_secs(20)).await;
    assert_eq!(view["outcome"], "approved", "{view}");
    assert_eq!(fake.created_count(), 1, "exactly one unico process");
    assert_eq!(
        app.unico_calls(id, "create_process").await as usize,
        fake.creates().len()
    );
    view
}

#[tokio::test]
async fn create_process_500_twice_then_ok() {
    let (fake, url) = Fake::start(Script {
        creates: [Create::Status(500), Create::Status(500)].into(),
        ..Default::default()
    })
    .await;
    let app = app_on(&url, &[]).await;
    let (status, id) = onboard_absorbed(&app, 10).await;
    assert_eq!(status, 200, "retried within the wait");
    decided_once(&app, &fake, &id).await;
    assert_eq!(fake.creates().len(), 3);
    let events = app.events(&id).await;
    assert_eq!(
        events
            .iter()
            .filter(|e| *e == "process_create_failed")
            .count(),
        2,
        "{events:?}"
    );
    // The provider's text (which here names the person) is kept nowhere but in the scrubbed
    // call log: the step records the code.
    let errors: Vec<Option<String>> =
        sqlx::query_scalar("SELECT last_error FROM steps WHERE onboarding_id = $1::uuid")
            .bind(&id)
            .fetch_all(&app.db)
            .await
            .unwrap();
    assert!(
        errors.iter().flatten().all(|e| !e.contains("Maria")),
        "{errors:?}"
    );
    for (table, column) in [
        ("onboarding_events", "detail::text"),
        ("decisions", "evidence::text"),
        ("steps", "coalesce(last_error, '')"),
    ] {
        let leaked: i64 = sqlx::query_scalar(&format!(
            "SELECT count(*) FROM {table}
              WHERE {column} LIKE '%Maria%' OR {column} LIKE '%11144477735%'"
        ))
        .fetch_one(&app.db)
        .await
        .unwrap();
        assert_eq!(leaked, 0, "{table}");
    }
    let view = app.onboarding(&id).await.to_string();
    assert!(
        !view.contains("Maria") && !view.contains("11144477735"),
        "{view}"
    );
    app.stop().await;
}

#[tokio::test]
async fn create_process_503_twice_then_ok() {
    let (fake, url) = Fake::start(Script {
        creates: [Create::Status(503), Create::Status(503)].into(),
        ..Default::default()
    })
    .await;
    let app = app_on(&url, &[]).await;
    let (_, id) = onboard_absorbed(&app, 10).await;
    decided_once(&app, &fake, &id).await;
    assert_eq!(fake.creates().len(), 3);
    app.stop().await;
}

#[tokio::test]
async fn rate_limited_create_process_waits_for_retry_after() {
    let (fake, url) = Fake::start(Script {
        creates: [Create::RateLimited {
            retry_after_secs: 2,
        }]
        .into(),
        ..Default::default()
    })
    .await;
    let app = app_on(&url, &[]).await;
    let (_, id) = onboard_absorbed(&app, 10).await;
    decided_once(&app, &fake, &id).await;
    let creates = fake.creates();
    assert_eq!(creates.len(), 2);
    let gap = creates[1] - creates[0];
    assert!(
        gap >= Duration::from_secs(2),
        "retried {gap:?} after a 429 asking for 2 s"
    );
    app.stop().await;
}

#[tokio::test]
async fn token_endpoint_503_twice_then_ok() {
    let (fake, url) = Fake::start(Script {
        token_failures: 2,
        ..Default::default()
    })
    .await;
    let app = app_on(&url, &[]).await;
    let (_, id) = onboard_absorbed(&app, 10).await;
    decided_once(&app, &fake, &id).await;
    assert_eq!(fake.seen.lock().unwrap().tokens.len(), 3);
    assert_eq!(
        fake.creates().len(),
        1,
        "CreateProcess only once a token was had"
    );
    app.stop().await;
}
