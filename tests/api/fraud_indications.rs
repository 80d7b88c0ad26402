//! Fraud indications (Resolução Conjunta nº 6/2023) over HTTP: made by the policy in the
//! decision's transaction, by a reviewer and by the compliance team; shared with the sandbox's
//! sharing system, whose deliveries this test verifies with its own Standard Webhooks check;
//! withdrawn under four eyes; counted for the month; and received back from other institutions.

use std::time::Duration;

use crate::common::*;
use base64::Engine;
use serde_json::{Value, json};

const FRAUD: &str = "vrd_sandbox_fraud";
const FRAUD_2: &str = "vrd_sandbox_fraud_2";
const AUDITOR_PII: &str = "vrd_sandbox_auditor_pii";
const REVIEWER: &str = "vrd_sandbox_reviewer";
/// config/sandbox.toml's fraud_sharing.secret, as the sharing system holds it.
const SHARING_SECRET: &str = "whsec_dmVyZWRpdG8tc2FuZGJveC1mcmF1ZC1zaGFyaW5nISE=";

/// Whether `signature` holds a `v1,` HMAC-SHA256 of `{id}.{timestamp}.{body}` under the secret,
/// written here from the Standard Webhooks description.
fn verify(id: &str, timestamp: &str, body: &str, signature: &str) -> bool {
    let key = base64::engine::general_purpose::STANDARD
        .decode(SHARING_SECRET.strip_prefix("whsec_").unwrap())
        .unwrap();
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key);
    let signed = format!("{id}.{timestamp}.{body}");
    signature.split(' ').any(|candidate| {
        candidate
            .strip_prefix("v1,")
            .and_then(|b64| base64::engine::general_purpose::STANDARD.decode(b64).ok())
            .is_some_and(|tag| ring::hmac::verify(&key, signed.as_bytes(), &tag).is_ok())
    })
}

/// The events the sandbox's sharing system accepted, each verified here, as (webhook-id, body).
async fn shared(app: &TestApp) -> Vec<(String, Value)> {
    let (status, page) = app.get("/sandbox/fraud-sharing/events", FRAUD).await;
    assert_eq!(status, 200, "{page}");
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| {
            let id = item["webhook_id"].as_str().unwrap();
            let body = item["body"].as_str().unwrap();
            assert!(
                verify(
                    id,
                    item["webhook_timestamp"].as_str().unwrap(),
                    body,
                    item["webhook_signature"].as_str().unwrap()
                ),
                "an event that does not verify: {item}"
            );
            (id.to_owned(), serde_json::from_str(body).unwrap())
        })
        .collect()
}

/// The events of one indication the sharing system accepted.
async fn shared_of(app: &TestApp, indication_id: &str) -> Vec<(String, Value)> {
    shared(app)
        .await
        .into_iter()
        .filter(|(_, body)| body["data"]["id"] == indication_id)
        .collect()
}

async fn indications(app: &TestApp, query: &str, key: &str) -> Vec<Value> {
    let (status, page) = app.get(&format!("/v1/fraud-indications{query}"), key).await;
    assert_eq!(status, 200, "{page}");
    page["items"].as_array().unwrap().clone()
}

async fn indication(app: &TestApp, id: &str) -> Value {
    let (status, view) = app
        .get(&format!("/v1/fraud-indications/{id}"), AUDITOR_PII)
        .await;
    assert_eq!(status, 200, "{view}");
    view
}

