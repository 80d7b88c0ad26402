//! Applying the state machine: a transition, the steps it queues and, on `decided`, the decision
//! itself, all written in the caller's transaction.

use serde_json::json;
use uuid::Uuid;

use crate::domain::evidence::{BiometricEvidence, DeviceEvidence, Evidence};
use crate::domain::transitions::{self, OnboardingEvent, OnboardingState, StepKind};
use crate::onboarding::applied::{Applied, Carried};
use crate::onboarding::error::FlowError;
use crate::onboarding::services::Services;
use crate::policy::{Outcome, Verdict};
use crate::store::Tx;
use crate::store::decisions::DecidedBy;
use crate::store::onboardings::OnboardingRow;
use crate::store::steps::{self, Subject, When};
use crate::store::{decisions, devices, onboardings, reviews};

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
        StepKind::DeliverCallback => When::Now,
    }
}

/// Moves the onboarding by `event` from `from` and queues the steps the transition asks for. An
/// event that no longer applies (another replica got there first) changes nothing.
pub async fn apply(
    tx: &mut Tx,
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
    let mut erasure_requested = false;
    if transition.state != from {
        match onboardings::transition(&mut **tx, id, from.as_str(), transition.state.as_str())
            .await?
        {
            Some(requested) => erasure_requested = requested,
            None => {
                tracing::debug!(?event, "the onboarding moved meanwhile; event ignored");
                return Ok(Applied::default());
            }
        }
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
        erasure_requested,
        carried: None,
        view: None,
    })
}

/// The biometric part is over (final status, refusal or deadline): apply the policy. An approval
/// moves the onboarding to the device stage; anything else decides it.
pub async fn conclude_biometrics(
    tx: &mut Tx,
    flow: &Services,
    onboarding: &OnboardingRow,
    from: OnboardingState,
    biometrics: BiometricEvidence,
) -> Result<Applied, FlowError> {
    let evidence = Evidence {
        risk_signals: onboarding.risk_signals(),
        biometrics,
        device: DeviceEvidence::NotRun,
        memory: onboarding.memory(),
    };
    let verdict = flow.policies.active().evaluate(&evidence);
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
            let registration = devices::insert_registration(
                &mut **tx,
                onboarding.id,
                &evidence.biometrics,
                flow.settings.policy.device_deadline,
                None,
            )
            .await?;
            let carried = registration.map(|registration| {
                let moved = OnboardingRow {
                    state: OnboardingState::Device.as_str().to_owned(),
                    ..onboarding.clone()
                };
                Carried::Registration(Box::new((moved, registration)))
            });
            tx.event(onboarding.id, "device_registration_queued", json!({}));
            tracing::info!("biometrics approved; registering the device with QI Tech");
            return Ok(Applied { carried, ..applied });
        }
        return Ok(applied);
    }
    let event = if matches!(evidence.biometrics, BiometricEvidence::TimedOut(_)) {
        OnboardingEvent::DeadlinePassed
    } else {
        OnboardingEvent::BiometricsConcluded
    };
    record_verdict(
        tx,
        flow,
        onboarding,
        from,
        &verdict,
        &evidence,
        event,
        Decision::policy(),
    )
    .await
}

/// The decision on the approved biometrics and QI Tech's answer (or its absence). A
/// registration run for a reviewer's approval ends in that reviewer's decision instead.
pub async fn conclude_device(
    tx: &mut Tx,
    flow: &Services,
    onboarding: &OnboardingRow,
    review_case_id: Option<Uuid>,
    biometrics: BiometricEvidence,
    device: DeviceEvidence,
) -> Result<Applied, FlowError> {
    let case = match review_case_id {
        Some(id) => reviews::get(&mut **tx, id).await?,
        None => None,
    };
    let verdict = match &case {
        Some(_) => flow
            .policies
            .active()
            .reviewer_verdict(Outcome::Approved, Some(&device)),
        None => flow.policies.active().evaluate(&Evidence {
            risk_signals: onboarding.risk_signals(),
            biometrics: biometrics.clone(),
            device: device.clone(),
            memory: onboarding.memory(),
        }),
    };
    let evidence = Evidence {
        risk_signals: onboarding.risk_signals(),
        biometrics,
        device,
        memory: onboarding.memory(),
    };
    let open_finance = verdict.outcome == Outcome::Approved && has_enrollment(onboarding);
    let decision = match &case {
        Some(case) => Decision {
            id: case.resolution_decision_id.unwrap_or_else(Uuid::new_v4),
            reviewer: case.resolution_reviewer.clone(),
            note: case.resolution_note.clone(),
        },
        None => Decision::policy(),
    };
    record_verdict(
        tx,
        flow,
        onboarding,
        OnboardingState::Device,
        &verdict,
        &evidence,
        OnboardingEvent::DeviceConcluded { open_finance },
        decision,
    )
    .await
}

