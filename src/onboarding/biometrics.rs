//! The unico steps: create the process, then read it back until it is final or the deadline
//! passes.
//!
//! Retry rules. CreateProcess is the paid call and unico takes no idempotency key, so:
//! - a refused capture (unico's codes for a missing, unsupported, expired or reused selfie) is
//!   final: the onboarding is decided `retry`, the person takes a new selfie;
//! - every other failure is retried by the step, durably, with exponential backoff and jitter
//!   (`unico.poll_initial` doubling up to `unico.poll_max`), never sooner than a 429's
//!   `Retry-After`, until `policy.biometrics_deadline`, where the onboarding is decided `review`
//!   (`biometrics.timeout`). unico's guidance is to retry 5xx with backoff; 429, connection
//!   errors and token-endpoint failures are retried for the same reason (nothing was created).
//!   A 4xx that is not about the capture (credentials, configuration) is retried too, so an
//!   operator who fixes the configuration within the deadline saves the onboarding. A timeout
//!   is retried although unico may have created the process it did not answer for: that can cost
//!   a second process, where giving up would cost a manual review; keep `unico.timeout` generous.
//! - the step's lease is the only permission to call: one runner, on one replica, holds it.

use std::time::Duration;

use chrono::{DateTime, Utc};
use secrecy::SecretString;
use serde_json::json;
use uuid::Uuid;

use crate::domain::evidence::BiometricEvidence;
use crate::domain::transitions::{OnboardingEvent, OnboardingState, StepKind};
use crate::onboarding::applied::{Applied, Carried};
use crate::onboarding::decide;
use crate::onboarding::error::FlowError;
use crate::onboarding::services::Services;
use crate::providers::unico::{CreateProcess, Subject as UnicoSubject};
use crate::providers::{CallContext, capture};
use crate::store::onboardings::OnboardingRow;
use crate::store::processes::ProcessRow;
use crate::store::steps::{self, Step, When};
use crate::store::{onboardings, processes, webhooks};

/// What is left of a deadline that started at `since`.
pub fn left_before(deadline: Duration, since: DateTime<Utc>) -> Duration {
    let age = (Utc::now() - since).to_std().unwrap_or_default();
    deadline.saturating_sub(age)
}

fn retry_wait(flow: &Services, step: &Step) -> Duration {
    let unico = &flow.settings.unico;
    steps::backoff(unico.poll_initial, unico.poll_max, step.attempts)
}

