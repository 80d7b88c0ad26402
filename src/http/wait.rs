//! Waiting requests: a request that wants a verdict waits for its decision's wake-up, which
//! arrives from this replica's own steps or, through PostgreSQL's NOTIFY, from any other.

use std::time::Duration;

use uuid::Uuid;

use crate::http::state::AppState;
use crate::onboarding::FlowError;
use crate::onboarding::waiters::{Waiter, Woken};

/// Waits up to `wait` for `id` to be decided, on `waiter` (registered before any step of the
/// onboarding could decide it). `known` is whether it was decided when stored, when the caller
/// knows; otherwise the database is asked first. A wake-up for the decision is trusted without
/// asking again: it is sent after the decision's commit. A service that begins to stop stops
/// waiting at once, so the caller gets its 202 with `Location` before the exit.
pub async fn until_decided(
    st: &AppState,
    id: Uuid,
    wait: Duration,
    waiter: &Waiter,
    known: Option<bool>,
) -> Result<(), FlowError> {
    let deadline = tokio::time::Instant::now() + wait;
    let mut look = match known {
        Some(true) => return Ok(()),
        Some(false) => false,
        None => true,
    };
    loop {
        if look && Box::pin(crate::onboarding::is_decided(&st.flow, id)).await? == Some(true) {
            return Ok(());
        }
        let woken = tokio::select! {
            woken = tokio::time::timeout_at(deadline, waiter.woken()) => woken,
            _ = st.stopping.cancelled() => return Ok(()),
        };
        match woken {
            Err(_) | Ok(Woken::Decided) => return Ok(()),
            Ok(Woken::LookAgain) => look = true,
        }
    }
}
