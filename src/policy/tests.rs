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

/// Every pair in unico's table of response scenarios, named by the capabilities enabled and the
/// answer. The decision is taken on GetProcess; CreateProcess is checked too, because a status-1
/// answer must never be approved and a status-3 one must decide exactly like GetProcess.
#[test]
fn unico_response_scenarios() {
    use answers::*;
    struct Scenario {
        name: &'static str,
        create: Value,
        get: Value,
        outcome: Outcome,
        reasons: &'static [&'static str],
    }
    macro_rules! scenarios {
        ($($name:literal: $create:expr => $get:expr => $outcome:ident $reasons:expr;)*) => {
            vec![$(Scenario { name: $name, create: $create, get: $get, outcome: $outcome, reasons: &$reasons }),*]
        };
    }
    let error = || json!({"status": 5});
    let (inc, inc_not_live) = (inconclusive, inconclusive_not_live);
    let scenarios = scenarios! {
        "any_flow.process_error": error() => error() => Retry ["biometrics.process_error"];
        "liveness.live": live() => live() => Review ["biometrics.unexpected_result"];
        "liveness.not_live": not_live() => not_live() => Rejected ["liveness.not_live"];
        "liveness_identity.yes": yes() => yes() => Approved ["identity.confirmed"];
        "liveness_identity.inconclusive_live": inc() => inc() => Review ["score.unavailable"];
        "liveness_identity.inconclusive_not_live": inc_not_live() => inc_not_live() => Rejected ["liveness.not_live"];
        "identity_score.yes": yes() => yes() => Approved ["identity.confirmed"];
        "identity_score.inconclusive_score_50": processing("inconclusive") => with(inc(), score(50)) => Approved ["score.low_risk"];
        "identity_score.inconclusive_no_score": inc() => inc() => Review ["score.unavailable"];
        "identity_score.no": no() => no() => Rejected ["identity.not_confirmed"];
        "identity_score.not_live": inc_not_live() => inc_not_live() => Rejected ["liveness.not_live"];
        "identity_fraudsters.yes_fraud_inconclusive": processing("yes") => with(yes(), fraud("inconclusive")) => Approved ["identity.confirmed"];
        "identity_fraudsters.yes_fraud_yes": processing("yes") => with(yes(), fraud("yes")) => Rejected ["fraudsters.match", "identity.confirmed"];
        "identity_fraudsters.inconclusive_fraud_inconclusive": processing("inconclusive") => with(inc(), fraud("inconclusive")) => Review ["score.unavailable"];
        "identity_fraudsters.turned_yes_live_fraud_yes": processing("inconclusive") => with(yes(), with(live(), fraud("yes"))) => Rejected ["fraudsters.match", "identity.confirmed"];
        "identity_fraudsters.no_fraud_inconclusive": processing("no") => with(no(), fraud("inconclusive")) => Rejected ["identity.not_confirmed"];
        "identity_fraudsters.no_fraud_yes": processing("no") => with(no(), fraud("yes")) => Rejected ["fraudsters.match", "identity.not_confirmed"];
        "identity_fraudsters.not_live": inc_not_live() => inc_not_live() => Rejected ["liveness.not_live"];
        "identity_fraudsters_score.yes_fraud_inconclusive": processing("yes") => with(yes(), fraud("inconclusive")) => Approved ["identity.confirmed"];
        "identity_fraudsters_score.yes_fraud_yes": processing("yes") => with(yes(), fraud("yes")) => Rejected ["fraudsters.match", "identity.confirmed"];
        "identity_fraudsters_score.no_fraud_inconclusive": processing("no") => with(no(), fraud("inconclusive")) => Rejected ["identity.not_confirmed"];
        "identity_fraudsters_score.no_fraud_yes": processing("no") => with(no(), fraud("yes")) => Rejected ["fraudsters.match", "identity.not_confirmed"];
        "identity_fraudsters_score.inconclusive_fraud_yes": processing("inconclusive") => with(inc(), fraud("yes")) => Rejected ["fraudsters.match", "score.unavailable"];
        "identity_fraudsters_score.inconclusive_fraud_inconclusive_score_50": processing("inconclusive") => with(inc(), with(fraud("inconclusive"), score(50))) => Approved ["score.low_risk"];
        "identity_fraudsters_score.inconclusive_fraud_inconclusive_no_score": processing("inconclusive") => with(inc(), fraud("inconclusive")) => Review ["score.unavailable"];
        "identity_fraudsters_score.not_live": inc_not_live() => inc_not_live() => Rejected ["liveness.not_live"];
    };
    assert_eq!(scenarios.len(), 26);

    let policy = policy();
    for sc in scenarios {
        let decided = policy.evaluate(&received(sc.get.clone()));
        let got = (decided.outcome, codes(&decided));
        assert_eq!(
            got,
            (sc.outcome, sc.reasons.to_vec()),
            "{} (GetProcess)",
            sc.name
        );

        let early = policy.evaluate(&received(sc.create.clone()));
        if sc.create["status"] == 1 {
            let got = (early.outcome, codes(&early));
            let expected = (Review, vec!["biometrics.unexpected_result"]);
            assert_eq!(got, expected, "{} (CreateProcess)", sc.name);
        } else {
            assert_eq!(
                sc.create, sc.get,
                "{}: a final CreateProcess is final",
                sc.name
            );
            assert_eq!(early, decided, "{} (CreateProcess)", sc.name);
        }
    }
}

