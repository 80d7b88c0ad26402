//! Polls GetProcess for open processes, with backoff, until each is final or its deadline passes.
//! Claims are rows in PostgreSQL, so any number of replicas share the work without polling the
//! same process twice, and a restart picks up where the last run stopped.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use serde_json::json;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::app::AppState;
use crate::domain::evidence::BiometricEvidence;
use crate::onboarding::decide;
use crate::providers::CallContext;
use crate::providers::unico::UnicoError;
use crate::store::events;
use crate::store::processes::{self, DueProcess};

pub async fn run(st: AppState, wake: Arc<Notify>, shutdown: CancellationToken) {
    // A claim outlives the slowest poll: GetProcess may retry once after renewing the token.
    let lease = st.settings.unico.timeout * 3 + Duration::from_secs(5);
    let idle = Duration::from_millis(500);
    super::drain(
        "unico processes",
        Some(wake),
        idle,
        shutdown,
        |batch| processes::claim_due(&st.db, batch, lease),
        |process| async {
            let process_id = process.process_id.clone();
            if let Err(e) = poll_one(&st, process).await {
                tracing::warn!(error = %e, process_id = %process_id, "poll failed; the process stays due");
            }
        },
    )
    .await;
}

#[tracing::instrument(skip_all, fields(onboarding_id = %due.onboarding_id, process_id = %due.process_id))]
async fn poll_one(st: &AppState, due: DueProcess) -> Result<(), crate::onboarding::FlowError> {
    let deadline = st.settings.policy.biometrics_deadline;
    let age = (Utc::now() - due.created_at).to_std().unwrap_or_default();
    let left = deadline.saturating_sub(age);
    let answer = st
        .unico
        .get_process(&due.process_id, CallContext::onboarding(due.onboarding_id))
        .await;
    let (kind, detail) = match &answer {
        Ok(result) => (
            "poll",
            json!({ "status": result.status, "final": result.is_final() }),
        ),
        Err(error) => ("poll_failed", json!({ "error": error.to_string() })),
    };
    events::record(&st.db, due.onboarding_id, kind, detail).await?;
    let evidence = match answer {
        Ok(result) if result.is_final() => BiometricEvidence::Received(result),
        Ok(result) if left.is_zero() => BiometricEvidence::TimedOut(Some(result)),
        Err(_) if left.is_zero() => BiometricEvidence::TimedOut(Some(due.result.0)),
        Ok(result) => {
            crate::metrics::poll("open");
            let next = backoff(st, due.poll_count).min(left);
            processes::record_poll(&st.db, &due.process_id, Some(&result), None, next).await?;
            return Ok(());
        }
        Err(error) => {
            crate::metrics::poll("error");
            let mut next = backoff(st, due.poll_count);
            if let UnicoError::RateLimited {
                retry_after: Some(wait),
            } = error
            {
                next = next.max(wait);
            }
            let message = error.to_string();
            processes::record_poll(
                &st.db,
                &due.process_id,
                None,
                Some(&message),
                next.min(left),
            )
            .await?;
            return Ok(());
        }
    };
    crate::metrics::poll(if matches!(evidence, BiometricEvidence::TimedOut(_)) {
        "deadline"
    } else {
        "final"
    });
    decide::conclude_biometrics(st, due.onboarding_id, evidence, Some(&due.process_id)).await
}

/// poll_initial doubled per attempt up to poll_max, spread by ±20% so processes created together
/// do not poll together.
fn backoff(st: &AppState, attempt: i32) -> Duration {
    let unico = &st.settings.unico;
    let exponent = attempt.clamp(1, 16) as u32 - 1;
    let base = unico
        .poll_initial
        .saturating_mul(1u32 << exponent)
        .min(unico.poll_max);
    base.mul_f64(0.8 + fastrand::f64() * 0.4)
}
