//! Every pair in unico's table of response scenarios, decided on GetProcess and on CreateProcess.

use super::*;

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
