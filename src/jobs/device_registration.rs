//! Runs QI Tech device registrations: claims due rows of `device_registrations` with a lease, so
//! replicas share the work, a restart resumes it, and no registration runs twice at once.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::app::AppState;
use crate::onboarding::device;
use crate::store::devices;

const BATCH: i64 = 16;

pub async fn run(st: AppState, wake: Arc<Notify>, shutdown: CancellationToken) {
    let lease = device::registration_lease(&st);
    while !shutdown.is_cancelled() {
        let due = match devices::claim_registrations(&st.db, BATCH, lease).await {
            Ok(due) => due,
            Err(e) => {
                tracing::warn!(error = %e, "could not claim due device registrations");
                Vec::new()
            }
        };
        if due.is_empty() {
            tokio::select! {
                _ = wake.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(250)) => {}
                _ = shutdown.cancelled() => return,
            }
            continue;
        }
        join_all(due.into_iter().map(|row| {
            let st = st.clone();
            async move {
                let id = row.onboarding_id;
                if let Err(e) = device::run_registration(&st, row).await {
                    tracing::warn!(error = %e, onboarding_id = %id, "device registration step failed; it stays due");
                }
            }
        }))
        .await;
    }
}
