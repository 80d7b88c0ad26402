//! The onboarding as the backend sees it (`POST` and `GET /v1/onboardings`).

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::domain::evidence::BiometricResult;
use crate::onboarding::error::FlowError;
use crate::onboarding::services::Services;
use crate::policy::Reason;
use crate::store::{decisions, devices, onboardings, processes};

#[derive(Debug, Serialize)]
pub struct OnboardingView {
    pub id: Uuid,
    pub reference: Option<String>,
    pub status: &'static str,
    pub outcome: Option<String>,
    pub reasons: Vec<Reason>,
    pub biometrics: Option<BiometricResult>,
    pub device: DeviceView,
    /// The Open Finance risk signal sent to Zro, when the onboarding has an enrollment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub open_finance: Option<OpenFinanceView>,
    pub policy_version: String,
    pub created_at: DateTime<Utc>,
    pub decided_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize)]
pub struct DeviceView {
    pub status: Option<String>,
    pub analysis_status: Option<String>,
    pub reason: Option<String>,
    pub risk_flags: Vec<&'static str>,
}

#[derive(Debug, Serialize)]
pub struct OpenFinanceView {
    pub enrollment_id: String,
    /// pending (not sent yet, or being retried), sent, failed.
    pub status: String,
    pub attempts: i32,
    pub http_status: Option<i32>,
    pub error: Option<String>,
}

pub async fn load(st: &Services, id: Uuid) -> Result<Option<OnboardingView>, FlowError> {
    let Some(onboarding) = onboardings::get(&st.db, id).await? else {
        return Ok(None);
    };
    let process = processes::for_onboarding(&st.db, id).await?;
    let decision = decisions::for_onboarding(&st.db, id).await?;
    let signals = onboarding.risk_signals();
    let registration = decision
        .as_ref()
        .and_then(|d| d.evidence.pointer("/device").cloned())
        .filter(|device| device.get("state").and_then(Value::as_str) != Some("not_run"));
    // While the device stage runs, QI Tech's latest answer (or "registering" before the first).
    let registering = if decision.is_none() && onboarding.state == "device" {
        devices::registration(&st.db, id).await?.map(|r| {
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
    let open_finance = devices::signal(&st.db, id).await?.map(|s| OpenFinanceView {
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
        policy_version: decision
            .as_ref()
            .map_or_else(|| st.policy.version.clone(), |d| d.policy_version.clone()),
        created_at: onboarding.created_at,
        decided_at: decision.as_ref().map(|d| d.decided_at),
    }))
}
