//! Sends the Open Finance risk signal of approved onboardings to Zro, retrying failures with
//! backoff up to `zro.max_attempts`, then reporting them as failed.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::app::AppState;
use crate::onboarding::device;
use crate::store::devices;

pub async fn run(st: AppState, shutdown: CancellationToken) {
    // A send may sign in, be refused, sign in again and resend.
    let lease = st.settings.zro.timeout * 4 + Duration::from_secs(5);
    super::drain(
        "Open Finance risk signals",
        None,
        Duration::from_millis(250),
        shutdown,
        |batch| devices::claim_signals(&st.db, batch, lease),
        |row| async {
            let id = row.onboarding_id;
            if let Err(e) = device::send_risk_signal(&st, row).await {
                tracing::warn!(error = %e, onboarding_id = %id, "risk signal attempt failed; it stays due");
            }
        },
    )
    .await;
}
