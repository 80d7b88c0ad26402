//! Taking a request in: it is stored with its first step in one transaction, and that step is
//! started on this replica. No provider is called before the caller's answer is decided on.

use uuid::Uuid;

use crate::domain::evidence::{BiometricEvidence, DeviceEvidence, Evidence};
use crate::domain::transitions::{
    self, OnboardingEvent, OnboardingState, ValidationEvent, ValidationState,
};
use crate::onboarding::applied::Carried;
use crate::onboarding::decide;
use crate::onboarding::error::FlowError;
use crate::onboarding::request::{ValidOnboarding, ValidationRequest};
use crate::onboarding::services::{Flow, Services};
use crate::onboarding::steps;
use crate::onboarding::view::OnboardingView;
use crate::onboarding::waiters::Waiter;
use crate::store::steps::Subject;
use crate::store::{StoreError, device_validations, onboardings};

/// An onboarding taken in: its id, whether it was decided when stored (None for one found under
/// the same Idempotency-Key, whose state is not looked at here), and the caller's registration
/// for its decision, made before any step could decide it.
pub struct Submitted {
    pub id: Uuid,
    pub decided: Option<bool>,
    pub waiter: Waiter,
    /// The answer, when the same transaction decided it (a device refused before unico).
    pub view: Option<Box<OnboardingView>>,
}

/// Stores the onboarding with its first step in one transaction and starts that step on this
/// replica, or finds the one stored under the same Idempotency-Key. The verdict may or may not
/// exist yet. No provider is called before this answers.
#[tracing::instrument(skip_all, fields(onboarding_id))]
pub async fn submit(
    flow: &Flow,
    client_name: &str,
    idempotency_key: &str,
    request_hash: &[u8],
    request: &ValidOnboarding,
) -> Result<Submitted, FlowError> {
    use secrecy::ExposeSecret;
    let links = crate::domain::link::values(
        &request.cpf,
        request
            .device
            .get("device_id")
            .and_then(|v| v.as_str())
            .unwrap_or_default(),
        request.person.phone.as_deref(),
        request.person.email.as_deref(),
    );
    let active = flow.policies.active();
    let questions = memory_questions(flow, &active);
    let mut tx = crate::store::begin(&flow.db).await?;
    let (inserted, stored) = onboardings::insert(
        &mut tx,
        &flow.cipher,
        onboardings::NewOnboarding {
            id: Uuid::new_v4(),
            client_name,
            idempotency_key,
            request_hash,
            reference: request.reference.as_deref(),
            person: &request.person,
            account_id: &request.account_id,
            person_id: &request.person_id,
            device: request.device.clone(),
            open_finance: request.open_finance.clone(),
            selfie: request.selfie.expose_secret(),
            links: &links,
            questions: questions.as_ref(),
        },
    )
    .await?;
    let id = match inserted {
        onboardings::Inserted::New(id) => id,
        onboardings::Inserted::Existing {
            same_body: false, ..
        } => return Err(FlowError::IdempotencyConflict),
        onboardings::Inserted::Existing {
            id,
            same_body: true,
        } => {
            tracing::Span::current().record("onboarding_id", tracing::field::display(id));
            tracing::info!("the same Idempotency-Key again: waiting on the stored onboarding");
            let waiter = flow.wake.waiters.register(id);
            return Ok(Submitted {
                id,
                decided: None,
                waiter,
                view: None,
            });
        }
    };
    tracing::Span::current().record("onboarding_id", tracing::field::display(id));
    // The figures the statement that stored it took, after its locks.
    let memory_value = stored.as_ref().and_then(|row| row.memory.clone());
    let memory = match (&questions, &memory_value) {
        (Some(_), Some(figures)) => Some(crate::store::figures::parse(figures.clone())?),
        (Some(_), None) => {
            return Err(
                StoreError::Corrupt("the risk-memory figures were not taken".into()).into(),
            );
        }
        (None, _) => None,
    };
    let mut applied = match active.screen(request.risk_signals.as_ref(), memory.as_ref()) {
        Some(verdict) => {
            let evidence = Evidence {
                risk_signals: request.risk_signals.clone(),
                biometrics: BiometricEvidence::NotRun,
                device: DeviceEvidence::NotRun,
                memory,
            };
            let Some(onboarding) = onboardings::get(&mut *tx, id).await? else {
                return Err(
                    StoreError::Corrupt("the onboarding just stored is gone".into()).into(),
                );
            };
            decide::record_verdict(
                &mut tx,
                flow,
                &onboarding,
                OnboardingState::Received,
                &verdict,
                &evidence,
                OnboardingEvent::Screened,
                decide::Decision::policy(),
            )
            .await?
        }
        None => {
            decide::apply(
                &mut tx,
                id,
                OnboardingState::Received,
                OnboardingEvent::Accepted,
                |kind| decide::default_timing(flow, kind),
            )
            .await?
        }
    };
    tx.commit().await?;
    if applied.decided {
        flow.wake.decided(id);
    }
    let waiter = flow.wake.waiters.register(id);
    // CreateProcess, when it runs here, sends what this transaction just stored.
    let kept = memory_value;
    let carried = stored.map(|row| {
        let row = onboardings::OnboardingRow {
            memory: kept,
            ..row
        };
        let selfie = secrecy::SecretString::from(request.selfie.expose_secret().to_owned());
        Carried::Received(Box::new((row, selfie)))
    });
    steps::spawn(flow, applied.steps, carried);
    Ok(Submitted {
        id,
        decided: Some(applied.decided),
        waiter,
        view: applied.view.take(),
    })
}