/// Who makes a decision about to be written, and its id.
pub struct Decision {
    pub id: Uuid,
    /// Set for a reviewer's decision, with the reviewer's note.
    pub reviewer: Option<String>,
    pub note: Option<String>,
}

impl Decision {
    pub fn policy() -> Decision {
        Decision {
            id: Uuid::new_v4(),
            reviewer: None,
            note: None,
        }
    }

    fn by(&self) -> DecidedBy<'_> {
        match &self.reviewer {
            Some(name) => DecidedBy::Reviewer {
                name,
                note: self.note.as_deref().unwrap_or_default(),
            },
            None => DecidedBy::Policy,
        }
    }
}

fn has_enrollment(onboarding: &OnboardingRow) -> bool {
    onboarding
        .open_finance
        .as_ref()
        .and_then(|of| of.get("enrollment_id"))
        .and_then(|v| v.as_str())
        .is_some_and(|id| !id.is_empty())
}

/// Moves the onboarding to `decided` and stores the decision with its timeline entry, its
/// callback and, for the policy's `review`, the case a reviewer picks up. When the onboarding
/// moved meanwhile nothing is written: the first decision stands.
#[allow(clippy::too_many_arguments)]
pub async fn record_verdict(
    tx: &mut Tx,
    flow: &Services,
    onboarding: &OnboardingRow,
    from: OnboardingState,
    verdict: &Verdict,
    evidence: &Evidence,
    event: OnboardingEvent,
    decision: Decision,
) -> Result<Applied, FlowError> {
    let id = onboarding.id;
    if let OnboardingEvent::DeviceConcluded { open_finance: true } = event {
        // The signal's row (its stable transaction uuid) exists before its step runs.
        devices::enqueue_signal(&mut **tx, id).await?;
    }
    let applied = apply(tx, id, from, event, |k| default_timing(flow, k)).await?;
    if !applied.decided {
        return Ok(applied);
    }
    let by = decision.by();
    let stored = decisions::insert(tx, decision.id, id, verdict, evidence, by).await?;
    tx.event(
        id,
        "decided",
        json!({
            "decision_id": stored.id,
            "outcome": stored.outcome,
            "reasons": stored.reason_codes,
            "decided_by": stored.decided_by,
            "risk_flags": crate::policy::risk_flags(evidence.risk_signals.as_ref()),
        }),
    );
    if let (DecidedBy::Policy, Some(shadow)) = (by, flow.policies.shadow()) {
        // The version in shadow judges the same evidence; stored beside, changing nothing.
        let beside = shadow.judge(evidence, Some(verdict.outcome));
        crate::store::policies::insert_shadow_verdict(tx, stored.id, &beside, &stored.outcome)
            .await?;
    }
    if matches!(by, DecidedBy::Policy) {
        // An automatic rejection for fraud is an indication, made with the decision.
        crate::onboarding::fraud::from_policy(tx, flow, onboarding, verdict, &stored).await?;
    }
    if verdict.outcome == Outcome::Review && matches!(by, DecidedBy::Policy) {
        crate::onboarding::cases::open(tx, flow, id, &stored, "policy", None).await?;
    }
    // The person asked for an erasure while this onboarding was being decided (the flag comes
    // with the move to decided, so a decision without one costs no statement).
    if applied.erasure_requested {
        crate::onboarding::subjects::erase_when_decided(tx, flow, id).await?;
    }
    // The answer from the rows just written; an Open Finance signal's row is left out of what
    // this transaction knows (its step may send it before the waiter answers), so that answer
    // is read: after the commit for the waiter, in the transaction for the callback.
    let view = (!has_enrollment(onboarding))
        .then(|| crate::onboarding::view::as_decided(onboarding, &evidence.biometrics, &stored));
    crate::onboarding::callbacks::onboarding_decided(tx, flow, id, view.as_deref()).await?;
    if matches!(by, DecidedBy::Policy) {
        for fired in verdict.evaluations.iter().filter(|e| e.fired) {
            if crate::policy::memory::is_memory_code(&fired.code) {
                crate::metrics::risk_rule_fired(&fired.code);
            }
        }
    }
    crate::metrics::decision(
        verdict.outcome.as_str(),
        verdict.reasons.first().map_or("none", |r| r.code.as_str()),
        (stored.decided_at - onboarding.created_at).to_std().ok(),
    );
    tracing::info!(outcome = verdict.outcome.as_str(), reasons = ?stored.reason_codes, "decided");
    Ok(Applied { view, ..applied })
}
