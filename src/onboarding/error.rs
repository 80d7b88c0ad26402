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

impl From<crate::crypto::CryptoError> for FlowError {
    fn from(e: crate::crypto::CryptoError) -> Self {
        FlowError::Store(StoreError::Crypto(e))
    }
}

impl FlowError {
    /// What kind of failure this is, for a step's `last_error` and its timeline entry: a class,
    /// never the message (which may quote stored data).
    pub fn class(&self) -> &'static str {
        use crate::store::StoreError;
        match self {
            FlowError::IdempotencyConflict => "idempotency_conflict",
            FlowError::ReplaysBusy => "replays_busy",
            FlowError::Store(StoreError::Database(sqlx::Error::PoolTimedOut)) => "database.busy",
            FlowError::Store(StoreError::Database(sqlx::Error::Database(_))) => "database.refused",
            FlowError::Store(StoreError::Database(_)) => "database.unavailable",
            FlowError::Store(StoreError::Migrate(_)) => "database.schema",
            FlowError::Store(StoreError::Corrupt(_)) => "stored_data.unreadable",
            FlowError::Store(StoreError::Crypto(_)) => "stored_data.unsealable",
        }
    }
}