/// What the risk-memory rules of the versions in force (the active one and the one in shadow)
/// ask of a new onboarding's values; None when neither has such a rule. The statement that
/// stores the onboarding answers it after taking its locks, so every onboarding stored before
/// it under the same values counts, and none stored after.
fn memory_questions(
    flow: &Flow,
    active: &crate::policy::Policy,
) -> Option<crate::policy::memory::Questions> {
    let mut questions = active.memory.questions();
    if let Some(shadow) = flow.policies.shadow() {
        shadow.memory.ask(&mut questions);
    }
    (!questions.is_empty()).then_some(questions)
}

/// Whether `id` exists and is decided, without loading it all.
pub async fn is_decided(flow: &Services, id: Uuid) -> Result<Option<bool>, FlowError> {
    Ok(crate::store::onboardings::state(&flow.db, id)
        .await?
        .map(|s| s == OnboardingState::Decided.as_str()))
}

/// Stores the validation with its first step (or finds the one stored under the same
/// Idempotency-Key) and, when new, starts sending the event to QI Tech at once. Answers its id
/// and the started step, which the caller may wait for.
#[tracing::instrument(skip_all, fields(device_validation_id))]
pub async fn submit_validation(
    flow: &Flow,
    client_name: &str,
    idempotency_key: &str,
    request_hash: &[u8],
    request: &ValidationRequest,
) -> Result<(Uuid, Vec<tokio::task::JoinHandle<()>>), FlowError> {
    let mut tx = crate::store::begin(&flow.db).await?;
    let inserted = device_validations::insert(
        &mut tx,
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
    )
    .await?;
    match inserted {
        device_validations::Inserted::New(id) => {
            tracing::Span::current().record("device_validation_id", tracing::field::display(id));
            let (_, kinds) =
                transitions::validation(ValidationState::Processing, ValidationEvent::Accepted)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            let mut held = Vec::new();
            for kind in kinds {
                held.extend(
                    crate::store::steps::queue(
                        &mut tx,
                        kind,
                        Subject::Validation(id),
                        decide::default_timing(flow, kind),
                    )
                    .await?,
                );
            }
            tx.commit().await?;
            Ok((id, steps::spawn(flow, held, None)))
        }
        device_validations::Inserted::Existing {
            same_body: false, ..
        } => Err(FlowError::IdempotencyConflict),
        device_validations::Inserted::Existing {
            id,
            same_body: true,
        } => Ok((id, Vec::new())),
    }
}
