//! The policy's table row by row: outcomes, thresholds, the decisive reason, device
//! registrations, the evaluation of every rule and the reason codes of the contract.

use super::*;

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
