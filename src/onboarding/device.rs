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

use crate::app::AppState;
use crate::domain::Cpf;
use crate::domain::evidence::{BiometricEvidence, DeviceEvidence, DeviceRegistration, Evidence};
use crate::onboarding::{FlowError, decide};
use crate::providers::CallContext;
use crate::providers::qitech::{
    Created, NewAccount, NewDevice, NewPerson, QitechError, Registered, Sent, ValidationEvent,
};
use crate::providers::zro::RiskSignal;
use crate::store::device_validations::{self, ValidationRow};
use crate::store::devices::{self, RegistrationRow, SignalRow, step};
use crate::store::{StoreError, events, onboardings, processes};

/// The biometric verdict approved: instead of deciding, move the onboarding to the device stage
/// and queue its registration, in one transaction (closing the unico process with it).
#[tracing::instrument(skip_all, fields(onboarding_id = %onboarding_id))]
pub async fn begin_registration(
    st: &AppState,
    onboarding_id: Uuid,
    evidence: &Evidence,
    process_id: Option<&str>,
) -> Result<(), FlowError> {
    let mut tx = st.db.begin().await?;
    if let (Some(process_id), BiometricEvidence::Received(result)) =
        (process_id, &evidence.biometrics)
    {
        processes::finish(&mut *tx, process_id, result).await?;
    }
    let queued = devices::enter_device_stage(
        &mut tx,
        onboarding_id,
        &evidence.biometrics,
        st.settings.policy.device_deadline,
    )
    .await?;
    if !queued {
        // Another path got here first; its registration is the one that counts.
        return Ok(());
    }
    events::record(
        &mut *tx,
        onboarding_id,
        "device_registration_queued",
        json!({}),
    )
    .await?;
    tx.commit().await?;
    tracing::info!("biometrics approved; registering the device with QI Tech");
    // The first attempt runs here, so a quick QI Tech answer reaches a caller still waiting for
    // the verdict; anything slower or failing is carried on by the worker.
    match devices::claim_registration(&st.db, onboarding_id, registration_lease(st)).await? {
        Some(row) => run_registration(st, row).await,
        None => {
            st.device_wake.notify_one();
            Ok(())
        }
    }
}

