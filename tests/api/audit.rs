//! The audit endpoints and the protection of stored decisions, driven over HTTP the way an
//! auditor uses them, each test against its own fresh database.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;
use veredito::domain::evidence::{
    BiometricEvidence, BiometricResult, DeviceEvidence, Evidence, RiskSignals,
};
use veredito::onboarding::services::Flow as AppState;
use veredito::store::{self, onboardings::NewOnboarding, onboardings::PersonData};

use crate::common::{self, TestApp, all_rows_as_text, cpf_from};

const AUDITOR: &str = "vrd_sandbox_auditor";
const AUDITOR_PII: &str = "vrd_sandbox_auditor_pii";
const ONBOARDING: &str = "vrd_sandbox_onboarding";

/// What the audit tests ask of the service, on top of the common harness.
impl TestApp {
    async fn request(
        &self,
        key: Option<&str>,
        path: &str,
        query: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut request = self.http.get(self.url(path)).query(query);
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        request.send().await.expect("request sent")
    }

    async fn get_json(&self, key: &str, path: &str, query: &[(&str, &str)]) -> Value {
        let response = self.request(Some(key), path, query).await;
        let status = response.status();
        let body: Value = response.json().await.expect("json body");
        assert_eq!(status, StatusCode::OK, "{path} {query:?}: {body}");
        body
    }

    /// Ids of every decision the search answers, in order, following the cursor.
    async fn search_ids(&self, query: &[(&str, &str)]) -> Vec<String> {
        let mut ids = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut q: Vec<(&str, &str)> = query.to_vec();
            if let Some(c) = &cursor {
                q.push(("cursor", c));
            }
            // Searching by CPF takes pii:read.
            let page = self.get_json(key_for(query), "/v1/decisions", &q).await;
            ids.extend(
                page["items"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|i| i["id"].as_str().unwrap().to_owned()),
            );
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => return ids,
            }
        }
    }

    async fn problem_fields(&self, path: &str, query: &[(&str, &str)]) -> Vec<String> {
        let response = self.request(Some(key_for(query)), path, query).await;
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{path} {query:?}"
        );
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
        let body: Value = response.json().await.unwrap();
        body["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["field"].as_str().unwrap().to_owned())
            .collect()
    }

    async fn replay(&self, body: Value) -> (StatusCode, Value) {
        let response = self
            .http
            .post(self.url("/v1/decisions/replay"))
            .bearer_auth(AUDITOR)
            .json(&body)
            .send()
            .await
            .unwrap();
        (response.status(), response.json().await.unwrap())
    }

    async fn export(&self, key: &str, query: &[(&str, &str)]) -> (String, String) {
        let response = self.request(Some(key), "/v1/decisions/export", query).await;
        assert_eq!(response.status(), StatusCode::OK, "export {query:?}");
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        (content_type, response.text().await.unwrap())
    }

    async fn seed(&self, spec: Spec) -> Seeded {
        seed(&self.db, &self.state, spec).await
    }
}

mod at_rest;
mod explanation;
mod export;
mod masking;
mod record;
mod replay;
mod retention;
mod search;

fn digits(cpf: &str) -> String {
    cpf.chars().filter(char::is_ascii_digit).collect()
}

fn masked(cpf: &str) -> String {
    let d = digits(cpf);
    format!("***.{}.{}-**", &d[3..6], &d[6..9])
}

/// unico answered an inconclusive identity with `score`: the score rows decide.
fn scored(score: i32) -> Evidence {
    Evidence {
        risk_signals: Some(RiskSignals {
            is_emulated: Some(false),
            ..Default::default()
        }),
        biometrics: BiometricEvidence::Received(BiometricResult {
            process_id: format!("proc-{}", Uuid::new_v4().simple()),
            status: 3,
            unico_id: Some("inconclusive".into()),
            liveness: Some(1),
            identity_fraudsters: None,
            score: Some(score),
        }),
        device: DeviceEvidence::NotRun,
        memory: None,
    }
}

fn rooted(mut evidence: Evidence) -> Evidence {
    evidence.risk_signals = Some(RiskSignals {
        is_rooted_device: Some(true),
        ..Default::default()
    });
    evidence
}

/// The phone sent where it was.
fn located(mut evidence: Evidence) -> Evidence {
    let signals = evidence.risk_signals.get_or_insert_with(Default::default);
    signals.device_latitude = Some(-23.5613);
    signals.device_longitude = Some(-46.6565);
    evidence
}

fn suspicious(mut evidence: Evidence) -> Evidence {
    if let BiometricEvidence::Received(result) = &mut evidence.biometrics {
        result.identity_fraudsters = Some("suspicious".into());
    }
    evidence
}

struct Spec {
    cpf: String,
    name: String,
    reference: Option<String>,
    evidence: Evidence,
    policy_version: Option<&'static str>,
    /// Written with this decision time instead of now (a decision made long ago).
    decided_at: Option<DateTime<Utc>>,
}