#[test]
fn every_row_of_the_policy_table() {
    let flag = |set: fn(&mut RiskSignals)| {
        let mut signals = RiskSignals::default();
        set(&mut signals);
        with_signals(signals, confirmed())
    };
    let device = |reg| with_device(DeviceEvidence::Answered(reg), confirmed());
    let pending = |reg| with_device(DeviceEvidence::PendingPastDeadline(reg), confirmed());
    let timed_out = |last| with_biometrics(BiometricEvidence::TimedOut(last));
    let identity = |fraud: &str| {
        received(
            json!({"status": 3, "unicoId": {"result": "yes"}, "identityFraudsters": {"result": fraud}}),
        )
    };
    let inc = |liveness: i32| {
        received(json!({"status": 3, "unicoId": {"result": "inconclusive"}, "liveness": liveness}))
    };
    check_all(
        &policy(),
        cases! {
            "device.emulated": flag(|s| s.is_emulated = Some(true)) => Rejected ["device.emulated", "identity.confirmed"];
            "device.automation": flag(|s| s.is_monkey_runner = Some(true)) => Rejected ["device.automation", "identity.confirmed"];
            "device.rooted": flag(|s| s.is_rooted_device = Some(true)) => Review ["device.rooted", "identity.confirmed"];
            "device.mock_location": flag(|s| s.is_mock_gps = Some(true)) => Review ["device.mock_location", "identity.confirmed"];
            "device.call_in_progress": flag(|s| s.is_call_in_progress = Some(true)) => Review ["device.call_in_progress", "identity.confirmed"];
            "biometrics.process_error": received(json!({"status": 5})) => Retry ["biometrics.process_error"];
            "biometrics.process_cancelled": received(json!({"status": 4})) => Retry ["biometrics.process_cancelled"];
            "biometrics.capture_refused": with_biometrics(BiometricEvidence::CaptureRefused { code: "20505".into() }) => Retry ["biometrics.capture_refused"];
            "biometrics.timeout": timed_out(Some(unico(json!({"status": 1})))) => Review ["biometrics.timeout"];
            "biometrics.timeout_without_answer": timed_out(None) => Review ["biometrics.timeout"];
            "liveness.not_live": inc(2) => Rejected ["liveness.not_live"];
            "fraudsters.match": identity("yes") => Rejected ["fraudsters.match", "identity.confirmed"];
            "fraudsters.suspicious": identity("suspicious") => Review ["fraudsters.suspicious", "identity.confirmed"];
            "identity.confirmed": confirmed() => Approved ["identity.confirmed"];
            "identity.not_confirmed": received(json!({"status": 3, "unicoId": {"result": "no"}, "liveness": 1})) => Rejected ["identity.not_confirmed"];
            "score.unavailable": inc(1) => Review ["score.unavailable"];
            "score.capture_error": inconclusive_with_score(0) => Retry ["score.capture_error"];
            "score.high_risk": inconclusive_with_score(-70) => Rejected ["score.high_risk"];
            "score.uncertain": inconclusive_with_score(20) => Review ["score.uncertain"];
            "score.low_risk": inconclusive_with_score(80) => Approved ["score.low_risk"];
            "biometrics.unexpected_result": received(json!({"status": 3, "liveness": 1})) => Review ["biometrics.unexpected_result"];
            "device.registration_reproved": device(registration("not_registered", "automatically_reproved")) => Rejected ["device.registration_reproved", "identity.confirmed"];
            "device.registration_pending": pending(registration("not_registered", "pending")) => Review ["device.registration_pending", "identity.confirmed"];
            "device.not_registered": device(registration("not_registered", "automatically_approved")) => Review ["device.not_registered", "identity.confirmed"];
            "device.registered": device(registration("registered", "automatically_approved")) => Approved ["identity.confirmed", "device.registered"];
        },
    );
}

