//! The policy table itself and the evaluation that walks it. Each rule records what it looked at,
//! so a stored decision explains itself without re-running anything.
//!
//! This file holds the table, the trace and the signal and device rows; `biometrics` the rows
//! that read unico's answer.

use serde_json::{Value, json};

use super::Outcome;
use crate::domain::evidence::{DeviceEvidence, RiskSignals};

mod biometrics;

use biometrics::biometric_rules;

/// One variant per row of the policy table, declared in table order: the discriminant is the
/// row's position, which orders evaluations and breaks ties between reasons.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Rule {
    DeviceEmulated,
    DeviceAutomation,
    DeviceRooted,
    DeviceMockLocation,
    DeviceCallInProgress,
    DeviceDevMode,
    DeviceUsbConnected,
    ProcessError,
    ProcessCancelled,
    CaptureRefused,
    BiometricsTimeout,
    LivenessNotLive,
    FraudstersMatch,
    FraudstersSuspicious,
    IdentityConfirmed,
    IdentityNotConfirmed,
    ScoreUnavailable,
    ScoreCaptureError,
    ScoreHighRisk,
    ScoreUncertain,
    ScoreLowRisk,
    UnexpectedResult,
    RegistrationReproved,
    RegistrationPending,
    DeviceNotRegistered,
    DeviceRegistered,
}

pub(super) const RULE_COUNT: usize = 26;

use Rule::*;

impl Rule {
    pub(super) const ALL: [Rule; RULE_COUNT] = [
        DeviceEmulated,
        DeviceAutomation,
        DeviceRooted,
        DeviceMockLocation,
        DeviceCallInProgress,
        DeviceDevMode,
        DeviceUsbConnected,
        ProcessError,
        ProcessCancelled,
        CaptureRefused,
        BiometricsTimeout,
        LivenessNotLive,
        FraudstersMatch,
        FraudstersSuspicious,
        IdentityConfirmed,
        IdentityNotConfirmed,
        ScoreUnavailable,
        ScoreCaptureError,
        ScoreHighRisk,
        ScoreUncertain,
        ScoreLowRisk,
        UnexpectedResult,
        RegistrationReproved,
        RegistrationPending,
        DeviceNotRegistered,
        DeviceRegistered,
    ];

    /// The rules that read unico's answer; liveness 2 or a non-decidable status skips them all.
    const BIOMETRIC_RESULT: [Rule; 11] = [
        LivenessNotLive,
        FraudstersMatch,
        FraudstersSuspicious,
        IdentityConfirmed,
        IdentityNotConfirmed,
        ScoreUnavailable,
        ScoreCaptureError,
        ScoreHighRisk,
        ScoreUncertain,
        ScoreLowRisk,
        UnexpectedResult,
    ];

    const DEVICE_REGISTRATION: [Rule; 4] = [
        RegistrationReproved,
        RegistrationPending,
        DeviceNotRegistered,
        DeviceRegistered,
    ];

