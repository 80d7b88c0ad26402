//! The contract's example parses into the default policy and round-trips; every invalid
//! document names its field.

use super::*;
use serde_json::json;

fn document(change: impl FnOnce(&mut serde_json::Value)) -> Result<Policy, Vec<String>> {
    let mut doc = json!({"version": "2026-12-01.1", "note": "why",
        "score_reject_max": -40, "score_approve_min": 50, "fraudsters_suspicious": "review",
        "risk_signals": {"is_emulated": "rejected", "is_monkey_runner": "rejected",
                         "is_rooted_device": "review", "is_mock_gps": "review",
                         "is_call_in_progress": "review", "is_dev_mode_enabled": null,
                         "is_usb_connected": null},
        "biometrics_deadline": "10m", "device_deadline": "30m"});
    change(&mut doc);
    let doc: PolicyDocument = serde_json::from_value(doc).map_err(|e| vec![e.to_string()])?;
    doc.parse()
        .map_err(|errors| errors.into_iter().map(|e| e.field).collect())
}

#[test]
fn the_contract_example_is_the_default_policy() {
    let policy = document(|_| {}).unwrap();
    assert_eq!(policy.outcomes, Outcomes::default());
    assert_eq!(policy.thresholds.biometrics_deadline_secs, 600);
    assert_eq!(policy.thresholds.device_deadline_secs, 1800);
    // And back: a policy's document parses to the same policy.
    let again = PolicyDocument::of(&policy, None).parse().unwrap();
    assert_eq!(again, policy);
}

#[test]
fn invalid_documents_name_their_field() {
    type Change = Box<dyn FnOnce(&mut serde_json::Value)>;
    let cases: Vec<(&str, Change, &str)> = vec![
        (
            "thresholds crossed",
            Box::new(|d| d["score_approve_min"] = json!(-50)),
            "score_approve_min",
        ),
        (
            "threshold at zero",
            Box::new(|d| d["score_reject_max"] = json!(0)),
            "score_reject_max",
        ),
        (
            "threshold out of range",
            Box::new(|d| d["score_approve_min"] = json!(101)),
            "score_approve_min",
        ),
        (
            "a signal cannot approve",
            Box::new(|d| d["risk_signals"]["is_rooted_device"] = json!("approved")),
            "risk_signals.is_rooted_device",
        ),
        (
            "unknown signal",
            Box::new(|d| d["risk_signals"]["is_charging"] = json!("review")),
            "risk_signals.is_charging",
        ),
        (
            "suspicious approves",
            Box::new(|d| d["fraudsters_suspicious"] = json!("approved")),
            "fraudsters_suspicious",
        ),
        (
            "bad deadline",
            Box::new(|d| d["device_deadline"] = json!("soon")),
            "device_deadline",
        ),
        (
            "zero deadline",
            Box::new(|d| d["biometrics_deadline"] = json!("0s")),
            "biometrics_deadline",
        ),
        (
            "bad version",
            Box::new(|d| d["version"] = json!("a b")),
            "version",
        ),
    ];
    for (case, change, field) in cases {
        assert_eq!(document(change).unwrap_err(), [field], "{case}");
    }
}

#[test]
fn a_signal_left_out_decides_nothing() {
    let policy = document(|d| {
        d["risk_signals"] = json!({"is_emulated": "rejected"});
    })
    .unwrap();
    assert_eq!(policy.outcomes.is_rooted_device, None);
    assert_eq!(policy.outcomes.is_emulated, Some(Outcome::Rejected));
}

fn with_memory(d: &mut serde_json::Value) {
    d["lists"] = json!([{"list": "blocked_devices", "outcome": "rejected"},
                        {"list": "watched_emails", "outcome": "review"}]);
    d["velocity"] = json!([
        {"code": "velocity.device_cpfs", "key": "device_id", "distinct": "cpf", "window": "30d", "max": 3, "outcome": "review"},
        {"code": "velocity.cpf_attempts", "key": "cpf", "window": "24h", "max": 5, "outcome": "review"}]);
    d["linked_fraud"] =
        json!({"keys": ["device_id", "phone", "email"], "window": "180d", "outcome": "review"});
}

#[test]
fn the_contract_memory_rules_parse_and_round_trip() {
    let policy = document(with_memory).unwrap();
    assert_eq!(policy.memory.lists.len(), 2);
    assert_eq!(policy.memory.velocity[0].window_secs, 30 * 24 * 3600);
    assert_eq!(policy.memory.velocity[1].distinct, None);
    assert_eq!(
        policy.memory.linked_fraud.as_ref().unwrap().window_secs,
        180 * 24 * 3600
    );
    let again = PolicyDocument::of(&policy, None).parse().unwrap();
    assert_eq!(again, policy);
    // A version without the members has none of the rules.
    assert!(document(|_| {}).unwrap().memory.is_empty());
}

#[test]
fn invalid_memory_rules_name_their_field() {
    type Change = Box<dyn FnOnce(&mut serde_json::Value)>;
    let cases: Vec<(&str, Change, &str)> = vec![
        (
            "window under a minute",
            Box::new(|d| d["velocity"][0]["window"] = json!("30s")),
            "velocity[0].window",
        ),
        (
            "window over 400 days",
            Box::new(|d| d["velocity"][1]["window"] = json!("401d")),
            "velocity[1].window",
        ),
        (
            "max zero",
            Box::new(|d| d["velocity"][1]["max"] = json!(0)),
            "velocity[1].max",
        ),
        (
            "code without its prefix",
            Box::new(|d| d["velocity"][0]["code"] = json!("device_cpfs")),
            "velocity[0].code",
        ),
        (
            "codes repeated",
            Box::new(|d| d["velocity"][1]["code"] = json!("velocity.device_cpfs")),
            "velocity[1].code",
        ),
        (
            "unknown key",
            Box::new(|d| d["velocity"][0]["key"] = json!("ip")),
            "velocity[0].key",
        ),
        (
            "distinct same as key",
            Box::new(|d| d["velocity"][0]["distinct"] = json!("device_id")),
            "velocity[0].distinct",
        ),
        (
            "a list cannot approve",
            Box::new(|d| d["lists"][0]["outcome"] = json!("approved")),
            "lists[0].outcome",
        ),
        (
            "list name",
            Box::new(|d| d["lists"][1]["list"] = json!("Watched")),
            "lists[1].list",
        ),
        (
            "list twice",
            Box::new(|d| d["lists"][1]["list"] = json!("blocked_devices")),
            "lists[1].list",
        ),
        (
            "no linked keys",
            Box::new(|d| d["linked_fraud"]["keys"] = json!([])),
            "linked_fraud.keys",
        ),
        (
            "unknown linked key",
            Box::new(|d| d["linked_fraud"]["keys"][0] = json!("ip")),
            "linked_fraud.keys[0]",
        ),
        (
            "linked retry",
            Box::new(|d| d["linked_fraud"]["outcome"] = json!("retry")),
            "linked_fraud.outcome",
        ),
    ];
    for (case, change, field) in cases {
        let result = document(|d| {
            with_memory(d);
            change(d);
        });
        assert_eq!(result.unwrap_err(), [field], "{case}");
    }
}