#[test]
fn score_boundaries_with_default_thresholds() {
    let cases = [
        (-41, Rejected, "score.high_risk"),
        (-40, Rejected, "score.high_risk"),
        (-39, Review, "score.uncertain"),
        (-1, Review, "score.uncertain"),
        (0, Retry, "score.capture_error"),
        (1, Review, "score.uncertain"),
        (49, Review, "score.uncertain"),
        (50, Approved, "score.low_risk"),
        (100, Approved, "score.low_risk"),
    ];
    for (score, outcome, code) in cases {
        let verdict = policy().evaluate(&inconclusive_with_score(score));
        let got = (verdict.outcome, codes(&verdict));
        assert_eq!(got, (outcome, vec![code]), "score {score}");
    }
}

#[test]
fn configured_thresholds_are_used_and_recorded() {
    let strict = policy_with(-20, 70);
    check_all(
        &strict,
        cases! {
            "approve_min_70.score_60": inconclusive_with_score(60) => Review ["score.uncertain"];
            "approve_min_70.score_70": inconclusive_with_score(70) => Approved ["score.low_risk"];
            "reject_max_-20.score_-30": inconclusive_with_score(-30) => Rejected ["score.high_risk"];
            "reject_max_-20.score_-19": inconclusive_with_score(-19) => Review ["score.uncertain"];
        },
    );
    let verdict = strict.evaluate(&inconclusive_with_score(60));
    assert_eq!(verdict.thresholds, strict.thresholds);
    assert_eq!(verdict.policy_version, "test.1");
    let inputs = json!({"score": 60, "score_reject_max": -20, "score_approve_min": 70});
    assert_eq!(row_of(&verdict, "score.uncertain"), Some((true, inputs)));
}

#[test]
fn decisive_reason_comes_first_and_unknowns_are_never_approved() {
    let rooted = || RiskSignals {
        is_rooted_device: Some(true),
        ..RiskSignals::default()
    };
    let finished = |fields: Value| received(answers::with(json!({"status": 3}), fields));
    let status = |status: i32| received(json!({"status": status, "unicoId": {"result": "yes"}}));
    let late_yes = unico(answers::yes());
    check_all(
        &policy(),
        cases! {
            "fraud_match_and_not_confirmed": finished(json!({"unicoId": {"result": "no"}, "liveness": 1, "identityFraudsters": {"result": "yes"}})) => Rejected ["fraudsters.match", "identity.not_confirmed"];
            "rooted_and_confirmed": with_signals(rooted(), confirmed()) => Review ["device.rooted", "identity.confirmed"];
            "rooted_and_capture_error": with_signals(rooted(), inconclusive_with_score(0)) => Retry ["score.capture_error", "device.rooted"];
            "suspicious_upper_case": finished(json!({"unicoId": {"result": "yes"}, "identityFraudsters": {"result": "SUSPICIOUS"}})) => Review ["fraudsters.suspicious", "identity.confirmed"];
            "unico_id_mixed_case": finished(json!({"unicoId": {"result": "Yes"}})) => Approved ["identity.confirmed"];
            "not_live_with_score": finished(json!({"unicoId": {"result": "inconclusive"}, "liveness": 2, "score": 80})) => Rejected ["liveness.not_live"];
            "not_live_with_identity_yes": finished(json!({"unicoId": {"result": "yes"}, "liveness": 2})) => Rejected ["liveness.not_live"];
            "unknown_unico_id": finished(json!({"unicoId": {"result": "maybe"}, "liveness": 1})) => Review ["biometrics.unexpected_result"];
            "unknown_unico_id_with_high_score": finished(json!({"unicoId": {"result": "maybe"}, "liveness": 1, "score": 90})) => Review ["biometrics.unexpected_result", "score.low_risk"];
            "score_without_unico_id": finished(json!({"liveness": 1, "score": 90})) => Review ["biometrics.unexpected_result", "score.low_risk"];
            "unknown_liveness": finished(json!({"unicoId": {"result": "yes"}, "liveness": 7})) => Review ["biometrics.unexpected_result", "identity.confirmed"];
            "unknown_fraudsters_value": finished(json!({"unicoId": {"result": "yes"}, "identityFraudsters": {"result": "perhaps"}})) => Review ["biometrics.unexpected_result", "identity.confirmed"];
            "finished_without_fields": finished(json!({})) => Review ["biometrics.unexpected_result"];
            "biometrics_not_run": with_biometrics(BiometricEvidence::NotRun) => Review ["biometrics.unexpected_result"];
            "status_1_processing": status(1) => Review ["biometrics.unexpected_result"];
            "status_2_divergence": status(2) => Review ["biometrics.unexpected_result"];
            "unknown_status": status(9) => Review ["biometrics.unexpected_result"];
            "timed_out_with_a_final_looking_answer": with_biometrics(BiometricEvidence::TimedOut(Some(late_yes))) => Review ["biometrics.timeout"];
        },
    );
}

