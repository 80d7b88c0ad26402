//! Writes the link keys of the onboardings stored before risk memory existed (migration 0015
//! wrote their CPF's; the device id, phone and e-mail need the application's key), a batch at a
//! time, then ends. Every replica may run it: batches are claimed with SKIP LOCKED.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::onboarding::services::Services;

/// Onboardings per transaction: short transactions, and a pause between them, so the backfill
/// never crowds out live traffic.
const BATCH: i64 = 500;
const PAUSE: Duration = Duration::from_millis(50);

pub async fn run(flow: Arc<Services>, stop: CancellationToken) {
    let mut done = 0usize;
    loop {
        if stop.is_cancelled() {
            return;
        }
        match crate::store::links::backfill(&flow.db, &flow.cipher, BATCH).await {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) => {
                tracing::warn!(error = %e, "writing the link keys of earlier onboardings failed; trying again in a minute");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(60)) => continue,
                    _ = stop.cancelled() => return,
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(PAUSE) => {}
            _ = stop.cancelled() => return,
        }
    }
    if done > 0 {
        tracing::info!(
            onboardings = done,
            "link keys of earlier onboardings written"
        );
    }
}
