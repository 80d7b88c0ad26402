//! Runs QI Tech device registrations: claims due rows of `device_registrations` with a lease, so
//! replicas share the work, a restart resumes it, and no registration runs twice at once.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::app::AppState;
use crate::onboarding::device;
use crate::store::devices;

pub async fn run(st: AppState, wake: Arc<Notify>, shutdown: CancellationToken) {
    let lease = device::registration_lease(&st);
    super::drain(
        "device registrations",
        Some(wake),
        Duration::from_millis(250),
        shutdown,
        |batch| devices::claim_registrations(&st.db, batch, lease),
        |row| async {
            let id = row.onboarding_id;
            if let Err(e) = device::run_registration(&st, row).await {
                tracing::warn!(error = %e, onboarding_id = %id, "device registration step failed; it stays due");
            }
        },
    )
    .await;
}
