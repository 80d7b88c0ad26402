//! The service connected as the application's role, as production runs it: it may change only what
//! legitimately changes.

use super::*;

/// Starts the service on `database` connected as `role`, as production should run it: the
/// owner migrates, the service does not.
async fn as_app_role(
    database: &std::sync::Arc<TestDatabase>,
    role: &AppRole,
    extra: &[(&str, &str)],
) -> TestApp {
    let mut all = vec![
        ("database.url", role.url.as_str()),
        ("database.migrate_on_start", "false"),
        ("database.create_if_missing", "false"),
    ];
    all.extend_from_slice(extra);
    TestApp::builder()
        .database(database)
        .config(&all)
        .spawn()
        .await
}

#[tokio::test]
async fn the_app_role_may_change_only_what_legitimately_changes() {
    let owner = TestApp::spawn().await;
    // A resolved case, its provider calls and a published version to try to rewrite.
    let response = owner
        .onboard(&key(), &onboarding_body("900.000.019-02"), Some(10))
        .await;
    let view: Value = response.json().await.unwrap();
    let id = view["id"].as_str().unwrap().to_owned();
    let (_, cases) = owner.get("/v1/reviews", "vrd_sandbox_reviewer").await;
    let case = cases["items"][0]["id"].as_str().unwrap().to_owned();
    for (path, body) in [
        (format!("/v1/reviews/{case}/claim"), json!(null)),
        (
            format!("/v1/reviews/{case}/resolution"),
            json!({"outcome": "rejected", "note": "outra pessoa"}),
        ),
    ] {
        let (status, answer) = owner.post_json(&path, "vrd_sandbox_reviewer", &body).await;
        assert_eq!(status, 200, "{path}: {answer}");
    }
    let role = AppRole::create(&owner.db, &owner.db_url).await;
    let mut app = role.connect().await;
    let mut outcomes = Vec::new();
    for statement in [
        // The provider-call log is a record: retention erases through its function.
        "UPDATE provider_calls SET error = 'rewritten'".to_owned(),
        "UPDATE provider_calls SET request = NULL, response = NULL".to_owned(),
        "UPDATE provider_calls SET http_status = 200".to_owned(),
        // A case's resolution, its decision and the person's statement are written once.
        format!("UPDATE review_cases SET resolution_outcome = 'approved' WHERE id = '{case}'"),
        format!("UPDATE review_cases SET resolution_reviewer = 'someone' WHERE id = '{case}'"),
        format!(
            "UPDATE review_cases SET resolution_note = 'x', resolved_at = now() WHERE id = '{case}'"
        ),
        format!(
            "UPDATE review_cases SET resolution_decision_id = gen_random_uuid() WHERE id = '{case}'"
        ),
        format!(
            "UPDATE review_cases SET decision_id = decision_id, opened_by = 'policy' WHERE id = '{case}'"
        ),
        format!("UPDATE review_cases SET statement_ciphertext = '\\x00' WHERE id = '{case}'"),
        // The four-eyes record of a policy version.
        "UPDATE policy_versions SET created_by = 'sandbox-risk-2'".to_owned(),
        "UPDATE policy_versions SET published_by = 'sandbox-risk'".to_owned(),
        "UPDATE policy_versions SET published_at = now()".to_owned(),
        // A signed event's body.
        "UPDATE callbacks SET body = '{}'".to_owned(),
    ] {
        let result = sqlx::query(&statement).execute(&mut app).await;
        outcomes.push((
            statement,
            result.map(|r| r.rows_affected()).map_err(|e| e.to_string()),
        ));
    }
    // What is left to the role by its privileges is still held by triggers: a resolved case
    // does not go back to the queue, and the active version changes only by publication.
    let mut by_trigger = Vec::new();
    for statement in [
        format!("UPDATE review_cases SET status = 'open', assignee = NULL WHERE id = '{case}'"),
        "UPDATE policy_versions SET status = 'retired' WHERE status = 'active'".to_owned(),
    ] {
        let result = sqlx::query(&statement).execute(&mut app).await;
        by_trigger.push((
            statement,
            result.map(|r| r.rows_affected()).map_err(|e| e.to_string()),
        ));
    }
    drop(app);
    role.drop(&owner.db).await;
    for (statement, outcome) in outcomes {
        match outcome {
            Err(error) => assert!(
                error.contains("permission denied for table"),
                "{statement}: {error}"
            ),
            Ok(rows) => panic!("{statement}: allowed to the app role ({rows} rows)"),
        }
    }
    for (statement, outcome) in by_trigger {
        match outcome {
            Err(error) => assert!(error.contains("not allowed"), "{statement}: {error}"),
            Ok(rows) => panic!("{statement}: allowed to the app role ({rows} rows)"),
        }
    }
    let (_, after) = owner
        .get(&format!("/v1/reviews/{case}"), "vrd_sandbox_reviewer")
        .await;
    assert_eq!(after["resolution"]["outcome"], "rejected");
    assert_eq!(owner.onboarding(&id).await["outcome"], "rejected");
    owner.stop().await;
}