/// `carried` is the onboarding and selfie as the request that stored them holds them; without
/// it they are read (and the selfie unsealed).
pub async fn create_process(
    flow: &Services,
    step: &Step,
    id: Uuid,
    carried: Option<(onboardings::OnboardingRow, SecretString)>,
) -> Result<Applied, FlowError> {
    let found = match carried {
        Some((onboarding, selfie)) => Some((onboarding, Some(selfie))),
        None => onboardings::get_with_selfie(&flow.db, &flow.cipher, id)
            .await?
            .map(|(onboarding, selfie)| (onboarding, selfie.map(SecretString::from))),
    };
    let Some((onboarding, selfie)) = found else {
        steps::complete(&flow.db, step).await?;
        return Ok(Applied::default());
    };
    if onboarding.state != OnboardingState::Received.as_str() {
        steps::complete(&flow.db, step).await?;
        return Ok(Applied::default());
    }
    let left = left_before(
        flow.settings.policy.biometrics_deadline,
        onboarding.created_at,
    );
    // Never erased before the decision (a subject's erasure waits for it), but a person without
    // a name cannot be sent.
    let person = onboarding
        .person(&flow.cipher)?
        .filter(|p| p.name.is_some());
    let (Some(selfie), Some(person), false) = (selfie, person, left.is_zero()) else {
        // Past the deadline (or nothing left to send): decided on what is known, which is
        // nothing, so the onboarding goes to review.
        let mut tx = crate::store::begin(&flow.db).await?;
        tx.step_done(step);
        tx.event(
            id,
            "biometrics_deadline",
            json!({ "process_created": false, "attempts": step.attempts - 1 }),
        );
        let applied = decide::conclude_biometrics(
            &mut tx,
            flow,
            &onboarding,
            OnboardingState::Received,
            BiometricEvidence::TimedOut(None),
        )
        .await?;
        tx.commit().await?;
        return Ok(applied);
    };
    let request = CreateProcess {
        subject: UnicoSubject {
            code: person.cpf.clone(),
            name: person.name.clone().unwrap_or_default(),
            gender: person.gender.clone(),
            birth_date: person.birth_date.clone(),
            email: person.email.clone(),
            phone: person.phone.clone(),
        },
        image_base64: selfie,
    };
    let (answer, made) = capture(
        flow.unico
            .create_process(&request, CallContext::onboarding(id)),
    )
    .await;

    let mut tx = crate::store::begin(&flow.db).await?;
    tx.calls(&flow.cipher, made);
    let applied = match answer {
        Ok(result) => {
            tx.step_done(step);
            tx.new_process(id, &result);
            tx.event(
                id,
                "process_created",
                json!({ "process_id": result.process_id, "status": result.status }),
            );
            if result.is_final() {
                decide::conclude_biometrics(
                    &mut tx,
                    flow,
                    &onboarding,
                    OnboardingState::Received,
                    BiometricEvidence::Received(result),
                )
                .await?
            } else {
                // A notification that came before the process was stored makes it due at once.
                let early = webhooks::arrived_early(&mut *tx, &result.process_id).await?;
                decide::apply(
                    &mut tx,
                    id,
                    OnboardingState::Received,
                    OnboardingEvent::ProcessOpen,
                    |kind| match kind {
                        StepKind::ReadProcess if early => When::Now,
                        kind => decide::default_timing(flow, kind),
                    },
                )
                .await?
            }
        }
        Err(error) if error.capture_problem().is_some() => {
            let code = error.capture_problem().unwrap_or_default().to_owned();
            tx.step_done(step);
            tx.event(id, "process_refused", json!({ "error": error.code() }));
            decide::conclude_biometrics(
                &mut tx,
                flow,
                &onboarding,
                OnboardingState::Received,
                BiometricEvidence::CaptureRefused { code },
            )
            .await?
        }
        Err(error) => {
            let code = error.code();
            let wait = steps::retry_in(retry_wait(flow, step), error.retry_after(), Some(left));
            if error.is_transient() {
                tracing::warn!(error = %code, attempt = step.attempts, retry_in_ms = wait.as_millis() as u64, "CreateProcess failed; retrying");
            } else {
                tracing::error!(error = %code, attempt = step.attempts, retry_in_ms = wait.as_millis() as u64, "unico refused CreateProcess; retrying until the deadline (check the unico configuration)");
            }
            let detail = json!({
                "error": code,
                "transient": error.is_transient(),
                "retry_in_ms": wait.as_millis() as u64,
            });
            tx.event(id, "process_create_failed", detail);
            steps::reschedule(&mut tx, step, wait, Some(&code)).await?;
            Applied::default()
        }
    };
    tx.commit().await?;
    Ok(applied)
}

/// What a webhook for one of unico's processes found.
pub enum Notified {
    /// The process is open: its read is claimed for this replica, committed, for the caller to
    /// run at once (`steps::spawn`) with the rows read here; `None` when a runner holds the step,
    /// which then runs again after its current run.
    Open(Option<(Step, Carried)>),
    /// The process is stored and already final.
    Final,
    /// No process by that id: unknown to veredito, or not stored yet (unico can notify before
    /// CreateProcess's transaction commits).
    Unknown,
}