#[test]
fn device_registration_rows() {
    let answered = |status, analysis| {
        with_device(
            DeviceEvidence::Answered(registration(status, analysis)),
            confirmed(),
        )
    };
    let past_deadline = |status, analysis| {
        with_device(
            DeviceEvidence::PendingPastDeadline(registration(status, analysis)),
            confirmed(),
        )
    };
    let approved_device =
        || DeviceEvidence::Answered(registration("registered", "automatically_approved"));
    check_all(
        &policy(),
        cases! {
            "reproved": answered("not_registered", "automatically_reproved") => Rejected ["device.registration_reproved", "identity.confirmed"];
            "reproved_upper_case": answered("NOT_REGISTERED", "AUTOMATICALLY_REPROVED") => Rejected ["device.registration_reproved", "identity.confirmed"];
            "pending_past_deadline": past_deadline("not_registered", "pending") => Review ["device.registration_pending", "identity.confirmed"];
            "pending_past_deadline_looking_approved": past_deadline("registered", "automatically_approved") => Review ["device.registration_pending", "identity.confirmed"];
            "pending_before_deadline": answered("registered", "pending") => Review ["device.not_registered", "identity.confirmed"];
            "not_registered": answered("not_registered", "automatically_approved") => Review ["device.not_registered", "identity.confirmed"];
            "deactivated": answered("deactivated", "automatically_approved") => Review ["device.not_registered", "identity.confirmed"];
            "unknown_analysis": answered("registered", "in_manual_analysis") => Review ["device.not_registered", "identity.confirmed"];
            "registered_and_approved": answered("registered", "automatically_approved") => Approved ["identity.confirmed", "device.registered"];
            "registered_but_score_uncertain": with_device(approved_device(), inconclusive_with_score(20)) => Review ["score.uncertain", "device.registered"];
        },
    );
}

