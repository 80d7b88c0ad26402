//! The audit endpoints and the protection of stored decisions, driven over HTTP the way an
//! auditor uses them, each test against its own fresh database.

mod common;

use common::{TestApp, all_rows_as_text};

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

const AUDITOR: &str = "vrd_sandbox_auditor";
const AUDITOR_PII: &str = "vrd_sandbox_auditor_pii";
const ONBOARDING: &str = "vrd_sandbox_onboarding";

// ---- harness -----------------------------------------------------------------------------------

type Harness = TestApp;

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

// ---- fixtures ----------------------------------------------------------------------------------

use common::cpf_from;

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

/// Every row of every table of the database, as text.
// ---- search ------------------------------------------------------------------------------------

#[tokio::test]
async fn every_filter_narrows_the_search() {
    let h = Harness::spawn().await;
    let long_ago = Utc::now() - chrono::Duration::days(20);
    let approved = h.seed(Spec::new(1, scored(60))).await;
    let review = h.seed(Spec::new(2, scored(10))).await;
    let rejected = h.seed(Spec::new(3, scored(-60))).await;
    let retry = h.seed(Spec::new(4, scored(0))).await;
    let rooted = h.seed(Spec::new(5, rooted(scored(60)))).await;
    let old_policy = h
        .seed(Spec {
            policy_version: Some("2025-01-01.1"),
            ..Spec::new(6, scored(60))
        })
        .await;
    let old = h
        .seed(Spec {
            decided_at: Some(long_ago),
            ..Spec::new(7, scored(60))
        })
        .await;
    // Onboarding received long ago (decided now).
    sqlx::query("UPDATE onboardings SET created_at = $2 WHERE id = $1")
        .bind(review.onboarding_id)
        .bind(long_ago)
        .execute(&h.db)
        .await
        .unwrap();
    let all = [
        &approved,
        &review,
        &rejected,
        &retry,
        &rooted,
        &old_policy,
        &old,
    ];
    assert_eq!(approved.outcome, "approved");
    assert_eq!(
        (
            review.outcome.as_str(),
            rejected.outcome.as_str(),
            retry.outcome.as_str()
        ),
        ("review", "rejected", "retry")
    );
    assert_eq!(rooted.reasons, ["device.rooted", "score.low_risk"]);

    // No filter: everything, newest first.
    let everything = h.search_ids(&[]).await;
    assert_eq!(set(&everything), set(all.iter().map(|s| s.decision_id)));
    assert_eq!(
        everything.last().unwrap(),
        &old.decision_id.to_string(),
        "oldest decision last"
    );

    let one = |s: &Seeded| vec![s.decision_id.to_string()];
    assert_eq!(
        h.search_ids(&[("outcome", "rejected")]).await,
        one(&rejected)
    );
    assert_eq!(h.search_ids(&[("outcome", "retry")]).await, one(&retry));
    assert_eq!(
        set(h.search_ids(&[("outcome", "review")]).await),
        set([review.decision_id, rooted.decision_id])
    );
    assert_eq!(
        h.search_ids(&[("reason", "device.rooted")]).await,
        one(&rooted)
    );
    assert_eq!(
        h.search_ids(&[("reason", "score.capture_error")]).await,
        one(&retry)
    );
    assert_eq!(
        set(h.search_ids(&[("reason", "score.low_risk")]).await),
        set([
            approved.decision_id,
            rooted.decision_id,
            old_policy.decision_id,
            old.decision_id
        ])
    );
    // The CPF matches with or without punctuation; a valid CPF nobody used matches nothing.
    assert_eq!(h.search_ids(&[("cpf", &cpf_from(3))]).await, one(&rejected));
    assert_eq!(
        h.search_ids(&[("cpf", &digits(&cpf_from(3)))]).await,
        one(&rejected)
    );
    assert!(h.search_ids(&[("cpf", &cpf_from(99))]).await.is_empty());
    assert_eq!(h.search_ids(&[("reference", "ref-4")]).await, one(&retry));
    assert!(
        h.search_ids(&[("reference", "ref-")]).await.is_empty(),
        "reference is exact"
    );
    assert_eq!(
        h.search_ids(&[("policy_version", "2025-01-01.1")]).await,
        one(&old_policy)
    );
    assert_eq!(
        h.search_ids(&[("policy_version", "2026-11-23.1")])
            .await
            .len(),
        6
    );

    let before_recent = rfc3339(Utc::now() - chrono::Duration::days(1));
    assert_eq!(
        h.search_ids(&[("decided_to", &before_recent)]).await,
        one(&old)
    );
    assert_eq!(
        h.search_ids(&[("decided_from", &before_recent)])
            .await
            .len(),
        6
    );
    assert_eq!(
        h.search_ids(&[("created_to", &before_recent)]).await,
        set_to_vec(&[&review, &old], &everything)
    );
    assert_eq!(
        h.search_ids(&[("created_from", &before_recent)])
            .await
            .len(),
        5
    );
    // Bounds are inclusive, to the microsecond.
    let at = rfc3339(rejected.decided_at);
    assert_eq!(
        h.search_ids(&[("decided_from", &at), ("decided_to", &at)])
            .await,
        one(&rejected)
    );
    // Filters combine.
    assert_eq!(
        h.search_ids(&[("outcome", "approved"), ("decided_from", &before_recent)])
            .await
            .len(),
        2
    );
    assert!(
        h.search_ids(&[("outcome", "approved"), ("cpf", &cpf_from(3))])
            .await
            .is_empty()
    );

    // Invalid values answer 422 naming each field.
    assert_eq!(
        h.problem_fields("/v1/decisions", &[("outcome", "maybe")])
            .await,
        ["outcome"]
    );
    assert_eq!(
        h.problem_fields("/v1/decisions", &[("reason", "score.nice")])
            .await,
        ["reason"]
    );
    assert_eq!(
        h.problem_fields("/v1/decisions", &[("cpf", "111.444.777-36")])
            .await,
        ["cpf"]
    );
    assert_eq!(
        h.problem_fields("/v1/decisions", &[("cpf", "abc")]).await,
        ["cpf"]
    );
    assert_eq!(
        h.problem_fields("/v1/decisions", &[("created_from", "yesterday")])
            .await,
        ["created_from"]
    );
    assert_eq!(
        h.problem_fields("/v1/decisions", &[("decided_to", "2026-13-01T00:00:00Z")])
            .await,
        ["decided_to"]
    );
    assert_eq!(
        h.problem_fields(
            "/v1/decisions",
            &[
                ("decided_from", "2026-02-01T00:00:00Z"),
                ("decided_to", "2026-01-01T00:00:00Z")
            ]
        )
        .await,
        ["decided_to"]
    );
    assert_eq!(
        h.problem_fields("/v1/decisions", &[("limit", "0")]).await,
        ["limit"]
    );
    assert_eq!(
        h.problem_fields("/v1/decisions", &[("limit", "501")]).await,
        ["limit"]
    );
    assert_eq!(
        h.problem_fields("/v1/decisions", &[("cursor", "not-a-cursor")])
            .await,
        ["cursor"]
    );
    assert_eq!(
        h.problem_fields("/v1/decisions", &[("outcomes", "approved")])
            .await,
        ["outcomes"]
    );
    assert_eq!(
        h.problem_fields("/v1/decisions", &[("reference", "")])
            .await,
        ["reference"]
    );
    assert_eq!(
        h.problem_fields("/v1/decisions", &[("outcome", "x"), ("limit", "x")])
            .await,
        ["outcome", "limit"],
        "every invalid field is named at once"
    );
    // A limit of 500 is accepted.
    h.get_json(AUDITOR, "/v1/decisions", &[("limit", "500")])
        .await;
    h.stop().await;
}