/// unico notified that process `process_id` may be over (`state` as it said): when the process
/// is open, the notification goes on the onboarding's timeline and the read step is claimed, so
/// the answer does not wait for a runner to wake. With `payload`, the notification is recorded
/// too (the webhook's own delivery; a second look for an early one passes None). One statement,
/// committed on its own.
pub async fn webhook_arrived(
    flow: &Services,
    process_id: &str,
    state: Option<&str>,
    payload: Option<Option<serde_json::Value>>,
) -> Result<Notified, FlowError> {
    let arrival =
        processes::notified(&flow.db, process_id, state, payload, flow.step_lease()).await?;
    Ok(match arrival.found {
        None => Notified::Unknown,
        Some((_, process)) if process.final_ => Notified::Final,
        // The read takes the rows read here instead of reading them again.
        Some(rows) => Notified::Open(
            arrival
                .claimed
                .map(|step| (step, Carried::Process(Box::new(rows)))),
        ),
    })
}

/// Reads unico's process of onboarding `id` and applies what it says. `carried`: the onboarding
/// and process as the webhook that woke this read found them, instead of reading them again.
pub async fn read_process(
    flow: &Services,
    step: &Step,
    id: Uuid,
    carried: Option<(OnboardingRow, ProcessRow)>,
) -> Result<Applied, FlowError> {
    let found = match carried {
        Some(rows) => Some(rows),
        None => processes::with_onboarding(&flow.db, id).await?,
    };
    let Some((onboarding, process)) = found else {
        steps::complete(&flow.db, step).await?;
        return Ok(Applied::default());
    };
    if onboarding.state != OnboardingState::Biometrics.as_str() || process.final_ {
        steps::complete(&flow.db, step).await?;
        return Ok(Applied::default());
    }
    let left = left_before(flow.settings.policy.biometrics_deadline, process.created_at);
    let (answer, made) = capture(
        flow.unico
            .get_process(&process.process_id, CallContext::onboarding(id)),
    )
    .await;

    let mut tx = crate::store::begin(&flow.db).await?;
    tx.calls(&flow.cipher, made);
    let (kind, detail) = match &answer {
        Ok(result) => (
            "poll",
            json!({ "status": result.status, "final": result.is_final() }),
        ),
        Err(error) => ("poll_failed", json!({ "error": error.code() })),
    };
    tx.event(id, kind, detail);
    let concluded = match answer {
        Ok(result) if result.is_final() => {
            Some((Some(result.clone()), BiometricEvidence::Received(result)))
        }
        Ok(result) if left.is_zero() => Some((
            Some(result.clone()),
            BiometricEvidence::TimedOut(Some(result)),
        )),
        Err(_) if left.is_zero() => Some((
            None,
            BiometricEvidence::TimedOut(Some(process.result.0.clone())),
        )),
        Ok(result) => {
            crate::metrics::poll("open");
            processes::record_poll(&mut *tx, &process.process_id, Some(&result), None).await?;
            steps::reschedule(&mut tx, step, retry_wait(flow, step).min(left), None).await?;
            None
        }
        Err(error) => {
            crate::metrics::poll("error");
            let code = error.code();
            let wait = steps::retry_in(retry_wait(flow, step), error.retry_after(), Some(left));
            tracing::warn!(error = %code, attempt = step.attempts, "GetProcess failed; reading again later");
            processes::record_poll(&mut *tx, &process.process_id, None, Some(&code)).await?;
            steps::reschedule(&mut tx, step, wait, Some(&code)).await?;
            None
        }
    };
    let applied = match concluded {
        None => Applied::default(),
        Some((last, evidence)) => {
            crate::metrics::poll(if matches!(evidence, BiometricEvidence::TimedOut(_)) {
                "deadline"
            } else {
                "final"
            });
            tx.step_done(step);
            tx.finish_process(
                &process.process_id,
                last.as_ref().unwrap_or(&process.result.0),
            )
            .await?;
            decide::conclude_biometrics(
                &mut tx,
                flow,
                &onboarding,
                OnboardingState::Biometrics,
                evidence,
            )
            .await?
        }
    };
    tx.commit().await?;
    Ok(applied)
}
