//! The onboarding as the backend sees it (`POST` and `GET /v1/onboardings`).

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::domain::evidence::RiskSignals;
use crate::domain::evidence::{BiometricEvidence, BiometricResult};
use crate::domain::transitions::OnboardingState;
use crate::onboarding::error::FlowError;
use crate::policy::Reason;
use crate::store::decisions::DecisionRow;
use crate::store::onboardings::OnboardingRow;
use crate::store::views::{self, OnboardingViewRow};

/// An onboarding as the backend sees it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Onboarding)]
pub struct OnboardingView {
    pub id: Uuid,
    pub reference: Option<String>,
    /// processing or decided.
    pub status: &'static str,
    /// approved, rejected, review or retry; null while processing.
    pub outcome: Option<String>,
    /// Every rule that fired, the decisive one first.
    pub reasons: Vec<Reason>,
    pub biometrics: Option<BiometricResult>,
    pub device: DeviceView,
    /// The Open Finance risk signal sent to Zro, when the onboarding has an enrollment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub open_finance: Option<OpenFinanceView>,
    /// policy or reviewer: who made the decision the verdict is.
    pub decided_by: Option<String>,
    pub policy_version: String,
    pub created_at: DateTime<Utc>,
    pub decided_at: Option<DateTime<Utc>>,
}

/// The device as QI Tech registered it, and the phone's risk flags.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Device)]
pub struct DeviceView {
    pub status: Option<String>,
    pub analysis_status: Option<String>,
    pub reason: Option<String>,
    pub risk_flags: Vec<&'static str>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = OpenFinance)]
pub struct OpenFinanceView {
    pub enrollment_id: String,
    /// pending (not sent yet, or being retried), sent, failed.
    pub status: String,
    pub attempts: i32,
    pub http_status: Option<i32>,
    pub error: Option<String>,
}

/// The view as stored; `policy_version` (the version in force) is shown while no decision says
/// which version made it.
pub async fn load(
    db: &PgPool,
    policy_version: &str,
    id: Uuid,
) -> Result<Option<OnboardingView>, FlowError> {
    let row = views::onboarding(db, id).await?;
    Ok(row.map(|row| from_row(id, row, policy_version)))
}

/// The view as `conn` sees it: inside a transaction, with what it wrote and has not committed
/// (a callback's body is built so, in the transaction of the event it reports).
pub async fn load_in(
    conn: &mut PgConnection,
    policy_version: &str,
    id: Uuid,
) -> Result<Option<OnboardingView>, FlowError> {
    let row = views::onboarding(&mut *conn, id).await?;
    Ok(row.map(|row| from_row(id, row, policy_version)))
}

/// The answer of an onboarding just decided, from the rows its transaction wrote: what
/// `load` reads once that transaction commits, without the read. `biometrics` is the evidence
/// the decision was made on, whose result is the one its unico process stored; the onboarding
/// has no Open Finance enrollment (its signal's row is not among these rows).
pub fn as_decided(
    onboarding: &OnboardingRow,
    biometrics: &BiometricEvidence,
    decision: &DecisionRow,
) -> Box<OnboardingView> {
    let process_result = match biometrics {
        BiometricEvidence::Received(result) | BiometricEvidence::TimedOut(Some(result)) => {
            serde_json::to_value(result).ok()
        }
        BiometricEvidence::NotRun
        | BiometricEvidence::TimedOut(None)
        | BiometricEvidence::CaptureRefused { .. } => None,
    };
    let row = OnboardingViewRow {
        reference: onboarding.reference.clone(),
        state: OnboardingState::Decided.as_str().to_owned(),
        risk_signals: onboarding.device.get("risk_signals").cloned(),
        created_at: onboarding.created_at,
        biometrics: process_result,
        outcome: Some(decision.outcome.clone()),
        reasons: Some(decision.reasons.clone()),
        decided_by: Some(decision.decided_by.clone()),
        policy_version: Some(decision.policy_version.clone()),
        decided_at: Some(decision.decided_at),
        decided_device: decision.evidence.get("device").cloned(),
        registering: false,
        registration: None,
        enrollment_id: None,
        signal_status: None,
        signal_attempts: None,
        signal_http_status: None,
        signal_error: None,
    };
    Box::new(from_row(onboarding.id, row, &decision.policy_version))
}

fn from_row(id: Uuid, row: OnboardingViewRow, policy_version: &str) -> OnboardingView {
    let decided = row.outcome.is_some();
    // The device as the decision recorded it, or, while the device stage runs, QI Tech's latest
    // answer ("registering" before the first).
    let registration = row
        .decided_device
        .filter(|device| device.get("state").and_then(Value::as_str) != Some("not_run"))
        .or_else(|| {
            row.registering.then(|| {
                row.registration
                    .unwrap_or_else(|| json!({ "status": "registering" }))
            })
        });
    let field = |name: &str| {
        registration
            .as_ref()
            .and_then(|d| d.get(name))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let signals: Option<RiskSignals> = row
        .risk_signals
        .and_then(|v| serde_json::from_value(v).ok());
    let open_finance = match (row.enrollment_id, row.signal_status) {
        (Some(enrollment_id), Some(status)) => Some(OpenFinanceView {
            enrollment_id,
            status,
            attempts: row.signal_attempts.unwrap_or_default(),
            http_status: row.signal_http_status,
            error: row.signal_error,
        }),
        _ => None,
    };
    OnboardingView {
        id,
        reference: row.reference,
        status: if decided { "decided" } else { "processing" },
        outcome: row.outcome,
        reasons: row
            .reasons
            .and_then(|r| serde_json::from_value(r).ok())
            .unwrap_or_default(),
        biometrics: row
            .biometrics
            .and_then(|b| serde_json::from_value::<BiometricResult>(b).ok()),
        device: DeviceView {
            status: field("status"),
            analysis_status: field("analysis_status"),
            reason: field("reason"),
            risk_flags: crate::policy::risk_flags(signals.as_ref()),
        },
        open_finance,
        decided_by: row.decided_by,
        policy_version: row
            .policy_version
            .unwrap_or_else(|| policy_version.to_owned()),
        created_at: row.created_at,
        decided_at: row.decided_at,
    }
}
