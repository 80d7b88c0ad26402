//! Replaying a candidate policy over stored evidence, writing nothing.

use super::*;

#[tokio::test]
async fn replay_counts_what_a_candidate_policy_would_change_without_writing() {
    let h = TestApp::spawn().await;
    let from = rfc3339(Utc::now() - chrono::Duration::seconds(5));
    let stays_approved = h.seed(Spec::new(1, scored(60))).await;
    let to_approved = h.seed(Spec::new(2, scored(45))).await;
    let stays_review = h.seed(Spec::new(3, scored(30))).await;
    let to_rejected = h.seed(Spec::new(4, scored(-30))).await;
    let stays_rejected = h.seed(Spec::new(5, scored(-45))).await;
    let reasons_only = h.seed(Spec::new(6, suspicious(scored(45)))).await;
    let outside = h
        .seed(Spec {
            decided_at: Some(Utc::now() - chrono::Duration::days(3)),
            ..Spec::new(7, scored(45))
        })
        .await;
    let to = rfc3339(Utc::now() + chrono::Duration::seconds(5));
    assert_eq!(
        [
            &stays_approved,
            &to_approved,
            &stays_review,
            &to_rejected,
            &stays_rejected,
            &reasons_only,
            &outside
        ]
        .map(|s| s.outcome.as_str()),
        [
            "approved", "review", "review", "review", "rejected", "review", "review"
        ]
    );
    let before = all_rows_as_text(&h.db).await;

    let candidate =
        json!({"version": "candidate-1", "score_reject_max": -20, "score_approve_min": 40});
    let (status, report) = h
        .replay(json!({"decided_from": from, "decided_to": to, "policy": candidate}))
        .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["evaluated"], 6);
    assert_eq!(report["changed"], 2);
    assert_eq!(
        report["reasons_changed"], 1,
        "fraudsters.suspicious keeps it in review, with score.low_risk now"
    );
    assert_eq!(report["complete"], true);
    assert_eq!(
        report["by_transition"],
        json!({"review->approved": 1, "review->rejected": 1})
    );
    let changes = report["changes"].as_array().unwrap();
    let to_approved_change = changes
        .iter()
        .find(|c| c["decision_id"] == to_approved.decision_id.to_string())
        .unwrap();
    assert_eq!(
        to_approved_change["onboarding_id"],
        to_approved.onboarding_id.to_string()
    );
    assert_eq!(to_approved_change["stored_outcome"], "review");
    assert_eq!(to_approved_change["replayed_outcome"], "approved");
    assert_eq!(
        to_approved_change["stored_reasons"],
        json!(["score.uncertain"])
    );
    // Approved where the live path never reached the device stage: QI Tech would come next.
    assert_eq!(
        to_approved_change["replayed_reasons"],
        json!(["score.low_risk", "device.not_checked"])
    );
    let to_rejected_change = changes
        .iter()
        .find(|c| c["decision_id"] == to_rejected.decision_id.to_string())
        .unwrap();
    assert_eq!(
        to_rejected_change["replayed_reasons"],
        json!(["score.high_risk"])
    );

    // The stored policy itself changes nothing.
    let (_, same) = h
        .replay(json!({"decided_from": from, "decided_to": to, "policy": {"score_reject_max": -40, "score_approve_min": 50}}))
        .await;
    assert_eq!(
        (
            same["evaluated"].as_u64(),
            same["changed"].as_u64(),
            same["reasons_changed"].as_u64()
        ),
        (Some(6), Some(0), Some(0))
    );
    // A limit stops early and says so.
    let (_, limited) = h
        .replay(json!({"decided_from": from, "decided_to": to, "policy": candidate, "limit": 3}))
        .await;
    assert_eq!(limited["evaluated"], 3);
    assert_eq!(limited["complete"], false);
    let (_, exact) = h
        .replay(json!({"decided_from": from, "decided_to": to, "policy": candidate, "limit": 6}))
        .await;
    assert_eq!(
        (exact["evaluated"].as_u64(), exact["complete"].as_bool()),
        (Some(6), Some(true))
    );
    // The wider range takes in the old decision too.
    let (_, wide) = h
        .replay(
            json!({"decided_from": "2000-01-01T00:00:00Z", "decided_to": to, "policy": candidate}),
        )
        .await;
    assert_eq!(
        (wide["evaluated"].as_u64(), wide["changed"].as_u64()),
        (Some(7), Some(3))
    );

    assert_eq!(
        all_rows_as_text(&h.db).await,
        before,
        "replay wrote nothing"
    );

    // Invalid candidates.
    let invalid = [
        (
            json!({"decided_from": from, "decided_to": to, "policy": {"score_reject_max": 50, "score_approve_min": 50}}),
            "policy.score_reject_max",
        ),
        (
            json!({"decided_from": to, "decided_to": from, "policy": candidate}),
            "decided_to",
        ),
        (
            json!({"decided_to": to, "policy": candidate}),
            "decided_from",
        ),
        (
            json!({"decided_from": from, "policy": candidate}),
            "decided_to",
        ),
        (
            json!({"decided_from": "yesterday", "decided_to": to, "policy": candidate}),
            "decided_from",
        ),
        (json!({"decided_from": from, "decided_to": to}), "policy"),
        (
            json!({"decided_from": from, "decided_to": to, "policy": {"score_reject_max": -20}}),
            "policy.score_approve_min",
        ),
        (
            json!({"decided_from": from, "decided_to": to, "policy": candidate, "limit": 0}),
            "limit",
        ),
    ];
    for (body, field) in invalid {
        let (status, problem) = h.replay(body.clone()).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {problem}"
        );
        assert_eq!(problem["errors"][0]["field"], field, "{body}: {problem}");
    }
    h.stop().await;
}

