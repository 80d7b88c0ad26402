//! The onboarding flow: store the request with its first step, then let the steps carry it.
//!
//! States and steps are the machine of `domain::transitions`: `received` (CreateProcess queued)
//! -> `biometrics` (the process is read back until final) -> `device` (everything else approved;
//! QI Tech registers the device) -> `decided`. The request that stores an onboarding runs its
//! first step at once on this replica; every later step is a row of the step queue, so a crash,
//! a restart or a provider fault only delays it.

pub mod biometrics;
pub mod decide;
pub mod device;
pub mod request;
pub mod services;
pub mod steps;
pub mod view;

use serde_json::json;
use uuid::Uuid;

use crate::domain::evidence::{BiometricEvidence, DeviceEvidence, Evidence};
use crate::domain::transitions::{OnboardingEvent, OnboardingState};
use crate::onboarding::services::{Flow, Services};
use crate::store::{StoreError, events, onboardings};

pub use request::{OnboardingRequest, ValidOnboarding};

#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    #[error("this Idempotency-Key was used with a different body")]
    IdempotencyConflict,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for FlowError {
    fn from(e: sqlx::Error) -> Self {
        FlowError::Store(StoreError::Database(e))
    }
}

/// Stores the onboarding with its first step in one transaction and starts that step on this
/// replica, or finds the one stored under the same Idempotency-Key. Answers its id; the verdict
/// may or may not exist yet. No provider is called before this answers.
#[tracing::instrument(skip_all, fields(onboarding_id))]
pub async fn submit(
    flow: &Flow,
    client_name: &str,
    idempotency_key: &str,
    request_hash: &[u8],
    request: &ValidOnboarding,
) -> Result<Uuid, FlowError> {
    use secrecy::ExposeSecret;
    let mut tx = flow.db.begin().await?;
    let inserted = onboardings::insert(
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
            return Ok(id);
        }
    };
    tracing::Span::current().record("onboarding_id", tracing::field::display(id));
    events::record(&mut *tx, id, "received", json!({})).await?;
    let applied = match flow.policy.screen_device(request.risk_signals.as_ref()) {
        Some(verdict) => {
            let evidence = Evidence {
                risk_signals: request.risk_signals.clone(),
                biometrics: BiometricEvidence::NotRun,
                device: DeviceEvidence::NotRun,
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
    steps::spawn(flow, applied.steps);
    Ok(id)
}

/// Whether `id` exists and is decided, without loading it all.
pub async fn is_decided(flow: &Services, id: Uuid) -> Result<Option<bool>, FlowError> {
    Ok(crate::store::onboardings::state(&flow.db, id)
        .await?
        .map(|s| s == OnboardingState::Decided.as_str()))
}
