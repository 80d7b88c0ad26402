//! Provider calls are written by a background task so a client never waits on the audit log.
//! What a provider wrote in its own words is sealed with the personal data's key before it is
//! stored, and read back only for callers that may read personal data.

use sqlx::PgPool;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::crypto::PiiCipher;
use crate::providers::{CallContext, CallRecord, CallSink};

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
    cipher: PiiCipher,
    mut rx: mpsc::Receiver<CallRecord>,
    shutdown: CancellationToken,
) {
    loop {
        let call = tokio::select! {
            call = rx.recv() => call,
            _ = shutdown.cancelled() => { rx.close(); rx.recv().await }
        };
        let Some(call) = call else { break };
        let call = SealedCall::seal(&cipher, call);
        if let Err(e) = insert(&pool, &call).await {
            tracing::warn!(error = %e, provider = call.record.provider, operation = call.record.operation, "could not store a provider call");
        }
    }
}

/// A call as it is stored: the provider's own words (`CallRecord::said`) sealed.
pub struct SealedCall {
    pub record: CallRecord,
    pub answer_key_id: Option<String>,
    pub answer_ciphertext: Option<Vec<u8>>,
}

impl SealedCall {
    pub fn seal(cipher: &PiiCipher, mut record: CallRecord) -> SealedCall {
        let said = record.said.take();
        let sealed = said.and_then(|said| {
            let plain = serde_json::to_vec(&said.0).ok()?;
            cipher
                .encrypt(&plain, &sealing_context(record.context))
                .map_err(|e| {
                    tracing::warn!(error = %e, provider = record.provider, "a provider's answer could not be sealed; it is not kept")
                })
                .ok()
        });
        let (answer_key_id, answer_ciphertext) = sealed.unzip();
        SealedCall {
            record,
            answer_key_id,
            answer_ciphertext,
        }
    }
}

/// What a sealed answer is bound to: the onboarding or validation it was made for, so a
/// ciphertext moved to another subject's call does not open.
fn sealing_context(context: CallContext) -> Vec<u8> {
    let subject = context
        .onboarding_id
        .or(context.device_validation_id)
        .unwrap_or(Uuid::nil());
    [b"provider_call:".as_slice(), subject.as_bytes()].concat()
}

pub async fn insert(db: impl sqlx::PgExecutor<'_>, sealed: &SealedCall) -> Result<(), sqlx::Error> {
    let call = &sealed.record;
    sqlx::query!(
        "INSERT INTO provider_calls (onboarding_id, device_validation_id, provider, operation, method, path,
                                     http_status, latency_ms, request, response, error,
                                     answer_key_id, answer_ciphertext)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        call.context.onboarding_id,
        call.context.device_validation_id,
        call.provider,
        call.operation,
        call.method,
        call.path,
        call.http_status.map(i32::from),
        i32::try_from(call.latency_ms).unwrap_or(i32::MAX),
        call.request,
        call.response,
        call.error,
        sealed.answer_key_id,
        sealed.answer_ciphertext,
    )
    .execute(db)
    .await?;
    Ok(())
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct CallRow {
    #[serde(skip)]
    pub onboarding_id: Option<Uuid>,
    #[serde(skip)]
    pub device_validation_id: Option<Uuid>,
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
    #[serde(skip)]
    pub answer_key_id: Option<String>,
    #[serde(skip)]
    pub answer_ciphertext: Option<Vec<u8>>,
    /// The provider's own words, opened only for callers with `pii:read` (`open_answer`);
    /// absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider_said: Option<serde_json::Value>,
}

impl CallRow {
    /// Opens the sealed answer into `provider_said`. A row retention erased has none.
    pub fn open_answer(&mut self, cipher: &PiiCipher) -> Result<(), crate::crypto::CryptoError> {
        if let (Some(key_id), Some(sealed)) = (&self.answer_key_id, &self.answer_ciphertext) {
            let context = sealing_context(CallContext {
                onboarding_id: self.onboarding_id,
                device_validation_id: self.device_validation_id,
            });
            let plain = cipher.decrypt(key_id, sealed, &context)?;
            self.provider_said = serde_json::from_slice(&plain).ok();
        }
        Ok(())
    }
}

pub async fn list_for_onboarding(
    pool: &PgPool,
    onboarding_id: uuid::Uuid,
) -> Result<Vec<CallRow>, sqlx::Error> {
    sqlx::query_as!(
        CallRow,
        "SELECT onboarding_id, device_validation_id, provider, operation, method, path, http_status,
                latency_ms, request, response, error, created_at, answer_key_id, answer_ciphertext,
                NULL::jsonb AS provider_said
         FROM provider_calls WHERE onboarding_id = $1 ORDER BY id",
        onboarding_id,
    )
    .fetch_all(pool)
    .await
}

/// Erases the bodies, error codes and sealed answers of up to `batch` calls made more than
/// `days` ago: what a provider said may echo personal data, and the call's provider, operation,
/// status and time are what the record needs once the personal data is gone. A call with a
/// sealed answer always has a response or an error, so the partial index finds it.
pub async fn erase_older_than(db: &PgPool, days: u32, batch: i64) -> Result<u64, sqlx::Error> {
    // The call log is a record the service's role cannot change; the owner's function erases.
    let erased = sqlx::query_scalar!(
        r#"SELECT erase_provider_call_text($1, $2) AS "erased!""#,
        i32::try_from(days).unwrap_or(i32::MAX),
        batch,
    )
    .fetch_one(db)
    .await?;
    Ok(u64::try_from(erased).unwrap_or(0))
}