#[test]
fn evaluations_list_every_rule_in_table_order() {
    let verdict = policy().evaluate(&received(json!({"status": 5})));
    let listed: Vec<&str> = verdict
        .evaluations
        .iter()
        .map(|e| e.code.as_str())
        .collect();
    assert_eq!(listed, reason_codes());
    let row = |code: &str| verdict.evaluations.iter().find(|e| e.code == code);

    assert!(row("biometrics.process_error").is_some_and(|e| e.fired && e.outcome == Retry));
    assert_eq!(
        row("biometrics.process_error").map(|e| &e.inputs),
        Some(&json!({"status": 5}))
    );
    assert_eq!(
        row("score.low_risk").map(|e| (e.fired, &e.inputs)),
        Some((false, &json!({"skipped": "process error"})))
    );
    assert_eq!(
        row("device.registered").map(|e| (e.fired, &e.inputs)),
        Some((false, &json!({"skipped": "device registration not run"})))
    );
    assert_eq!(
        verdict.evaluations.iter().filter(|e| e.fired).count(),
        verdict.reasons.len()
    );

    let not_live = policy().evaluate(&received(
        json!({"status": 3, "unicoId": {"result": "inconclusive"}, "liveness": 2, "score": 80}),
    ));
    assert_eq!(
        row_of(&not_live, "score.low_risk"),
        Some((
            false,
            json!({"skipped": "liveness 2 ends the biometric rules"})
        ))
    );
    assert_eq!(
        row_of(&not_live, "liveness.not_live"),
        Some((true, json!({"liveness": 2})))
    );

    let uncertain = policy().evaluate(&inconclusive_with_score(20));
    assert_eq!(
        row_of(&uncertain, "score.uncertain"),
        Some((
            true,
            json!({"score": 20, "score_reject_max": -40, "score_approve_min": 50})
        ))
    );
    assert_eq!(
        row_of(&uncertain, "device.rooted"),
        Some((false, json!({"is_rooted_device": null, "decides": true})))
    );
}

fn row_of(verdict: &Verdict, code: &str) -> Option<(bool, Value)> {
    let e = verdict.evaluations.iter().find(|e| e.code == code)?;
    Some((e.fired, e.inputs.clone()))
}

#[test]
fn reasons_carry_messages() {
    let verdict = policy().evaluate(&received(json!({"status": 3, "unicoId": {"result": "no"}, "liveness": 1, "identityFraudsters": {"result": "yes"}})));
    assert!(verdict.reasons.iter().all(|r| !r.message.is_empty()));
    assert_ne!(verdict.reasons[0].message, verdict.reasons[1].message);
}

#[test]
fn reason_codes_follow_the_contract_table() {
    assert_eq!(
        reason_codes(),
        [
            "device.emulated",
            "device.automation",
            "device.rooted",
            "device.mock_location",
            "device.call_in_progress",
            "device.dev_mode",
            "device.usb_connected",
            "biometrics.process_error",
            "biometrics.process_cancelled",
            "biometrics.capture_refused",
            "biometrics.timeout",
            "liveness.not_live",
            "fraudsters.match",
            "fraudsters.suspicious",
            "identity.confirmed",
            "identity.not_confirmed",
            "score.unavailable",
            "score.capture_error",
            "score.high_risk",
            "score.uncertain",
            "score.low_risk",
            "biometrics.unexpected_result",
            "device.registration_reproved",
            "device.registration_pending",
            "device.not_registered",
            "device.registered",
        ]
    );
}

#[test]
fn screen_device_rejects_only_emulators_and_automation() {
    let policy = policy();
    let all = RiskSignals {
        is_emulated: Some(true),
        is_monkey_runner: Some(true),
        is_rooted_device: Some(true),
        is_mock_gps: Some(true),
        is_call_in_progress: Some(true),
        ..RiskSignals::default()
    };
    let verdict = policy.screen(Some(&all), None);
    assert_eq!(
        verdict.as_ref().map(|v| (v.outcome, codes(v))),
        Some((
            Rejected,
            vec![
                "device.emulated",
                "device.automation",
                "device.rooted",
                "device.mock_location",
                "device.call_in_progress"
            ]
        ))
    );
    let verdict = verdict.expect("checked above");
    assert_eq!(verdict.evaluations.len(), reason_codes().len());
    assert_eq!(
        row_of(&verdict, "identity.confirmed"),
        Some((
            false,
            json!({"skipped": "decided on the device before unico was called"})
        ))
    );

    let automation = RiskSignals {
        is_monkey_runner: Some(true),
        is_mock_gps: Some(true),
        ..RiskSignals::default()
    };
    let verdict = policy.screen(Some(&automation), None);
    assert_eq!(
        verdict.as_ref().map(|v| (v.outcome, codes(v))),
        Some((Rejected, vec!["device.automation", "device.mock_location"]))
    );

    let review_only = RiskSignals {
        is_rooted_device: Some(true),
        is_emulated: Some(false),
        ..RiskSignals::default()
    };
    assert_eq!(policy.screen(Some(&review_only), None), None);
    assert_eq!(policy.screen(Some(&RiskSignals::default()), None), None);
    assert_eq!(policy.screen(None, None), None);
}

