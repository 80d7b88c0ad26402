//! The onboarding as the backend sees it (`POST` and `GET /v1/onboardings`).

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::evidence::BiometricResult;
use crate::onboarding::error::FlowError;
use crate::onboarding::services::Services;
use crate::policy::Reason;
use crate::store::{decisions, devices, onboardings, processes};

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

pub async fn load(st: &Services, id: Uuid) -> Result<Option<OnboardingView>, FlowError> {
    let mut conn = st.db.acquire().await?;
    load_in(&mut conn, &st.policies.active().version, id).await
}

/// The view as `conn` sees it: inside a transaction, with what it wrote and has not committed
/// (a callback's body is built so, in the transaction of the event it reports).
pub async fn load_in(
    conn: &mut PgConnection,
    policy_version: &str,
    id: Uuid,
) -> Result<Option<OnboardingView>, FlowError> {
    let Some(onboarding) = onboardings::get(&mut *conn, id).await? else {
        return Ok(None);
    };
    let process = processes::for_onboarding(&mut *conn, id).await?;
    // While a reviewer's approval waits for QI Tech the onboarding is processing again: its
    // verdict is the next decision, not the last one.
    let decided = onboarding.state == "decided";
    let decision = decisions::for_onboarding(&mut *conn, id)
        .await?
        .filter(|_| decided);
    let signals = onboarding.risk_signals();
    let registration = decision
        .as_ref()
        .and_then(|d| d.evidence.pointer("/device").cloned())
        .filter(|device| device.get("state").and_then(Value::as_str) != Some("not_run"));
    // While the device stage runs, QI Tech's latest answer (or "registering" before the first).
    let registering = if decision.is_none() && onboarding.state == "device" {
        devices::registration(&mut *conn, id).await?.map(|r| {
            r.registration.map_or_else(
                || json!({ "status": "registering" }),
                |answer| json!(answer.0),
            )
        })
    } else {
        None
    };
    let registration = registration.or(registering);
    let field = |name: &str| {
        registration
            .as_ref()
            .and_then(|d| d.get(name))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let open_finance = devices::signal(&mut *conn, id)
        .await?
        .map(|s| OpenFinanceView {
            enrollment_id: s.enrollment_id,
            status: s.status,
            attempts: s.attempts,
            http_status: s.http_status,
            error: s.last_error,
        });
    Ok(Some(OnboardingView {
        id,
        reference: onboarding.reference,
        status: if decision.is_some() {
            "decided"
        } else {
            "processing"
        },
        outcome: decision.as_ref().map(|d| d.outcome.clone()),
        reasons: decision
            .as_ref()
            .and_then(|d| serde_json::from_value(d.reasons.clone()).ok())
            .unwrap_or_default(),
        biometrics: process.map(|p| p.result.0),
        device: DeviceView {
            status: field("status"),
            analysis_status: field("analysis_status"),
            reason: field("reason"),
            risk_flags: crate::policy::risk_flags(signals.as_ref()),
        },
        open_finance,
        decided_by: decision.as_ref().map(|d| d.decided_by.clone()),
        policy_version: decision
            .as_ref()
            .map_or_else(|| policy_version.to_owned(), |d| d.policy_version.clone()),
        created_at: onboarding.created_at,
        decided_at: decision.as_ref().map(|d| d.decided_at),
    }))
}
