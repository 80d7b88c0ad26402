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
use crate::store::onboardings::{OnboardingRow, onboarding_row};

/// Steps of the registration, in order.
pub mod step {
    pub const ACCOUNT: &str = "account";
    pub const PERSON: &str = "person";
    pub const DEVICE: &str = "device";
    pub const READ_BACK: &str = "read_back";
    pub const DONE: &str = "done";
}

/// `sqlx::query_as!` into a `RegistrationRow`: the SQL before its columns, and after them.
macro_rules! query_registration {
    ($before:literal, $after:literal $(, $arg:expr)* $(,)?) => {
        sqlx::query_as!(
            RegistrationRow,
            $before
                + r#"onboarding_id, step, biometrics AS "biometrics: Json<BiometricEvidence>",
                     registration AS "registration: Json<DeviceRegistration>", registration_date,
                     deadline_at, attempts, last_error, deadline_at <= now() AS "past_deadline!",
                     review_case_id"#
                + $after
            $(, $arg)*
        )
    };
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
    query_registration!(
        "INSERT INTO device_registrations (onboarding_id, biometrics, deadline_at, review_case_id)
         VALUES ($1, $2, now() + make_interval(secs => $3), $4)
         ON CONFLICT (onboarding_id) DO NOTHING
         RETURNING ",
        "",
        onboarding_id,
        Json(biometrics) as _,
        deadline.as_secs_f64(),
        review_case_id,
    )
    .fetch_optional(db)
    .await
}

#[derive(Debug, Clone)]
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

pub async fn registration(
    db: impl PgExecutor<'_>,
    onboarding_id: Uuid,
) -> Result<Option<RegistrationRow>, sqlx::Error> {
    query_registration!(
        "SELECT ",
        " FROM device_registrations WHERE onboarding_id = $1",
        onboarding_id,
    )
    .fetch_optional(db)
    .await
}

/// The registration with its onboarding, in one statement: what a registration step needs.
pub async fn registration_with_onboarding(
    db: impl PgExecutor<'_>,
    onboarding_id: Uuid,
) -> Result<Option<(OnboardingRow, RegistrationRow)>, sqlx::Error> {
    let joined = sqlx::query!(
        r#"SELECT o.id, o.client_name, o.reference, o.account_id, o.person_id, o.device,
                  o.open_finance, o.state, o.pii_key_id, o.pii_ciphertext, o.last_error,
                  o.created_at, o.decided_at, o.memory,
                  r.step AS r_step, r.biometrics AS "r_biometrics: Json<BiometricEvidence>",
                  r.registration AS "r_registration: Json<DeviceRegistration>",
                  r.registration_date AS r_registration_date, r.deadline_at AS r_deadline_at,
                  r.attempts AS r_attempts, r.last_error AS r_last_error,
                  r.deadline_at <= now() AS "r_past_deadline!",
                  r.review_case_id AS r_review_case_id
             FROM device_registrations r JOIN onboardings o ON o.id = r.onboarding_id
            WHERE r.onboarding_id = $1"#,
        onboarding_id,
    )
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
        (onboarding_row!(j), row)
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
    sqlx::query!(
        "UPDATE device_registrations
            SET step = $2, registration = COALESCE($3, registration), last_error = $4,
                attempts = attempts + 1,
                finished_at = CASE WHEN $2 = 'done' THEN now() END
          WHERE onboarding_id = $1 AND step <> 'done'",
        onboarding_id,
        next_step,
        registration.map(Json) as _,
        error,
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Queues the Open Finance risk signal of an approved onboarding, when it has an enrollment.
pub async fn enqueue_signal(
    db: impl PgExecutor<'_>,
    onboarding_id: Uuid,
) -> Result<bool, sqlx::Error> {
    let queued = sqlx::query_scalar!(
        "INSERT INTO open_finance_signals (onboarding_id, enrollment_id, transaction_uuid)
         SELECT id, open_finance->>'enrollment_id', $2 FROM onboardings
          WHERE id = $1 AND COALESCE(open_finance->>'enrollment_id', '') <> ''
         ON CONFLICT (onboarding_id) DO NOTHING
         RETURNING onboarding_id",
        onboarding_id,
        Uuid::new_v4(),
    )
    .fetch_optional(db)
    .await?;
    Ok(queued.is_some())
}

#[derive(Debug, Clone)]
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

pub async fn signal(
    db: impl PgExecutor<'_>,
    onboarding_id: Uuid,
) -> Result<Option<SignalRow>, sqlx::Error> {
    sqlx::query_as!(
        SignalRow,
        "SELECT onboarding_id, enrollment_id, transaction_uuid, status, attempts, http_status,
                last_error, finished_at
           FROM open_finance_signals WHERE onboarding_id = $1",
        onboarding_id,
    )
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
    sqlx::query!(
        "UPDATE open_finance_signals
            SET status = $2, http_status = $3, last_error = $4, attempts = $5,
                finished_at = CASE WHEN $2 = 'pending' THEN NULL ELSE now() END
          WHERE onboarding_id = $1 AND status = 'pending'",
        onboarding_id,
        status,
        http_status.map(i32::from),
        error,
        attempts,
    )
    .execute(db)
    .await?;
    Ok(())
}
