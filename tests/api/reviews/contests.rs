//! The person's request for review: opened once and only on a decided onboarding, never
//! reviewed by the reviewer it contests, its statement erased by retention.

use super::*;

#[tokio::test]
async fn a_subject_request_opens_a_case_once_and_only_on_a_decided_onboarding() {
    let app = TestApp::builder()
        .config(&[("sandbox.processing_delay", "3s")])
        .spawn()
        .await;
    let rejected = decided(&app, "900.000.006-80", "rejected").await;
    let path = format!("/v1/onboardings/{rejected}/review-requests");
    let statement = json!({"statement": "Sou eu mesmo, a foto estava escura."});
    let (status, case) = post(&app, ONBOARDING_KEY, &path, Some(statement.clone())).await;
    assert_eq!(status, 201, "{case}");
    assert_eq!(case["opened_by"], "subject_request");
    assert_eq!(case["statement"], "Sou eu mesmo, a foto estava escura.");
    assert_eq!(case["reasons"], json!(["identity.not_confirmed"]));
    // Asked again: the open case, not a second one.
    let (status, again) = post(&app, ONBOARDING_KEY, &path, None).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["id"], case["id"]);
    // The statement is personal data: sealed at rest, shown to reviewers, hidden from auditors
    // without pii:read.
    let stored: Option<Vec<u8>> =
        sqlx::query_scalar("SELECT statement_ciphertext FROM review_cases WHERE id = $1::uuid")
            .bind(case["id"].as_str().unwrap())
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert!(!String::from_utf8_lossy(&stored.unwrap()).contains("foto"));
    let (_, for_auditor) = app
        .get(
            &format!("/v1/reviews/{}", case["id"].as_str().unwrap()),
            AUDITOR_KEY,
        )
        .await;
    assert_eq!(for_auditor["statement"], Value::Null);

    // Still processing: nothing to review yet.
    let processing = app
        .start_onboarding(&onboarding_body("900.000.007-60"))
        .await;
    let (status, problem) = post(
        &app,
        ONBOARDING_KEY,
        &format!("/v1/onboardings/{processing}/review-requests"),
        None,
    )
    .await;
    assert_eq!(status, 409, "{problem}");
    let (status, _) = post(
        &app,
        ONBOARDING_KEY,
        &format!("/v1/onboardings/{}/review-requests", uuid::Uuid::new_v4()),
        None,
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = post(&app, REVIEWER, &path, None).await;
    assert_eq!(status, 403, "the onboarding backend's scope");
    let long = json!({"statement": "x".repeat(2001)});
    let (status, problem) = post(&app, ONBOARDING_KEY, &path, Some(long)).await;
    assert_eq!(status, 422);
    assert_eq!(problem["errors"][0]["field"], "statement");
    app.stop().await;
}

