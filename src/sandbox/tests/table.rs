//! The scenario table itself: its CPFs valid, distinct and numbered in order.

use super::*;

#[test]
fn scenario_cpfs_are_valid_distinct_and_numbered_in_order() {
    for (index, scenario) in SCENARIOS.iter().enumerate() {
        assert_eq!(usize::from(scenario.number), index + 1);
        assert!(
            scenarios::valid_cpf(&digits(scenario.cpf)),
            "{}",
            scenario.cpf
        );
        assert_eq!(scenarios::for_code(&digits(scenario.cpf)), Some(scenario));
        assert!(!scenario.name.is_empty());
    }
    assert_eq!(SCENARIOS.len(), 25);
    let webhooks: Vec<u8> = SCENARIOS
        .iter()
        .filter(|s| s.is_async() && !s.sends_webhook())
        .map(|s| s.number)
        .collect();
    assert_eq!(webhooks, [22, 25]);
}

#[test]
fn cpf_check_digits() {
    assert!(scenarios::valid_cpf("52998224725"));
    assert!(scenarios::valid_cpf("11144477735"));
    for bad in [
        "52998224724",
        "11111111111",
        "5299822472",
        "529982247250",
        "529.982.247-25",
        "5299822472a",
    ] {
        assert!(!scenarios::valid_cpf(bad), "{bad}");
    }
}
