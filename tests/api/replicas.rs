//! Several replicas on one database: a webhook taken by one replica wakes the runner of
//! another, even after that runner's NOTIFY connection was cut; two runners share one queue
//! without doing anything twice; readiness says when the database is gone; the audit's heavy
//! reads go to the read replica when there is one.

use std::time::{Duration, Instant};

use crate::common::*;
use serde_json::{Value, json};

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
    let worker = TestApp::builder()
        .config(&[("unico.poll_initial", "30s"), ("unico.poll_max", "60s")])
        .spawn()
        .await;
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
    let first = TestApp::builder()
        .config(&[("sandbox.processing_delay", "300ms")])
        .spawn()
        .await;
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

/// The decision ids of a page of `GET /v1/decisions` or of an NDJSON export, sorted.
fn ids_of(items: impl IntoIterator<Item = Value>) -> Vec<String> {
    let mut ids: Vec<String> = items
        .into_iter()
        .map(|item| item["id"].as_str().expect("an item has an id").to_owned())
        .collect();
    ids.sort();
    ids
}

async fn decision_of(app: &TestApp, onboarding_id: &str) -> String {
    let onboarding_id: uuid::Uuid = onboarding_id.parse().unwrap();
    let id: uuid::Uuid = sqlx::query_scalar("SELECT id FROM decisions WHERE onboarding_id = $1")
        .bind(onboarding_id)
        .fetch_one(&app.db)
        .await
        .unwrap();
    id.to_string()
}

#[tokio::test]
async fn searches_exports_and_replays_read_the_read_replica_and_write_nothing_there() {
    // Two decisions, then a copy of the database: a replica as of that moment.
    let first = TestApp::spawn().await;
    let mut copied = Vec::new();
    for n in 0..2 {
        let id = first.start_onboarding(&onboarding_body(&cpf_from(n))).await;
        first.until_decided(&id, Duration::from_secs(20)).await;
        copied.push(decision_of(&first, &id).await);
    }
    copied.sort();
    let primary = first.stop_keeping_database().await;
    let replica = TestDatabase::copy_of(&primary).await;

    // The service on the primary, reading the audit from the replica, which does not follow:
    // a decision made now is on the primary alone.
    let app = TestApp::builder()
        .database(&primary)
        .config(&[("database.read_url", replica.url.as_str())])
        .spawn()
        .await;
    let from = chrono::Utc::now() - chrono::Duration::hours(1);
    let late_onboarding = app.start_onboarding(&onboarding_body(&cpf_from(2))).await;
    let late = app
        .until_decided(&late_onboarding, Duration::from_secs(20))
        .await;
    assert_eq!(late["outcome"], "approved", "{late}");
    let late = decision_of(&app, &late_onboarding).await;

    let (status, page) = app.get("/v1/decisions?limit=50", AUDITOR_KEY).await;
    assert_eq!(status, 200, "{page}");
    let searched = ids_of(page["items"].as_array().unwrap().iter().cloned());
    assert_eq!(searched, copied, "the search reads the replica");

    let export = app.get_response("/v1/decisions/export", AUDITOR_KEY).await;
    assert_eq!(export.status(), 200);
    let lines = export.text().await.unwrap();
    let exported = ids_of(lines.lines().map(|l| serde_json::from_str(l).unwrap()));
    assert_eq!(exported, copied, "the export reads the replica");

    let to = chrono::Utc::now() + chrono::Duration::hours(1);
    let candidate =
        json!({"version": "candidate-1", "score_reject_max": -20, "score_approve_min": 40});
    let (status, report) = app
        .post_json(
            "/v1/decisions/replay",
            AUDITOR_KEY,
            &json!({"decided_from": from.to_rfc3339(), "decided_to": to.to_rfc3339(), "policy": candidate}),
        )
        .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(
        report["evaluated"], 2,
        "the replay reads the replica: {report}"
    );

    // A decision by id must be found as soon as it is made: it is read on the primary.
    let (status, explained) = app.get(&format!("/v1/decisions/{late}"), AUDITOR_KEY).await;
    assert_eq!(status, 200, "{explained}");
    assert_eq!(explained["id"], late.as_str());

    // The searches' own record went to the primary; the replica holds what it was copied with.
    let recorded: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_searches")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(
        recorded, 3,
        "search, export and explanation recorded on the primary"
    );
    let on_replica = sqlx::PgPool::connect(&replica.url).await.unwrap();
    let (searches, decisions): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM audit_searches), (SELECT count(*) FROM decisions)",
    )
    .fetch_one(&on_replica)
    .await
    .unwrap();
    assert_eq!((searches, decisions), (0, 2));
    let sessions: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity
          WHERE datname = current_database() AND application_name = 'veredito-reads'",
    )
    .fetch_one(&on_replica)
    .await
    .unwrap();
    assert!(sessions > 0, "the service is connected to the replica");
    // Its sessions there are read-only, whatever the URL names.
    let write = sqlx::query(
        "INSERT INTO audit_searches (caller, endpoint, filters) VALUES ('x', 'x', '{}')",
    )
    .execute(&app.state.reads)
    .await
    .expect_err("a write through the read pool is refused");
    let code = write
        .as_database_error()
        .and_then(|e| e.code())
        .map(|c| c.into_owned());
    assert_eq!(code.as_deref(), Some("25006"), "{write}");
    on_replica.close().await;
    app.stop().await;
}

#[tokio::test]
async fn a_read_replica_that_is_down_fails_the_searches_alone() {
    let nowhere = format!("postgres://postgres@127.0.0.1:{}/veredito", free_port());
    let app = TestApp::builder()
        .config(&[
            ("database.read_url", nowhere.as_str()),
            ("database.acquire_timeout", "1s"),
        ])
        .spawn()
        .await;
    let ready = app.http.get(app.url("/health/ready")).send().await.unwrap();
    assert_eq!(
        ready.status(),
        200,
        "the primary is what readiness is about"
    );
    let id = app.start_onboarding(&onboarding_body(&cpf_from(7))).await;
    let decided = app.until_decided(&id, Duration::from_secs(20)).await;
    assert_eq!(decided["outcome"], "approved");
    let searched = app.get_response("/v1/decisions", AUDITOR_KEY).await;
    assert_eq!(searched.status(), 503);
    assert!(searched.headers().contains_key("retry-after"));
    app.stop().await;
}
