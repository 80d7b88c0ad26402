//! Indications made by the policy in the decision's transaction and shared, signed, with the
//! sharing system: delivered once it is back after being down, and never when confidential.

use super::*;

#[tokio::test]
async fn a_fraudster_rejection_makes_one_indication_in_its_transaction_and_shares_it_signed() {
    let app = TestApp::spawn().await;
    // None for an approval, none for liveness.not_live under the default member.
    let approved = decided(&app, "900.000.001-75").await;
    assert_eq!(approved["outcome"], "approved");
    let not_live = decided(&app, "900.000.003-37").await;
    assert_eq!(reason_codes(&not_live), ["liveness.not_live"]);
    let fraudster = decided(&app, "900.000.009-22").await;
    assert_eq!(fraudster["outcome"], "rejected");
    assert_eq!(reason_codes(&fraudster)[0], "fraudsters.match");

    let all = indications(&app, "", AUDITOR_KEY).await;
    assert_eq!(all.len(), 1, "{all:?}");
    let made = &all[0];
    assert_eq!(made["onboarding_id"], fraudster["id"]);
    assert_eq!(made["cpf"], "***.000.009-**", "masked without pii:read");
    assert_eq!(made["typology"], "identity_theft");
    assert_eq!(made["created_by"], "policy");
    assert_eq!(made["activity"], "account_opening");
    assert_eq!(made["institution"], "11222333000181");
    assert_eq!(made["confidential"], false);
    assert_eq!(made["evidence"]["reasons"][0], "fraudsters.match");
    let id = made["id"].as_str().unwrap();

    // Made by the statement that stored the decision: the same transaction wrote both rows,
    // and it was identified when decided.
    let (same_transaction, decided_at): (bool, chrono::DateTime<chrono::Utc>) = sqlx::query_as(
        "SELECT d.xmin::text = h.xmin::text, d.decided_at
           FROM decisions d, fraud_indication_history h
          WHERE d.id = ($1::jsonb->>'decision_id')::uuid AND h.indication_id = $2::uuid
            AND h.what = 'made'",
    )
    .bind(&made["evidence"])
    .bind(id)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert!(same_transaction);
    assert_eq!(
        chrono::DateTime::parse_from_rfc3339(made["identified_at"].as_str().unwrap()).unwrap(),
        decided_at
    );

    // The sharing system receives it signed, with the whole CPF; the first 2xx registers it.
    let registered = until(&app, id, Duration::from_secs(10), |v| {
        v["status"] == "registered"
    })
    .await;
    assert!(registered["registered_at"].is_string());
    assert_eq!(registered["cpf"], "90000000922", "whole with pii:read");
    let events = shared_of(&app, id).await;
    assert_eq!(events.len(), 1, "{events:?}");
    let (_, event) = &events[0];
    assert_eq!(event["type"], "fraud_indication.registered");
    assert_eq!(event["data"]["cpf"], "90000000922");
    assert_eq!(event["data"]["typology"], "identity_theft");
    assert_eq!(event["data"]["institution"], "11222333000181");
    let history: Vec<&str> = registered["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["what"].as_str().unwrap())
        .collect();
    assert_eq!(history, ["made", "registered"]);
    // The outbox keeps no CPF in the clear.
    for (table, row) in all_rows_as_text(&app.db).await {
        assert!(
            !row.contains("90000000922") && !row.contains("900.000.009-22"),
            "{table}: {row}"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn with_the_sharing_system_down_for_30s_it_is_delivered_after_once() {
    let app = TestApp::builder()
        .config(&[
            ("callbacks.retry_initial", "1s"),
            ("callbacks.retry_max", "2s"),
        ])
        .spawn()
        .await;
    let (status, _) = app
        .post_json(
            "/sandbox/fraud-sharing/outage",
            FRAUD,
            &json!({"seconds": 30}),
        )
        .await;
    assert_eq!(status, 200);
    let started = tokio::time::Instant::now();
    let made = make(
        &app,
        FRAUD,
        json!({"cpf": cpf_from(1), "typology": "mule_account",
               "description": "Conta usada para receber valores de golpe."}),
    )
    .await;
    let id = made["id"].as_str().unwrap().to_owned();
    eventually(
        Duration::from_secs(10),
        "a delivery refused by the outage",
        || async {
            sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM callbacks WHERE fraud_indication_id = $1::uuid AND attempts >= 1)",
            )
            .bind(&id)
            .fetch_one(&app.db)
            .await
            .unwrap()
        },
    )
    .await;
    let waiting = indication(&app, &id).await;
    assert_eq!(waiting["status"], "pending");
    assert_eq!(waiting["registered_at"], Value::Null);
    let registered = until(&app, &id, Duration::from_secs(45), |v| {
        v["status"] == "registered"
    })
    .await;
    assert!(started.elapsed() >= Duration::from_secs(30));
    assert!(registered["registered_at"].is_string());
    tokio::time::sleep(Duration::from_secs(3)).await;
    let events = shared_of(&app, &id).await;
    assert_eq!(events.len(), 1, "delivered once: {events:?}");
    // The attempts refused during the outage are on record.
    let (_, page) = app
        .get("/v1/callbacks?target=fraud_sharing", AUDITOR_KEY)
        .await;
    let delivery = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == events[0].0.as_str())
        .cloned()
        .unwrap();
    assert_eq!(delivery["status"], "delivered");
    assert!(delivery["attempts"].as_i64().unwrap() > 3, "{delivery}");
    app.stop().await;
}

#[tokio::test]
async fn a_confidential_indication_is_kept_and_never_sent() {
    let app = TestApp::spawn().await;
    let secret = make(
        &app,
        FRAUD,
        json!({"cpf": cpf_from(2), "typology": "mule_account", "confidential": true,
               "description": "Comunicado ao COAF; sigiloso."}),
    )
    .await;
    let open = make(
        &app,
        FRAUD,
        json!({"cpf": cpf_from(3), "typology": "other", "description": "Fraude posterior."}),
    )
    .await;
    until(
        &app,
        open["id"].as_str().unwrap(),
        Duration::from_secs(10),
        |v| v["status"] == "registered",
    )
    .await;
    // Altered and withdrawn, it is still never sent.
    let path = format!("/v1/fraud-indications/{}", secret["id"].as_str().unwrap());
    let response = app
        .http
        .patch(app.url(&path))
        .bearer_auth(FRAUD)
        .json(&json!({"description": "Sigiloso, revisto.", "reason": "novos fatos"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let (status, withdrawn) = app
        .post_json(
            &format!("{path}/withdrawal"),
            FRAUD_2,
            &json!({"reason": "erro"}),
        )
        .await;
    assert_eq!(status, 200, "{withdrawn}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        shared_of(&app, secret["id"].as_str().unwrap())
            .await
            .is_empty()
    );
    let outbox: i64 =
        sqlx::query_scalar("SELECT count(*) FROM callbacks WHERE fraud_indication_id = $1::uuid")
            .bind(secret["id"].as_str().unwrap())
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(outbox, 0);
    let kept = indication(&app, secret["id"].as_str().unwrap()).await;
    assert_eq!(kept["registered_at"], Value::Null);
    assert_eq!(kept["confidential"], true);
    assert_eq!(kept["overdue"], false);
    app.stop().await;
}
