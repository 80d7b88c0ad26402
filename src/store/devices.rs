//! The device stage of an onboarding: the QI Tech registration job and the Open Finance risk
//! signal job. Both are queues in PostgreSQL claimed with a lease (`next_run_at` pushed
//! forward), so they survive restarts and spread over replicas without doing anything twice.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::{PgConnection, PgExecutor, PgPool};
use uuid::Uuid;

use crate::domain::evidence::{BiometricEvidence, DeviceRegistration};

/// Steps of the registration, in order.
pub mod step {
    pub const ACCOUNT: &str = "account";
    pub const PERSON: &str = "person";
    pub const DEVICE: &str = "device";
    pub const READ_BACK: &str = "read_back";
    pub const DONE: &str = "done";
}

/// Moves an onboarding whose other checks approved into the device stage and queues its
/// registration, in the caller's transaction. Answers false when the onboarding had already
/// left the biometric stage (a webhook and a poll raced to the same result).
pub async fn enter_device_stage(
    tx: &mut PgConnection,
    onboarding_id: Uuid,
    biometrics: &BiometricEvidence,
    deadline: Duration,
) -> Result<bool, sqlx::Error> {
    let moved: Option<Uuid> = sqlx::query_scalar(
        "UPDATE onboardings SET state = 'device', updated_at = now()
          WHERE id = $1 AND state IN ('received', 'biometrics') RETURNING id",
    )
    .bind(onboarding_id)
    .fetch_optional(&mut *tx)
    .await?;
    if moved.is_none() {
        return Ok(false);
    }
    sqlx::query(
        "INSERT INTO device_registrations (onboarding_id, biometrics, deadline_at)
         VALUES ($1, $2, now() + make_interval(secs => $3))
         ON CONFLICT (onboarding_id) DO NOTHING",
    )
    .bind(onboarding_id)
    .bind(Json(biometrics))
    .bind(deadline.as_secs_f64())
    .execute(&mut *tx)
    .await?;
    Ok(true)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RegistrationRow {
    pub onboarding_id: Uuid,
    pub step: String,
    pub biometrics: Json<BiometricEvidence>,
    pub registration: Option<Json<DeviceRegistration>>,
    pub registration_date: DateTime<Utc>,
    pub deadline_at: DateTime<Utc>,
    pub attempts: i32,
    pub last_error: Option<String>,
    /// Computed by the database at read time, so replicas with skewed clocks agree.
    pub past_deadline: bool,
}

const REGISTRATION_COLUMNS: &str =
    "onboarding_id, step, biometrics, registration, registration_date, deadline_at,
                                    attempts, last_error, deadline_at <= now() AS past_deadline";

pub async fn registration(
    db: impl PgExecutor<'_>,
    onboarding_id: Uuid,
) -> Result<Option<RegistrationRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {REGISTRATION_COLUMNS} FROM device_registrations WHERE onboarding_id = $1"
    ))
    .bind(onboarding_id)
    .fetch_optional(db)
    .await
}

/// Claims up to `limit` due registrations for `lease`.
pub async fn claim_registrations(
    pool: &PgPool,
    limit: i64,
    lease: Duration,
) -> Result<Vec<RegistrationRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "UPDATE device_registrations r
            SET next_run_at = now() + make_interval(secs => $2), attempts = r.attempts + 1
          WHERE r.onboarding_id IN (
                SELECT onboarding_id FROM device_registrations
                 WHERE step <> 'done' AND next_run_at <= now()
                 ORDER BY next_run_at
                 LIMIT $1
                 FOR UPDATE SKIP LOCKED)
          RETURNING {REGISTRATION_COLUMNS}"
    ))
    .bind(limit)
    .bind(lease.as_secs_f64())
    .fetch_all(pool)
    .await
}

/// Claims one registration whatever its schedule, for the request that queued it to run the
/// first attempt itself. None when it is finished or another worker holds it.
pub async fn claim_registration(
    pool: &PgPool,
    onboarding_id: Uuid,
    lease: Duration,
) -> Result<Option<RegistrationRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "UPDATE device_registrations r
            SET next_run_at = now() + make_interval(secs => $2), attempts = r.attempts + 1
          WHERE r.onboarding_id = (SELECT onboarding_id FROM device_registrations
                                    WHERE onboarding_id = $1 AND step <> 'done' AND next_run_at <= now()
                                    FOR UPDATE SKIP LOCKED)
          RETURNING {REGISTRATION_COLUMNS}"
    ))
    .bind(onboarding_id)
    .bind(lease.as_secs_f64())
    .fetch_optional(pool)
    .await
}

