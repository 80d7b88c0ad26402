//! Sends the Open Finance risk signal of approved onboardings to Zro, retrying failures with
//! backoff up to `zro.max_attempts`, then reporting them as failed.

use std::time::Duration;

use futures_util::future::join_all;
use tokio_util::sync::CancellationToken;

use crate::app::AppState;
use crate::onboarding::device;
use crate::store::devices;

const BATCH: i64 = 16;

pub async fn run(st: AppState, shutdown: CancellationToken) {
    // A send may sign in, be refused, sign in again and resend.
    let lease = st.settings.zro.timeout * 4 + Duration::from_secs(5);
    while !shutdown.is_cancelled() {
        let due = match devices::claim_signals(&st.db, BATCH, lease).await {
            Ok(due) => due,
            Err(e) => {
                tracing::warn!(error = %e, "could not claim due Open Finance risk signals");
                Vec::new()
            }
        };
        if due.is_empty() {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(250)) => {}
                _ = shutdown.cancelled() => return,
            }
            continue;
        }
        join_all(due.into_iter().map(|row| {
            let st = st.clone();
            async move {
                let id = row.onboarding_id;
                if let Err(e) = device::send_risk_signal(&st, row).await {
                    tracing::warn!(error = %e, onboarding_id = %id, "risk signal attempt failed; it stays due");
                }
            }
        }))
        .await;
    }
}
