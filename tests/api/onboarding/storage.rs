//! What is stored: personal data sealed, decisions unchangeable, a transaction's kept writes
//! landing at commit in order.

use super::*;

#[tokio::test]
async fn personal_data_is_sealed_at_rest() {
    let app = TestApp::spawn().await;
    let view: Value = app
        .onboard(&key(), &onboarding_body("111.444.777-35"), Some(5))
        .await
        .json()
        .await
        .unwrap();
    let row: String = sqlx::query_scalar("SELECT o::text FROM onboardings o WHERE id = $1::uuid")
        .bind(view["id"].as_str().unwrap())
        .fetch_one(&app.db)
        .await
        .unwrap();
    for secret in [
        "11144477735",
        "111.444.777-35",
        "Maria Teste",
        "maria.teste@example.com",
        "c2VsZmll",
    ] {
        assert!(!row.contains(secret), "{secret} stored in clear");
    }
    let dump: String = sqlx::query_scalar(
        "SELECT string_agg(t::text, '\n') FROM (SELECT p::text AS t FROM provider_calls p UNION ALL SELECT u::text FROM unico_processes u UNION ALL SELECT d::text FROM decisions d UNION ALL SELECT e::text FROM onboarding_events e) s",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    for secret in [
        "11144477735",
        "Maria Teste",
        "c2VsZmllLWJ5dGVz",
        "sandbox-api-key",
    ] {
        assert!(!dump.contains(secret), "{secret} leaked into another table");
    }
    app.stop().await;
}

#[tokio::test]
async fn decisions_cannot_be_changed() {
    let app = TestApp::spawn().await;
    app.onboard(&key(), &onboarding_body("900.000.001-75"), Some(5))
        .await;
    let update = sqlx::query("UPDATE decisions SET outcome = 'rejected'")
        .execute(&app.db)
        .await;
    assert!(update.is_err());
    let delete = sqlx::query("DELETE FROM decisions").execute(&app.db).await;
    assert!(delete.is_err());
    let outcome: String = sqlx::query_scalar("SELECT outcome FROM decisions")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(outcome, "approved");
    app.stop().await;
}

/// A transaction keeps its timeline entries, provider calls and finished steps until COMMIT and
/// sends them in one statement: they land in the order recorded, only when it commits, and a
/// step finished and queued again in the same transaction is queued (the kept finish is sent
/// first, or the new step would collide with the pending one and be dropped).
#[tokio::test]
async fn a_transactions_kept_writes_land_at_commit_in_order() {
    use veredito::domain::transitions::StepKind;
    use veredito::store::steps::{self, Subject, When};

    let app = TestApp::spawn().await;
    let response = app
        .onboard(&key(), &onboarding_body("900.000.001-75"), Some(10))
        .await;
    let view: Value = response.json().await.unwrap();
    let id: uuid::Uuid = view["id"].as_str().unwrap().parse().unwrap();
    let before = app.events(&id.to_string()).await;

    // Dropped without a commit: nothing it kept is written.
    let mut tx = veredito::store::begin(&app.db).await.unwrap();
    tx.event(id, "kept_then_dropped", json!({}));
    drop(tx);
    assert_eq!(app.events(&id.to_string()).await, before);

    let lease = Duration::from_secs(30);
    let mut tx = veredito::store::begin(&app.db).await.unwrap();
    let step = steps::queue(
        &mut tx,
        StepKind::ReadProcess,
        Subject::Onboarding(id),
        When::Claimed(lease),
    )
    .await
    .unwrap()
    .expect("a new step is held by its writer");
    tx.commit().await.unwrap();

    let mut tx = veredito::store::begin(&app.db).await.unwrap();
    for kind in ["first", "second", "third"] {
        tx.event(id, kind, json!({ "kind": kind }));
    }
    tx.step_done(&step);
    steps::queue(
        &mut tx,
        StepKind::ReadProcess,
        Subject::Onboarding(id),
        When::In(Duration::from_secs(60)),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();

    let mut expected = before.clone();
    expected.extend(["first", "second", "third"].map(String::from));
    assert_eq!(app.events(&id.to_string()).await, expected);
    let read_steps: Vec<(i64, String)> = sqlx::query_as(
        "SELECT id, status FROM steps WHERE onboarding_id = $1 AND kind = 'read_process' ORDER BY id",
    )
    .bind(id)
    .fetch_all(&app.db)
    .await
    .unwrap();
    let statuses: Vec<&str> = read_steps.iter().map(|(_, s)| s.as_str()).collect();
    assert_eq!(
        statuses,
        ["done", "pending"],
        "the finished step and the one queued after it"
    );
    assert_eq!(read_steps[0].0, step.id);

    // A process stored and finished by the same transaction is stored final, under the id it
    // was stored with, with the last answer.
    let emulated = {
        let mut body = onboarding_body("900.000.001-75");
        body["device"]["risk_signals"]["is_emulated"] = json!(true);
        body
    };
    let view: Value = app
        .onboard(&key(), &emulated, Some(10))
        .await
        .json()
        .await
        .unwrap();
    let other: uuid::Uuid = view["id"].as_str().unwrap().parse().unwrap();
    let open = veredito::domain::evidence::BiometricResult {
        process_id: "kept-process".into(),
        status: 1,
        ..Default::default()
    };
    let last = veredito::domain::evidence::BiometricResult {
        process_id: "kept-process".into(),
        status: 1,
        score: Some(10),
        ..Default::default()
    };
    let mut tx = veredito::store::begin(&app.db).await.unwrap();
    tx.new_process(other, &open);
    tx.finish_process("kept-process", &last).await.unwrap();
    tx.commit().await.unwrap();
    let stored: (String, bool, Value) = sqlx::query_as(
        "SELECT process_id, final AND finished_at IS NOT NULL, result FROM unico_processes
          WHERE onboarding_id = $1",
    )
    .bind(other)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(stored.0, "kept-process");
    assert!(stored.1, "stored final although unico's status is not");
    assert_eq!(stored.2["score"], 10);
    app.stop().await;
}
