//! Fraud indications (Resolução Conjunta nº 6/2023) over HTTP: made by the policy in the
//! decision's transaction, by a reviewer and by the compliance team; shared with the sandbox's
//! sharing system, whose deliveries this test verifies with its own Standard Webhooks check;
//! withdrawn under four eyes; counted for the month; and received back from other institutions.

use std::time::Duration;

use crate::common::*;
use base64::Engine;
use serde_json::{Value, json};

mod received;
mod reports;
mod review;
mod sharing;
mod withdrawal;

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