#[test]
fn risk_flags_name_the_set_flags_in_table_order() {
    let signals = RiskSignals {
        is_call_in_progress: Some(true),
        is_rooted_device: Some(true),
        is_emulated: Some(true),
        is_mock_gps: Some(false),
        ..RiskSignals::default()
    };
    assert_eq!(
        risk_flags(Some(&signals)),
        ["emulated", "rooted", "call_in_progress"]
    );
    let every = RiskSignals {
        is_emulated: Some(true),
        is_monkey_runner: Some(true),
        is_rooted_device: Some(true),
        is_mock_gps: Some(true),
        is_call_in_progress: Some(true),
        ..RiskSignals::default()
    };
    assert_eq!(
        risk_flags(Some(&every)),
        [
            "emulated",
            "automation",
            "rooted",
            "mock_location",
            "call_in_progress"
        ]
    );
    assert!(risk_flags(Some(&RiskSignals::default())).is_empty());
    assert!(risk_flags(None).is_empty());
}

/// Sweeps combinations of known and unknown values: whatever the mix, an approval needs a finished
/// process with a recognised, positive identity answer and no fraud signal.
#[test]
fn approval_requires_a_recognised_positive_result() {
    // Under every shape of document a version may take.
    let lenient = {
        let mut p = policy_with(-90, 10);
        p.outcomes = Outcomes {
            is_emulated: None,
            is_monkey_runner: None,
            is_rooted_device: None,
            is_mock_gps: None,
            is_call_in_progress: None,
            is_dev_mode_enabled: None,
            is_usb_connected: None,
            fraudsters_suspicious: Review,
        };
        p
    };
    let strict = {
        let mut p = policy_with(-10, 90);
        p.outcomes.fraudsters_suspicious = Rejected;
        p.outcomes.is_dev_mode_enabled = Some(Rejected);
        p.outcomes.is_usb_connected = Some(Review);
        p
    };
    for policy in [policy(), policy_with(-20, 40), lenient, strict] {
        sweep(&policy);
    }
}

fn sweep(policy: &Policy) {
    let approve_min = policy.thresholds.score_approve_min;
    let texts = [
        None,
        Some("yes"),
        Some("no"),
        Some("inconclusive"),
        Some("suspicious"),
        Some("odd"),
    ];
    for status in 0..=6 {
        for unico_id in texts {
            for fraudsters in texts {
                for liveness in [None, Some(1), Some(2), Some(3)] {
                    for score in [None, Some(-50), Some(0), Some(20), Some(80)] {
                        let result = BiometricResult {
                            process_id: "p".into(),
                            status,
                            unico_id: unico_id.map(str::to_owned),
                            liveness,
                            identity_fraudsters: fraudsters.map(str::to_owned),
                            score,
                        };
                        let verdict =
                            policy.evaluate(&with_biometrics(BiometricEvidence::Received(result)));
                        assert!(!verdict.reasons.is_empty());
                        if verdict.outcome == Approved {
                            let ok = status == 3
                                && matches!(liveness, None | Some(1))
                                && matches!(unico_id, Some("yes" | "inconclusive"))
                                && matches!(fraudsters, None | Some("inconclusive"))
                                && (unico_id == Some("yes")
                                    || score.is_some_and(|s| s >= approve_min));
                            assert!(
                                ok,
                                "approved {status} {unico_id:?} {fraudsters:?} {liveness:?} {score:?}"
                            );
                        }
                    }
                }
            }
        }
    }
}

