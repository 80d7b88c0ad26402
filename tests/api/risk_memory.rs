//! Risk memory over HTTP: lists, velocity and linked fraud judged before unico, the links
//! between onboardings, and replay judging them as of each decision.

use std::time::{Duration, Instant};

use crate::common::*;
use chrono::Utc;
use futures_util::future::join_all;
use serde_json::{Value, json};

mod figures;
mod linked_fraud;
mod lists;
mod velocity;

const RISK_KEY: &str = "vrd_sandbox_risk";

/// The test defaults turn risk memory off; these turn on exactly the rules a test names.
fn rules(lists: Value, velocity: Value, linked: Value) -> Vec<(&'static str, String)> {
    vec![
        ("policy.lists", lists.to_string()),
        ("policy.velocity", velocity.to_string()),
        ("policy.linked_fraud", linked.to_string()),
    ]
}

async fn spawn(overrides: &[(&'static str, String)]) -> TestApp {
    let pairs: Vec<(&str, &str)> = overrides.iter().map(|(k, v)| (*k, v.as_str())).collect();
    TestApp::builder().config(&pairs).spawn().await
}

fn person(cpf: &str, device: &str, phone: &str, email: &str) -> Value {
    let mut body = onboarding_body(cpf);
    body["device"]["device_id"] = json!(device);
    body["person"]["phone"] = json!(phone);
    body["person"]["email"] = json!(email);
    body
}

async fn decided(app: &TestApp, body: &Value) -> Value {
    let id = app.start_onboarding(body).await;
    app.until_decided(&id, Duration::from_secs(20)).await
}

/// The decision of an onboarding, explained, by its reference.
async fn explained(app: &TestApp, reference: &str) -> Value {
    let (status, page) = app
        .get(&format!("/v1/decisions?reference={reference}"), AUDITOR_KEY)
        .await;
    assert_eq!(status, 200, "{page}");
    let id = page["items"][0]["id"]
        .as_str()
        .expect("a decision")
        .to_owned();
    let (status, decision) = app.get(&format!("/v1/decisions/{id}"), AUDITOR_KEY).await;
    assert_eq!(status, 200, "{decision}");
    decision
}

fn evaluation<'a>(decision: &'a Value, code: &str) -> &'a Value {
    decision["evaluations"]
        .as_array()
        .expect("evaluations")
        .iter()
        .find(|e| e["code"] == code)
        .unwrap_or_else(|| panic!("no evaluation {code}: {decision}"))
}

fn fired(views: &[Value], code: &str) -> usize {
    views
        .iter()
        .filter(|v| reason_codes(v).iter().any(|c| c == code))
        .count()
}
