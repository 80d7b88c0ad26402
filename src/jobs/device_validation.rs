//! Follows device validations up until QI Tech's analysis is final: resends events whose send
//! failed and reads back pending or manual analyses, with backoff.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::app::AppState;
use crate::onboarding::device;
use crate::store::device_validations;

pub async fn run(st: AppState, shutdown: CancellationToken) {
    let lease = device::validation_lease(&st);
    super::drain(
        "device validations",
        None,
        Duration::from_millis(250),
        shutdown,
        |batch| device_validations::claim_due(&st.db, batch, lease),
        |row| async {
            let id = row.id;
            if let Err(e) = device::advance_validation(&st, row).await {
                tracing::warn!(error = %e, device_validation_id = %id, "device validation follow-up failed; it stays due");
            }
        },
    )
    .await;
}
