//! The onboarding as the backend sees it (`POST` and `GET /v1/onboardings`).

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use crate::app::AppState;
use crate::domain::evidence::BiometricResult;
use crate::onboarding::FlowError;
use crate::policy::Reason;
use crate::store::{decisions, onboardings, processes};

#[derive(Debug, Serialize)]
pub struct OnboardingView {
    pub id: Uuid,
    pub reference: Option<String>,
    pub status: &'static str,
    pub outcome: Option<String>,
    pub reasons: Vec<Reason>,
    pub biometrics: Option<BiometricResult>,
    pub device: DeviceView,
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

pub async fn load(st: &AppState, id: Uuid) -> Result<Option<OnboardingView>, FlowError> {
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
    let field = |name: &str| {
        registration
            .as_ref()
            .and_then(|d| d.get(name))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
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
        policy_version: decision
            .as_ref()
            .map_or_else(|| st.policy.version.clone(), |d| d.policy_version.clone()),
        created_at: onboarding.created_at,
        decided_at: decision.as_ref().map(|d| d.decided_at),
    }))
}
