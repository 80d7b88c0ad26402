//! The one step runner: claims due steps (`FOR UPDATE SKIP LOCKED`, with a lease) and runs
//! them, up to a bound at once. Each replica runs it twice: once for the flow's steps and once,
//! with a bound of its own, for callback deliveries, so a slow receiver never holds up a decision. NOTIFY wakes it when a step becomes due now; otherwise
//! it sleeps until the next step is due, and looks again at least every `FALLBACK` in case a
//! notification was lost or a lease ran out.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::onboarding::services::Flow;
use crate::store::steps::{self, Lane};

/// Steps of the flow run at once by one replica's runner.
pub const FLOW_CONCURRENCY: usize = 64;

/// Callback deliveries in flight at once per replica.
pub const CALLBACK_CONCURRENCY: usize = 16;

/// The longest the runner sleeps without looking.
const FALLBACK: Duration = steps::LONGEST_SLEEP;

pub async fn run(flow: Flow, lane: Lane, concurrency: usize, shutdown: CancellationToken) {
    let lease = flow.step_lease();
    let permits = Arc::new(Semaphore::new(concurrency));
    let wake = match lane {
        Lane::Flow => &flow.wake.steps,
        Lane::Callbacks => &flow.wake.callbacks,
    };
    while !shutdown.is_cancelled() {
        let free = permits.available_permits();
        if free == 0 {
            tokio::select! {
                permit = permits.clone().acquire_owned() => drop(permit),
                _ = shutdown.cancelled() => return,
            }
            continue;
        }
        let due = match steps::claim_due(&flow.db, lane, free as i64, lease).await {
            Ok(due) => due,
            Err(e) => {
                tracing::warn!(error = %e, "could not claim due steps");
                Vec::new()
            }
        };
        if due.is_empty() {
            let idle = match steps::next_due_in(&flow.db, lane).await {
                Ok(Some(next)) => next.min(FALLBACK),
                _ => FALLBACK,
            };
            // notify_one leaves a permit when nobody waits, so a wake-up sent while the runner
            // was claiming is not lost.
            tokio::select! {
                _ = wake.notified() => {}
                _ = tokio::time::sleep(idle) => {}
                _ = shutdown.cancelled() => return,
            }
            continue;
        }
        for step in due {
            let Ok(permit) = permits.clone().acquire_owned().await else {
                return;
            };
            let task_flow = flow.clone();
            flow.inline.spawn(async move {
                crate::onboarding::steps::run(&task_flow, step).await;
                drop(permit);
            });
        }
    }
}
