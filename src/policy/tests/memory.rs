//! The risk-memory rules: lists, velocity and linked fraud, decided on the figures.

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
