//! Closes onboardings whose unico process was never created (the request died before, and the
//! client never retried), so no onboarding is left hanging past the biometrics deadline.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::app::AppState;
use crate::domain::evidence::BiometricEvidence;
use crate::onboarding::decide;
use crate::store::onboardings;

pub async fn run(st: AppState, every: Duration, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.cancelled() => return,
        }
        if let Err(e) = sweep(&st).await {
            tracing::warn!(error = %e, "sweep of stranded onboardings failed");
        }
    }
}

pub async fn sweep(st: &AppState) -> Result<usize, crate::onboarding::FlowError> {
    let stranded =
        onboardings::stranded(&st.db, st.settings.policy.biometrics_deadline, 100).await?;
    for id in &stranded {
        tracing::warn!(onboarding_id = %id, "unico process never created; deciding on the deadline");
        decide::conclude_biometrics(st, *id, BiometricEvidence::TimedOut(None), None).await?;
    }
    Ok(stranded.len())
}