/// Polls the indication until `check` holds.
async fn until(app: &TestApp, id: &str, limit: Duration, check: impl Fn(&Value) -> bool) -> Value {
    let started = tokio::time::Instant::now();
    loop {
        let view = indication(app, id).await;
        if check(&view) {
            return view;
        }
        assert!(
            started.elapsed() < limit,
            "indication {id}: not as expected within {limit:?}: {view}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn decided(app: &TestApp, cpf: &str) -> Value {
    let response = app.onboard(&key(), &onboarding_body(cpf), Some(15)).await;
    assert_eq!(response.status(), 200, "{cpf}");
    response.json().await.unwrap()
}

async fn make(app: &TestApp, key: &str, body: Value) -> Value {
    let (status, view) = app.post_json("/v1/fraud-indications", key, &body).await;
    assert_eq!(status, 201, "{view}");
    view
}

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

#[tokio::test]
async fn indications_are_listed_by_status_cpf_and_overdue() {
    let app = TestApp::builder()
        .config(&[("sandbox.fraud_sharing", "false")])
        .spawn()
        .await;
    // No sharing system: what is identified stays pending; 30 hours ago, it is overdue.
    let old = make(
        &app,
        FRAUD,
        json!({"cpf": cpf_from(5), "typology": "other", "description": "antiga",
               "identified_at": (chrono::Utc::now() - chrono::Duration::hours(30)).to_rfc3339()}),
    )
    .await;
    let fresh = make(
        &app,
        FRAUD,
        json!({"cpf": cpf_from(6), "typology": "other", "description": "recente"}),
    )
    .await;
    assert_eq!(fresh["cpf"], Value::String(mask(&cpf_from(6))));
    let overdue = indications(&app, "?overdue=true", AUDITOR_KEY).await;
    assert_eq!(overdue.len(), 1);
    assert_eq!(overdue[0]["id"], old["id"]);
    assert_eq!(overdue[0]["overdue"], true);
    assert_eq!(
        indications(&app, "?status=pending", AUDITOR_KEY)
            .await
            .len(),
        2
    );
    assert!(
        indications(&app, "?status=registered", AUDITOR_KEY)
            .await
            .is_empty()
    );
    let (status, _) = app
        .get(
            &format!("/v1/fraud-indications?cpf={}", cpf_from(6)),
            AUDITOR_KEY,
        )
        .await;
    assert_eq!(status, 403, "a search by CPF takes pii:read");
    let by_cpf = indications(&app, &format!("?cpf={}", cpf_from(6)), AUDITOR_PII).await;
    assert_eq!(by_cpf.len(), 1);
    assert_eq!(by_cpf[0]["cpf"], cpf_from(6).replace(['.', '-'], ""));
    let (status, bad) = app
        .get("/v1/fraud-indications?overdue=yes", AUDITOR_KEY)
        .await;
    assert_eq!(status, 422);
    assert_eq!(bad["errors"][0]["field"], "overdue");
    let (status, bad) = app
        .post_json(
            "/v1/fraud-indications",
            FRAUD,
            &json!({"cpf": "111.444.777-36", "typology": "other", "description": "x"}),
        )
        .await;
    assert_eq!(status, 422);
    assert_eq!(bad["errors"][0]["field"], "cpf");
    let (status, _) = app
        .post_json(
            "/v1/fraud-indications",
            AUDITOR_KEY,
            &json!({"cpf": cpf_from(7), "typology": "other", "description": "x"}),
        )
        .await;
    assert_eq!(status, 403);
    app.stop().await;
}

fn mask(cpf: &str) -> String {
    let digits: String = cpf.chars().filter(char::is_ascii_digit).collect();
    format!("***.{}.{}-**", &digits[3..6], &digits[6..9])
}

#[tokio::test]
async fn the_monthly_report_counts_late_on_time_withdrawn_and_confidential() {
    let app = TestApp::spawn().await;
    let hours_ago = |h: i64| (chrono::Utc::now() - chrono::Duration::hours(h)).to_rfc3339();
    let body = |n: u32, identified: String, confidential: bool| {
        json!({"cpf": cpf_from(n), "typology": "identity_theft", "description": "relatório",
               "identified_at": identified, "confidential": confidential})
    };
    let late = make(&app, FRAUD, body(10, hours_ago(30), false)).await;
    let on_time = make(&app, FRAUD, body(11, hours_ago(2), false)).await;
    let withdrawn = make(&app, FRAUD, body(12, hours_ago(3), false)).await;
    let confidential = make(&app, FRAUD, body(13, hours_ago(1), true)).await;
    for made in [&late, &on_time, &withdrawn] {
        until(
            &app,
            made["id"].as_str().unwrap(),
            Duration::from_secs(10),
            |v| v["status"] == "registered",
        )
        .await;
    }
    let (status, _) = app
        .post_json(
            &format!(
                "/v1/fraud-indications/{}/withdrawal",
                withdrawn["id"].as_str().unwrap()
            ),
            FRAUD_2,
            &json!({"reason": "duplicada"}),
        )
        .await;
    assert_eq!(status, 200);
    // Withdrawing the late one after it was registered leaves it late.
    let (status, _) = app
        .post_json(
            &format!(
                "/v1/fraud-indications/{}/withdrawal",
                late["id"].as_str().unwrap()
            ),
            FRAUD_2,
            &json!({"reason": "engano"}),
        )
        .await;
    assert_eq!(status, 200);
    // The four move, together, into the middle of a month of their own (registered_at and the
    // history keep their distance from identified_at), so the figures do not depend on the day
    // the test runs; the records refuse any change, so this goes around their triggers.
    let ids: Vec<uuid::Uuid> = [&late, &on_time, &withdrawn, &confidential]
        .iter()
        .map(|v| v["id"].as_str().unwrap().parse().unwrap())
        .collect();
    let mut conn = app.db.acquire().await.unwrap();
    sqlx::query("SET session_replication_role = replica")
        .execute(&mut *conn)
        .await
        .unwrap();
    let shift = "(timestamptz '2026-10-15 12:00:00-03' - now())";
    sqlx::query(&format!(
        "UPDATE fraud_indications SET identified_at = identified_at + {shift},
                registered_at = registered_at + {shift} WHERE id = ANY($1)"
    ))
    .bind(&ids)
    .execute(&mut *conn)
    .await
    .unwrap();
    sqlx::query(&format!(
        "UPDATE fraud_indication_history SET at = at + {shift} WHERE indication_id = ANY($1)"
    ))
    .bind(&ids)
    .execute(&mut *conn)
    .await
    .unwrap();
    sqlx::query("SET session_replication_role = origin")
        .execute(&mut *conn)
        .await
        .unwrap();
    drop(conn);

    let (status, report) = app
        .get("/v1/reports/fraud-indications?month=2026-10", AUDITOR_KEY)
        .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(
        report,
        json!({"month": "2026-10", "identified": 4, "registered_within_24h": 2,
               "registered_late": 1, "pending": 0, "withdrawn": 2, "confidential": 1,
               "late": [late["id"]]})
    );
    let (_, empty) = app
        .get("/v1/reports/fraud-indications?month=2026-09", AUDITOR_KEY)
        .await;
    assert_eq!(empty["identified"], 0);
    for bad in ["2026-13", "2026-1", "october", ""] {
        let (status, problem) = app
            .get(
                &format!("/v1/reports/fraud-indications?month={bad}"),
                AUDITOR_KEY,
            )
            .await;
        assert_eq!(status, 422, "{bad}");
        assert_eq!(problem["errors"][0]["field"], "month", "{bad}");
    }
    app.stop().await;
}

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
