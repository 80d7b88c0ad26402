//! Sweeps over combinations of known and unknown values, and versions that change the table.

use super::*;

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
