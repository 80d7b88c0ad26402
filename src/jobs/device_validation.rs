//! Follows device validations up until QI Tech's analysis is final: resends events whose send
//! failed and reads back pending or manual analyses, with backoff.

use std::time::Duration;

use futures_util::future::join_all;
use tokio_util::sync::CancellationToken;

use crate::app::AppState;
use crate::onboarding::device;
use crate::store::device_validations;

const BATCH: i64 = 16;

pub async fn run(st: AppState, shutdown: CancellationToken) {
    let lease = device::validation_lease(&st);
    while !shutdown.is_cancelled() {
        let due = match device_validations::claim_due(&st.db, BATCH, lease).await {
            Ok(due) => due,
            Err(e) => {
                tracing::warn!(error = %e, "could not claim due device validations");
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
                let id = row.id;
                if let Err(e) = device::advance_validation(&st, row).await {
                    tracing::warn!(error = %e, device_validation_id = %id, "device validation follow-up failed; it stays due");
                }
            }
        }))
        .await;
    }
}
