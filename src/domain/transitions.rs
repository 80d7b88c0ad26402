//! The onboarding and device-validation state machines, as pure functions: a state and an event
//! in, the next state and the steps to queue out. The flow writes the new state and the steps in
//! one transaction; nothing here does I/O, so every path can be read and tested as a table.

use std::fmt;

/// Work that follows a state change, queued as a row of the step table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StepKind {
    /// CreateProcess at unico: the selfie and the CPF go out, a process id comes back.
    CreateProcess,
    /// GetProcess until the process is final (the webhook only makes this step due sooner).
    ReadProcess,
    /// QI Tech account, person and device, in that order; resumes where the last attempt stopped.
    RegisterDevice,
    /// Reads back a device analysis that QI Tech left pending.
    ReadDevice,
    /// The risk signal sent to Zro for an approved Open Finance enrollment.
    OpenFinanceSignal,
    /// A returning user's device validation event, sent to QI Tech.
    SendValidation,
    /// Reads back a device validation whose analysis is not final yet.
    ReadValidation,
    /// POSTs one decision event to the onboarding backend's callback URL.
    DeliverCallback,
}

impl StepKind {
    pub const ALL: [StepKind; 8] = [
        StepKind::CreateProcess,
        StepKind::ReadProcess,
        StepKind::RegisterDevice,
        StepKind::ReadDevice,
        StepKind::OpenFinanceSignal,
        StepKind::SendValidation,
        StepKind::ReadValidation,
        StepKind::DeliverCallback,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            StepKind::CreateProcess => "create_process",
            StepKind::ReadProcess => "read_process",
            StepKind::RegisterDevice => "register_device",
            StepKind::ReadDevice => "read_device",
            StepKind::OpenFinanceSignal => "open_finance_signal",
            StepKind::SendValidation => "send_validation",
            StepKind::ReadValidation => "read_validation",
            StepKind::DeliverCallback => "deliver_callback",
        }
    }

    pub fn parse(text: &str) -> Option<StepKind> {
        StepKind::ALL.into_iter().find(|k| k.as_str() == text)
    }
}

impl fmt::Display for StepKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where an onboarding stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnboardingState {
    /// Stored; unico's process is not created yet.
    Received,
    /// A unico process is open.
    Biometrics,
    /// Everything else approved; QI Tech is registering the device.
    Device,
    /// A decision is stored.
    Decided,
}

impl OnboardingState {
    pub fn as_str(self) -> &'static str {
        match self {
            OnboardingState::Received => "received",
            OnboardingState::Biometrics => "biometrics",
            OnboardingState::Device => "device",
            OnboardingState::Decided => "decided",
        }
    }

    pub fn parse(text: &str) -> Option<OnboardingState> {
        [
            OnboardingState::Received,
            OnboardingState::Biometrics,
            OnboardingState::Device,
            OnboardingState::Decided,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

/// What happened to an onboarding, already interpreted by the policy where a verdict was needed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnboardingEvent {
    /// The request was stored and its device signals let it go on to unico.
    Accepted,
    /// The device signals alone decided it (an emulator, say): unico is never paid.
    Screened,
    /// unico created the process and its answer is not final yet.
    ProcessOpen,
    /// The biometric part is over and everything so far approves: the device is registered next.
    BiometricsApproved,
    /// The biometric part is over and does not approve (or a capture was refused): decided.
    BiometricsConcluded,
    /// QI Tech left the device analysis pending.
    DeviceAnalysisPending,
    /// QI Tech answered (or the device deadline passed): decided. `open_finance` when the
    /// decision approves an onboarding with an Open Finance enrollment.
    DeviceConcluded { open_finance: bool },
    /// A deadline passed with no final evidence: decided on what is known.
    DeadlinePassed,
    /// A reviewer approved an onboarding whose device was never registered: QI Tech registers
    /// it first, and its answer completes the reviewer's decision.
    ReviewerApprovedUnregistered,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub state: OnboardingState,
    pub steps: Vec<StepKind>,
}

/// An event that does not apply to the state it arrived in: a late answer for an onboarding
/// already decided, or two replicas racing to the same result. The first transition stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{event:?} does not apply to an onboarding in state {state:?}")]
pub struct Stale {
    pub state: OnboardingState,
    pub event: OnboardingEvent,
}

fn to(state: OnboardingState, steps: &[StepKind]) -> Transition {
    Transition {
        state,
        steps: steps.to_vec(),
    }
}

/// The onboarding state machine.
pub fn onboarding(state: OnboardingState, event: OnboardingEvent) -> Result<Transition, Stale> {
    use OnboardingEvent as E;
    use OnboardingState as S;
    match (state, event) {
        (S::Received, E::Accepted) => Ok(to(S::Received, &[StepKind::CreateProcess])),
        (S::Received, E::Screened) => Ok(to(S::Decided, &[])),
        (S::Received, E::ProcessOpen) => Ok(to(S::Biometrics, &[StepKind::ReadProcess])),
        (S::Received | S::Biometrics, E::BiometricsApproved) => {
            Ok(to(S::Device, &[StepKind::RegisterDevice]))
        }
        (S::Received | S::Biometrics, E::BiometricsConcluded) => Ok(to(S::Decided, &[])),
        (S::Device, E::DeviceAnalysisPending) => Ok(to(S::Device, &[StepKind::ReadDevice])),
        (S::Device, E::DeviceConcluded { open_finance }) => Ok(to(
            S::Decided,
            if open_finance {
                &[StepKind::OpenFinanceSignal]
            } else {
                &[]
            },
        )),
        (S::Received | S::Biometrics | S::Device, E::DeadlinePassed) => Ok(to(S::Decided, &[])),
        (S::Decided, E::ReviewerApprovedUnregistered) => {
            Ok(to(S::Device, &[StepKind::RegisterDevice]))
        }
        (state, event) => Err(Stale { state, event }),
    }
}

/// Where a device validation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValidationState {
    Processing,
    Decided,
}

