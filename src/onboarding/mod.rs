//! The onboarding flow: store the request, ask unico, and decide when the evidence is final.
//!
//! States: `received` (stored, unico not yet asked) -> `biometrics` (a unico process is open)
//! -> `device` (everything else approved; QI Tech registers the device) -> `decided`. A device
//! rejected on its risk signals goes straight to `decided`, and so does a process whose
//! CreateProcess answer is already final and does not approve.

pub mod decide;
pub mod device;
pub mod request;
pub mod view;
pub mod wait;

use std::time::Duration;

use serde_json::json;
use uuid::Uuid;

use crate::app::AppState;
use crate::domain::evidence::{BiometricEvidence, DeviceEvidence, Evidence};
use crate::providers::CallContext;
use crate::providers::unico::{CreateProcess, Subject, UnicoError};
use crate::store::{self, StoreError, events, onboardings, processes, webhooks};

pub use request::{OnboardingRequest, ValidOnboarding};

#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    #[error("this Idempotency-Key was used with a different body")]
    IdempotencyConflict,
    #[error("unico could not be reached: {0}")]
    ProviderUnavailable(UnicoError),
    #[error("unico refused veredito's request: {0}")]
    ProviderRefused(UnicoError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for FlowError {
    fn from(e: sqlx::Error) -> Self {
        FlowError::Store(StoreError::Database(e))
    }
}

/// Starts the onboarding, or resumes the one stored under the same Idempotency-Key. Answers its id;
/// the verdict may or may not exist yet.
#[tracing::instrument(skip_all, fields(onboarding_id))]
pub async fn submit(
    st: &AppState,
    client_name: &str,
    idempotency_key: &str,
    request_hash: &[u8],
    request: &ValidOnboarding,
) -> Result<Uuid, FlowError> {
    let inserted = onboardings::insert(
        &st.db,
        &st.cipher,
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
        },
    )
    .await?;
    let id = match inserted {
        onboardings::Inserted::New(id) => {
            tracing::Span::current().record("onboarding_id", tracing::field::display(id));
            events::record(&st.db, id, "received", json!({})).await?;
            if let Some(verdict) = st.policy.screen_device(request.risk_signals.as_ref()) {
                let evidence = Evidence {
                    risk_signals: request.risk_signals.clone(),
                    biometrics: BiometricEvidence::NotRun,
                    device: DeviceEvidence::NotRun,
                };
                decide::record_verdict(st, id, &verdict, &evidence, None).await?;
                return Ok(id);
            }
            id
        }
        onboardings::Inserted::Existing {
            same_body: false, ..
        } => return Err(FlowError::IdempotencyConflict),
        onboardings::Inserted::Existing {
            id,
            same_body: true,
        } => {
            tracing::Span::current().record("onboarding_id", tracing::field::display(id));
            tracing::info!("resuming onboarding under the same Idempotency-Key");
            id
        }
    };
    create_process(st, id, request).await?;
    Ok(id)
}

/// Creates the unico process unless one exists or another request is creating it right now.
/// Each process costs money, so the claim in the database, not this request, decides who calls.
async fn create_process(
    st: &AppState,
    id: Uuid,
    request: &ValidOnboarding,
) -> Result<(), FlowError> {
    let lease = st.settings.unico.timeout * 3 + Duration::from_secs(5);
    if !onboardings::claim_creation(&st.db, id, lease).await? {
        return Ok(());
    }
    let create = CreateProcess {
        subject: Subject {
            code: request.person.cpf.clone(),
            name: request.person.name.clone(),
            gender: request.person.gender.clone(),
            birth_date: request.person.birth_date.clone(),
            email: request.person.email.clone(),
            phone: request.person.phone.clone(),
        },
        image_base64: request.selfie.clone(),
    };
    match st
        .unico
        .create_process(&create, CallContext::onboarding(id))
        .await
    {
        Ok(result) => {
            let early = webhooks::arrived_early(&st.db, &result.process_id).await?;
            let first_poll = if early {
                Duration::ZERO
            } else {
                st.settings.unico.poll_initial
            };
            let mut tx = st.db.begin().await?;
            processes::insert(&mut *tx, id, &result, first_poll).await?;
            onboardings::set_state(&mut *tx, id, "biometrics").await?;
            events::record(
                &mut *tx,
                id,
                "process_created",
                json!({ "process_id": result.process_id, "status": result.status }),
            )
            .await?;
            tx.commit().await?;
            if result.is_final() {
                let process_id = result.process_id.clone();
                decide::conclude_biometrics(
                    st,
                    id,
                    BiometricEvidence::Received(result),
                    Some(&process_id),
                )
                .await?;
            } else {
                st.poll_wake.notify_one();
            }
            Ok(())
        }
        Err(error) if error.capture_problem().is_some() => {
            let code = error.capture_problem().unwrap_or_default().to_owned();
            events::record(
                &st.db,
                id,
                "process_refused",
                json!({ "error": error.to_string() }),
            )
            .await?;
            decide::conclude_biometrics(st, id, BiometricEvidence::CaptureRefused { code }, None)
                .await?;
            Ok(())
        }
        Err(error) => {
            tracing::warn!(error = %error, "CreateProcess failed; the onboarding waits for a retry of the request");
            onboardings::release_creation(&st.db, id, &error.to_string()).await?;
            events::record(
                &st.db,
                id,
                "process_create_failed",
                json!({ "error": error.to_string() }),
            )
            .await?;
            Err(if error.is_transient() {
                FlowError::ProviderUnavailable(error)
            } else {
                FlowError::ProviderRefused(error)
            })
        }
    }
}

/// Whether `id` exists and is decided, without loading it all.
pub async fn is_decided(st: &AppState, id: Uuid) -> Result<Option<bool>, FlowError> {
    Ok(store::onboardings::state(&st.db, id)
        .await?
        .map(|s| s == "decided"))
}
