//! Provider calls are written by a background task so a client never waits on the audit log.

use sqlx::PgPool;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::providers::{CallRecord, CallSink};

/// Hands call records to the writer task; drops (and counts) records if the writer falls far
/// behind rather than slowing down onboardings.
pub struct ChannelSink {
    tx: mpsc::Sender<CallRecord>,
}

impl CallSink for ChannelSink {
    fn record(&self, call: CallRecord) {
        if self.tx.try_send(call).is_err() {
            tracing::warn!("provider call log is full; a call record was dropped");
        }
    }
}

pub fn channel() -> (ChannelSink, mpsc::Receiver<CallRecord>) {
    let (tx, rx) = mpsc::channel(10_000);
    (ChannelSink { tx }, rx)
}

/// Writes records until the channel closes or shutdown; on shutdown it drains what is queued.
pub async fn run_writer(
    pool: PgPool,
    mut rx: mpsc::Receiver<CallRecord>,
    shutdown: CancellationToken,
) {
    loop {
        let call = tokio::select! {
            call = rx.recv() => call,
            _ = shutdown.cancelled() => { rx.close(); rx.recv().await }
        };
        let Some(call) = call else { break };
        if let Err(e) = insert(&pool, &call).await {
            tracing::warn!(error = %e, provider = call.provider, operation = call.operation, "could not store a provider call");
        }
    }
}

pub async fn insert(db: impl sqlx::PgExecutor<'_>, call: &CallRecord) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO provider_calls (onboarding_id, device_validation_id, provider, operation, method, path,
                                     http_status, latency_ms, request, response, error)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(call.context.onboarding_id)
    .bind(call.context.device_validation_id)
    .bind(call.provider)
    .bind(call.operation)
    .bind(call.method)
    .bind(&call.path)
    .bind(call.http_status.map(i32::from))
    .bind(i32::try_from(call.latency_ms).unwrap_or(i32::MAX))
    .bind(&call.request)
    .bind(&call.response)
    .bind(&call.error)
    .execute(db)
    .await?;
    Ok(())
}

#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct CallRow {
    pub provider: String,
    pub operation: String,
    pub method: String,
    pub path: String,
    pub http_status: Option<i32>,
    pub latency_ms: i32,
    pub request: Option<serde_json::Value>,
    pub response: Option<serde_json::Value>,
    pub error: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

pub async fn list_for_onboarding(
    pool: &PgPool,
    onboarding_id: uuid::Uuid,
) -> Result<Vec<CallRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT provider, operation, method, path, http_status, latency_ms, request, response, error, created_at
         FROM provider_calls WHERE onboarding_id = $1 ORDER BY id",
    )
    .bind(onboarding_id)
    .fetch_all(pool)
    .await
}

/// Erases the bodies and error text of up to `batch` calls made more than `days` ago: what a
/// provider said may echo personal data, and the call's provider, operation, status and time
/// are what the record needs once the personal data is gone.
pub async fn erase_older_than(db: &PgPool, days: u32, batch: i64) -> Result<u64, sqlx::Error> {
    // The call log is a record the service's role cannot change; the owner's function erases.
    let erased: i64 = sqlx::query_scalar("SELECT erase_provider_call_text($1, $2)")
        .bind(i32::try_from(days).unwrap_or(i32::MAX))
        .bind(batch)
        .fetch_one(db)
        .await?;
    Ok(u64::try_from(erased).unwrap_or(0))
}