#[tokio::test]
async fn the_reviewer_whose_decision_is_contested_may_not_review_the_request() {
    let app = TestApp::spawn().await;
    let id = reviewed(&app).await;
    let first = case_of(&app, &id).await["id"].as_str().unwrap().to_owned();
    // sandbox-reviewer rejects the onboarding the policy sent to review.
    let (status, _) = post(&app, REVIEWER, &format!("/v1/reviews/{first}/claim"), None).await;
    assert_eq!(status, 200);
    let (status, _) = post(
        &app,
        REVIEWER,
        &format!("/v1/reviews/{first}/resolution"),
        Some(json!({"outcome": "rejected", "note": "selfie de outra pessoa"})),
    )
    .await;
    assert_eq!(status, 200);
    // The person contests that decision (LGPD Art. 20).
    let (status, contested) = post(
        &app,
        ONBOARDING_KEY,
        &format!("/v1/onboardings/{id}/review-requests"),
        Some(json!({"statement": "fui eu mesma"})),
    )
    .await;
    assert_eq!(status, 201, "{contested}");
    assert_eq!(contested["opened_by"], "subject_request");
    let case = contested["id"].as_str().unwrap().to_owned();

    // The reviewer who made it may not claim the case: a 403 that says why.
    let response = app
        .http
        .post(app.url(&format!("/v1/reviews/{case}/claim")))
        .bearer_auth(REVIEWER)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let problem: Value = response.json().await.unwrap();
    assert_eq!(
        problem["type"], "/problems/separation-of-duties",
        "{problem}"
    );
    let detail = problem["detail"].as_str().unwrap();
    assert!(
        detail.contains("contest") && detail.contains("another reviewer"),
        "{detail}"
    );
    let (_, still) = app.get(&format!("/v1/reviews/{case}"), REVIEWER).await;
    assert_eq!(still["status"], "open", "nobody holds it");

    // Nor through the console.
    let console = ConsoleSession::sign_in(&app, REVIEWER).await;
    let refused = console
        .post(&format!("/console/reviews/{case}/claim"), &[])
        .await;
    assert_eq!(refused.status(), 303);
    let page = console
        .get(refused.headers()["location"].to_str().unwrap())
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("you made the decision this person contests"),
        "{page}"
    );
    assert!(
        !page.contains("id=\"claim\""),
        "no Claim button for them: {page}"
    );
    let (_, still) = app.get(&format!("/v1/reviews/{case}"), REVIEWER).await;
    assert_eq!(still["status"], "open");

    // A case the same reviewer held from before this rule cannot be resolved by them either.
    sqlx::query(
        "UPDATE review_cases SET status = 'claimed', assignee = 'sandbox-reviewer', claimed_at = now()
          WHERE id = $1::uuid",
    )
    .bind(&case)
    .execute(&app.db)
    .await
    .unwrap();
    let (status, problem) = post(
        &app,
        REVIEWER,
        &format!("/v1/reviews/{case}/resolution"),
        Some(json!({"outcome": "rejected", "note": "mantenho"})),
    )
    .await;
    assert_eq!(status, 403, "{problem}");
    assert_eq!(problem["type"], "/problems/separation-of-duties");
    let (status, _) = post(&app, REVIEWER, &format!("/v1/reviews/{case}/release"), None).await;
    assert_eq!(status, 200, "giving it back is allowed");

    // Another reviewer takes it and decides.
    let (status, claimed) =
        post(&app, REVIEWER_2, &format!("/v1/reviews/{case}/claim"), None).await;
    assert_eq!(status, 200, "{claimed}");
    let (status, resolved) = post(
        &app,
        REVIEWER_2,
        &format!("/v1/reviews/{case}/resolution"),
        Some(json!({"outcome": "rejected", "note": "confirmo a rejeição"})),
    )
    .await;
    assert_eq!(status, 200, "{resolved}");
    assert_eq!(resolved["resolution"]["reviewer"], "sandbox-reviewer-2");
    app.stop().await;
}

#[tokio::test]
async fn retention_erases_the_statement_with_the_rest() {
    let app = TestApp::builder()
        .config(&[("retention.pii_days", "1")])
        .spawn()
        .await;
    let rejected = decided(&app, "900.000.006-80", "rejected").await;
    let (status, case) = post(
        &app,
        ONBOARDING_KEY,
        &format!("/v1/onboardings/{rejected}/review-requests"),
        Some(json!({"statement": "quero uma revisão"})),
    )
    .await;
    assert_eq!(status, 201);
    decided_days_ago(&app.db, &rejected, 2).await;
    assert_eq!(app.retention_pass().await, 1);
    assert_eq!(
        app.sealed_statement(case["id"].as_str().unwrap()).await,
        None
    );
    let (_, after) = app
        .get(
            &format!("/v1/reviews/{}", case["id"].as_str().unwrap()),
            REVIEWER,
        )
        .await;
    assert_eq!(after["statement"], Value::Null);
    assert_eq!(
        after["reasons"],
        json!(["identity.not_confirmed"]),
        "the case stays"
    );
    app.stop().await;
}