impl ValidationState {
    pub fn as_str(self) -> &'static str {
        match self {
            ValidationState::Processing => "processing",
            ValidationState::Decided => "decided",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValidationEvent {
    /// Stored: the event goes to QI Tech.
    Accepted,
    /// QI Tech took the event (or had it already); its analysis is not final.
    AnalysisOpen,
    /// QI Tech's analysis is final, or QI Tech refused the event itself.
    Concluded,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{event:?} does not apply to a device validation in state {state:?}")]
pub struct StaleValidation {
    pub state: ValidationState,
    pub event: ValidationEvent,
}

/// The device-validation state machine.
pub fn validation(
    state: ValidationState,
    event: ValidationEvent,
) -> Result<(ValidationState, Vec<StepKind>), StaleValidation> {
    use ValidationEvent as E;
    use ValidationState as S;
    match (state, event) {
        (S::Processing, E::Accepted) => Ok((S::Processing, vec![StepKind::SendValidation])),
        (S::Processing, E::AnalysisOpen) => Ok((S::Processing, vec![StepKind::ReadValidation])),
        (S::Processing, E::Concluded) => Ok((S::Decided, vec![])),
        (state, event) => Err(StaleValidation { state, event }),
    }
}

#[cfg(test)]
mod tests {
    use super::OnboardingEvent as E;
    use super::OnboardingState as S;
    use super::StepKind as K;
    use super::*;

    #[test]
    fn onboarding_transitions_as_a_table() {
        let of = E::DeviceConcluded { open_finance: true };
        let plain = E::DeviceConcluded {
            open_finance: false,
        };
        type Row = (&'static str, S, E, Option<(S, Vec<K>)>);
        #[rustfmt::skip]
        let table: Vec<Row> = vec![
            ("stored request asks unico",          S::Received,   E::Accepted,            Some((S::Received, vec![K::CreateProcess]))),
            ("emulator decided before unico",      S::Received,   E::Screened,            Some((S::Decided, vec![]))),
            ("open process is read back",          S::Received,   E::ProcessOpen,         Some((S::Biometrics, vec![K::ReadProcess]))),
            ("final CreateProcess approves",       S::Received,   E::BiometricsApproved,  Some((S::Device, vec![K::RegisterDevice]))),
            ("final CreateProcess rejects",        S::Received,   E::BiometricsConcluded, Some((S::Decided, vec![]))),
            ("polled result approves",             S::Biometrics, E::BiometricsApproved,  Some((S::Device, vec![K::RegisterDevice]))),
            ("polled result does not approve",     S::Biometrics, E::BiometricsConcluded, Some((S::Decided, vec![]))),
            ("pending analysis is read back",      S::Device,     E::DeviceAnalysisPending, Some((S::Device, vec![K::ReadDevice]))),
            ("device answer with Open Finance",    S::Device,     of,                     Some((S::Decided, vec![K::OpenFinanceSignal]))),
            ("device answer without Open Finance", S::Device,     plain,                  Some((S::Decided, vec![]))),
            ("never created, deadline",            S::Received,   E::DeadlinePassed,      Some((S::Decided, vec![]))),
            ("never final, deadline",              S::Biometrics, E::DeadlinePassed,      Some((S::Decided, vec![]))),
            ("device pending, deadline",           S::Device,     E::DeadlinePassed,      Some((S::Decided, vec![]))),
            ("late poll after decision",           S::Decided,    E::BiometricsConcluded, None),
            ("late approval after decision",       S::Decided,    E::BiometricsApproved,  None),
            ("late device answer",                 S::Decided,    plain,                  None),
            ("deadline after decision",            S::Decided,    E::DeadlinePassed,      None),
            ("reviewer approves, device unknown",  S::Decided,    E::ReviewerApprovedUnregistered, Some((S::Device, vec![K::RegisterDevice]))),
            ("reviewer approval while processing", S::Biometrics, E::ReviewerApprovedUnregistered, None),
            ("second accept",                      S::Biometrics, E::Accepted,            None),
            ("screening after unico was asked",    S::Biometrics, E::Screened,            None),
            ("device answer before biometrics",    S::Biometrics, plain,                  None),
            ("process opens twice",                S::Biometrics, E::ProcessOpen,         None),
            ("biometrics again in device stage",   S::Device,     E::BiometricsApproved,  None),
            ("pending device before device stage", S::Received,   E::DeviceAnalysisPending, None),
        ];
        for (case, state, event, expected) in table {
            let got = onboarding(state, event).ok().map(|t| (t.state, t.steps));
            assert_eq!(got, expected, "{case}");
        }
    }

    #[test]
    fn every_onboarding_path_ends_decided() {
        // Whatever the order of events, the machine can always reach `decided`, and only a
        // reviewer's approval of an unregistered device takes it back to the device stage.
        let events = [
            E::Accepted,
            E::Screened,
            E::ProcessOpen,
            E::BiometricsApproved,
            E::BiometricsConcluded,
            E::DeviceAnalysisPending,
            E::DeviceConcluded { open_finance: true },
            E::DeviceConcluded {
                open_finance: false,
            },
            E::DeadlinePassed,
        ];
        for state in [S::Received, S::Biometrics, S::Device] {
            assert_eq!(
                onboarding(state, E::DeadlinePassed).map(|t| t.state),
                Ok(S::Decided)
            );
        }
        for event in events {
            assert!(onboarding(S::Decided, event).is_err(), "{event:?}");
        }
        assert_eq!(
            onboarding(S::Decided, E::ReviewerApprovedUnregistered).map(|t| t.state),
            Ok(S::Device)
        );
    }

    #[test]
    fn validation_transitions_as_a_table() {
        use ValidationEvent as V;
        use ValidationState as VS;
        #[rustfmt::skip]
        let table = [
            ("stored event is sent",  VS::Processing, V::Accepted,     Some((VS::Processing, vec![K::SendValidation]))),
            ("open analysis is read", VS::Processing, V::AnalysisOpen, Some((VS::Processing, vec![K::ReadValidation]))),
            ("final analysis",        VS::Processing, V::Concluded,    Some((VS::Decided, vec![]))),
            ("late answer",           VS::Decided,    V::AnalysisOpen, None),
            ("decided twice",         VS::Decided,    V::Concluded,    None),
        ];
        for (case, state, event, expected) in table {
            assert_eq!(validation(state, event).ok(), expected, "{case}");
        }
    }

    #[test]
    fn step_kinds_round_trip_their_names() {
        for kind in K::ALL {
            assert_eq!(K::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(K::parse("sweep"), None);
    }
}
