//! Waiting requests: a request that wants a verdict waits for the decision's wake-up, which
//! arrives from this replica's own steps or, through PostgreSQL's NOTIFY, from any other.

use std::time::Duration;

use tokio::sync::broadcast;
use uuid::Uuid;

use crate::http::state::AppState;
use crate::onboarding::FlowError;

/// Waits up to `wait` for `id` to be decided. Answers whether it was. A service that begins to
/// stop answers false at once, so the caller gets its 202 with `Location` before the exit.
pub async fn until_decided(st: &AppState, id: Uuid, wait: Duration) -> Result<bool, FlowError> {
    // Subscribe before looking, so a decision between the look and the wait is not missed.
    let mut rx = st.flow.wake.decided.subscribe();
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        if crate::onboarding::is_decided(&st.flow, id).await? == Some(true) {
            return Ok(true);
        }
        loop {
            let next = tokio::select! {
                next = tokio::time::timeout_at(deadline, rx.recv()) => next,
                _ = st.stopping.cancelled() => return Ok(false),
            };
            match next {
                Err(_elapsed) => return Ok(false),
                Ok(Ok(other)) if other != id && !other.is_nil() => continue,
                Ok(Ok(_)) | Ok(Err(broadcast::error::RecvError::Lagged(_))) => break,
                Ok(Err(broadcast::error::RecvError::Closed)) => return Ok(false),
            }
        }
    }
}
