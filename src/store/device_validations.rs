//! Device validations of returning users: the request as received, the event sent to QI Tech,
//! and its analysis until final. Rows still processing form the follow-up queue.

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;
use uuid::Uuid;

pub struct NewValidation<'a> {
    pub client_name: &'a str,
    pub idempotency_key: &'a str,
    pub request_hash: &'a [u8],
    pub reference: Option<&'a str>,
    pub account_id: &'a str,
    pub person_id: &'a str,
    pub session_id: &'a str,
    pub face_recognition_key: Option<&'a str>,
}

pub use crate::store::idempotency::Inserted;

#[derive(Debug, Clone)]
pub struct ValidationRow {
    pub id: Uuid,
    pub reference: Option<String>,
    pub account_id: String,
    pub person_id: String,
    pub session_id: String,
    pub face_recognition_key: Option<String>,
    pub event_id: Uuid,
    pub event_date: DateTime<Utc>,
    pub sent: bool,
    pub analysis_status: Option<String>,
    pub reason: Option<String>,
    pub outcome: Option<String>,
    pub state: String,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub decided_at: Option<DateTime<Utc>>,
}

/// Inserts the validation reserved for `lease` to the request creating it (which sends the event
/// itself); should that request die, the worker takes over when the lease ends.
pub async fn insert(
    tx: &mut sqlx::PgConnection,
    new: NewValidation<'_>,
) -> Result<Inserted, sqlx::Error> {
    let inserted = sqlx::query_scalar!(
        "INSERT INTO device_validations (id, client_name, idempotency_key, request_hash, reference, account_id,
                                         person_id, session_id, face_recognition_key, event_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         ON CONFLICT (client_name, idempotency_key) DO NOTHING
         RETURNING id",
        Uuid::new_v4(),
        new.client_name,
        new.idempotency_key,
        new.request_hash,
        new.reference,
        new.account_id,
        new.person_id,
        new.session_id,
        new.face_recognition_key,
        Uuid::new_v4(),
    )
    .fetch_optional(&mut *tx)
    .await?;
    crate::store::idempotency::resolve(
        tx,
        crate::store::idempotency::Keyed::DeviceValidations,
        inserted,
        new.client_name,
        new.idempotency_key,
        new.request_hash,
    )
    .await
}

pub async fn get(db: impl PgExecutor<'_>, id: Uuid) -> Result<Option<ValidationRow>, sqlx::Error> {
    sqlx::query_as!(
        ValidationRow,
        "SELECT id, reference, account_id, person_id, session_id, face_recognition_key, event_id,
                event_date, sent, analysis_status, reason, outcome, state, attempts, last_error,
                created_at, decided_at
           FROM device_validations WHERE id = $1",
        id,
    )
    .fetch_optional(db)
    .await
}

/// Claims up to `limit` validations due for a send or a read-back, for `lease`.
pub async fn record_answer(
    db: impl PgExecutor<'_>,
    id: Uuid,
    analysis_status: &str,
    reason: Option<&str>,
    outcome: Option<&str>,
    attempts: i32,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE device_validations
            SET sent = true, analysis_status = $2, reason = $3, outcome = $4, last_error = NULL,
                state = CASE WHEN $4::text IS NULL THEN 'processing' ELSE 'decided' END,
                decided_at = CASE WHEN $4::text IS NULL THEN NULL ELSE now() END,
                attempts = $5
          WHERE id = $1 AND state = 'processing'",
        id,
        analysis_status,
        reason,
        outcome,
        attempts,
    )
    .execute(db)
    .await?;
    Ok(())
}

/// QI Tech has the event (it answered 409 to a resend) but its analysis is not known yet. The
/// schedule is left alone: the caller holds the claim and reads the event back itself.
pub async fn mark_sent(db: impl PgExecutor<'_>, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE device_validations SET sent = true WHERE id = $1",
        id
    )
    .execute(db)
    .await?;
    Ok(())
}

pub async fn record_failure(
    db: impl PgExecutor<'_>,
    id: Uuid,
    error: &str,
    attempts: i32,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE device_validations SET last_error = $2, attempts = $3
          WHERE id = $1 AND state = 'processing'",
        id,
        error,
        attempts,
    )
    .execute(db)
    .await?;
    Ok(())
}