/// Up to four sequential calls (account, person, device, read-back) fit in one claim.
pub fn registration_lease(st: &AppState) -> Duration {
    st.settings.qitech.timeout * 4 + Duration::from_secs(5)
}

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
enum Step {
    /// Go on with the next step now.
    Next(&'static str),
    /// Look again later (pending analysis).
    Later(DeviceRegistration),
    /// QI Tech's answer is final.
    Final(DeviceRegistration),
}

/// Runs a claimed registration as far as it goes now: through the steps until QI Tech answers
/// finally (decide), pending (read back later) or fails (retry later, or decide at the deadline).
#[tracing::instrument(skip_all, fields(onboarding_id = %row.onboarding_id, step = %row.step))]
pub async fn run_registration(st: &AppState, row: RegistrationRow) -> Result<(), FlowError> {
    let id = row.onboarding_id;
    let Some(onboarding) = onboardings::get(&st.db, id).await? else {
        devices::finish_registration(&st.db, id).await?;
        return Ok(());
    };
    if onboarding.state == "decided" {
        devices::finish_registration(&st.db, id).await?;
        return Ok(());
    }
    let device = device_input(&onboarding.device);
    let mut current = row.step.clone();
    loop {
        let result = registration_step(st, &row, &onboarding, &device, &current).await;
        match result {
            Ok(Step::Next(next)) => {
                // The claim is renewed, not released: this run goes on with the next step, and
                // a worker must not pick the row up meanwhile.
                devices::advance(&st.db, id, next, None, registration_lease(st)).await?;
                current = next.to_owned();
            }
            Ok(Step::Final(registration)) => {
                events::record(
                    &st.db,
                    id,
                    "device_registration_answered",
                    registration_event(&registration),
                )
                .await?;
                return conclude(
                    st,
                    &row,
                    &onboarding,
                    DeviceEvidence::Answered(registration),
                )
                .await;
            }
            Ok(Step::Later(registration)) if row.past_deadline => {
                events::record(
                    &st.db,
                    id,
                    "device_registration_deadline",
                    registration_event(&registration),
                )
                .await?;
                return conclude(
                    st,
                    &row,
                    &onboarding,
                    DeviceEvidence::PendingPastDeadline(registration),
                )
                .await;
            }
            Ok(Step::Later(registration)) => {
                events::record(
                    &st.db,
                    id,
                    "device_registration_pending",
                    registration_event(&registration),
                )
                .await?;
                let wait = retry_delay(st, &row);
                devices::advance(&st.db, id, step::READ_BACK, Some(&registration), wait).await?;
                return Ok(());
            }
            Err(error) => return registration_failed(st, &row, &onboarding, &current, error).await,
        }
    }
}

async fn registration_step(
    st: &AppState,
    row: &RegistrationRow,
    onboarding: &onboardings::OnboardingRow,
    device: &DeviceInput,
    current: &str,
) -> Result<Step, StepError> {
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
            Ok(Step::Next(step::PERSON))
        }
        step::PERSON => {
            let person = onboarding
                .person(&st.cipher)?
                .ok_or(StepError::PersonErased)?;
            let cpf = Cpf::parse(&person.cpf).map_err(|_| StepError::PersonErased)?;
            let created = st
                .qitech
                .create_person(
                    &NewPerson {
                        account_id,
                        person_id,
                        document_number: &cpf.punctuated(),
                        name: &person.name,
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
            Ok(Step::Next(step::DEVICE))
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
                Registered::AlreadyRegistered => Ok(Step::Next(step::READ_BACK)),
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

fn classify(registration: DeviceRegistration) -> Step {
    if registration.analysis_status == "pending" {
        Step::Later(registration)
    } else {
        Step::Final(registration)
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

async fn registration_failed(
    st: &AppState,
    row: &RegistrationRow,
    onboarding: &onboardings::OnboardingRow,
    current: &str,
    error: StepError,
) -> Result<(), FlowError> {
    let id = row.onboarding_id;
    let transient = match &error {
        StepError::Qitech(e) => e.is_transient(),
        StepError::PersonErased => false,
        StepError::Store(StoreError::Database(_)) => true,
        StepError::Store(_) => false,
    };
    events::record(
        &st.db,
        id,
        "device_registration_failed",
        json!({ "step": current, "error": error.to_string(), "transient": transient }),
    )
    .await?;
    if transient && !row.past_deadline {
        tracing::warn!(error = %error, step = current, "QI Tech device registration failed; retrying later");
        devices::registration_failed(&st.db, id, &error.to_string(), retry_delay(st, row)).await?;
        return Ok(());
    }
    tracing::warn!(error = %error, step = current, transient, "QI Tech device registration gave up");
    // Nothing unknown is approved: a registration that never got a final answer is reviewed.
    let unanswered = DeviceRegistration {
        status: "unknown".into(),
        analysis_status: if transient {
            "unavailable".into()
        } else {
            "error".into()
        },
        reason: Some(format!("registration_failed_at_{current}")),
        reason_description: Some(error.to_string()),
    };
    let evidence = match row.registration.as_ref().map(|r| r.0.clone()) {
        Some(last) if transient => DeviceEvidence::PendingPastDeadline(last),
        _ if transient => DeviceEvidence::PendingPastDeadline(unanswered),
        _ => DeviceEvidence::Answered(DeviceRegistration {
            status: "not_registered".into(),
            ..unanswered
        }),
    };
    conclude(st, row, onboarding, evidence).await
}

/// The final decision, made on the approved biometrics and QI Tech's answer.
async fn conclude(
    st: &AppState,
    row: &RegistrationRow,
    onboarding: &onboardings::OnboardingRow,
    device: DeviceEvidence,
) -> Result<(), FlowError> {
    let evidence = Evidence {
        risk_signals: onboarding.risk_signals(),
        biometrics: row.biometrics.0.clone(),
        device,
    };
    let verdict = st.policy.evaluate(&evidence);
    decide::record_verdict(st, row.onboarding_id, &verdict, &evidence, None).await?;
    devices::finish_registration(&st.db, row.onboarding_id).await?;
    Ok(())
}

/// qitech.poll_initial doubled per attempt up to poll_max, ±20% so registrations started
/// together do not call together; never past the deadline, where the job decides anyway.
fn retry_delay(st: &AppState, row: &RegistrationRow) -> Duration {
    let wait = backoff(
        st.settings.qitech.poll_initial,
        st.settings.qitech.poll_max,
        row.attempts,
    );
    let left = (row.deadline_at - chrono::Utc::now())
        .to_std()
        .unwrap_or_default();
    wait.min(left)
}

fn backoff(initial: Duration, max: Duration, attempt: i32) -> Duration {
    let exponent = attempt.clamp(1, 16) as u32 - 1;
    let base = initial.saturating_mul(1u32 << exponent).min(max);
    base.mul_f64(0.8 + fastrand::f64() * 0.4)
}

/// Sends a claimed Open Finance risk signal. The verdict stands whatever Zro answers.
#[tracing::instrument(skip_all, fields(onboarding_id = %row.onboarding_id))]
pub async fn send_risk_signal(st: &AppState, row: SignalRow) -> Result<(), FlowError> {
    let id = row.onboarding_id;
    let Some(onboarding) = onboardings::get(&st.db, id).await? else {
        devices::signal_attempted(
            &st.db,
            id,
            "failed",
            None,
            Some("onboarding not found"),
            None,
        )
        .await?;
        return Ok(());
    };
    let device = device_input(&onboarding.device);
    let signals = onboarding.risk_signals().unwrap_or_default();
    let signal = RiskSignal {
        enrollment_id: &row.enrollment_id,
        transaction_uuid: row.transaction_uuid,
        device_id: &device.device_id,
        signals: &signals,
    };
    match st
        .zro
        .send_risk_signal(&signal, CallContext::onboarding(id))
        .await
    {
        Ok(status) => {
            devices::signal_attempted(&st.db, id, "sent", Some(status), None, None).await?;
            events::record(
                &st.db,
                id,
                "open_finance_signal_sent",
                json!({ "attempts": row.attempts }),
            )
            .await?;
        }
        Err(error) => {
            let zro = &st.settings.zro;
            let retry = error.is_transient() && (row.attempts as u32) < zro.max_attempts;
            let retry_in =
                retry.then(|| backoff(zro.retry_initial, Duration::from_secs(600), row.attempts));
            let status = if retry { "pending" } else { "failed" };
            tracing::warn!(error = %error, attempts = row.attempts, retrying = retry, "Open Finance risk signal failed");
            devices::signal_attempted(
                &st.db,
                id,
                status,
                error.http_status(),
                Some(&error.to_string()),
                retry_in,
            )
            .await?;
            events::record(
                &st.db,
                id,
                "open_finance_signal_failed",
                json!({ "attempts": row.attempts, "error": error.to_string(), "retrying": retry }),
            )
            .await?;
        }
    }
    Ok(())
}

/// A device validation request, checked.
pub struct ValidationRequest {
    pub reference: Option<String>,
    pub account_id: String,
    pub person_id: String,
    pub session_id: String,
    pub face_recognition_key: Option<String>,
}

/// Stores the validation (or finds the one stored under the same Idempotency-Key) and, when new,
/// sends the event to QI Tech at once. Answers its id.
#[tracing::instrument(skip_all, fields(device_validation_id))]
pub async fn submit_validation(
    st: &AppState,
    client_name: &str,
    idempotency_key: &str,
    request_hash: &[u8],
    request: &ValidationRequest,
) -> Result<Uuid, FlowError> {
    let inserted = device_validations::insert(
        &st.db,
        device_validations::NewValidation {
            client_name,
            idempotency_key,
            request_hash,
            reference: request.reference.as_deref(),
            account_id: &request.account_id,
            person_id: &request.person_id,
            session_id: &request.session_id,
            face_recognition_key: request.face_recognition_key.as_deref(),
        },
        validation_lease(st),
    )
    .await?;
    match inserted {
        device_validations::Inserted::New(id) => {
            tracing::Span::current().record("device_validation_id", tracing::field::display(id));
            if let Some(claimed) =
                device_validations::claim_one(&st.db, id, validation_lease(st)).await?
            {
                advance_validation(st, claimed).await?;
            }
            Ok(id)
        }
        device_validations::Inserted::Existing {
            same_body: false, ..
        } => Err(FlowError::IdempotencyConflict),
        device_validations::Inserted::Existing {
            id,
            same_body: true,
        } => Ok(id),
    }
}

pub fn validation_lease(st: &AppState) -> Duration {
    st.settings.qitech.timeout * 2 + Duration::from_secs(5)
}

/// What an analysis status means for the caller. Only the documented final statuses conclude;
/// anything else, known or not, keeps the validation open and is never approved.
pub fn validation_outcome(analysis_status: &str) -> Option<&'static str> {
    match analysis_status {
        "automatically_approved" | "manually_approved" => Some("approved"),
        "automatically_reproved" | "manually_reproved" => Some("rejected"),
        _ => None,
    }
}

/// Sends the event (first time, or again after a failure) or reads it back, and stores where it
/// stands.
#[tracing::instrument(skip_all, fields(device_validation_id = %row.id))]
pub async fn advance_validation(st: &AppState, row: ValidationRow) -> Result<(), FlowError> {
    let ctx = CallContext {
        onboarding_id: None,
        device_validation_id: Some(row.id),
    };
    let answer = if row.sent {
        st.qitech.get_device_validation(row.event_id, ctx).await
    } else {
        let event = ValidationEvent {
            event_id: row.event_id,
            account_id: &row.account_id,
            person_id: &row.person_id,
            session_id: &row.session_id,
            face_recognition_key: row.face_recognition_key.as_deref(),
            event_date: row.event_date,
        };
        match st.qitech.send_device_validation(&event, ctx).await {
            Ok(Sent::Answered(result)) => Ok(result),
            Ok(Sent::AlreadySent) => {
                // An earlier send reached QI Tech although its answer did not reach us.
                device_validations::mark_sent(&st.db, row.id).await?;
                st.qitech.get_device_validation(row.event_id, ctx).await
            }
            Err(e) => Err(e),
        }
    };
    let wait = backoff(
        st.settings.qitech.poll_initial,
        st.settings.qitech.poll_max,
        row.attempts,
    );
    match answer {
        Ok(result) => {
            let outcome = validation_outcome(&result.analysis_status);
            tracing::info!(analysis_status = %result.analysis_status, outcome = outcome.unwrap_or("processing"), "device validation answered");
            device_validations::record_answer(
                &st.db,
                row.id,
                &result.analysis_status,
                result.reason.as_deref(),
                outcome,
                wait,
            )
            .await?;
        }
        Err(error)
            if !row.sent && !error.is_transient() && !matches!(error, QitechError::NotFound) =>
        {
            // QI Tech refuses the event itself; sending it again would not change that.
            tracing::warn!(error = %error, "QI Tech refused the device validation event");
            device_validations::record_answer(
                &st.db,
                row.id,
                "not_sent",
                Some(&error.to_string()),
                Some("rejected"),
                wait,
            )
            .await?;
        }
        Err(error) => {
            tracing::warn!(error = %error, "device validation call failed; trying again later");
            device_validations::record_failure(&st.db, row.id, &error.to_string(), wait).await?;
        }
    }
    Ok(())
}