/// A version that changes what the table lets it change decides those cases differently, and
/// nothing else.
#[test]
fn changed_versions_decide_the_changed_rows() {
    let mut v = policy_with(-40, 40);
    v.outcomes.is_rooted_device = Some(Rejected);
    v.outcomes.is_dev_mode_enabled = Some(Review);
    v.outcomes.fraudsters_suspicious = Rejected;
    v.outcomes.is_call_in_progress = None;
    let rooted = RiskSignals {
        is_rooted_device: Some(true),
        ..Default::default()
    };
    let dev_mode = RiskSignals {
        is_dev_mode_enabled: Some(true),
        ..Default::default()
    };
    let on_a_call = RiskSignals {
        is_call_in_progress: Some(true),
        ..Default::default()
    };
    let suspicious = received(answers::with(answers::yes(), answers::fraud("suspicious")));
    check_all(
        &v,
        cases![
            "score 45 now approves": inconclusive_with_score(45) => Approved ["score.low_risk"];
            "score 39 stays in review": inconclusive_with_score(39) => Review ["score.uncertain"];
            "score 40 approves": inconclusive_with_score(40) => Approved ["score.low_risk"];
            "rooted now rejects": with_signals(rooted.clone(), confirmed()) => Rejected ["device.rooted", "identity.confirmed"];
            "developer mode now reviews": with_signals(dev_mode.clone(), confirmed()) => Review ["device.dev_mode", "identity.confirmed"];
            "a call in progress decides nothing": with_signals(on_a_call.clone(), confirmed()) => Approved ["identity.confirmed"];
            "suspicious face now rejects": suspicious.clone() => Rejected ["fraudsters.suspicious", "identity.confirmed"];
        ],
    );
    // The default version keeps deciding them as before.
    check_all(
        &policy(),
        cases![
            "score 45 reviews": inconclusive_with_score(45) => Review ["score.uncertain"];
            "rooted reviews": with_signals(rooted.clone(), confirmed()) => Review ["device.rooted", "identity.confirmed"];
            "developer mode decides nothing": with_signals(dev_mode, confirmed()) => Approved ["identity.confirmed"];
            "suspicious face reviews": suspicious => Review ["fraudsters.suspicious", "identity.confirmed"];
        ],
    );
    // A signal a version rejects on ends the onboarding before unico.
    assert_eq!(
        v.screen(Some(&rooted), None).map(|v| v.outcome),
        Some(Rejected)
    );
    assert_eq!(policy().screen(Some(&rooted), None), None);
    // The evaluation records the outcome the version gave the rule.
    let verdict = v.evaluate(&with_signals(rooted, confirmed()));
    let row = verdict
        .evaluations
        .iter()
        .find(|e| e.code == "device.rooted")
        .unwrap();
    assert_eq!((row.outcome, row.fired), (Rejected, true));
}

// ---- risk memory ------------------------------------------------------------------------------

mod memory_rules {
    use chrono::{TimeZone, Utc};

    use super::*;
    use crate::domain::LinkKey;
    use crate::domain::evidence::{
        LinkedFigure, LinkedOnboarding, ListFigure, ListHit, MemoryEvidence, VelocityFigure,
    };
    use crate::policy::memory::{LinkedFraudRule, ListRule, MemoryRules, VelocityRule};

    const DAY: u64 = 24 * 3600;

    fn rules(list_outcome: Outcome) -> MemoryRules {
        MemoryRules {
            lists: vec![ListRule {
                list: "blocked_devices".into(),
                outcome: list_outcome,
            }],
            velocity: vec![VelocityRule {
                code: "velocity.device_cpfs".into(),
                key: LinkKey::DeviceId,
                distinct: Some(LinkKey::Cpf),
                window_secs: 30 * DAY,
                max: 3,
                outcome: Review,
            }],
            linked_fraud: Some(LinkedFraudRule {
                keys: vec![LinkKey::DeviceId, LinkKey::Phone],
                window_secs: 180 * DAY,
                outcome: Review,
            }),
            shared_indications: None,
        }
    }

    fn with_rules(memory: MemoryRules) -> Policy {
        Policy { memory, ..policy() }
    }

