//! Applying the state machine: a transition, the steps it queues and, on `decided`, the decision
//! itself, all written in the caller's transaction.

use serde_json::json;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::evidence::{BiometricEvidence, DeviceEvidence, Evidence};
use crate::domain::transitions::{self, OnboardingEvent, OnboardingState, StepKind};
use crate::onboarding::error::FlowError;
use crate::onboarding::services::Services;
use crate::policy::{Outcome, Verdict};
use crate::store::onboardings::OnboardingRow;
use crate::store::steps::{self, Step, Subject, When};
use crate::store::{decisions, devices, events, onboardings};

/// What a transition left for the writer: the steps it holds and runs next, and whether the
/// onboarding is now decided (its waiters are woken after the commit).
#[derive(Debug, Default)]
pub struct Applied {
    pub steps: Vec<Step>,
    pub decided: bool,
    /// Whether the event applied at all.
    pub moved: bool,
}

impl Applied {
    pub fn and(mut self, other: Applied) -> Applied {
        self.steps.extend(other.steps);
        self.decided |= other.decided;
        self.moved |= other.moved;
        self
    }
}

/// When the steps a transition asks for run, unless the caller says otherwise: work that the
/// writer can do at once (a provider call that follows directly) is held by it; read-backs wait
/// for their first interval.
pub fn default_timing(flow: &Services, kind: StepKind) -> When {
    let lease = flow.step_lease();
    match kind {
        StepKind::CreateProcess
        | StepKind::RegisterDevice
        | StepKind::OpenFinanceSignal
        | StepKind::SendValidation => When::Claimed(lease),
        StepKind::ReadProcess => When::In(flow.settings.unico.poll_initial),
        StepKind::ReadDevice | StepKind::ReadValidation => {
            When::In(flow.settings.qitech.poll_initial)
        }
    }
}

/// Moves the onboarding by `event` from `from` and queues the steps the transition asks for. An
/// event that no longer applies (another replica got there first) changes nothing.
pub async fn apply(
    tx: &mut PgConnection,
    id: Uuid,
    from: OnboardingState,
    event: OnboardingEvent,
    timing: impl Fn(StepKind) -> When,
) -> Result<Applied, FlowError> {
    let transition = match transitions::onboarding(from, event) {
        Ok(t) => t,
        Err(stale) => {
            tracing::debug!(%stale, "event ignored");
            return Ok(Applied::default());
        }
    };
    if transition.state != from
        && !onboardings::transition(&mut *tx, id, from.as_str(), transition.state.as_str()).await?
    {
        tracing::debug!(?event, "the onboarding moved meanwhile; event ignored");
        return Ok(Applied::default());
    }
    let mut held = Vec::new();
    for kind in transition.steps {
        if let Some(step) = steps::queue(tx, kind, Subject::Onboarding(id), timing(kind)).await? {
            held.push(step);
        }
    }
    Ok(Applied {
        steps: held,
        decided: transition.state == OnboardingState::Decided,
        moved: true,
    })
}

/// The biometric part is over (final status, refusal or deadline): apply the policy. An approval
/// moves the onboarding to the device stage; anything else decides it.
pub async fn conclude_biometrics(
    tx: &mut PgConnection,
    flow: &Services,
    onboarding: &OnboardingRow,
    from: OnboardingState,
    biometrics: BiometricEvidence,
) -> Result<Applied, FlowError> {
    let evidence = Evidence {
        risk_signals: onboarding.risk_signals(),
        biometrics,
        device: DeviceEvidence::NotRun,
    };
    let verdict = flow.policy.evaluate(&evidence);
    if verdict.outcome == Outcome::Approved {
        let applied = apply(
            tx,
            onboarding.id,
            from,
            OnboardingEvent::BiometricsApproved,
            |k| default_timing(flow, k),
        )
        .await?;
        if applied.moved {
            // The device is registered with QI Tech only when everything else approved, and its
            // answer is part of the verdict.
            devices::insert_registration(
                &mut *tx,
                onboarding.id,
                &evidence.biometrics,
                flow.settings.policy.device_deadline,
            )
            .await?;
            events::record(
                &mut *tx,
                onboarding.id,
                "device_registration_queued",
                json!({}),
            )
            .await?;
            tracing::info!("biometrics approved; registering the device with QI Tech");
        }
        return Ok(applied);
    }
    let event = if matches!(evidence.biometrics, BiometricEvidence::TimedOut(_)) {
        OnboardingEvent::DeadlinePassed
    } else {
        OnboardingEvent::BiometricsConcluded
    };
    record_verdict(tx, flow, onboarding, from, &verdict, &evidence, event).await
}

/// The decision on the approved biometrics and QI Tech's answer (or its absence).
pub async fn conclude_device(
    tx: &mut PgConnection,
    flow: &Services,
    onboarding: &OnboardingRow,
    biometrics: BiometricEvidence,
    device: DeviceEvidence,
) -> Result<Applied, FlowError> {
    let evidence = Evidence {
        risk_signals: onboarding.risk_signals(),
        biometrics,
        device,
    };
    let verdict = flow.policy.evaluate(&evidence);
    let open_finance = verdict.outcome == Outcome::Approved && has_enrollment(onboarding);
    record_verdict(
        tx,
        flow,
        onboarding,
        OnboardingState::Device,
        &verdict,
        &evidence,
        OnboardingEvent::DeviceConcluded { open_finance },
    )
    .await
}

fn has_enrollment(onboarding: &OnboardingRow) -> bool {
    onboarding
        .open_finance
        .as_ref()
        .and_then(|of| of.get("enrollment_id"))
        .and_then(|v| v.as_str())
        .is_some_and(|id| !id.is_empty())
}

/// Moves the onboarding to `decided` and stores the decision with its timeline entry. When the
/// onboarding moved meanwhile nothing is written: the first decision stands.
pub async fn record_verdict(
    tx: &mut PgConnection,
    flow: &Services,
    onboarding: &OnboardingRow,
    from: OnboardingState,
    verdict: &Verdict,
    evidence: &Evidence,
    event: OnboardingEvent,
) -> Result<Applied, FlowError> {
    let id = onboarding.id;
    if let OnboardingEvent::DeviceConcluded { open_finance: true } = event {
        // The signal's row (its stable transaction uuid) exists before its step runs.
        devices::enqueue_signal(&mut *tx, id).await?;
    }
    let applied = apply(tx, id, from, event, |k| default_timing(flow, k)).await?;
    if !applied.decided {
        return Ok(applied);
    }
    let decision = decisions::insert(tx, id, verdict, evidence).await?;
    events::record(
        &mut *tx,
        id,
        "decided",
        json!({
            "decision_id": decision.id,
            "outcome": decision.outcome,
            "reasons": decision.reason_codes,
            "risk_flags": crate::policy::risk_flags(evidence.risk_signals.as_ref()),
        }),
    )
    .await?;
    crate::metrics::decision(verdict.outcome.as_str());
    tracing::info!(outcome = verdict.outcome.as_str(), reasons = ?decision.reason_codes, "decided");
    Ok(applied)
}
