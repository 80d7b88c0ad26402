//! The policy tested as tables. This file holds the harness: evidence built the way the
//! providers send it, the `cases!` rows and unico's answers; `unico_scenarios` walks unico's
//! scenario table, `table` the policy's own table, its reasons and thresholds, `signals` the
//! device and risk screens, `sweep` the combinations and versions, `memory` the risk-memory
//! rules.

use serde_json::{Value, json};

use super::*;
use crate::domain::evidence::{
    BiometricEvidence, BiometricResult, DeviceEvidence, DeviceRegistration,
};

fn policy() -> Policy {
    policy_with(-40, 50)
}

fn policy_with(score_reject_max: i32, score_approve_min: i32) -> Policy {
    Policy {
        outcomes: Outcomes::default(),
        memory: Default::default(),
        fraud_indications: Default::default(),
        version: "test.1".into(),
        thresholds: Thresholds {
            score_reject_max,
            score_approve_min,
            biometrics_deadline_secs: 600,
            device_deadline_secs: 600,
        },
    }
}

/// A process result written the way unico sends it, so scenarios read like the provider's table.
fn unico(body: Value) -> BiometricResult {
    let text = |key: &str| body[key]["result"].as_str().map(str::to_owned);
    let int = |key: &str| body[key].as_i64().and_then(|n| i32::try_from(n).ok());
    BiometricResult {
        process_id: "80371b2a-3ac7-432e-866d-57fe37896ac6".into(),
        status: int("status").unwrap_or_default(),
        unico_id: text("unicoId"),
        liveness: int("liveness"),
        identity_fraudsters: text("identityFraudsters"),
        score: int("score"),
    }
}

fn received(body: Value) -> Evidence {
    with_biometrics(BiometricEvidence::Received(unico(body)))
}

fn with_biometrics(biometrics: BiometricEvidence) -> Evidence {
    Evidence {
        risk_signals: None,
        biometrics,
        device: DeviceEvidence::NotRun,
        memory: None,
    }
}

fn confirmed() -> Evidence {
    received(json!({"status": 3, "unicoId": {"result": "yes"}}))
}

fn inconclusive_with_score(score: i32) -> Evidence {
    received(
        json!({"status": 3, "unicoId": {"result": "inconclusive"}, "liveness": 1, "score": score}),
    )
}

fn with_signals(signals: RiskSignals, evidence: Evidence) -> Evidence {
    Evidence {
        risk_signals: Some(signals),
        ..evidence
    }
}

fn with_device(device: DeviceEvidence, evidence: Evidence) -> Evidence {
    Evidence { device, ..evidence }
}

fn registration(status: &str, analysis_status: &str) -> DeviceRegistration {
    DeviceRegistration {
        status: status.into(),
        analysis_status: analysis_status.into(),
        reason: None,
        reason_description: None,
    }
}

fn codes(verdict: &Verdict) -> Vec<&str> {
    verdict.reasons.iter().map(|r| r.code.as_str()).collect()
}

struct Case {
    name: &'static str,
    evidence: Evidence,
    outcome: Outcome,
    reasons: &'static [&'static str],
}

/// One row per case: `name: evidence => outcome [reason codes, decisive first];`. A macro keeps
/// each case on one line, where a struct literal would spread it over six.
macro_rules! cases {
    ($($name:literal: $evidence:expr => $outcome:ident $reasons:expr;)*) => {
        vec![$(Case { name: $name, evidence: $evidence, outcome: $outcome, reasons: &$reasons }),*]
    };
}

fn check_all(policy: &Policy, cases: Vec<Case>) {
    for c in cases {
        let verdict = policy.evaluate(&c.evidence);
        assert_eq!(
            (verdict.outcome, codes(&verdict)),
            (c.outcome, c.reasons.to_vec()),
            "case {}",
            c.name
        );
    }
}

use Outcome::{Approved, Rejected, Retry, Review};

/// unico's answers as the scenario table shows them, by capability set and result.
mod answers {
    use serde_json::{Value, json};

    pub fn live() -> Value {
        json!({"status": 3, "liveness": 1})
    }
    pub fn not_live() -> Value {
        json!({"status": 3, "liveness": 2})
    }
    pub fn yes() -> Value {
        json!({"status": 3, "unicoId": {"result": "yes"}})
    }
    pub fn no() -> Value {
        json!({"status": 3, "unicoId": {"result": "no"}, "liveness": 1})
    }
    pub fn inconclusive() -> Value {
        json!({"status": 3, "unicoId": {"result": "inconclusive"}, "liveness": 1})
    }
    pub fn inconclusive_not_live() -> Value {
        json!({"status": 3, "unicoId": {"result": "inconclusive"}, "liveness": 2})
    }
    /// CreateProcess answers still processing (status 1), before fraudsters or score are known.
    pub fn processing(unico_id: &str) -> Value {
        match unico_id {
            "yes" => json!({"status": 1, "unicoId": {"result": "yes"}}),
            other => json!({"status": 1, "unicoId": {"result": other}, "liveness": 1}),
        }
    }
    /// Adds fields to a finished answer, as later capabilities do.
    pub fn with(mut base: Value, extra: Value) -> Value {
        if let (Some(base), Some(extra)) = (base.as_object_mut(), extra.as_object()) {
            base.extend(extra.clone());
        }
        base
    }
    pub fn fraud(result: &str) -> Value {
        json!({"identityFraudsters": {"result": result}})
    }
    pub fn score(score: i32) -> Value {
        json!({"score": score})
    }
}

fn row_of(verdict: &Verdict, code: &str) -> Option<(bool, Value)> {
    let e = verdict.evaluations.iter().find(|e| e.code == code)?;
    Some((e.fired, e.inputs.clone()))
}

mod memory;
mod signals;
mod sweep;
mod table;
mod unico_scenarios;
