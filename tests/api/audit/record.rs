//! Decisions are a record: the application's role can neither change nor delete them.

use super::*;

#[tokio::test]
async fn the_application_role_cannot_change_or_delete_decisions() {
    let h = TestApp::spawn().await;
    let seeded = h.seed(Spec::new(1, scored(60))).await;
    let role = common::AppRole::create(&h.db, &h.db_url).await;
    let outcome = async {
        let mut app = role.connect().await;
        // What the service does: store an onboarding and decide it.
        let onboarding_id = Uuid::new_v4();
        sqlx::query(
            "INSERT INTO onboardings (id, client_name, idempotency_key, request_hash, cpf_hash, account_id, person_id, device)
             VALUES ($1, 'role-test', $1::text, '\\x00', '\\x00', 'a', 'p', '{}')",
        )
        .bind(onboarding_id)
        .execute(&mut app)
        .await
        .expect("the app role inserts onboardings");
        sqlx::query(
            "INSERT INTO decisions (id, onboarding_id, outcome, reasons, reason_codes, policy_version, thresholds, evidence, evaluations)
             VALUES ($1, $2, 'review', '[]', '{}', 'v', '{}', '{}', '[]')",
        )
        .bind(Uuid::new_v4())
        .bind(onboarding_id)
        .execute(&mut app)
        .await
        .expect("the app role inserts decisions");
        let count: i64 = sqlx::query_scalar("SELECT count(*) FROM decisions").fetch_one(&mut app).await.unwrap();
        // What retention does is allowed: erase what providers said (through the owner's
        // function), delete old webhooks.
        sqlx::query("SELECT erase_provider_call_text(30, 10)")
            .execute(&mut app)
            .await
            .expect("retention erases provider text");
        sqlx::query("DELETE FROM unico_webhooks WHERE false")
            .execute(&mut app)
            .await
            .expect("retention deletes old webhooks");
        let mut refused = BTreeMap::new();
        for statement in [
            format!("UPDATE decisions SET outcome = 'rejected' WHERE id = '{}'", seeded.decision_id),
            format!("DELETE FROM decisions WHERE id = '{}'", seeded.decision_id),
            "TRUNCATE decisions".to_owned(),
            // The timeline, the search log and the call log are records too.
            "UPDATE onboarding_events SET kind = 'x'".to_owned(),
            "DELETE FROM onboarding_events".to_owned(),
            "UPDATE audit_searches SET caller = 'x'".to_owned(),
            "DELETE FROM audit_searches".to_owned(),
            "DELETE FROM provider_calls".to_owned(),
            "UPDATE unico_webhooks SET process_id = 'x'".to_owned(),
        ] {
            let error = sqlx::query(&statement).execute(&mut app).await.expect_err("refused");
            refused.insert(statement, error.to_string());
        }
        (count, refused)
    }
    .await;
    role.drop(&h.db).await;
    let (count, refused) = outcome;
    assert_eq!(count, 2);
    for (statement, error) in refused {
        // Refused by privileges, before the trigger is even reached.
        assert!(
            error.contains("permission denied for table"),
            "{statement}: {error}"
        );
    }

    // The owner (here a superuser) is stopped by the trigger.
    for statement in [
        format!(
            "UPDATE decisions SET outcome = 'rejected' WHERE id = '{}'",
            seeded.decision_id
        ),
        format!("DELETE FROM decisions WHERE id = '{}'", seeded.decision_id),
        "TRUNCATE decisions".to_owned(),
        "TRUNCATE decisions CASCADE".to_owned(),
    ] {
        let error = sqlx::query(&statement)
            .execute(&h.db)
            .await
            .expect_err("refused")
            .to_string();
        // A plain TRUNCATE is refused earlier by the review cases' foreign key; with CASCADE it
        // reaches the trigger.
        assert!(
            error.contains("is not allowed: rows are append-only")
                || (statement == "TRUNCATE decisions"
                    && error.contains("referenced in a foreign key constraint")),
            "{statement}: {error}"
        );
    }
    let outcome: String = sqlx::query_scalar("SELECT outcome FROM decisions WHERE id = $1")
        .bind(seeded.decision_id)
        .fetch_one(&h.db)
        .await
        .unwrap();
    assert_eq!(outcome, "approved", "the update to rejected did not happen");
    h.stop().await;
}