impl Spec {
    fn new(n: u32, evidence: Evidence) -> Spec {
        Spec {
            cpf: cpf_from(n),
            name: format!("Pessoa Auditada {n}"),
            reference: Some(format!("ref-{n}")),
            evidence,
            policy_version: None,
            decided_at: None,
        }
    }
}

#[derive(Debug, Clone)]
struct Seeded {
    onboarding_id: Uuid,
    decision_id: Uuid,
    outcome: String,
    reasons: Vec<String>,
    decided_at: DateTime<Utc>,
}

/// Stores an onboarding and its decision through the store, as the core path does.
async fn seed(db: &PgPool, state: &AppState, spec: Spec) -> Seeded {
    let mut policy = veredito::app::policy_from(&state.settings);
    if let Some(version) = spec.policy_version {
        policy.version = version.to_owned();
    }
    let verdict = policy.evaluate(&spec.evidence);
    let id = Uuid::new_v4();
    let person = PersonData {
        cpf: digits(&spec.cpf),
        name: Some(spec.name.clone()),
        birth_date: Some("1990-01-31".into()),
        gender: None,
        email: None,
        phone: None,
    };
    let key = format!("key-{id}");
    let mut tx = store::begin(db).await.unwrap();
    store::onboardings::insert(
        &mut tx,
        &state.cipher,
        NewOnboarding {
            id,
            client_name: "audit-tests",
            idempotency_key: &key,
            request_hash: b"hash",
            reference: spec.reference.as_deref(),
            person: &person,
            account_id: "acc-1",
            person_id: "per-1",
            device: json!({"device_id": "dev-1", "session_id": "s-1", "risk_signals": spec.evidence.risk_signals}),
            open_finance: None,
            selfie: "c2VsZmll",
            links: &[],
            questions: None,
        },
    )
    .await
    .expect("onboarding stored");
    tx.event(id, "received", json!({}));
    tx.commit().await.unwrap();
    let mut tx = store::begin(db).await.unwrap();
    let (decision_id, decided_at) = match spec.decided_at {
        None => {
            assert!(
                store::onboardings::transition(&mut *tx, id, "received", "decided")
                    .await
                    .unwrap()
                    .is_some()
            );
            let row = store::decisions::insert(
                &mut tx,
                Uuid::new_v4(),
                id,
                &verdict,
                &spec.evidence,
                store::decisions::DecidedBy::Policy,
            )
            .await
            .unwrap();
            (row.id, row.decided_at)
        }
        Some(at) => {
            let codes: Vec<&str> = verdict.reasons.iter().map(|r| r.code.as_str()).collect();
            let decision_id = Uuid::new_v4();
            sqlx::query(
                "UPDATE onboardings SET state = 'decided', decided_at = $2, created_at = $2 - interval '5 seconds'
                  WHERE id = $1",
            )
                .bind(id)
                .bind(at)
                .execute(&mut *tx)
                .await
                .unwrap();
            sqlx::query(
                "INSERT INTO decisions (id, onboarding_id, outcome, reasons, reason_codes, policy_version, thresholds,
                                        evidence, evaluations, decided_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(decision_id)
            .bind(id)
            .bind(verdict.outcome.as_str())
            .bind(serde_json::to_value(&verdict.reasons).unwrap())
            .bind(&codes)
            .bind(&verdict.policy_version)
            .bind(serde_json::to_value(verdict.thresholds).unwrap())
            .bind(serde_json::to_value(&spec.evidence).unwrap())
            .bind(serde_json::to_value(&verdict.evaluations).unwrap())
            .bind(at)
            .execute(&mut *tx)
            .await
            .unwrap();
            (decision_id, at)
        }
    };
    tx.event(id, "decided", json!({"decision_id": decision_id}));
    tx.commit().await.unwrap();
    Seeded {
        onboarding_id: id,
        decision_id,
        outcome: verdict.outcome.as_str().to_owned(),
        reasons: verdict.reasons.iter().map(|r| r.code.clone()).collect(),
        decided_at,
    }
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn set(ids: impl IntoIterator<Item = impl ToString>) -> BTreeSet<String> {
    ids.into_iter().map(|i| i.to_string()).collect()
}

/// The auditor's key, with pii:read when the query searches by CPF.
fn key_for(query: &[(&str, &str)]) -> &'static str {
    if query.iter().any(|(name, _)| *name == "cpf") {
        AUDITOR_PII
    } else {
        AUDITOR
    }
}

/// RFC 4180, enough to read back what the export writes.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\r') => {}
            (false, '\n') => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => field.push(c),
        }
    }
    assert!(
        field.is_empty() && row.is_empty(),
        "the last row ends with a line break"
    );
    rows
}
