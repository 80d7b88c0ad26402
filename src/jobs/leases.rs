//! Keeps the claims of the steps running on this replica alive (`onboarding::leases`): one
//! statement renews them all every `RENEW_EVERY`; a run whose claim is found taken, or could not
//! be renewed for nearly a lease, is stopped before another runner may take its step.

use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::onboarding::leases::{LEASE, RENEW_EVERY};
use crate::onboarding::services::Flow;
use crate::store::steps;

/// Runs until `stop` is cancelled. It must outlive the steps it renews: the caller stops it
/// after the steps in flight have ended (or been given up at shutdown).
pub async fn run(flow: Flow, stop: CancellationToken) {
    let mut tick = tokio::time::interval(RENEW_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = stop.cancelled() => return,
        }
        renew_once(&flow).await;
    }
}

/// One renewal of every claim held here, then the runs that can no longer be sure of theirs
/// are stopped.
pub async fn renew_once(flow: &Flow) {
    let claims = flow.leases.claims();
    if !claims.is_empty() {
        let sent = Instant::now();
        // Bounded, so a stalled database cannot keep the check below from running.
        let timeout = LEASE
            .saturating_sub(RENEW_EVERY)
            .max(Duration::from_millis(500));
        match tokio::time::timeout(timeout, steps::renew(&flow.db, &claims, LEASE)).await {
            Ok(Ok(kept)) => {
                flow.leases.renewed(&kept, sent);
                let lost: Vec<i64> = claims
                    .iter()
                    .map(|(id, _)| *id)
                    .filter(|id| !kept.contains(id))
                    .collect();
                // A claim not found ours was finished, handed back or taken: in the last case
                // the run must stop now; in the others it is ending anyway.
                flow.leases.gone(&lost);
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "could not renew the claims of running steps"),
            Err(_) => tracing::warn!("renewing the claims of running steps took too long"),
        }
    }
    let stopped = flow.leases.stop_expiring(Instant::now());
    if stopped > 0 {
        tracing::warn!(
            stopped,
            "step runs stopped: their claims could not be renewed in time"
        );
    }
}
