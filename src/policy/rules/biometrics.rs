//! The rows that read unico's answer: the process's state, the identity and fraudster answers
//! and the score's band.

use serde_json::json;

use super::Rule::{self, *};
use super::{Trace, is, is_one_of};
use crate::domain::evidence::{BiometricEvidence, BiometricResult, process_status};

pub(super) fn biometric_rules(
    trace: &mut Trace,
    biometrics: &BiometricEvidence,
    t: &crate::policy::Thresholds,
) {
    let (result, timed_out) = match biometrics {
        BiometricEvidence::NotRun => (None, false),
        BiometricEvidence::Received(result) => (Some(result), false),
        BiometricEvidence::TimedOut(last) => (last.as_ref(), true),
        BiometricEvidence::CaptureRefused { .. } => (None, false),
    };
    let status = result.map(|r| r.status);
    // A timed-out process never reached a final status, so its last status is not a verdict.
    let final_status = if timed_out { None } else { status };
    trace.set(
        ProcessError,
        final_status == Some(process_status::ERROR),
        json!({ "status": status }),
    );
    trace.set(
        ProcessCancelled,
        final_status == Some(process_status::CANCELLED),
        json!({ "status": status }),
    );
    let refused = match biometrics {
        BiometricEvidence::CaptureRefused { code } => Some(code.as_str()),
        _ => None,
    };
    trace.set(
        CaptureRefused,
        refused.is_some(),
        json!({ "unico_error_code": refused }),
    );
    trace.set(
        BiometricsTimeout,
        timed_out,
        json!({ "timed_out": timed_out, "status": status }),
    );

    let skip_reason = match biometrics {
        BiometricEvidence::Received(r) if r.status == process_status::FINISHED => {
            finished_rules(trace, r, t);
            return;
        }
        BiometricEvidence::Received(r) if r.status == process_status::ERROR => "process error",
        BiometricEvidence::Received(r) if r.status == process_status::CANCELLED => {
            "process cancelled"
        }
        BiometricEvidence::TimedOut(_) => "biometrics timed out",
        BiometricEvidence::CaptureRefused { .. } => "capture refused by unico",
        // Not run, or a status the policy cannot decide on: there is nothing to approve.
        BiometricEvidence::Received(r) => {
            trace.skip(&Rule::BIOMETRIC_RESULT, "process not finished");
            let inputs = json!({ "status": r.status, "final": r.is_final() });
            trace.set(UnexpectedResult, true, inputs);
            return;
        }
        BiometricEvidence::NotRun => {
            trace.skip(&Rule::BIOMETRIC_RESULT, "biometrics not run");
            trace.set(UnexpectedResult, true, json!({ "biometrics": "not_run" }));
            return;
        }
    };
    trace.skip(&Rule::BIOMETRIC_RESULT, skip_reason);
}

/// The bands are exclusive by construction: the first matching arm wins, so even thresholds
/// that overlap cannot put one score in two bands.
fn score_band(score: i32, t: &crate::policy::Thresholds) -> Rule {
    if score == 0 {
        ScoreCaptureError
    } else if score <= t.score_reject_max {
        ScoreHighRisk
    } else if score >= t.score_approve_min {
        ScoreLowRisk
    } else {
        ScoreUncertain
    }
}

fn finished_rules(trace: &mut Trace, r: &BiometricResult, t: &crate::policy::Thresholds) {
    let unico_id = r.unico_id.as_deref();
    let fraudsters = r.identity_fraudsters.as_deref();

    let not_live = r.liveness == Some(2);
    trace.set(LivenessNotLive, not_live, json!({ "liveness": r.liveness }));
    if not_live {
        // unico runs nothing else after a failed liveness, so any other field is noise.
        trace.skip(
            &Rule::BIOMETRIC_RESULT[1..],
            "liveness 2 ends the biometric rules",
        );
        return;
    }

    let fraud_inputs = json!({ "identity_fraudsters": fraudsters });
    trace.set(FraudstersMatch, is(fraudsters, "yes"), fraud_inputs.clone());
    trace.set(
        FraudstersSuspicious,
        is(fraudsters, "suspicious"),
        fraud_inputs,
    );

    let id_inputs = json!({ "unico_id": unico_id });
    trace.set(IdentityConfirmed, is(unico_id, "yes"), id_inputs.clone());
    trace.set(IdentityNotConfirmed, is(unico_id, "no"), id_inputs);
    trace.set(
        ScoreUnavailable,
        is(unico_id, "inconclusive") && r.score.is_none(),
        json!({ "unico_id": unico_id, "score": r.score }),
    );

    let band = r.score.map(|score| score_band(score, t));
    let score_inputs = json!({
        "score": r.score,
        "score_reject_max": t.score_reject_max,
        "score_approve_min": t.score_approve_min,
    });
    for rule in [
        ScoreCaptureError,
        ScoreHighRisk,
        ScoreUncertain,
        ScoreLowRisk,
    ] {
        trace.set(rule, band == Some(rule), score_inputs.clone());
    }

    let mut unrecognised = Vec::new();
    if !matches!(r.liveness, None | Some(1)) {
        unrecognised.push("liveness");
    }
    if !unico_id.is_some_and(|v| is_one_of(v, &["yes", "no", "inconclusive"])) {
        unrecognised.push("unico_id");
    }
    if fraudsters.is_some_and(|v| !is_one_of(v, &["yes", "inconclusive", "suspicious"])) {
        unrecognised.push("identity_fraudsters");
    }
    let identity_decided = [
        IdentityConfirmed,
        IdentityNotConfirmed,
        ScoreUnavailable,
        ScoreCaptureError,
        ScoreHighRisk,
        ScoreUncertain,
        ScoreLowRisk,
    ]
    .into_iter()
    .any(|rule| trace.fired(rule));
    trace.set(
        UnexpectedResult,
        !identity_decided || !unrecognised.is_empty(),
        json!({
            "status": r.status,
            "liveness": r.liveness,
            "unico_id": unico_id,
            "identity_fraudsters": fraudsters,
            "identity_decided": identity_decided,
            "unrecognised": unrecognised,
        }),
    );
}
