//! Turning final evidence into a stored decision.

use serde_json::json;
use uuid::Uuid;

use crate::app::AppState;
use crate::domain::evidence::{BiometricEvidence, DeviceEvidence, Evidence};
use crate::onboarding::FlowError;
use crate::policy::Verdict;
use crate::store::{decisions, events, onboardings, processes};

/// The biometric part is over (final status, refusal or deadline): apply the policy and decide.
#[tracing::instrument(skip_all, fields(onboarding_id = %onboarding_id))]
pub async fn conclude_biometrics(
    st: &AppState,
    onboarding_id: Uuid,
    biometrics: BiometricEvidence,
    process_id: Option<&str>,
) -> Result<(), FlowError> {
    let Some(onboarding) = onboardings::get(&st.db, onboarding_id).await? else {
        return Ok(());
    };
    if onboarding.state == "decided" {
        return Ok(());
    }
    let evidence = Evidence {
        risk_signals: onboarding.risk_signals(),
        biometrics,
        device: DeviceEvidence::NotRun,
    };
    let verdict = st.policy.evaluate(&evidence);
    record_verdict(st, onboarding_id, &verdict, &evidence, process_id).await
}

/// Stores the decision, closes the process and the onboarding, and wakes every waiting request,
/// all in one transaction.
pub async fn record_verdict(
    st: &AppState,
    onboarding_id: Uuid,
    verdict: &Verdict,
    evidence: &Evidence,
    process_id: Option<&str>,
) -> Result<(), FlowError> {
    let mut tx = st.db.begin().await?;
    if let Some(process_id) = process_id {
        let last = match &evidence.biometrics {
            BiometricEvidence::Received(result) => Some(result),
            BiometricEvidence::TimedOut(result) => result.as_ref(),
            _ => None,
        };
        if let Some(result) = last {
            processes::finish(&mut *tx, process_id, result).await?;
        }
    }
    let Some(decision) = decisions::decide(&mut tx, onboarding_id, verdict, evidence).await? else {
        // Someone else decided first; theirs stands.
        return Ok(());
    };
    events::record(
        &mut *tx,
        onboarding_id,
        "decided",
        json!({ "decision_id": decision.id, "outcome": decision.outcome, "reasons": decision.reason_codes }),
    )
    .await?;
    tx.commit().await?;
    crate::metrics::decision(verdict.outcome.as_str());
    tracing::info!(outcome = verdict.outcome.as_str(), reasons = ?decision.reason_codes, "decided");
    Ok(())
}
