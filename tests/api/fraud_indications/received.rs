//! Indications received from other institutions: the CPF goes to review until they are
//! withdrawn.

use super::*;

/// Any valid CPF outside the sandbox's scenario list: unico approves it.
fn approving_cpf(n: u32) -> String {
    cpf_from(500 + n)
}

#[tokio::test]
async fn received_indications_send_the_cpf_to_review_until_withdrawn() {
    let app = TestApp::spawn().await;
    let live = approving_cpf(1);
    let later_withdrawn = approving_cpf(2);
    let items = json!({"items": [
        {"source": "sharing-system", "external_id": "A-1", "cpf": live,
         "typology": "identity_theft", "identified_at": "2026-11-01T10:00:00Z"},
        {"source": "sharing-system", "external_id": "A-2", "cpf": later_withdrawn,
         "typology": "mule_account", "identified_at": chrono::Utc::now().to_rfc3339()},
    ]});
    let (status, imported) = app
        .post_json("/v1/fraud-indications/received", FRAUD, &items)
        .await;
    assert_eq!(status, 200, "{imported}");
    assert_eq!(
        imported,
        json!({"received": 2, "already_received": 0, "withdrawn": 0})
    );
    // The same ids again change nothing.
    let before: Vec<(String, chrono::DateTime<chrono::Utc>)> = sqlx::query_as(
        "SELECT external_id, received_at FROM received_fraud_indications ORDER BY external_id",
    )
    .fetch_all(&app.db)
    .await
    .unwrap();
    let (status, again) = app
        .post_json("/v1/fraud-indications/received", FRAUD, &items)
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        again,
        json!({"received": 0, "already_received": 2, "withdrawn": 0})
    );
    let after: Vec<(String, chrono::DateTime<chrono::Utc>)> = sqlx::query_as(
        "SELECT external_id, received_at FROM received_fraud_indications ORDER BY external_id",
    )
    .fetch_all(&app.db)
    .await
    .unwrap();
    assert_eq!(before, after);
    // Kept as keyed hashes only.
    for (table, row) in all_rows_as_text(&app.db).await {
        let digits = live.replace(['.', '-'], "");
        assert!(
            !row.contains(&digits) && !row.contains(&live),
            "{table}: {row}"
        );
    }

    // A live one sends the applicant to review, though unico approves.
    let reviewed = decided(&app, &live).await;
    assert_eq!(reviewed["outcome"], "review", "{reviewed}");
    assert!(reason_codes(&reviewed).contains(&"shared.fraud_indication".to_owned()));
    assert_eq!(
        reviewed["biometrics"]["unico_id"], "yes",
        "unico approved: {reviewed}"
    );

    // Withdrawn by a later copy, it no longer fires.
    let (status, withdrawal) = app
        .post_json(
            "/v1/fraud-indications/received",
            FRAUD,
            &json!({"items": [{"source": "sharing-system", "external_id": "A-2",
                               "cpf": later_withdrawn, "typology": "mule_account",
                               "identified_at": chrono::Utc::now().to_rfc3339(),
                               "withdrawn": true}]}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(withdrawal["withdrawn"], 1);
    let approved = decided(&app, &later_withdrawn).await;
    assert_eq!(approved["outcome"], "approved", "{approved}");
    assert!(!reason_codes(&approved).contains(&"shared.fraud_indication".to_owned()));

    // A replay judges as of the decision's time: withdrawing the first one now does not change
    // what its decision saw.
    app.post_json(
        "/v1/fraud-indications/received",
        FRAUD,
        &json!({"items": [{"source": "sharing-system", "external_id": "A-1", "cpf": live,
                           "typology": "identity_theft", "identified_at": "2026-11-01T10:00:00Z",
                           "withdrawn": true}]}),
    )
    .await;
    let (status, replay) = app
        .post_json(
            "/v1/decisions/replay",
            AUDITOR_KEY,
            &json!({"decided_from": (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339(),
                    "decided_to": chrono::Utc::now().to_rfc3339(),
                    "policy": {"version": "candidate-1", "score_reject_max": -40,
                               "score_approve_min": 50}}),
        )
        .await;
    assert_eq!(status, 200, "{replay}");
    assert_eq!(replay["changed"], 0, "{replay}");

    // A bad item names itself, and nothing of the call is kept.
    let (status, problem) = app
        .post_json(
            "/v1/fraud-indications/received",
            FRAUD,
            &json!({"items": [
                {"source": "s", "external_id": "B-1", "cpf": approving_cpf(3),
                 "typology": "other", "identified_at": "2026-11-01T10:00:00Z"},
                {"source": "s", "external_id": "B-2", "cpf": "123.456.789-00",
                 "typology": "other", "identified_at": "2026-11-01T10:00:00Z"}]}),
        )
        .await;
    assert_eq!(status, 422);
    assert_eq!(problem["errors"][0]["field"], "items[1].cpf");
    let kept: i64 =
        sqlx::query_scalar("SELECT count(*) FROM received_fraud_indications WHERE source = 's'")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(kept, 0);
    app.stop().await;
}
