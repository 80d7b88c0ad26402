//! Withdrawal under four eyes: refused to the indication's maker, done by another key, and
//! shared.

use super::*;

async fn made_registered(app: &TestApp, id: &str) -> Value {
    let registered: Option<chrono::DateTime<chrono::Utc>> =
        sqlx::query_scalar("SELECT at FROM fraud_indication_history WHERE indication_id = $1::uuid AND what = 'registered'")
            .bind(id)
            .fetch_optional(&app.db)
            .await
            .unwrap();
    let view = indication(app, id).await;
    assert_eq!(
        registered.map(|at| at.timestamp_micros()),
        view["registered_at"]
            .as_str()
            .map(|t| chrono::DateTime::parse_from_rfc3339(t)
                .unwrap()
                .timestamp_micros())
    );
    view["registered_at"].clone()
}

#[tokio::test]
async fn a_withdrawal_by_its_maker_is_403_by_another_key_200_and_shared() {
    let app = TestApp::spawn().await;
    let made = make(
        &app,
        FRAUD,
        json!({"cpf": cpf_from(4), "typology": "synthetic_identity",
               "description": "Identidade sintética."}),
    )
    .await;
    assert_eq!(made["created_by"], "sandbox-fraud");
    let id = made["id"].as_str().unwrap();
    until(&app, id, Duration::from_secs(10), |v| {
        v["status"] == "registered"
    })
    .await;
    let withdrawal = format!("/v1/fraud-indications/{id}/withdrawal");
    let (status, refused) = app
        .post_json(&withdrawal, FRAUD, &json!({"reason": "engano"}))
        .await;
    assert_eq!(status, 403, "{refused}");
    let (status, _) = app
        .post_json(&withdrawal, AUDITOR_KEY, &json!({"reason": "engano"}))
        .await;
    assert_eq!(status, 403, "an auditor has no fraud:write");
    // An alteration first: shared again as updated.
    let response = app
        .http
        .patch(app.url(&format!("/v1/fraud-indications/{id}")))
        .bearer_auth(FRAUD)
        .json(&json!({"typology": "identity_theft", "reason": "documentos de terceiro"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let altered: Value = response.json().await.unwrap();
    assert_eq!(altered["typology"], "identity_theft");
    let (status, withdrawn) = app
        .post_json(
            &withdrawal,
            FRAUD_2,
            &json!({"reason": "cliente comprovou identidade"}),
        )
        .await;
    assert_eq!(status, 200, "{withdrawn}");
    assert_eq!(withdrawn["status"], "withdrawn");
    assert_eq!(withdrawn["registered_at"], made_registered(&app, id).await);
    let last = withdrawn["history"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["what"], "withdrawn");
    assert_eq!(last["by"], "sandbox-fraud-2");
    assert_eq!(last["reason"], "cliente comprovou identidade");
    let (status, _) = app
        .post_json(&withdrawal, FRAUD_2, &json!({"reason": "de novo"}))
        .await;
    assert_eq!(status, 409);
    // Shared again, in order, each event with its own webhook-id.
    let started = tokio::time::Instant::now();
    let events = loop {
        let events = shared_of(&app, id).await;
        if events.len() >= 3 || started.elapsed() > Duration::from_secs(10) {
            break events;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let kinds: Vec<&str> = events
        .iter()
        .map(|(_, e)| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "fraud_indication.registered",
            "fraud_indication.updated",
            "fraud_indication.withdrawn"
        ]
    );
    let ids: std::collections::HashSet<&str> = events.iter().map(|(i, _)| i.as_str()).collect();
    assert_eq!(ids.len(), 3);
    assert_eq!(events[2].1["data"]["status"], "withdrawn");
    app.stop().await;
}
