//! Waiting requests: a request that wants a verdict waits for the decision's notification, which
//! arrives through PostgreSQL's NOTIFY whichever replica decided.

use std::time::Duration;

use tokio::sync::broadcast;
use uuid::Uuid;

use crate::app::AppState;
use crate::onboarding::FlowError;

/// Fan-out of "onboarding X was decided" to the requests waiting on this replica. The nil id
/// asks every waiter to look again (sent after the listener reconnects, when a notification may
/// have been missed).
#[derive(Clone)]
pub struct Waiters {
    tx: broadcast::Sender<Uuid>,
}

impl Default for Waiters {
    fn default() -> Self {
        let (tx, _) = broadcast::channel(1024);
        Waiters { tx }
    }
}

impl Waiters {
    pub fn decided(&self, id: Uuid) {
        let _ = self.tx.send(id);
    }

    pub fn recheck_all(&self) {
        let _ = self.tx.send(Uuid::nil());
    }

    fn subscribe(&self) -> broadcast::Receiver<Uuid> {
        self.tx.subscribe()
    }
}

/// Waits up to `wait` for `id` to be decided. Answers whether it was.
pub async fn until_decided(st: &AppState, id: Uuid, wait: Duration) -> Result<bool, FlowError> {
    // Subscribe before looking, so a decision between the look and the wait is not missed.
    let mut rx = st.waiters.subscribe();
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        if crate::onboarding::is_decided(st, id).await? == Some(true) {
            return Ok(true);
        }
        loop {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Err(_elapsed) => return Ok(false),
                Ok(Ok(other)) if other != id && !other.is_nil() => continue,
                Ok(Ok(_)) | Ok(Err(broadcast::error::RecvError::Lagged(_))) => break,
                Ok(Err(broadcast::error::RecvError::Closed)) => return Ok(false),
            }
        }
    }
}
