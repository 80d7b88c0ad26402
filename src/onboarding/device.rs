//! The device stage: QI Tech device registration once everything else approved, the Open
//! Finance risk signal to Zro after an approval, and device validations of returning users.
//!
//! Registration runs from a durable job (`device_registrations`), one step per QI Tech call, each
//! step stored as soon as QI Tech confirms it: a retry resumes where the last attempt stopped and
//! the device POST is only repeated after it failed. A 409 on it means an earlier attempt did
//! register the device, so it is read back instead of registered again.

use std::time::Duration;

use serde_json::{Value, json};
use uuid::Uuid;

use crate::domain::Cpf;
use crate::domain::evidence::{DeviceEvidence, DeviceRegistration};
use crate::domain::transitions::{OnboardingEvent, OnboardingState, StepKind};
use crate::onboarding::applied::Applied;
use crate::onboarding::decide;
use crate::onboarding::error::FlowError;
use crate::onboarding::services::Services;
use crate::providers::qitech::{
    Created, NewAccount, NewDevice, NewPerson, QitechError, Registered,
};
use crate::providers::zro::RiskSignal;
use crate::providers::{CallContext, capture};
use crate::store::Tx;
use crate::store::devices::{self, RegistrationRow, step};
use crate::store::steps::{self, Step, When};
use crate::store::{StoreError, onboardings};

/// The device fields of the onboarding request, as stored.
struct DeviceInput {
    device_id: String,
    session_id: String,
    face_recognition_key: Option<String>,
}

fn device_input(device: &Value) -> DeviceInput {
    let text = |name: &str| device.get(name).and_then(Value::as_str).map(str::to_owned);
    DeviceInput {
        device_id: text("device_id").unwrap_or_default(),
        session_id: text("session_id").unwrap_or_default(),
        face_recognition_key: text("face_recognition_key").filter(|k| !k.is_empty()),
    }
}