/// Stores progress: the next step, QI Tech's latest answer when there is one, and when to run
/// again. A step forward clears the error of the attempts before it.
pub async fn advance(
    db: impl PgExecutor<'_>,
    onboarding_id: Uuid,
    next_step: &str,
    registration: Option<&DeviceRegistration>,
    run_in: Duration,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE device_registrations
            SET step = $2, registration = COALESCE($3, registration), last_error = NULL,
                next_run_at = now() + make_interval(secs => $4)
          WHERE onboarding_id = $1 AND step <> 'done'",
    )
    .bind(onboarding_id)
    .bind(next_step)
    .bind(registration.map(Json))
    .bind(run_in.as_secs_f64())
    .execute(db)
    .await?;
    Ok(())
}

pub async fn registration_failed(
    db: impl PgExecutor<'_>,
    onboarding_id: Uuid,
    error: &str,
    run_in: Duration,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE device_registrations SET last_error = $2, next_run_at = now() + make_interval(secs => $3)
          WHERE onboarding_id = $1 AND step <> 'done'",
    )
    .bind(onboarding_id)
    .bind(error)
    .bind(run_in.as_secs_f64())
    .execute(db)
    .await?;
    Ok(())
}

pub async fn finish_registration(
    db: impl PgExecutor<'_>,
    onboarding_id: Uuid,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE device_registrations SET step = 'done', finished_at = now() WHERE onboarding_id = $1")
        .bind(onboarding_id)
        .execute(db)
        .await?;
    Ok(())
}

/// Queues the Open Finance risk signal of an approved onboarding, when it has an enrollment.
pub async fn enqueue_signal(
    db: impl PgExecutor<'_>,
    onboarding_id: Uuid,
) -> Result<bool, sqlx::Error> {
    let queued: Option<Uuid> = sqlx::query_scalar(
        "INSERT INTO open_finance_signals (onboarding_id, enrollment_id, transaction_uuid)
         SELECT id, open_finance->>'enrollment_id', $2 FROM onboardings
          WHERE id = $1 AND COALESCE(open_finance->>'enrollment_id', '') <> ''
         ON CONFLICT (onboarding_id) DO NOTHING
         RETURNING onboarding_id",
    )
    .bind(onboarding_id)
    .bind(Uuid::new_v4())
    .fetch_optional(db)
    .await?;
    Ok(queued.is_some())
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SignalRow {
    pub onboarding_id: Uuid,
    pub enrollment_id: String,
    pub transaction_uuid: Uuid,
    pub status: String,
    pub attempts: i32,
    pub http_status: Option<i32>,
    pub last_error: Option<String>,
    pub finished_at: Option<DateTime<Utc>>,
}

const SIGNAL_COLUMNS: &str = "onboarding_id, enrollment_id, transaction_uuid, status, attempts, http_status, last_error, finished_at";

pub async fn signal(
    db: impl PgExecutor<'_>,
    onboarding_id: Uuid,
) -> Result<Option<SignalRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {SIGNAL_COLUMNS} FROM open_finance_signals WHERE onboarding_id = $1"
    ))
    .bind(onboarding_id)
    .fetch_optional(db)
    .await
}

pub async fn claim_signals(
    pool: &PgPool,
    limit: i64,
    lease: Duration,
) -> Result<Vec<SignalRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "UPDATE open_finance_signals s
            SET next_run_at = now() + make_interval(secs => $2), attempts = s.attempts + 1
          WHERE s.onboarding_id IN (
                SELECT onboarding_id FROM open_finance_signals
                 WHERE status = 'pending' AND next_run_at <= now()
                 ORDER BY next_run_at
                 LIMIT $1
                 FOR UPDATE SKIP LOCKED)
          RETURNING {SIGNAL_COLUMNS}"
    ))
    .bind(limit)
    .bind(lease.as_secs_f64())
    .fetch_all(pool)
    .await
}

/// Records an attempt. `retry_in` None ends the job with `status` (sent or failed); Some keeps it
/// pending and due again then.
pub async fn signal_attempted(
    db: impl PgExecutor<'_>,
    onboarding_id: Uuid,
    status: &str,
    http_status: Option<u16>,
    error: Option<&str>,
    retry_in: Option<Duration>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE open_finance_signals
            SET status = $2, http_status = $3, last_error = $4,
                next_run_at = now() + make_interval(secs => COALESCE($5, 0)),
                finished_at = CASE WHEN $2 = 'pending' THEN NULL ELSE now() END
          WHERE onboarding_id = $1 AND status = 'pending'",
    )
    .bind(onboarding_id)
    .bind(status)
    .bind(http_status.map(i32::from))
    .bind(error)
    .bind(retry_in.map(|d| d.as_secs_f64()))
    .execute(db)
    .await?;
    Ok(())
}