    pub(super) const fn code(self) -> &'static str {
        match self {
            DeviceEmulated => "device.emulated",
            DeviceAutomation => "device.automation",
            DeviceRooted => "device.rooted",
            DeviceMockLocation => "device.mock_location",
            DeviceCallInProgress => "device.call_in_progress",
            DeviceDevMode => "device.dev_mode",
            DeviceUsbConnected => "device.usb_connected",
            ProcessError => "biometrics.process_error",
            ProcessCancelled => "biometrics.process_cancelled",
            CaptureRefused => "biometrics.capture_refused",
            BiometricsTimeout => "biometrics.timeout",
            LivenessNotLive => "liveness.not_live",
            FraudstersMatch => "fraudsters.match",
            FraudstersSuspicious => "fraudsters.suspicious",
            IdentityConfirmed => "identity.confirmed",
            IdentityNotConfirmed => "identity.not_confirmed",
            ScoreUnavailable => "score.unavailable",
            ScoreCaptureError => "score.capture_error",
            ScoreHighRisk => "score.high_risk",
            ScoreUncertain => "score.uncertain",
            ScoreLowRisk => "score.low_risk",
            UnexpectedResult => "biometrics.unexpected_result",
            RegistrationReproved => "device.registration_reproved",
            RegistrationPending => "device.registration_pending",
            DeviceNotRegistered => "device.not_registered",
            DeviceRegistered => "device.registered",
        }
    }

    pub(super) fn outcome(self) -> Outcome {
        match self {
            DeviceEmulated | DeviceAutomation | LivenessNotLive | FraudstersMatch
            | IdentityNotConfirmed | ScoreHighRisk | RegistrationReproved => Outcome::Rejected,
            ProcessError | ProcessCancelled | CaptureRefused | ScoreCaptureError => Outcome::Retry,
            DeviceRooted | DeviceMockLocation | DeviceCallInProgress | DeviceDevMode
            | DeviceUsbConnected | BiometricsTimeout | FraudstersSuspicious | ScoreUnavailable
            | ScoreUncertain | UnexpectedResult | RegistrationPending | DeviceNotRegistered => {
                Outcome::Review
            }
            IdentityConfirmed | ScoreLowRisk | DeviceRegistered => Outcome::Approved,
        }
    }

    pub(super) fn message(self) -> &'static str {
        match self {
            DeviceEmulated => "The app runs on an emulator, not on a real phone.",
            DeviceAutomation => "The phone is being driven by an automation tool.",
            DeviceRooted => "The phone is rooted or jailbroken.",
            DeviceMockLocation => "The phone reports a faked GPS location.",
            DeviceCallInProgress => {
                "A phone call was active during onboarding, a common sign of coaching by a fraudster."
            }
            DeviceDevMode => "The phone has developer mode enabled.",
            DeviceUsbConnected => "The phone was connected over USB during onboarding.",
            ProcessError => "The biometric provider failed on this capture; a new one is needed.",
            ProcessCancelled => "The biometric process was cancelled; a new capture is needed.",
            CaptureRefused => {
                "unico refused the selfie itself (format, size, expired or reused); a new capture is needed."
            }
            BiometricsTimeout => "The biometric result did not arrive in time.",
            LivenessNotLive => "The selfie was not taken from a live person.",
            FraudstersMatch => "The face is linked to a known identity fraud.",
            FraudstersSuspicious => "The face is flagged as possibly linked to identity fraud.",
            IdentityConfirmed => "The face belongs to the holder of the CPF.",
            IdentityNotConfirmed => "The face does not belong to the holder of the CPF.",
            ScoreUnavailable => "Identity was inconclusive and no risk score came back.",
            ScoreCaptureError => "The risk score points to a bad capture; a new one is needed.",
            ScoreHighRisk => "The risk score says the person is unlikely to be the CPF holder.",
            ScoreUncertain => "The risk score falls between the reject and approve thresholds.",
            ScoreLowRisk => "The risk score says the person is likely the CPF holder.",
            UnexpectedResult => {
                "The biometric result is missing, unfinished or not one the policy recognises."
            }
            RegistrationReproved => "QI Tech refused the device registration.",
            RegistrationPending => "QI Tech had not finished analysing the device by the deadline.",
            DeviceNotRegistered => "QI Tech did not register the device.",
            DeviceRegistered => "QI Tech registered and approved the device.",
        }
    }
}

/// Every code in table order, computed at compile time so it can never drift from `Rule`.
pub(super) static CODES: [&str; RULE_COUNT] = {
    let mut codes = [""; RULE_COUNT];
    let mut i = 0;
    while i < RULE_COUNT {
        codes[i] = Rule::ALL[i].code();
        i += 1;
    }
    codes
};

/// The phone's risk flags in table order: rule, the flag name shown to clients, the signal field.
pub(super) const SIGNAL_RULES: [(Rule, &str, &str); 7] = [
    (DeviceEmulated, "emulated", "is_emulated"),
    (DeviceAutomation, "automation", "is_monkey_runner"),
    (DeviceRooted, "rooted", "is_rooted_device"),
    (DeviceMockLocation, "mock_location", "is_mock_gps"),
    (
        DeviceCallInProgress,
        "call_in_progress",
        "is_call_in_progress",
    ),
    (DeviceDevMode, "dev_mode", "is_dev_mode_enabled"),
    (DeviceUsbConnected, "usb_connected", "is_usb_connected"),
];

pub(super) fn signal(signals: &RiskSignals, rule: Rule) -> Option<bool> {
    match rule {
        DeviceEmulated => signals.is_emulated,
        DeviceAutomation => signals.is_monkey_runner,
        DeviceRooted => signals.is_rooted_device,
        DeviceMockLocation => signals.is_mock_gps,
        DeviceCallInProgress => signals.is_call_in_progress,
        DeviceDevMode => signals.is_dev_mode_enabled,
        DeviceUsbConnected => signals.is_usb_connected,
        _ => None,
    }
}

