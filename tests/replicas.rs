//! Several replicas on one database: a webhook taken by one replica wakes the runner of
//! another, even after that runner's NOTIFY connection was cut; two runners share one queue
//! without doing anything twice; readiness says when the database is gone.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

/// Ends the LISTEN connections of every replica on this database, as a network cut or a
/// PostgreSQL restart would.
async fn cut_listeners(app: &TestApp) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
          WHERE datname = current_database() AND query ILIKE 'LISTEN%') AS cut",
    )
    .fetch_one(&app.db)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_webhook_on_one_replica_wakes_a_request_waiting_on_another_after_its_listener_reconnects()
{
    // The worker would poll only after 30 s: only a wake-up can decide sooner.
    let worker =
        TestApp::spawn_with(&[("unico.poll_initial", "30s"), ("unico.poll_max", "60s")]).await;
    // The API-only replica takes the request; its sandbox sends unico's webhook to the worker,
    // which reads the process and decides; the decision reaches the waiting request through
    // PostgreSQL's NOTIFY.
    let webhook_url = worker.url("/v1/webhooks/unico");
    let api_only = worker
        .replica(&[
            ("jobs.enabled", "false"),
            ("unico.poll_initial", "30s"),
            ("unico.poll_max", "60s"),
            ("sandbox.webhook_url", webhook_url.as_str()),
        ])
        .await;
    // Both listeners lose their connection before the onboarding starts.
    let started = Instant::now();
    while cut_listeners(&worker).await < 2 {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "listeners not found"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // And reconnect (the listener retries after a second).
    let started = Instant::now();
    loop {
        let listening: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query ILIKE 'LISTEN%'",
        )
        .fetch_one(&worker.db)
        .await
        .unwrap();
        if listening >= 2 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "listeners did not reconnect"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let started = Instant::now();
    let response = api_only
        .onboard(&key(), &onboarding_body("900.000.007-60"), Some(20))
        .await;
    assert_eq!(response.status(), 200);
    let view: Value = response.json().await.unwrap();
    assert_eq!(view["outcome"], "approved");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "decided by a wake-up, not by the 30 s poll: {:?}",
        started.elapsed()
    );
    let id = view["id"].as_str().unwrap();
    let events = api_only.events(id).await;
    assert!(
        events.contains(&"webhook_received".to_owned()),
        "{events:?}"
    );
    assert_eq!(
        events.iter().filter(|e| *e == "poll").count(),
        1,
        "one GetProcess, after the webhook: {events:?}"
    );
    api_only.stop().await;
    worker.stop().await;
}

#[tokio::test]
async fn two_runners_share_the_queue_and_do_nothing_twice() {
    let first = TestApp::spawn_with(&[("sandbox.processing_delay", "300ms")]).await;
    let second = first
        .replica(&[("sandbox.processing_delay", "300ms")])
        .await;
    let mut ids = Vec::new();
    for i in 0..20 {
        let app = if i % 2 == 0 { &first } else { &second };
        ids.push(
            app.start_onboarding(&onboarding_body("900.000.007-60"))
                .await,
        );
    }
    for id in &ids {
        let view = first.until_decided(id, Duration::from_secs(20)).await;
        assert_eq!(view["outcome"], "approved", "{view}");
    }
    let counts: (i64, i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM decisions),
                (SELECT count(*) FROM unico_processes),
                (SELECT count(*) FROM provider_calls WHERE operation = 'create_process'),
                (SELECT count(*) FROM provider_calls WHERE operation = 'register_device')",
    )
    .fetch_one(&first.db)
    .await
    .unwrap();
    assert_eq!(
        counts,
        (20, 20, 20, 20),
        "each onboarding once, each call once"
    );
    second.stop().await;
    first.stop().await;
}

#[tokio::test]
async fn readiness_answers_503_when_the_database_is_gone() {
    let app = TestApp::spawn().await;
    let ready = app.http.get(app.url("/health/ready")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    // The database disappears under the running service.
    let name = app.db_url.rsplit('/').next().unwrap().to_owned();
    app.db.close().await;
    let mut admin =
        <sqlx::PgConnection as sqlx::Connection>::connect(&format!("{}/postgres", server_url()))
            .await
            .unwrap();
    sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)"))
        .execute(&mut admin)
        .await
        .unwrap();
    let started = Instant::now();
    let ready = app.http.get(app.url("/health/ready")).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body["database"], "unreachable");
    assert!(started.elapsed() < Duration::from_secs(5));
    let live = app.http.get(app.url("/health/live")).send().await.unwrap();
    assert_eq!(live.status(), 200, "alive, only not ready");
    app.stop().await;
}
