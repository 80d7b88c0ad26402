//! Waiting requests: a request that wants a verdict waits for the decision's wake-up, which
//! arrives from this replica's own steps or, through PostgreSQL's NOTIFY, from any other.

use std::time::Duration;

use tokio::sync::broadcast;
use uuid::Uuid;

use crate::http::state::AppState;
use crate::onboarding::FlowError;

/// Subscribes to decisions: done before the onboarding is stored, so a decision made by its
/// first step is not missed.
pub fn subscribe(st: &AppState) -> broadcast::Receiver<Uuid> {
    st.flow.wake.decided.subscribe()
}

/// Waits up to `wait` for `id` to be decided, from `rx` (subscribed before the onboarding was
/// stored). `known` is whether it was decided when stored, when the caller knows; otherwise the
/// database is asked first. A wake-up for `id` is trusted without asking again: it is sent after
/// the decision's commit. A service that begins to stop stops waiting at once, so the caller
/// gets its 202 with `Location` before the exit.
pub async fn until_decided(
    st: &AppState,
    id: Uuid,
    wait: Duration,
    mut rx: broadcast::Receiver<Uuid>,
    known: Option<bool>,
) -> Result<(), FlowError> {
    let deadline = tokio::time::Instant::now() + wait;
    let mut look = match known {
        Some(true) => return Ok(()),
        Some(false) => false,
        None => true,
    };
    loop {
        if look && crate::onboarding::is_decided(&st.flow, id).await? == Some(true) {
            return Ok(());
        }
        look = true;
        loop {
            let next = tokio::select! {
                next = tokio::time::timeout_at(deadline, rx.recv()) => next,
                _ = st.stopping.cancelled() => return Ok(()),
            };
            match next {
                Err(_elapsed) => return Ok(()),
                Ok(Ok(decided)) if decided == id => return Ok(()),
                Ok(Ok(other)) if !other.is_nil() => continue,
                // A wake-up for anything (nil) or missed ones: look again.
                Ok(Ok(_)) | Ok(Err(broadcast::error::RecvError::Lagged(_))) => break,
                Ok(Err(broadcast::error::RecvError::Closed)) => return Ok(()),
            }
        }
    }
}
