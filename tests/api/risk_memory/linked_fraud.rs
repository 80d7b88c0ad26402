//! Linked fraud: an onboarding sharing a phone with a fraud rejection, not with an approval.

use super::*;

#[tokio::test]
async fn links_fraud_fires_for_a_phone_shared_with_a_fraud_rejection_and_not_an_approval() {
    let app = spawn(&rules(
        json!([]),
        json!([]),
        json!({"keys": ["phone"], "window": "180d", "outcome": "review"}),
    ))
    .await;
    // 900.000.009-22: unico finds the face among its fraudsters.
    let fraud = decided(
        &app,
        &person("900.000.009-22", "d-1", "11988880001", "f@example.com"),
    )
    .await;
    assert_eq!(fraud["outcome"], "rejected");
    assert!(reason_codes(&fraud).contains(&"fraudsters.match".to_owned()));
    let shared = person(&cpf_from(11), "d-2", "5511988880001", "g@example.com");
    let linked = decided(&app, &shared).await;
    assert_eq!(linked["outcome"], "review", "{linked}");
    assert_eq!(reason_codes(&linked)[0], "links.fraud");
    let decision = explained(&app, shared["reference"].as_str().unwrap()).await;
    let rule = evaluation(&decision, "links.fraud");
    assert_eq!(
        rule["inputs"]["linked"][0]["onboarding_id"], fraud["id"],
        "{rule}"
    );

    let approved = decided(
        &app,
        &person(&cpf_from(12), "d-3", "11988880002", "h@example.com"),
    )
    .await;
    assert_eq!(approved["outcome"], "approved");
    let beside = decided(
        &app,
        &person(&cpf_from(13), "d-4", "11988880002", "i@example.com"),
    )
    .await;
    assert_eq!(beside["outcome"], "approved", "{beside}");
    assert!(!reason_codes(&beside).contains(&"links.fraud".to_owned()));

    // The links a reviewer sees: the phone shared with the rejected one, its CPF masked.
    let id = linked["id"].as_str().unwrap();
    let (status, links) = app
        .get(
            &format!("/v1/onboardings/{id}/links?window=30d"),
            AUDITOR_KEY,
        )
        .await;
    assert_eq!(status, 200, "{links}");
    let phone = links["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["key"] == "phone")
        .expect("phone links");
    assert_eq!(phone["count"], 1, "{links}");
    assert_eq!(phone["onboardings"][0]["id"], fraud["id"]);
    assert_eq!(phone["onboardings"][0]["outcome"], "rejected");
    assert_eq!(phone["onboardings"][0]["cpf"], "***.000.009-**");
    let (status, _) = app
        .get(
            &format!("/v1/onboardings/{id}/links?window=forever"),
            AUDITOR_KEY,
        )
        .await;
    assert_eq!(status, 422);
    app.stop().await;
}
