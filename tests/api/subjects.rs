//! The person's rights (LGPD Art. 18 and 19) over HTTP: the access report of a CPF with three
//! onboardings (approved; reviewed, contested with a statement and resolved; rejected as fraud),
//! as JSON and as the page in headless Chromium; the erasure, checked in a `pg_dump`; an erasure
//! that waits for a decision; the scopes; the 15 days.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::common::*;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

mod access;
mod deadline;
mod erasure;
mod history;
mod page;
mod scopes;

const DPO: &str = "vrd_sandbox_dpo";
const AUDITOR_PII: &str = "vrd_sandbox_auditor_pii";
const NAME: &str = "Maria Teste da Silva";
const EMAIL: &str = "maria.teste@example.com";
const PHONE: &str = "5511974749090";
const SELFIE_B64: &str = "c2VsZmllLWJ5dGVzLW5vdC1hLXJlYWwtaW1hZ2U=";
const SELFIE_BYTES: &str = "selfie-bytes-not-a-real-image";
const STATEMENT: &str = "Sou eu mesma, o celular é do trabalho.";

async fn subject_request(
    app: &TestApp,
    cpf: &str,
    kind: &str,
    received_at: Option<String>,
) -> (u16, Value) {
    let mut body = json!({ "cpf": cpf, "kind": kind, "note": "pedido recebido por e-mail" });
    if let Some(at) = received_at {
        body["received_at"] = json!(at);
    }
    app.post_json("/v1/subject-requests", DPO, &body).await
}

/// Every decision of a CPF: its id, its outcome and its reasons' codes.
type Decisions = BTreeSet<(String, String, Vec<String>)>;

fn codes(reasons: &Value) -> Vec<String> {
    reasons
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["code"].as_str().unwrap().to_owned())
        .collect()
}

/// The string `key` of each item of the array `list`.
fn strings<'a>(list: &'a Value, key: &str) -> Vec<&'a str> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|item| item[key].as_str().unwrap())
        .collect()
}

/// The report of the request `id`, read by the officer.
async fn report_of(app: &TestApp, id: &Value) -> (u16, Value) {
    let path = format!("/v1/subject-requests/{}/report", id.as_str().unwrap());
    app.get(&path, DPO).await
}
