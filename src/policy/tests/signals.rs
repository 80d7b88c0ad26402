//! The device screen and the risk flags: what rejects, and in which order flags are named.

use super::*;

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
