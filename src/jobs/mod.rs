//! Background work, all driven by PostgreSQL so it survives restarts and spreads over replicas:
//! the unico poller, the sweeper of stranded onboardings, the NOTIFY listener that wakes
//! waiting requests and the poller, and the device jobs (QI Tech registration and validation
//! follow-up, the Open Finance risk signal).

pub mod device_registration;
pub mod device_validation;
pub mod listener;
pub mod open_finance;
pub mod retention;
pub mod sweeper;
pub mod unico_poller;

/// NOTIFY channel: a unico process became due (a webhook arrived).
pub const UNICO_DUE_CHANNEL: &str = "veredito_unico_due";

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// How many claimed rows a worker runs at once.
const BATCH: i64 = 16;

/// The loop every queue worker shares: claim up to a batch of due rows (the claim function
/// leases them in PostgreSQL), run them concurrently, and when nothing is due sleep for `idle`
/// or until `wake` fires. Ends at shutdown, after the batch in hand.
async fn drain<T, Claim, Claimed, Work, Worked>(
    queue: &'static str,
    wake: Option<Arc<Notify>>,
    idle: Duration,
    shutdown: CancellationToken,
    claim: Claim,
    work: Work,
) where
    Claim: Fn(i64) -> Claimed,
    Claimed: Future<Output = Result<Vec<T>, sqlx::Error>>,
    Work: Fn(T) -> Worked,
    Worked: Future<Output = ()>,
{
    while !shutdown.is_cancelled() {
        let due = claim(BATCH).await.unwrap_or_else(|e| {
            tracing::warn!(error = %e, queue, "could not claim due work");
            Vec::new()
        });
        if due.is_empty() {
            // notify_one leaves a permit when nobody waits, so a wake-up sent while this worker
            // was busy is not lost.
            let woken = async {
                match &wake {
                    Some(wake) => wake.notified().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = woken => {}
                _ = tokio::time::sleep(idle) => {}
                _ = shutdown.cancelled() => return,
            }
            continue;
        }
        join_all(due.into_iter().map(&work)).await;
    }
}