#[tokio::test]
async fn the_service_decides_reviews_publishes_and_erases_as_the_app_role() {
    let owner = TestApp::spawn().await;
    let database = owner.stop_keeping_database().await;
    let admin = sqlx::PgPool::connect(&database.url).await.unwrap();
    let role = AppRole::create(&admin, &database.url).await;
    let app = as_app_role(&database, &role, &[("retention.pii_days", "1")]).await;

    // A decision the policy sends to review, with the phone's coordinates.
    let mut body = onboarding_body("900.000.019-02");
    body["device"]["risk_signals"]["device_latitude"] = json!(-23.561684);
    body["device"]["risk_signals"]["device_longitude"] = json!(-46.655981);
    let response = app.onboard(&key(), &body, Some(10)).await;
    assert_eq!(response.status(), 200);
    let view: Value = response.json().await.unwrap();
    assert_eq!(view["outcome"], "review", "{view}");
    let id = view["id"].as_str().unwrap().to_owned();
    // Reviewed, contested by the person, reviewed again by someone else.
    let (_, cases) = app.get("/v1/reviews", "vrd_sandbox_reviewer").await;
    let case = cases["items"][0]["id"].as_str().unwrap().to_owned();
    let steps = [
        (
            "vrd_sandbox_reviewer",
            format!("/v1/reviews/{case}/claim"),
            json!(null),
        ),
        (
            "vrd_sandbox_reviewer",
            format!("/v1/reviews/{case}/release"),
            json!(null),
        ),
        (
            "vrd_sandbox_reviewer",
            format!("/v1/reviews/{case}/claim"),
            json!(null),
        ),
        (
            "vrd_sandbox_reviewer",
            format!("/v1/reviews/{case}/resolution"),
            json!({"outcome": "rejected", "note": "outra pessoa"}),
        ),
        (
            ONBOARDING_KEY,
            format!("/v1/onboardings/{id}/review-requests"),
            json!({"statement": "era eu"}),
        ),
    ];
    for (key, path, body) in &steps {
        let (status, answer) = app.post_json(path, key, body).await;
        assert!(status == 200 || status == 201, "{path}: {status} {answer}");
    }
    let (_, open) = app
        .get("/v1/reviews?status=open", "vrd_sandbox_reviewer")
        .await;
    let contested = open["items"][0]["id"].as_str().unwrap().to_owned();
    let (status, _) = app
        .post_json(
            &format!("/v1/reviews/{contested}/claim"),
            "vrd_sandbox_reviewer",
            &json!(null),
        )
        .await;
    assert_eq!(status, 403);
    for (path, body) in [
        (format!("/v1/reviews/{contested}/claim"), json!(null)),
        (
            format!("/v1/reviews/{contested}/resolution"),
            json!({"outcome": "retry", "note": "nova captura"}),
        ),
    ] {
        let (status, answer) = app.post_json(&path, "vrd_sandbox_reviewer_2", &body).await;
        assert_eq!(status, 200, "{path}: {answer}");
    }
    assert_eq!(app.onboarding(&id).await["outcome"], "retry");

    // A policy version drafted, shadowed and published under four eyes.
    let draft = json!({"version": "as-app-1", "score_reject_max": -40, "score_approve_min": 45,
        "fraudsters_suspicious": "review",
        "risk_signals": {"is_emulated": "rejected", "is_monkey_runner": "rejected",
                         "is_rooted_device": "review", "is_mock_gps": "review",
                         "is_call_in_progress": "review"},
        "biometrics_deadline": "10m", "device_deadline": "30m"});
    let (status, answer) = app
        .post_json("/v1/policies", "vrd_sandbox_risk", &draft)
        .await;
    assert_eq!(status, 201, "{answer}");
    for (key, path, expected) in [
        ("vrd_sandbox_risk", "/v1/policies/as-app-1/shadow", 200),
        ("vrd_sandbox_risk", "/v1/policies/as-app-1/publish", 403),
        ("vrd_sandbox_risk_2", "/v1/policies/as-app-1/publish", 200),
    ] {
        let (status, answer) = app.post_json(path, key, &json!(null)).await;
        assert_eq!(status, expected, "{key} {path}: {answer}");
    }
    let (_, published) = app.get("/v1/policies/as-app-1", AUDITOR_KEY).await;
    assert_eq!(published["status"], "active", "{published}");
    assert_eq!(published["published_by"], "sandbox-risk-2");

    // Retention, through the functions the owner granted.
    decided_days_ago(&app.db, &id, 2).await;
    sqlx::query("UPDATE provider_calls SET created_at = now() - interval '2 days'")
        .execute(&app.db)
        .await
        .unwrap();
    assert_eq!(app.retention_pass().await, 1);
    let kept: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM provider_calls
          WHERE request IS NOT NULL OR response IS NOT NULL OR error IS NOT NULL",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(kept, 0, "what providers said is erased");
    let statements: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM review_cases WHERE statement_ciphertext IS NOT NULL",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(statements, 0);
    let coordinates: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM decisions WHERE evidence #> '{risk_signals,device_latitude}' IS NOT NULL",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(coordinates, 0, "the decisions keep no coordinates");
    let (_, after) = app
        .get(&format!("/v1/reviews/{contested}"), "vrd_sandbox_reviewer")
        .await;
    assert_eq!(after["resolution"]["outcome"], "retry", "the case stays");
    app.stop().await;
    admin.close().await;
    role.drop(&sqlx::PgPool::connect(&database.url).await.unwrap())
        .await;
}