/// What a step of the registration led to.
enum Step_ {
    /// Go on with the next step now.
    Next(&'static str),
    /// Look again later (pending analysis).
    Later(DeviceRegistration),
    /// QI Tech's answer is final.
    Final(DeviceRegistration),
}

/// Runs the registration as far as it goes now: through QI Tech's calls until it answers finally
/// (decide), pending (read back later) or fails (retry later, or decide at the deadline). Progress
/// is stored once, with what it led to: every call repeats safely (QI Tech answers 409 for an
/// account, person or device it has), so a run cut short only repeats calls.
///
/// `carried` is the onboarding and registration as the step before this one on this replica
/// committed them; without it they are read.
#[tracing::instrument(skip_all, fields(onboarding_id = %id, step = %step.kind))]
pub async fn register(
    flow: &Services,
    step: &Step,
    id: Uuid,
    carried: Option<(onboardings::OnboardingRow, RegistrationRow)>,
) -> Result<Applied, FlowError> {
    let found = match carried {
        Some(rows) => Some(rows),
        None => devices::registration_with_onboarding(&flow.db, id).await?,
    };
    let Some((onboarding, row)) = found else {
        steps::complete(&flow.db, step).await?;
        return Ok(Applied::default());
    };
    if onboarding.state != OnboardingState::Device.as_str() || row.step == step::DONE {
        steps::complete(&flow.db, step).await?;
        return Ok(Applied::default());
    }
    let device = device_input(&onboarding.device);
    let ((result, at), made) = capture(async {
        let mut current = row.step.clone();
        loop {
            match registration_step(flow, &row, &onboarding, &device, &current).await {
                Ok(Step_::Next(next)) => current = next.to_owned(),
                other => return (other, current),
            }
        }
    })
    .await;

    let mut tx = crate::store::begin(&flow.db).await?;
    tx.calls(&flow.cipher, made);
    let applied = match result {
        Ok(Step_::Final(registration)) => {
            let answered = DeviceEvidence::Answered(registration);
            finish(&mut tx, flow, step, &row, &onboarding, answered).await?
        }
        Ok(Step_::Later(registration)) if row.past_deadline => {
            let pending = DeviceEvidence::PendingPastDeadline(registration);
            finish(&mut tx, flow, step, &row, &onboarding, pending).await?
        }
        Ok(Step_::Later(registration)) => {
            tx.event(
                id,
                "device_registration_pending",
                registration_event(&registration),
            );
            devices::set_registration(&mut *tx, id, step::READ_BACK, Some(&registration), None)
                .await?;
            let wait = retry_delay(flow, &row, step);
            if step.kind == StepKind::ReadDevice {
                steps::reschedule(&mut tx, step, wait, None).await?;
                Applied::default()
            } else {
                tx.step_done(step);
                decide::apply(
                    &mut tx,
                    id,
                    OnboardingState::Device,
                    OnboardingEvent::DeviceAnalysisPending,
                    |_| When::In(wait),
                )
                .await?
            }
        }
        Ok(Step_::Next(_)) => unreachable_next(),
        Err(error) => {
            registration_failed(&mut tx, flow, step, &row, &onboarding, &at, error).await?
        }
    };
    tx.commit().await?;
    Ok(applied)
}

/// QI Tech's answer (or the deadline) decides: the registration is closed with the decision.
async fn finish(
    tx: &mut Tx,
    flow: &Services,
    step: &Step,
    row: &RegistrationRow,
    onboarding: &onboardings::OnboardingRow,
    device: DeviceEvidence,
) -> Result<Applied, FlowError> {
    let (kind, registration) = match &device {
        DeviceEvidence::Answered(r) => ("device_registration_answered", r),
        DeviceEvidence::PendingPastDeadline(r) => ("device_registration_deadline", r),
        DeviceEvidence::NotRun => return Ok(Applied::default()),
    };
    let id = row.onboarding_id;
    tx.event(id, kind, registration_event(registration));
    tx.finish_registration(id, Some(registration), None).await?;
    tx.step_done(step);
    decide::conclude_device(
        tx,
        flow,
        onboarding,
        row.review_case_id,
        row.biometrics.0.clone(),
        device,
    )
    .await
}

fn unreachable_next() -> Applied {
    // The loop above only stops on a final, pending or failed call.
    Applied::default()
}

async fn registration_step(
    st: &Services,
    row: &RegistrationRow,
    onboarding: &onboardings::OnboardingRow,
    device: &DeviceInput,
    current: &str,
) -> Result<Step_, StepError> {
    let ctx = CallContext::onboarding(row.onboarding_id);
    let account_id = onboarding.account_id.as_str();
    let person_id = onboarding.person_id.as_str();
    match current {
        step::ACCOUNT => {
            let created = st
                .qitech
                .create_account(
                    &NewAccount {
                        account_id,
                        registration_date: row.registration_date,
                    },
                    ctx,
                )
                .await?;
            tracing::debug!(
                existed = created == Created::AlreadyExisted,
                "QI Tech account ready"
            );
            Ok(Step_::Next(step::PERSON))
        }
        step::PERSON => {
            let person = onboarding
                .person(&st.cipher)?
                .ok_or(StepError::PersonErased)?;
            let cpf = Cpf::parse(&person.cpf).map_err(|_| StepError::PersonErased)?;
            let name = person.name.as_deref().ok_or(StepError::PersonErased)?;
            let created = st
                .qitech
                .create_person(
                    &NewPerson {
                        account_id,
                        person_id,
                        document_number: &cpf.punctuated(),
                        name,
                        email: person.email.as_deref(),
                        phone: person.phone.as_deref(),
                        registration_date: row.registration_date,
                    },
                    ctx,
                )
                .await?;
            tracing::debug!(
                existed = created == Created::AlreadyExisted,
                "QI Tech person ready"
            );
            Ok(Step_::Next(step::DEVICE))
        }
        step::DEVICE => {
            let person = onboarding
                .person(&st.cipher)?
                .ok_or(StepError::PersonErased)?;
            let cpf = Cpf::parse(&person.cpf).map_err(|_| StepError::PersonErased)?;
            let registered = st
                .qitech
                .register_device(
                    &NewDevice {
                        account_id,
                        person_id,
                        device_id: &device.device_id,
                        session_id: &device.session_id,
                        face_recognition_key: device.face_recognition_key.as_deref(),
                        document_number: Some(&cpf.punctuated()),
                        registration_date: row.registration_date,
                    },
                    ctx,
                )
                .await?;
            match registered {
                Registered::Answered(registration) => Ok(classify(registration)),
                // Registered by an attempt whose answer never arrived: never POST it again.
                Registered::AlreadyRegistered => Ok(Step_::Next(step::READ_BACK)),
            }
        }
        step::READ_BACK => {
            let registration = st
                .qitech
                .get_device(account_id, person_id, &device.device_id, ctx)
                .await?;
            Ok(classify(registration))
        }
        other => Err(StepError::Store(StoreError::Corrupt(format!(
            "unknown registration step `{other}`"
        )))),
    }
}

fn classify(registration: DeviceRegistration) -> Step_ {
    if registration.analysis_status == "pending" {
        Step_::Later(registration)
    } else {
        Step_::Final(registration)
    }
}

fn registration_event(registration: &DeviceRegistration) -> Value {
    json!({ "status": registration.status, "analysis_status": registration.analysis_status, "reason": registration.reason })
}

#[derive(Debug, thiserror::Error)]
enum StepError {
    #[error(transparent)]
    Qitech(#[from] QitechError),
    #[error("the person's data is no longer stored")]
    PersonErased,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl StepError {
    fn code(&self) -> String {
        match self {
            StepError::Qitech(e) => e.code(),
            StepError::PersonErased => "person_erased".into(),
            StepError::Store(_) => "store".into(),
        }
    }
}

async fn registration_failed(
    tx: &mut Tx,
    flow: &Services,
    step: &Step,
    row: &RegistrationRow,
    onboarding: &onboardings::OnboardingRow,
    current: &str,
    error: StepError,
) -> Result<Applied, FlowError> {
    let id = row.onboarding_id;
    let transient = match &error {
        StepError::Qitech(e) => e.is_transient(),
        StepError::PersonErased => false,
        StepError::Store(StoreError::Database(_)) => true,
        StepError::Store(_) => false,
    };
    let code = error.code();
    tx.event(
        id,
        "device_registration_failed",
        json!({ "step": current, "error": code, "transient": transient }),
    );
    if transient && !row.past_deadline {
        tracing::warn!(error = %code, step = current, "QI Tech device registration failed; retrying later");
        devices::set_registration(&mut **tx, id, current, None, Some(&code)).await?;
        steps::reschedule(tx, step, retry_delay(flow, row, step), Some(&code)).await?;
        return Ok(Applied::default());
    }
    tracing::warn!(error = %code, step = current, transient, "QI Tech device registration gave up");
    // Nothing unknown is approved: a registration that never got a final answer is reviewed.
    let unanswered = DeviceRegistration {
        status: "unknown".into(),
        analysis_status: if transient {
            "unavailable".into()
        } else {
            "error".into()
        },
        reason: Some(format!("registration_failed_at_{current}")),
        reason_description: Some(code.clone()),
    };
    let evidence = match row.registration.as_ref().map(|r| r.0.clone()) {
        Some(last) if transient => DeviceEvidence::PendingPastDeadline(last),
        _ if transient => DeviceEvidence::PendingPastDeadline(unanswered),
        _ => DeviceEvidence::Answered(DeviceRegistration {
            status: "not_registered".into(),
            ..unanswered
        }),
    };
    tx.finish_registration(id, None, Some(&code)).await?;
    tx.step_done(step);
    decide::conclude_device(
        tx,
        flow,
        onboarding,
        row.review_case_id,
        row.biometrics.0.clone(),
        evidence,
    )
    .await
}

/// qitech.poll_initial doubled per attempt up to poll_max, never past the deadline, where the
/// step decides anyway.
fn retry_delay(flow: &Services, row: &RegistrationRow, step: &Step) -> Duration {
    let wait = steps::backoff(
        flow.settings.qitech.poll_initial,
        flow.settings.qitech.poll_max,
        step.attempts,
    );
    let left = (row.deadline_at - chrono::Utc::now())
        .to_std()
        .unwrap_or_default();
    wait.min(left)
}

/// Sends the Open Finance risk signal. The verdict stands whatever Zro answers.
#[tracing::instrument(skip_all, fields(onboarding_id = %id))]
pub async fn send_risk_signal(
    flow: &Services,
    step: &Step,
    id: Uuid,
) -> Result<Applied, FlowError> {
    let signal_row = devices::signal(&flow.db, id).await?;
    let onboarding = onboardings::get(&flow.db, id).await?;
    let (Some(row), Some(onboarding)) = (signal_row, onboarding) else {
        steps::complete(&flow.db, step).await?;
        return Ok(Applied::default());
    };
    if row.status != "pending" {
        steps::complete(&flow.db, step).await?;
        return Ok(Applied::default());
    }
    let device = device_input(&onboarding.device);
    let signals = onboarding.risk_signals().unwrap_or_default();
    let signal = RiskSignal {
        enrollment_id: &row.enrollment_id,
        transaction_uuid: row.transaction_uuid,
        device_id: &device.device_id,
        signals: &signals,
    };
    let (answer, made) = capture(
        flow.zro
            .send_risk_signal(&signal, CallContext::onboarding(id)),
    )
    .await;
    let mut tx = crate::store::begin(&flow.db).await?;
    tx.calls(&flow.cipher, made);
    match answer {
        Ok(status) => {
            devices::signal_attempted(&mut *tx, id, step.attempts, "sent", Some(status), None)
                .await?;
            tx.event(
                id,
                "open_finance_signal_sent",
                json!({ "attempts": step.attempts }),
            );
            tx.step_done(step);
        }
        Err(error) => {
            let zro = &flow.settings.zro;
            let code = error.code();
            let retry = error.is_transient() && (step.attempts as u32) < zro.max_attempts;
            tracing::warn!(error = %code, attempts = step.attempts, retrying = retry, "Open Finance risk signal failed");
            let status = if retry { "pending" } else { "failed" };
            devices::signal_attempted(
                &mut *tx,
                id,
                step.attempts,
                status,
                error.http_status(),
                Some(&code),
            )
            .await?;
            tx.event(
                id,
                "open_finance_signal_failed",
                json!({ "attempts": step.attempts, "error": code, "retrying": retry }),
            );
            if retry {
                let wait =
                    steps::backoff(zro.retry_initial, Duration::from_secs(600), step.attempts);
                steps::reschedule(&mut tx, step, wait, Some(&code)).await?;
            } else {
                tx.step_done(step);
            }
        }
    }
    tx.commit().await?;
    Ok(Applied::default())
}