    /// Figures as the store gives them: a hit or none, a count, linked onboardings.
    fn figures(hit: bool, count: Option<u64>, linked: usize) -> MemoryEvidence {
        let at = Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 0).unwrap();
        MemoryEvidence {
            as_of: at,
            lists: vec![ListFigure {
                list: "blocked_devices".into(),
                key: Some(LinkKey::DeviceId),
                hit: hit.then(|| ListHit {
                    entry_id: 1,
                    value: "***0042".into(),
                    reason: "ring".into(),
                    added_by: "risk".into(),
                    added_at: at,
                    expires_at: None,
                }),
            }],
            velocity: vec![VelocityFigure {
                key: LinkKey::DeviceId,
                distinct: Some(LinkKey::Cpf),
                window_secs: 30 * DAY,
                count,
            }],
            linked: vec![LinkedFigure {
                keys: vec![LinkKey::DeviceId, LinkKey::Phone],
                window_secs: 180 * DAY,
                onboardings: (0..linked)
                    .map(|_| LinkedOnboarding {
                        onboarding_id: uuid::Uuid::new_v4(),
                        key: LinkKey::Phone,
                        decision_id: uuid::Uuid::new_v4(),
                        reasons: vec!["fraudsters.match".into()],
                    })
                    .collect(),
            }],
            shared: Vec::new(),
        }
    }

    fn remembered(figures: Option<MemoryEvidence>) -> Evidence {
        Evidence {
            memory: figures,
            ..confirmed()
        }
    }

    #[test]
    fn memory_rules_decide_on_the_figures() {
        let review_list = with_rules(rules(Review));
        check_all(
            &review_list,
            cases![
                "nothing known": remembered(Some(figures(false, Some(1), 0))) => Approved ["identity.confirmed"];
                "count at max does not fire": remembered(Some(figures(false, Some(3), 0))) => Approved ["identity.confirmed"];
                "one over max fires": remembered(Some(figures(false, Some(4), 0))) => Review ["velocity.device_cpfs", "identity.confirmed"];
                "no value of the key counts nothing": remembered(Some(figures(false, None, 0))) => Approved ["identity.confirmed"];
                "a listed value": remembered(Some(figures(true, Some(1), 0))) => Review ["list.blocked_devices", "identity.confirmed"];
                "linked to a fraud": remembered(Some(figures(false, Some(1), 1))) => Review ["links.fraud", "identity.confirmed"];
                "all three, table order": remembered(Some(figures(true, Some(9), 2))) => Review ["list.blocked_devices", "velocity.device_cpfs", "links.fraud", "identity.confirmed"];
                "figures never taken judge nothing": remembered(None) => Approved ["identity.confirmed"];
            ],
        );
        // A rejecting rule is more severe than the review ones, whatever the order.
        let rejecting = with_rules(rules(Rejected));
        let verdict = rejecting.evaluate(&remembered(Some(figures(true, Some(9), 0))));
        assert_eq!(verdict.outcome, Rejected);
        assert_eq!(
            codes(&verdict)[..2],
            ["list.blocked_devices", "velocity.device_cpfs"]
        );
    }

    #[test]
    fn only_a_rejecting_memory_rule_decides_before_unico() {
        let review = with_rules(rules(Review));
        assert_eq!(review.screen(None, Some(&figures(true, Some(9), 3))), None);
        let rejecting = with_rules(rules(Rejected));
        let verdict = rejecting
            .screen(None, Some(&figures(true, Some(1), 0)))
            .expect("rejected before unico");
        assert_eq!(verdict.outcome, Rejected);
        assert_eq!(codes(&verdict), ["list.blocked_devices"]);
        let hit = verdict
            .evaluations
            .iter()
            .find(|e| e.code == "list.blocked_devices")
            .unwrap();
        assert_eq!(hit.inputs["hit"]["value"], "***0042");
        assert_eq!(
            rejecting.screen(None, Some(&figures(false, Some(1), 0))),
            None
        );
        // Replay of a version without the list over a decision the list rejected before unico:
        // nobody knows what unico would have said.
        let without = policy();
        let stored = Evidence {
            memory: Some(figures(true, Some(1), 0)),
            ..with_biometrics(BiometricEvidence::NotRun)
        };
        let replayed = without.judge(&stored, Some(Rejected));
        assert_eq!(
            (replayed.outcome, codes(&replayed)),
            (Review, vec!["biometrics.not_run"])
        );
    }

    #[test]
    fn no_memory_figure_ever_approves_what_unico_did_not() {
        let policy = with_rules(rules(Review));
        for (hit, count, linked) in [(false, Some(1), 0), (true, Some(9), 2), (false, None, 0)] {
            for evidence in [
                received(json!({"status": 3, "unicoId": {"result": "no"}})),
                received(json!({"status": 3, "liveness": 2})),
                with_biometrics(BiometricEvidence::TimedOut(None)),
            ] {
                let evidence = Evidence {
                    memory: Some(figures(hit, count, linked)),
                    ..evidence
                };
                assert_ne!(policy.evaluate(&evidence).outcome, Approved, "{evidence:?}");
            }
        }
    }
}