/// The ids of `wanted` in the order they have in `order`.
fn set_to_vec(wanted: &[&Seeded], order: &[String]) -> Vec<String> {
    let wanted = set(wanted.iter().map(|s| s.decision_id));
    order
        .iter()
        .filter(|id| wanted.contains(*id))
        .cloned()
        .collect()
}

#[tokio::test]
async fn pages_have_no_gaps_or_repeats_while_decisions_arrive() {
    let h = Harness::spawn().await;
    let mut existing = BTreeSet::new();
    for n in 0..37 {
        existing.insert(
            h.seed(Spec::new(n, scored([60, 10, -60, 0][n as usize % 4])))
                .await
                .decision_id
                .to_string(),
        );
    }
    // Decisions keep arriving while the auditor pages, from the first page on: what is newer
    // than the first page never enters the pages that follow it.
    let writer_stop = CancellationToken::new();
    let mut writer = None;
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    let mut between_pages = 0;
    loop {
        let mut query = vec![("limit", "5")];
        if let Some(c) = &cursor {
            query.push(("cursor", c));
        }
        let page = h.get_json(AUDITOR, "/v1/decisions", &query).await;
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 5);
        seen.extend(items.iter().map(|i| i["id"].as_str().unwrap().to_owned()));
        pages += 1;
        if writer.is_none() {
            let (db, state, stop) = (h.db.clone(), h.state.clone(), writer_stop.clone());
            writer = Some(tokio::spawn(async move {
                let mut n = 1000;
                while !stop.is_cancelled() {
                    seed(&db, &state, Spec::new(n, scored(60))).await;
                    n += 1;
                }
                n - 1000
            }));
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
        // Before the next page, at least one more decision is stored.
        let stored_now = |db: PgPool| async move {
            sqlx::query_scalar::<_, i64>("SELECT count(*) FROM decisions")
                .fetch_one(&db)
                .await
                .unwrap()
        };
        let before = stored_now(h.db.clone()).await;
        let waited = tokio::time::Instant::now();
        while stored_now(h.db.clone()).await <= before {
            assert!(
                waited.elapsed() < Duration::from_secs(10),
                "the writer stalled"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        between_pages += 1;
        assert!(pages < 100, "paging does not end");
    }
    assert_eq!(
        between_pages,
        pages - 1,
        "decisions arrived between every two pages"
    );
    writer_stop.cancel();
    let inserted = writer.expect("the writer started").await.unwrap();
    assert!(inserted > 0, "decisions were written while paging");
    let unique: BTreeSet<String> = seen.iter().cloned().collect();
    assert_eq!(
        unique.len(),
        seen.len(),
        "no decision repeated across pages"
    );
    assert_eq!(
        unique, existing,
        "the pages hold exactly the decisions that existed at the start"
    );
    assert_eq!(pages, 8);
    h.stop().await;
}

// ---- explanation -------------------------------------------------------------------------------

#[tokio::test]
async fn explanation_shows_rules_evidence_timeline_and_calls() {
    let h = Harness::spawn().await;
    // A real onboarding through the sandbox: unico answers 'yes' for this CPF.
    let body = common::onboarding_body("111.444.777-35");
    let response = h
        .http
        .post(format!("{}/v1/onboardings", h.base))
        .bearer_auth(ONBOARDING)
        .header("Idempotency-Key", "explain-1")
        .header("Prefer", "wait=10")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let onboarding: Value = response.json().await.unwrap();

    let found = h
        .get_json(
            AUDITOR,
            "/v1/decisions",
            &[("reference", body["reference"].as_str().unwrap())],
        )
        .await;
    let item = &found["items"][0];
    assert_eq!(item["onboarding_id"], onboarding["id"]);
    let id = item["id"].as_str().unwrap();
    let d = h
        .get_json(AUDITOR, &format!("/v1/decisions/{id}"), &[])
        .await;

    assert_eq!(d["id"], id);
    assert_eq!(d["outcome"], "approved");
    assert_eq!(d["reasons"][0]["code"], "identity.confirmed");
    assert_eq!(d["cpf"], "***.444.777-**");
    assert!(d.get("name").is_none());
    assert_eq!(d["policy_version"], "2026-11-23.1");
    assert_eq!(d["thresholds"]["score_reject_max"], -40);
    assert_eq!(d["thresholds"]["score_approve_min"], 50);
    assert_eq!(d["biometrics"]["unico_id"], "yes");
    assert_eq!(d["biometrics"]["status"], 3);
    assert_eq!(d["device"]["risk_flags"], json!([]));
    // Every rule of the table, each with its inputs and whether it fired.
    let evaluations = d["evaluations"].as_array().unwrap();
    // The table's rules, and beside them those of risk memory the version in force holds.
    let table = evaluations
        .iter()
        .filter(|e| !veredito::policy::memory::is_memory_code(e["code"].as_str().unwrap_or("")))
        .count();
    assert_eq!(table, veredito::policy::reason_codes().len());
    for e in evaluations {
        assert!(
            e["code"].is_string()
                && e["fired"].is_boolean()
                && e.get("inputs").is_some()
                && e["outcome"].is_string(),
            "{e}"
        );
    }
    let confirmed = evaluations
        .iter()
        .find(|e| e["code"] == "identity.confirmed")
        .unwrap();
    assert_eq!(confirmed["fired"], true);
    let fired: Vec<&str> = evaluations
        .iter()
        .filter(|e| e["fired"] == true)
        .map(|e| e["code"].as_str().unwrap())
        .collect();
    assert_eq!(fired, ["identity.confirmed", "device.registered"]);
    // The evidence as stored: unico's result as received.
    assert_eq!(d["evidence"]["biometrics"]["state"], "received");
    assert_eq!(
        d["evidence"]["biometrics"]["process_id"],
        onboarding["biometrics"]["process_id"]
    );
    assert_eq!(d["evidence"]["risk_signals"]["is_emulated"], false);
    // The timeline, in order, with durations.
    let timeline = d["timeline"].as_array().unwrap();
    let kinds: Vec<&str> = timeline
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.first(), Some(&"received"), "{kinds:?}");
    assert_eq!(kinds.last(), Some(&"decided"), "{kinds:?}");
    assert!(
        kinds.len() >= 3,
        "the process creation is on the timeline: {kinds:?}"
    );
    let mut previous = 0;
    for e in timeline {
        let since = e["since_received_ms"].as_i64().unwrap();
        assert!(since >= previous, "{e}");
        // Both are whole milliseconds of microsecond times, so they may differ by one.
        assert!(
            (e["since_previous_ms"].as_i64().unwrap() - (since - previous)).abs() <= 1,
            "{e}"
        );
        assert!(e["at"].is_string());
        previous = since;
    }
    assert_eq!(timeline[0]["since_received_ms"], 0);
    // The outbound calls, with their redacted bodies.
    let calls = d["provider_calls"].as_array().unwrap();
    assert!(
        calls
            .iter()
            .any(|c| c["provider"] == "unico" && c["http_status"].is_number()),
        "{calls:?}"
    );
    assert!(!d.to_string().contains("11144477735"));

    // Unknown and malformed ids.
    let missing = h
        .request(
            Some(AUDITOR),
            &format!("/v1/decisions/{}", Uuid::new_v4()),
            &[],
        )
        .await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        missing.headers()["content-type"],
        "application/problem+json"
    );
    assert_eq!(
        h.request(Some(AUDITOR), "/v1/decisions/not-a-uuid", &[])
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    h.stop().await;
}

// ---- masking and scopes ------------------------------------------------------------------------

#[tokio::test]
async fn personal_data_is_masked_unless_the_key_may_read_it() {
    let h = Harness::spawn().await;
    let seeded = h.seed(Spec::new(42, scored(60))).await;
    let cpf = cpf_from(42);
    let path = format!("/v1/decisions/{}", seeded.decision_id);

    for (key, status) in [
        (None, 401),
        (Some(ONBOARDING), 403),
        (Some("vrd_not_a_key"), 401),
    ] {
        for p in ["/v1/decisions", path.as_str(), "/v1/decisions/export"] {
            assert_eq!(
                h.request(key, p, &[]).await.status().as_u16(),
                status,
                "{p} with {key:?}"
            );
        }
        let replay = h
            .http
            .post(format!("{}/v1/decisions/replay", h.base))
            .json(&json!({}));
        let replay = if let Some(key) = key {
            replay.bearer_auth(key)
        } else {
            replay
        };
        assert_eq!(replay.send().await.unwrap().status().as_u16(), status);
    }

    let listed = h.get_json(AUDITOR, "/v1/decisions", &[]).await;
    assert_eq!(listed["items"][0]["cpf"], masked(&cpf));
    assert!(listed["items"][0].get("name").is_none());
    let shown = h.get_json(AUDITOR, &path, &[]).await;
    assert_eq!(shown["cpf"], masked(&cpf));
    assert!(shown.get("name").is_none());
    let (_, csv) = h.export(AUDITOR, &[("format", "csv")]).await;
    assert!(
        csv.contains(&masked(&cpf)) && !csv.contains(&digits(&cpf)[..9]) && !csv.contains("Pessoa")
    );
    let (_, ndjson) = h.export(AUDITOR, &[("format", "ndjson")]).await;
    assert!(ndjson.contains(&masked(&cpf)) && !ndjson.contains("Pessoa"));

    let listed = h.get_json(AUDITOR_PII, "/v1/decisions", &[]).await;
    assert_eq!(listed["items"][0]["cpf"], cpf);
    assert_eq!(listed["items"][0]["name"], "Pessoa Auditada 42");
    let shown = h.get_json(AUDITOR_PII, &path, &[]).await;
    assert_eq!(shown["cpf"], cpf);
    assert_eq!(shown["name"], "Pessoa Auditada 42");
    let (_, csv) = h.export(AUDITOR_PII, &[("format", "csv")]).await;
    assert!(csv.starts_with("id,onboarding_id,reference,cpf,name,outcome"));
    assert!(csv.contains(&cpf) && csv.contains("Pessoa Auditada 42"));
    h.stop().await;
}

// ---- export ------------------------------------------------------------------------------------

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

#[tokio::test]
async fn export_streams_every_matching_decision_as_csv_and_ndjson() {
    let h = Harness::spawn().await;
    let tricky = "ref, with \"quotes\"\nand a line";
    let special = h
        .seed(Spec {
            reference: Some(tricky.into()),
            ..Spec::new(1, scored(-60))
        })
        .await;
    let formula = h
        .seed(Spec {
            reference: Some("=HYPERLINK(\"x\")".into()),
            ..Spec::new(2, scored(10))
        })
        .await;
    // More than one export batch (500), so the stream crosses a page boundary.
    let mut all = vec![special.clone(), formula.clone()];
    let mut tasks = tokio::task::JoinSet::new();
    for n in 10..530u32 {
        let (db, state) = (h.db.clone(), h.state.clone());
        tasks.spawn(async move {
            seed(&db, &state, Spec::new(n, scored([60, 10][n as usize % 2]))).await
        });
        if tasks.len() >= 8 {
            all.push(tasks.join_next().await.unwrap().unwrap());
        }
    }
    while let Some(s) = tasks.join_next().await {
        all.push(s.unwrap());
    }

    let (content_type, csv) = h.export(AUDITOR, &[("format", "csv")]).await;
    assert_eq!(content_type, "text/csv; charset=utf-8");
    let rows = parse_csv(&csv);
    let header = &rows[0];
    assert_eq!(header[..4], ["id", "onboarding_id", "reference", "cpf"]);
    assert!(
        rows.iter().all(|r| r.len() == header.len()),
        "every row has every column"
    );
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    assert_eq!(rows.len() - 1, all.len());
    assert_eq!(
        set(rows[1..].iter().map(|r| r[0].clone())),
        set(all.iter().map(|s| s.decision_id))
    );
    let special_row = rows
        .iter()
        .find(|r| r[0] == special.decision_id.to_string())
        .unwrap();
    assert_eq!(special_row[col("reference")], tricky);
    assert_eq!(special_row[col("outcome")], "rejected");
    assert_eq!(special_row[col("reason_codes")], "score.high_risk");
    assert_eq!(special_row[col("score")], "-60");
    assert_eq!(special_row[col("cpf")], masked(&cpf_from(1)));
    assert_eq!(special_row[col("score_reject_max")], "-40");
    let formula_row = rows
        .iter()
        .find(|r| r[0] == formula.decision_id.to_string())
        .unwrap();
    assert_eq!(
        formula_row[col("reference")],
        "'=HYPERLINK(\"x\")",
        "formulas are defused"
    );
    // Newest first, like the listing.
    let decided: Vec<DateTime<Utc>> = rows[1..]
        .iter()
        .map(|r| {
            DateTime::parse_from_rfc3339(&r[col("decided_at")])
                .unwrap()
                .to_utc()
        })
        .collect();
    assert!(decided.windows(2).all(|w| w[0] >= w[1]));

    // The same filters apply.
    let (content_type, ndjson) = h
        .export(AUDITOR, &[("format", "ndjson"), ("outcome", "review")])
        .await;
    assert_eq!(content_type, "application/x-ndjson");
    let items: Vec<Value> = ndjson
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    let expected_review: BTreeSet<String> = set(all
        .iter()
        .filter(|s| s.outcome == "review")
        .map(|s| s.decision_id));
    assert_eq!(
        set(items.iter().map(|i| i["id"].as_str().unwrap())),
        expected_review
    );
    assert!(
        items
            .iter()
            .all(|i| i["outcome"] == "review" && i["cpf"].as_str().unwrap().starts_with("***."))
    );
    let formula_item = items
        .iter()
        .find(|i| i["id"] == formula.decision_id.to_string())
        .unwrap();
    assert_eq!(
        formula_item["reference"], "=HYPERLINK(\"x\")",
        "JSON keeps the value as given"
    );

    // Nothing matches: a CSV with its header only, an empty NDJSON.
    let (_, empty_csv) = h
        .export(AUDITOR, &[("format", "csv"), ("reference", "nobody")])
        .await;
    assert_eq!(parse_csv(&empty_csv).len(), 1);
    let (_, empty) = h.export(AUDITOR, &[("reference", "nobody")]).await;
    assert!(empty.is_empty());
    assert_eq!(
        h.problem_fields("/v1/decisions/export", &[("format", "xlsx")])
            .await,
        ["format"]
    );
    assert_eq!(
        h.problem_fields("/v1/decisions/export", &[("outcome", "nope")])
            .await,
        ["outcome"]
    );
    h.stop().await;
}

// ---- replay ------------------------------------------------------------------------------------

#[tokio::test]
async fn replay_counts_what_a_candidate_policy_would_change_without_writing() {
    let h = Harness::spawn().await;
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

// ---- personal data at rest ---------------------------------------------------------------------

#[tokio::test]
async fn cpf_and_name_are_not_stored_in_the_clear() {
    let h = Harness::spawn().await;
    // Through the real onboarding path, and through the store.
    let mut body = common::onboarding_body("900.000.019-02");
    body["person"]["name"] = json!("Zuleica Encriptada Nogueira");
    let response = h
        .http
        .post(format!("{}/v1/onboardings", h.base))
        .bearer_auth(ONBOARDING)
        .header("Idempotency-Key", "at-rest-1")
        .header("Prefer", "wait=10")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
    h.seed(Spec {
        name: "Ubirajara Cifrado Pontes".into(),
        ..Spec::new(77, scored(60))
    })
    .await;

    let rows = all_rows_as_text(&h.db).await;
    assert!(rows.iter().any(|(table, _)| table == "onboardings"));
    let cpf77 = cpf_from(77);
    let secrets = [
        "90000001902",
        "900.000.019-02",
        "Zuleica",
        "Encriptada",
        digits(&cpf77).leak(),
        cpf77.as_str(),
        "Ubirajara",
        "Cifrado",
        // The contact data and the selfie of the onboarding sent over HTTP.
        "maria.teste@example.com",
        "5511974749090",
        "974749090",
        "c2VsZmllLWJ5dGVz",
    ];
    for (table, row) in &rows {
        for secret in secrets {
            assert!(!row.contains(secret), "{secret} is in the clear in {table}");
        }
    }
    // Hex and escaped bytea forms of the ciphertext do not spell them either.
    let raw: Vec<Vec<u8>> = sqlx::query_scalar("SELECT pii_ciphertext FROM onboardings")
        .fetch_all(&h.db)
        .await
        .unwrap();
    for sealed in raw {
        assert!(
            !sealed
                .windows(11)
                .any(|w| w == b"90000001902" || w == digits(&cpf77).as_bytes())
        );
    }
    // Still readable by the service.
    let found = h
        .get_json(AUDITOR_PII, "/v1/decisions", &[("cpf", "90000001902")])
        .await;
    assert_eq!(found["items"][0]["name"], "Zuleica Encriptada Nogueira");
    h.stop().await;
}

fn key_file(active: &str, keys: &[(&str, &str)]) -> PathBuf {
    let mut toml = format!(
        "[pii]\nactive_key_id = \"{active}\"\nhash_key = \"W4wusdwNWgkz296xz0C5lG1zoJAbT/o97AKxatRUrzI=\"\n"
    );
    for (id, key) in keys {
        toml.push_str(&format!("\n[[pii.keys]]\nid = \"{id}\"\nkey = \"{key}\"\n"));
    }
    let path = std::env::temp_dir().join(format!("veredito-keys-{}.toml", Uuid::new_v4().simple()));
    std::fs::write(&path, toml).unwrap();
    path
}

#[tokio::test]
async fn keys_rotate_and_old_rows_are_resealed() {
    const OLD: (&str, &str) = ("k-2025", "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=");
    const NEW: (&str, &str) = ("k-2026", "AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=");
    let database = common::fresh_database().await;

    let before = Harness::spawn_with_file(&database, &[], key_file(OLD.0, &[OLD])).await;
    let mut old_rows = Vec::new();
    for n in 0..5 {
        old_rows.push(before.seed(Spec::new(n, scored(60))).await);
    }
    assert_eq!(
        store::audit::rows_by_key(&before.db).await.unwrap(),
        [(OLD.0.to_owned(), 5)]
    );
    before.stop().await;

    // The new key becomes active; the old one stays configured to read what it sealed.
    let after = Harness::spawn_with_file(&database, &[], key_file(NEW.0, &[OLD, NEW])).await;
    assert_eq!(after.state.cipher.active_key_id(), NEW.0);
    let fresh = after.seed(Spec::new(9, scored(60))).await;
    let listed = after
        .get_json(AUDITOR_PII, "/v1/decisions", &[("cpf", &cpf_from(3))])
        .await;
    assert_eq!(
        listed["items"][0]["name"], "Pessoa Auditada 3",
        "a row under the old key is readable"
    );
    assert_eq!(
        store::audit::rows_by_key(&after.db).await.unwrap(),
        [(OLD.0.to_owned(), 5), (NEW.0.to_owned(), 1)]
    );
    let sealed_before: Vec<Vec<u8>> =
        sqlx::query_scalar("SELECT pii_ciphertext FROM onboardings ORDER BY id")
            .fetch_all(&after.db)
            .await
            .unwrap();

    let mut moved = Vec::new();
    loop {
        let n = store::audit::reencrypt_batch(&after.db, &after.state.cipher, 2)
            .await
            .unwrap();
        moved.push(n);
        if n == 0 {
            break;
        }
    }
    assert_eq!(moved, [2, 2, 1, 0]);
    assert_eq!(
        store::audit::rows_by_key(&after.db).await.unwrap(),
        [(NEW.0.to_owned(), 6)]
    );
    let sealed_after: Vec<Vec<u8>> =
        sqlx::query_scalar("SELECT pii_ciphertext FROM onboardings ORDER BY id")
            .fetch_all(&after.db)
            .await
            .unwrap();
    assert_eq!(
        sealed_before
            .iter()
            .zip(&sealed_after)
            .filter(|(a, b)| a != b)
            .count(),
        5,
        "only old rows resealed"
    );
    after.stop().await;

    // The old key can now be retired: everything reads under the new one alone.
    let retired = Harness::spawn_with_file(&database, &[], key_file(NEW.0, &[NEW])).await;
    let items = retired.get_json(AUDITOR_PII, "/v1/decisions", &[]).await;
    let names: BTreeSet<String> = items["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().expect("name readable").to_owned())
        .collect();
    assert_eq!(names.len(), 6);
    assert!(names.contains("Pessoa Auditada 9"));
    let detail = retired
        .get_json(
            AUDITOR_PII,
            &format!("/v1/decisions/{}", old_rows[0].decision_id),
            &[],
        )
        .await;
    assert_eq!(detail["cpf"], cpf_from(0));
    let _ = fresh;
    retired.stop().await;
}

type ErasedRow = (
    Option<String>,
    Option<Vec<u8>>,
    Option<Vec<u8>>,
    Option<DateTime<Utc>>,
    Value,
);

#[tokio::test]
async fn retention_erases_personal_data_and_keeps_the_decision() {
    let h = Harness::spawn_with(&[("retention.pii_days", "30")]).await;
    let expired = h
        .seed(Spec {
            decided_at: Some(Utc::now() - chrono::Duration::days(31)),
            ..Spec::new(1, located(rooted(scored(-60))))
        })
        .await;
    let kept = h
        .seed(Spec {
            decided_at: Some(Utc::now() - chrono::Duration::days(29)),
            ..Spec::new(2, located(scored(60)))
        })
        .await;
    let coordinates = |id: Uuid| {
        let db = h.db.clone();
        async move {
            let device: Value = sqlx::query_scalar("SELECT device FROM onboardings WHERE id = $1")
                .bind(id)
                .fetch_one(&db)
                .await
                .unwrap();
            (
                device["risk_signals"].get("device_latitude").cloned(),
                device["risk_signals"].get("device_longitude").cloned(),
            )
        }
    };
    assert_eq!(
        coordinates(expired.onboarding_id).await,
        (Some(json!(-23.5613)), Some(json!(-46.6565))),
        "stored before retention"
    );
    let path = format!("/v1/decisions/{}", expired.decision_id);
    let before = h.get_json(AUDITOR_PII, &path, &[]).await;
    assert_eq!(before["name"], "Pessoa Auditada 1");

    let erased = veredito::jobs::retention::erase_expired(&h.state, &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(erased, 1);
    assert_eq!(
        veredito::jobs::retention::erase_expired(&h.state, &CancellationToken::new())
            .await
            .unwrap(),
        0
    );

    let row: ErasedRow = sqlx::query_as(
        "SELECT pii_key_id, pii_ciphertext, cpf_hash, pii_erased_at, device FROM onboardings WHERE id = $1",
    )
    .bind(expired.onboarding_id)
    .fetch_one(&h.db)
    .await
    .unwrap();
    let (key_id, sealed, hash, erased_at, device) = row;
    assert_eq!((key_id, sealed, hash), (None, None, None));
    assert!(erased_at.is_some());
    assert!(device["risk_signals"].get("device_latitude").is_none());
    assert_eq!(coordinates(expired.onboarding_id).await, (None, None));
    assert_eq!(
        coordinates(kept.onboarding_id).await,
        (Some(json!(-23.5613)), Some(json!(-46.6565))),
        "a row within retention keeps them"
    );

    // The decision is whole: outcome, reasons, evidence less the coordinates, trace.
    let after = h.get_json(AUDITOR_PII, &path, &[]).await;
    assert_eq!(after["cpf"], Value::Null);
    assert_eq!(after["name"], Value::Null);
    let mut evidence = before["evidence"].clone();
    let signals = evidence["risk_signals"].as_object_mut().unwrap();
    assert!(signals.remove("device_latitude").is_some(), "{before}");
    assert!(signals.remove("device_longitude").is_some());
    assert_eq!(
        after["evidence"], evidence,
        "evidence kept, less the coordinates"
    );
    for field in [
        "outcome",
        "reasons",
        "evaluations",
        "thresholds",
        "policy_version",
        "decided_at",
    ] {
        assert_eq!(after[field], before[field], "{field} kept");
    }
    assert_eq!(after["outcome"], "rejected");
    assert_eq!(
        after["timeline"].as_array().unwrap().last().unwrap()["kind"],
        "pii_erased"
    );
    let masked_view = h.get_json(AUDITOR, &path, &[]).await;
    assert_eq!(masked_view["cpf"], Value::Null);
    // Erased people are no longer found by CPF; the others still are.
    assert!(h.search_ids(&[("cpf", &cpf_from(1))]).await.is_empty());
    assert_eq!(
        h.search_ids(&[("cpf", &cpf_from(2))]).await,
        [kept.decision_id.to_string()]
    );
    assert_eq!(
        h.search_ids(&[("outcome", "rejected")]).await,
        [expired.decision_id.to_string()]
    );
    let (_, csv) = h.export(AUDITOR_PII, &[("format", "csv")]).await;
    assert_eq!(parse_csv(&csv).len(), 3);
    h.stop().await;
}

// ---- decisions are a record --------------------------------------------------------------------

#[tokio::test]
async fn the_application_role_cannot_change_or_delete_decisions() {
    let h = Harness::spawn().await;
    let seeded = h.seed(Spec::new(1, scored(60))).await;
    let role = common::AppRole::create(&h.db, &h.db_url).await;
    let outcome = async {
        let mut app = role.connect().await;
        // What the service does: store an onboarding and decide it.
        let onboarding_id = Uuid::new_v4();
        sqlx::query(
            "INSERT INTO onboardings (id, client_name, idempotency_key, request_hash, cpf_hash, account_id, person_id, device)
             VALUES ($1, 'role-test', $1::text, '\\x00', '\\x00', 'a', 'p', '{}')",
        )
        .bind(onboarding_id)
        .execute(&mut app)
        .await
        .expect("the app role inserts onboardings");
        sqlx::query(
            "INSERT INTO decisions (id, onboarding_id, outcome, reasons, reason_codes, policy_version, thresholds, evidence, evaluations)
             VALUES ($1, $2, 'review', '[]', '{}', 'v', '{}', '{}', '[]')",
        )
        .bind(Uuid::new_v4())
        .bind(onboarding_id)
        .execute(&mut app)
        .await
        .expect("the app role inserts decisions");
        let count: i64 = sqlx::query_scalar("SELECT count(*) FROM decisions").fetch_one(&mut app).await.unwrap();
        // What retention does is allowed: erase what providers said (through the owner's
        // function), delete old webhooks.
        sqlx::query("SELECT erase_provider_call_text(30, 10)")
            .execute(&mut app)
            .await
            .expect("retention erases provider text");
        sqlx::query("DELETE FROM unico_webhooks WHERE false")
            .execute(&mut app)
            .await
            .expect("retention deletes old webhooks");
        let mut refused = BTreeMap::new();
        for statement in [
            format!("UPDATE decisions SET outcome = 'rejected' WHERE id = '{}'", seeded.decision_id),
            format!("DELETE FROM decisions WHERE id = '{}'", seeded.decision_id),
            "TRUNCATE decisions".to_owned(),
            // The timeline, the search log and the call log are records too.
            "UPDATE onboarding_events SET kind = 'x'".to_owned(),
            "DELETE FROM onboarding_events".to_owned(),
            "UPDATE audit_searches SET caller = 'x'".to_owned(),
            "DELETE FROM audit_searches".to_owned(),
            "DELETE FROM provider_calls".to_owned(),
            "UPDATE unico_webhooks SET process_id = 'x'".to_owned(),
        ] {
            let error = sqlx::query(&statement).execute(&mut app).await.expect_err("refused");
            refused.insert(statement, error.to_string());
        }
        (count, refused)
    }
    .await;
    role.drop(&h.db).await;
    let (count, refused) = outcome;
    assert_eq!(count, 2);
    for (statement, error) in refused {
        // Refused by privileges, before the trigger is even reached.
        assert!(
            error.contains("permission denied for table"),
            "{statement}: {error}"
        );
    }

    // The owner (here a superuser) is stopped by the trigger.
    for statement in [
        format!(
            "UPDATE decisions SET outcome = 'rejected' WHERE id = '{}'",
            seeded.decision_id
        ),
        format!("DELETE FROM decisions WHERE id = '{}'", seeded.decision_id),
        "TRUNCATE decisions".to_owned(),
        "TRUNCATE decisions CASCADE".to_owned(),
    ] {
        let error = sqlx::query(&statement)
            .execute(&h.db)
            .await
            .expect_err("refused")
            .to_string();
        // A plain TRUNCATE is refused earlier by the review cases' foreign key; with CASCADE it
        // reaches the trigger.
        assert!(
            error.contains("is not allowed: rows are append-only")
                || (statement == "TRUNCATE decisions"
                    && error.contains("referenced in a foreign key constraint")),
            "{statement}: {error}"
        );
    }
    let outcome: String = sqlx::query_scalar("SELECT outcome FROM decisions WHERE id = $1")
        .bind(seeded.decision_id)
        .fetch_one(&h.db)
        .await
        .unwrap();
    assert_eq!(outcome, "approved", "the update to rejected did not happen");
    h.stop().await;
}

#[tokio::test]
async fn retention_runs_on_its_schedule_in_batches() {
    let h = Harness::spawn_with(&[("retention.pii_days", "30")]).await;
    let long_ago = Utc::now() - chrono::Duration::days(40);
    for n in 0..5 {
        h.seed(Spec {
            decided_at: Some(long_ago),
            ..Spec::new(n, scored(60))
        })
        .await;
    }
    let recent = h.seed(Spec::new(9, scored(60))).await;
    // Batches of two: five rows take three statements, the last one short.
    let (erased, statements) =
        veredito::jobs::retention::erase_expired_by(&h.state, 2, &CancellationToken::new())
            .await
            .unwrap();
    assert_eq!((erased, statements), (5, 3));

    // On its schedule: more rows fall due, and the job erases them without being called.
    for n in 10..13 {
        h.seed(Spec {
            decided_at: Some(long_ago),
            ..Spec::new(n, scored(60))
        })
        .await;
    }
    let stop = CancellationToken::new();
    let job = tokio::spawn(veredito::jobs::retention::run(
        h.state.clone(),
        Duration::from_millis(100),
        stop.clone(),
    ));
    let started = tokio::time::Instant::now();
    loop {
        let left: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM onboardings WHERE pii_erased_at IS NULL AND decided_at < now() - interval '30 days'",
        )
        .fetch_one(&h.db)
        .await
        .unwrap();
        if left == 0 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{left} rows still due"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.cancel();
    job.await.unwrap();
    let kept: Option<Vec<u8>> =
        sqlx::query_scalar("SELECT pii_ciphertext FROM onboardings WHERE id = $1")
            .bind(recent.onboarding_id)
            .fetch_one(&h.db)
            .await
            .unwrap();
    assert!(kept.is_some(), "a recent row keeps its data");
    h.stop().await;
}

#[tokio::test]
async fn replay_of_decisions_the_service_made() {
    // Stored by the real path (sandbox unico and QI Tech), not by the test: the replay reads
    // back what the flow stored and must reach the same verdicts from it.
    let h = Harness::spawn_with(&[("sandbox.processing_delay", "100ms")]).await;
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

/// The auditor's key, with pii:read when the query searches by CPF.
fn key_for(query: &[(&str, &str)]) -> &'static str {
    if query.iter().any(|(name, _)| *name == "cpf") {
        AUDITOR_PII
    } else {
        AUDITOR
    }
}
