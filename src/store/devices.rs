//! The device stage of an onboarding: the QI Tech registration and the Open Finance risk signal.
//! Their rows keep what each has got so far; when each runs next is its step's to say
//! (`store::steps`), so they survive restarts and spread over replicas without doing anything
//! twice.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;
use sqlx::types::Json;
use uuid::Uuid;

use crate::domain::evidence::{BiometricEvidence, DeviceRegistration};
use crate::store::onboardings::OnboardingRow;

/// Steps of the registration, in order.
pub mod step {
    pub const ACCOUNT: &str = "account";
    pub const PERSON: &str = "person";
    pub const DEVICE: &str = "device";
    pub const READ_BACK: &str = "read_back";
    pub const DONE: &str = "done";
}

/// Queues the registration of an onboarding whose other checks approved, in the caller's
/// transaction (the one that moves it to the device stage). Answers the row as stored, so the
/// step that runs next on this replica need not read it back (None when it existed already).
pub async fn insert_registration(
    db: impl PgExecutor<'_>,
    onboarding_id: Uuid,
    biometrics: &BiometricEvidence,
    deadline: Duration,
    review_case_id: Option<Uuid>,
) -> Result<Option<RegistrationRow>, sqlx::Error> {
    static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!(
            "INSERT INTO device_registrations (onboarding_id, biometrics, deadline_at, review_case_id)
             VALUES ($1, $2, now() + make_interval(secs => $3), $4)
             ON CONFLICT (onboarding_id) DO NOTHING
             RETURNING {REGISTRATION_COLUMNS}"
        )
    });
    sqlx::query_as(SQL.as_str())
        .bind(onboarding_id)
        .bind(Json(biometrics))
        .bind(deadline.as_secs_f64())
        .bind(review_case_id)
        .fetch_optional(db)
        .await
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
    /// Set when the registration runs for a reviewer's approval, whose decision it completes.
    pub review_case_id: Option<Uuid>,
}

const REGISTRATION_COLUMNS: &str =
    "onboarding_id, step, biometrics, registration, registration_date, deadline_at,
                                    attempts, last_error, deadline_at <= now() AS past_deadline,
                                    review_case_id";

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

/// The registration with its onboarding, in one statement: what a registration step needs.
pub async fn registration_with_onboarding(
    db: impl PgExecutor<'_>,
    onboarding_id: Uuid,
) -> Result<Option<(OnboardingRow, RegistrationRow)>, sqlx::Error> {
    #[derive(sqlx::FromRow)]
    struct Joined {
        #[sqlx(flatten)]
        onboarding: OnboardingRow,
        r_step: String,
        r_biometrics: Json<BiometricEvidence>,
        r_registration: Option<Json<DeviceRegistration>>,
        r_registration_date: DateTime<Utc>,
        r_deadline_at: DateTime<Utc>,
        r_attempts: i32,
        r_last_error: Option<String>,
        r_past_deadline: bool,
        r_review_case_id: Option<Uuid>,
    }
    // Built once: the statement is the same for every step.
    static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!(
            "SELECT {}, r.step AS r_step, r.biometrics AS r_biometrics,
                r.registration AS r_registration, r.registration_date AS r_registration_date,
                r.deadline_at AS r_deadline_at, r.attempts AS r_attempts,
                r.last_error AS r_last_error, r.deadline_at <= now() AS r_past_deadline,
                r.review_case_id AS r_review_case_id
           FROM device_registrations r JOIN onboardings o ON o.id = r.onboarding_id
          WHERE r.onboarding_id = $1",
            crate::store::onboardings::columns_of("o")
        )
    });
    let joined: Option<Joined> = sqlx::query_as(SQL.as_str())
        .bind(onboarding_id)
        .fetch_optional(db)
        .await?;
    Ok(joined.map(|j| {
        let row = RegistrationRow {
            onboarding_id,
            step: j.r_step,
            biometrics: j.r_biometrics,
            registration: j.r_registration,
            registration_date: j.r_registration_date,
            deadline_at: j.r_deadline_at,
            attempts: j.r_attempts,
            last_error: j.r_last_error,
            past_deadline: j.r_past_deadline,
            review_case_id: j.r_review_case_id,
        };
        (j.onboarding, row)
    }))
}

/// Stores how far the registration got: the next call to make (`done` once decided), QI Tech's
/// latest answer when there is one, and the last failure's code.
pub async fn set_registration(
    db: impl PgExecutor<'_>,
    onboarding_id: Uuid,
    next_step: &str,
    registration: Option<&DeviceRegistration>,
    error: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE device_registrations
            SET step = $2, registration = COALESCE($3, registration), last_error = $4,
                attempts = attempts + 1,
                finished_at = CASE WHEN $2 = 'done' THEN now() END
          WHERE onboarding_id = $1 AND step <> 'done'",
    )
    .bind(onboarding_id)
    .bind(next_step)
    .bind(registration.map(Json))
    .bind(error)
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

/// Records attempt number `attempts`: `status` sent or failed ends it; pending keeps it open
/// for the step's next run.
pub async fn signal_attempted(
    db: impl PgExecutor<'_>,
    onboarding_id: Uuid,
    attempts: i32,
    status: &str,
    http_status: Option<u16>,
    error: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE open_finance_signals
            SET status = $2, http_status = $3, last_error = $4, attempts = $5,
                finished_at = CASE WHEN $2 = 'pending' THEN NULL ELSE now() END
          WHERE onboarding_id = $1 AND status = 'pending'",
    )
    .bind(onboarding_id)
    .bind(status)
    .bind(http_status.map(i32::from))
    .bind(error)
    .bind(attempts)
    .execute(db)
    .await?;
    Ok(())
}