/// The state of every rule while the table is walked; a rule never reached stays `None` and is
/// reported as skipped.
pub(super) struct Trace {
    slots: [Option<(bool, Value)>; RULE_COUNT],
}

impl Trace {
    pub(super) fn new() -> Self {
        Trace {
            slots: std::array::from_fn(|_| None),
        }
    }

    fn set(&mut self, rule: Rule, fired: bool, inputs: Value) {
        self.slots[rule as usize] = Some((fired, inputs));
    }

    fn skip(&mut self, rules: &[Rule], reason: &str) {
        for &rule in rules {
            self.set(rule, false, json!({ "skipped": reason }));
        }
    }

    pub(super) fn fired(&self, rule: Rule) -> bool {
        matches!(self.slots[rule as usize], Some((true, _)))
    }

    pub(super) fn any_fired(&self) -> bool {
        Rule::ALL.iter().any(|&rule| self.fired(rule))
    }

    /// Every rule in table order with whether it fired and what it looked at.
    pub(super) fn into_rows(self, unreached: &str) -> impl Iterator<Item = (Rule, bool, Value)> {
        let unreached = unreached.to_owned();
        Rule::ALL
            .into_iter()
            .zip(self.slots)
            .map(move |(rule, slot)| match slot {
                Some((fired, inputs)) => (rule, fired, inputs),
                None => (rule, false, json!({ "skipped": unreached })),
            })
    }
}

/// Walks the whole table. The fallback at the end makes "nothing fired" impossible, because an
/// empty set of reasons would otherwise read as nothing standing against approval.
pub(super) fn evaluate(evidence: &super::Evidence, policy: &super::Policy) -> Trace {
    let mut trace = Trace::new();
    signal_rules(&mut trace, evidence.risk_signals.as_ref(), &policy.outcomes);
    biometric_rules(&mut trace, &evidence.biometrics, &policy.thresholds);
    registration_rules(&mut trace, &evidence.device);
    if !trace.any_fired() {
        trace.set(UnexpectedResult, true, json!({ "no_rule_fired": true }));
    }
    trace
}

/// A signal decides only when the policy gives it an outcome; otherwise it is recorded and
/// decides nothing.
pub(super) fn signal_rules(
    trace: &mut Trace,
    signals: Option<&RiskSignals>,
    outcomes: &super::Outcomes,
) {
    for (rule, _, field) in SIGNAL_RULES {
        let value = signals.and_then(|s| signal(s, rule));
        let decides = outcomes.signal(rule).is_some();
        trace.set(
            rule,
            value == Some(true) && decides,
            json!({ field: value, "decides": decides }),
        );
    }
}

/// unico sends these lowercased today, but a provider changing case must not change a decision.
fn is(value: Option<&str>, expected: &str) -> bool {
    value.is_some_and(|v| v.eq_ignore_ascii_case(expected))
}

fn is_one_of(value: &str, known: &[&str]) -> bool {
    known.iter().any(|k| value.eq_ignore_ascii_case(k))
}

pub(crate) fn registration_rules(trace: &mut Trace, device: &DeviceEvidence) {
    let (registration, past_deadline) = match device {
        DeviceEvidence::NotRun => {
            trace.skip(&Rule::DEVICE_REGISTRATION, "device registration not run");
            return;
        }
        DeviceEvidence::Answered(registration) => (registration, false),
        DeviceEvidence::PendingPastDeadline(registration) => (registration, true),
    };
    let status = registration.status.as_str();
    let analysis = registration.analysis_status.as_str();
    let inputs = json!({
        "status": status,
        "analysis_status": analysis,
        "pending_past_deadline": past_deadline,
    });
    let reproved = is(Some(analysis), "automatically_reproved");
    let pending = past_deadline && !reproved;
    // A registration still pending at the deadline is not approved even if its fields say so.
    let registered = !past_deadline
        && is(Some(status), "registered")
        && is(Some(analysis), "automatically_approved");
    trace.set(RegistrationReproved, reproved, inputs.clone());
    trace.set(RegistrationPending, pending, inputs.clone());
    trace.set(
        DeviceNotRegistered,
        !reproved && !pending && !registered,
        inputs.clone(),
    );
    trace.set(DeviceRegistered, registered, inputs);
}