#[tokio::test]
async fn replay_of_decisions_the_service_made() {
    // Stored by the real path (sandbox unico and QI Tech), not by the test: the replay reads
    // back what the flow stored and must reach the same verdicts from it.
    let h = TestApp::builder()
        .config(&[("sandbox.processing_delay", "100ms")])
        .spawn()
        .await;
    let from = rfc3339(Utc::now() - chrono::Duration::seconds(5));
    let mut expected = BTreeMap::new();
    for (cpf, outcome) in [
        ("900.000.001-75", "approved"),
        ("900.000.007-60", "approved"),
        ("900.000.019-02", "review"),
        ("900.000.018-13", "rejected"),
        ("900.000.024-61", "retry"),
    ] {
        let response = h
            .onboard(&common::key(), &common::onboarding_body(cpf), Some(10))
            .await;
        assert_eq!(response.status(), StatusCode::OK, "{cpf}");
        let view: Value = response.json().await.unwrap();
        assert_eq!(view["outcome"], outcome, "{cpf}");
        expected.insert(view["id"].as_str().unwrap().to_owned(), outcome);
    }
    let to = rfc3339(Utc::now() + chrono::Duration::seconds(5));
    let (status, same) = h
        .replay(json!({"decided_from": from, "decided_to": to,
                       "policy": {"score_reject_max": -40, "score_approve_min": 50}}))
        .await;
    assert_eq!(status, StatusCode::OK, "{same}");
    assert_eq!(same["evaluated"], 5, "{same}");
    assert_eq!(same["changed"], 0, "{same}");
    assert_eq!(same["reasons_changed"], 0, "{same}");

    // A lower rejection threshold moves exactly the score -50 onboarding out of rejected.
    let (_, candidate) = h
        .replay(json!({"decided_from": from, "decided_to": to,
                       "policy": {"score_reject_max": -60, "score_approve_min": 50}}))
        .await;
    assert_eq!(candidate["changed"], 1, "{candidate}");
    assert_eq!(
        candidate["by_transition"],
        json!({"rejected->review": 1}),
        "{candidate}"
    );
    let change = &candidate["changes"][0];
    assert_eq!(
        expected[change["onboarding_id"].as_str().unwrap()],
        "rejected"
    );
    assert_eq!(change["replayed_reasons"], json!(["score.uncertain"]));
    h.stop().await;
}
