//! The device validation steps: send the event to QI Tech, then read its analysis back until it
//! is final.

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::domain::transitions::{self, StepKind, ValidationEvent, ValidationState};
use crate::onboarding::applied::Applied;
use crate::onboarding::error::FlowError;
use crate::onboarding::services::Services;
use crate::providers::qitech::{QitechError, Sent, ValidationEvent as QitechEvent};
use crate::providers::{CallContext, capture};
use crate::store::StoreError;
use crate::store::device_validations::{self, ValidationRow};
use crate::store::steps::{self, Step, Subject, When};

/// A device validation as its GET (and its callback) shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = DeviceValidation)]
pub struct DeviceValidationView {
    pub id: Uuid,
    pub reference: Option<String>,
    pub status: &'static str,
    pub outcome: Option<String>,
    pub analysis_status: Option<String>,
    pub reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub decided_at: Option<DateTime<Utc>>,
}

impl From<ValidationRow> for DeviceValidationView {
    fn from(row: ValidationRow) -> Self {
        DeviceValidationView {
            id: row.id,
            reference: row.reference,
            status: if row.state == "decided" {
                "decided"
            } else {
                "processing"
            },
            outcome: row.outcome,
            analysis_status: row.analysis_status,
            reason: row.reason,
            created_at: row.created_at,
            decided_at: row.decided_at,
        }
    }
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
#[tracing::instrument(skip_all, fields(device_validation_id = %id))]
pub async fn advance(flow: &Services, step: &Step, id: Uuid) -> Result<Applied, FlowError> {
    let Some(row) = device_validations::get(&flow.db, id).await? else {
        steps::complete(&flow.db, step).await?;
        return Ok(Applied::default());
    };
    if row.state != ValidationState::Processing.as_str() {
        steps::complete(&flow.db, step).await?;
        return Ok(Applied::default());
    }
    let ((answer, sent_before), made) = capture(query_validation(flow, &row)).await;
    let wait = steps::backoff(
        flow.settings.qitech.poll_initial,
        flow.settings.qitech.poll_max,
        step.attempts,
    );
    let mut tx = crate::store::begin(&flow.db).await?;
    tx.calls(&flow.cipher, made);
    let event = match answer {
        Ok(result) => {
            let outcome = validation_outcome(&result.analysis_status);
            tracing::info!(analysis_status = %result.analysis_status, outcome = outcome.unwrap_or("processing"), "device validation answered");
            device_validations::record_answer(
                &mut *tx,
                row.id,
                &result.analysis_status,
                result.reason.as_deref(),
                outcome,
                step.attempts,
            )
            .await?;
            if outcome.is_some() {
                ValidationEvent::Concluded
            } else {
                ValidationEvent::AnalysisOpen
            }
        }
        Err(error)
            if !row.sent
                && !sent_before
                && !error.is_transient()
                && !matches!(error, QitechError::NotFound) =>
        {
            // QI Tech refuses the event itself; sending it again would not change that.
            tracing::warn!(error = %error.code(), "QI Tech refused the device validation event");
            device_validations::record_answer(
                &mut *tx,
                row.id,
                "not_sent",
                Some(&error.code()),
                Some("rejected"),
                step.attempts,
            )
            .await?;
            ValidationEvent::Concluded
        }
        Err(error) => {
            let code = error.code();
            tracing::warn!(error = %code, "device validation call failed; trying again later");
            if sent_before {
                device_validations::mark_sent(&mut *tx, row.id).await?;
            }
            device_validations::record_failure(&mut *tx, row.id, &code, step.attempts).await?;
            steps::reschedule(&mut tx, step, wait, Some(&code)).await?;
            tx.commit().await?;
            return Ok(Applied::default());
        }
    };
    match (event, step.kind) {
        (ValidationEvent::AnalysisOpen, StepKind::ReadValidation) => {
            steps::reschedule(&mut tx, step, wait, None).await?;
        }
        (event, _) => {
            tx.step_done(step);
            if event == ValidationEvent::Concluded {
                crate::onboarding::callbacks::validation_decided(&mut tx, flow, id, |row| {
                    serde_json::to_value(DeviceValidationView::from(row)).unwrap_or_default()
                })
                .await?;
            }
            let (_, kinds) = transitions::validation(ValidationState::Processing, event)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            for kind in kinds {
                steps::queue(&mut tx, kind, Subject::Validation(id), When::In(wait)).await?;
            }
        }
    }
    tx.commit().await?;
    Ok(Applied::default())
}

/// Sends the event, or reads it back once QI Tech has it. Answers, beside the result, whether
/// QI Tech said it already had the event (an earlier send whose answer was lost).
async fn query_validation(
    flow: &Services,
    row: &ValidationRow,
) -> (
    Result<crate::providers::qitech::ValidationResult, QitechError>,
    bool,
) {
    let ctx = CallContext {
        onboarding_id: None,
        device_validation_id: Some(row.id),
    };
    if row.sent {
        return (
            flow.qitech.get_device_validation(row.event_id, ctx).await,
            false,
        );
    }
    let event = QitechEvent {
        event_id: row.event_id,
        account_id: &row.account_id,
        person_id: &row.person_id,
        session_id: &row.session_id,
        face_recognition_key: row.face_recognition_key.as_deref(),
        event_date: row.event_date,
    };
    match flow.qitech.send_device_validation(&event, ctx).await {
        Ok(Sent::Answered(result)) => (Ok(result), false),
        Ok(Sent::AlreadySent) => (
            flow.qitech.get_device_validation(row.event_id, ctx).await,
            true,
        ),
        Err(e) => (Err(e), false),
    }
}
