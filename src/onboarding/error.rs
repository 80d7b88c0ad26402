//! The flow's one error type: what went wrong on veredito's side. Provider faults are not here:
//! the steps absorb them.

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    #[error("this Idempotency-Key was used with a different body")]
    IdempotencyConflict,
    /// As many replays as `api.max_replays` allows are running; this one was not started.
    #[error("too many policy replays are running; retry after the time in Retry-After")]
    ReplaysBusy,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for FlowError {
    fn from(e: sqlx::Error) -> Self {
        FlowError::Store(StoreError::Database(e))
    }
}
