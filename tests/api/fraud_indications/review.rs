//! An indication made by a reviewer's fraud resolution.

use super::*;

async fn claimed_case(app: &TestApp, cpf: &str) -> (String, String) {
    let view = decided(app, cpf).await;
    assert_eq!(view["outcome"], "review", "{view}");
    let onboarding_id = view["id"].as_str().unwrap().to_owned();
    let (_, page) = app.get("/v1/reviews", REVIEWER).await;
    let case = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["onboarding_id"] == onboarding_id.as_str())
        .cloned()
        .unwrap();
    let case_id = case["id"].as_str().unwrap().to_owned();
    let (status, _) = app
        .post_json(
            &format!("/v1/reviews/{case_id}/claim"),
            REVIEWER,
            &json!({}),
        )
        .await;
    assert_eq!(status, 200);
    (onboarding_id, case_id)
}

#[tokio::test]
async fn a_reviewers_fraud_resolution_makes_one() {
    let app = TestApp::spawn().await;
    // score.uncertain: a review.
    let (onboarding_id, case_id) = claimed_case(&app, "900.000.019-02").await;
    let resolution = format!("/v1/reviews/{case_id}/resolution");
    let (status, refused) = app
        .post_json(
            &resolution,
            REVIEWER,
            &json!({"outcome": "approved", "note": "ok",
                    "fraud": {"typology": "mule_account", "description": "x"}}),
        )
        .await;
    assert_eq!(status, 422, "fraud only with a rejection: {refused}");
    assert_eq!(refused["errors"][0]["field"], "fraud");
    let (status, refused) = app
        .post_json(
            &resolution,
            REVIEWER,
            &json!({"outcome": "rejected", "note": "conta laranja",
                    "fraud": {"typology": "laranja", "description": "x"}}),
        )
        .await;
    assert_eq!(status, 422);
    assert_eq!(refused["errors"][0]["field"], "fraud.typology");
    assert!(indications(&app, "", AUDITOR_KEY).await.is_empty());
    let (status, case) = app
        .post_json(
            &resolution,
            REVIEWER,
            &json!({"outcome": "rejected", "note": "Selfie de outra pessoa.",
                    "fraud": {"typology": "mule_account",
                              "description": "Rosto confere, mas a conta seria operada por terceiro."}}),
        )
        .await;
    assert_eq!(status, 200, "{case}");
    let all = indications(&app, "", AUDITOR_KEY).await;
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(all[0]["onboarding_id"], onboarding_id.as_str());
    assert_eq!(all[0]["created_by"], "sandbox-reviewer");
    assert_eq!(all[0]["typology"], "mule_account");
    assert_eq!(
        all[0]["evidence"]["decision_id"],
        case["resolution"]["decision_id"]
    );

    // A rejection without fraud makes none.
    let (_, other) = claimed_case(&app, "900.000.005-07").await;
    let (status, _) = app
        .post_json(
            &format!("/v1/reviews/{other}/resolution"),
            REVIEWER,
            &json!({"outcome": "rejected", "note": "Documento ilegível."}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(indications(&app, "", AUDITOR_KEY).await.len(), 1);
    app.stop().await;
}
