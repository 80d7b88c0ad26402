//! A step failing on our side: backed off, ended failed, retried by an operator.

use super::*;

/// A step that fails on veredito's own side (here PostgreSQL refuses every decision) backs off
/// and, at `jobs.step_max_failures`, ends `failed`: counted in /metrics, written in the
/// onboarding's timeline, and run again by `veredito retry-steps` once the fault is fixed.
#[tokio::test]
async fn a_step_failing_on_our_side_backs_off_ends_failed_and_an_operator_retries_it() {
    // Reads counters of the process's one metrics registry: alone in a process.
    if isolation::own_process(
        module_path!(),
        "a_step_failing_on_our_side_backs_off_ends_failed_and_an_operator_retries_it",
        isolation::Server::Shared,
    )
    .await
    {
        return;
    }
    let app = TestApp::builder()
        .config(&[
            ("jobs.step_retry_initial", "200ms"),
            ("jobs.step_retry_max", "1s"),
            ("jobs.step_max_failures", "3"),
        ])
        .spawn()
        .await;
    sqlx::query(
        "CREATE FUNCTION refuse_decisions() RETURNS trigger LANGUAGE plpgsql AS
         $$ BEGIN RAISE EXCEPTION 'decisions refused by the test'; END $$",
    )
    .execute(&app.db)
    .await
    .unwrap();
    sqlx::query(
        "CREATE TRIGGER refuse_decisions BEFORE INSERT ON decisions
         FOR EACH ROW EXECUTE FUNCTION refuse_decisions()",
    )
    .execute(&app.db)
    .await
    .unwrap();
    // unico rejects this one at once; storing the decision is what fails.
    let id = app
        .start_onboarding(&onboarding_body("900.000.006-80"))
        .await;
    let started = Instant::now();
    let (status, failures, last_error): (String, i32, Option<String>) = loop {
        let row: (String, i32, Option<String>) = sqlx::query_as(
            "SELECT status, failures, last_error FROM steps
              WHERE onboarding_id = $1::uuid AND kind = 'create_process'",
        )
        .bind(&id)
        .fetch_one(&app.db)
        .await
        .unwrap();
        if row.0 != "pending" || started.elapsed() > Duration::from_secs(10) {
            break row;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let took = started.elapsed();
    assert_eq!(status, "failed");
    assert_eq!(failures, 3);
    assert_eq!(last_error.as_deref(), Some("database.refused"));
    // Backed off between runs (200 ms then 400 ms, less 20 % jitter), not run again at once.
    assert!(took >= Duration::from_millis(480), "{took:?}");
    assert!(app.events(&id).await.contains(&"step_failed".to_owned()));
    let text = app.metrics().await;
    assert!(
        text.lines()
            .any(|l| l == "veredito_steps_failed{kind=\"create_process\"} 1"),
        "{}",
        text.lines()
            .filter(|l| l.contains("steps_failed"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    // It stays failed: no runner takes it again on its own.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let runs: i32 = sqlx::query_scalar(
        "SELECT attempts FROM steps WHERE onboarding_id = $1::uuid AND kind = 'create_process'",
    )
    .bind(&id)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(runs, 3, "not run again while failed");

    // The operator fixes the fault and retries it.
    sqlx::query("DROP TRIGGER refuse_decisions ON decisions")
        .execute(&app.db)
        .await
        .unwrap();
    let retried = veredito_command()
        .args(["retry-steps", "--all"])
        .env("VEREDITO__DATABASE__URL", &app.db_url)
        .output()
        .unwrap();
    assert!(retried.status.success(), "{retried:?}");
    let printed = String::from_utf8_lossy(&retried.stdout);
    assert_eq!(
        printed.lines().count(),
        1,
        "one step queued again: {printed}"
    );
    let view = app.until_decided(&id, Duration::from_secs(10)).await;
    assert_eq!(view["outcome"], "rejected");
    let events = app.events(&id).await;
    let failed_at = events.iter().position(|e| e == "step_failed").unwrap();
    let retried_at = events.iter().position(|e| e == "step_retried").unwrap();
    assert!(failed_at < retried_at, "{events:?}");
    app.stop().await;
}
