//! The outbox: one row per event, written with the state change it reports, delivered by a
//! `deliver_callback` step to its target: the onboarding backend (`callbacks`, decision events)
//! or the fraud-indication sharing system (`fraud_sharing`). Both are signed, retried and
//! recorded alike; only the endpoint, the key and what a 2xx means differ.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgExecutor;
use uuid::Uuid;

use crate::domain::schema::one_of;
use crate::domain::transitions::StepKind;
use crate::store::Tx;
use crate::store::steps::{self, Subject, When};

/// An event and its delivery, as `GET /v1/callbacks` lists it (the body it carries is not shown).
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
#[schema(as = Callback)]
pub struct CallbackRow {
    /// The webhook-id, the same on every attempt.
    pub id: Uuid,
    #[serde(rename = "type")]
    #[schema(schema_with = kind)]
    pub kind: String,
    #[serde(skip)]
    pub body: Value,
    #[schema(required = true)]
    pub onboarding_id: Option<Uuid>,
    /// callbacks or fraud_sharing.
    #[schema(schema_with = target)]
    pub target: String,
    /// The indication a sharing event is about.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Uuid, required = false)]
    pub fraud_indication_id: Option<Uuid>,
    #[schema(schema_with = status)]
    pub status: String,
    pub attempts: i32,
    /// The last attempt's HTTP status; null before the first, or when no answer came.
    #[schema(required = true)]
    pub last_status: Option<i32>,
    #[schema(required = true)]
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    #[schema(required = true)]
    pub delivered_at: Option<DateTime<Utc>>,
    #[schema(required = true)]
    pub failed_at: Option<DateTime<Utc>>,
}

fn kind() -> utoipa::openapi::schema::Object {
    one_of(
        &[
            "onboarding.decided",
            "device_validation.decided",
            "review.opened",
            "review.resolved",
            "fraud_indication.registered",
            "fraud_indication.updated",
            "fraud_indication.withdrawn",
        ],
        None,
    )
}

fn target() -> utoipa::openapi::schema::Object {
    one_of(
        &[TO_CALLBACKS, TO_FRAUD_SHARING],
        Some("Where the event goes: callbacks.url, or fraud_sharing.url"),
    )
}

fn status() -> utoipa::openapi::schema::Object {
    one_of(&["pending", "delivered", "failed"], None)
}

/// `sqlx::query_as!` into a `CallbackRow`: the SQL before its columns, and after them.
macro_rules! query_callback {
    ($before:literal, $after:literal $(, $arg:expr)* $(,)?) => {
        sqlx::query_as!(
            CallbackRow,
            $before
                + "id, type AS kind, body, onboarding_id, target, fraud_indication_id, status,
                   attempts, last_status, last_error, created_at, delivered_at, failed_at"
                + $after
            $(, $arg)*
        )
    };
}

/// Where an event goes.
pub const TO_CALLBACKS: &str = "callbacks";
pub const TO_FRAUD_SHARING: &str = "fraud_sharing";

/// Writes the event and the step that delivers it, in the caller's transaction. The step is due
/// at once on any replica: delivery has a lane of its own, so it never delays a decision.
pub async fn enqueue(
    tx: &mut Tx,
    kind: &str,
    onboarding_id: Option<Uuid>,
    data: Value,
) -> Result<Uuid, sqlx::Error> {
    let id = Uuid::new_v4();
    let body = serde_json::json!({
        "type": kind,
        "timestamp": Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "data": data,
    });
    sqlx::query!(
        "INSERT INTO callbacks (id, type, body, onboarding_id) VALUES ($1, $2, $3, $4)",
        id,
        kind,
        body,
        onboarding_id,
    )
    .execute(&mut **tx)
    .await?;
    steps::queue(
        tx,
        StepKind::DeliverCallback,
        Subject::Callback(id),
        When::Now,
    )
    .await?;
    Ok(id)
}

/// Writes a fraud indication's event for the sharing system and the step that delivers it.
pub async fn enqueue_sharing(
    tx: &mut Tx,
    kind: &str,
    indication_id: Uuid,
    onboarding_id: Option<Uuid>,
    data: Value,
) -> Result<Uuid, sqlx::Error> {
    let id = Uuid::new_v4();
    let body = serde_json::json!({
        "type": kind,
        "timestamp": Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "data": data,
    });
    sqlx::query!(
        "INSERT INTO callbacks (id, type, body, onboarding_id, target, fraud_indication_id,
                                created_at)
         VALUES ($1, $2, $3, $4, 'fraud_sharing', $5, clock_timestamp())",
        id,
        kind,
        body,
        onboarding_id,
        indication_id,
    )
    .execute(&mut **tx)
    .await?;
    steps::queue(
        tx,
        StepKind::DeliverCallback,
        Subject::Callback(id),
        When::Now,
    )
    .await?;
    Ok(id)
}

/// Whether an earlier event of the same indication is still to be delivered: events of one
/// indication reach the sharing system in the order they happened.
pub async fn earlier_pending(
    db: impl PgExecutor<'_>,
    row: &CallbackRow,
) -> Result<bool, sqlx::Error> {
    let Some(indication) = row.fraud_indication_id else {
        return Ok(false);
    };
    sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM callbacks
                           WHERE fraud_indication_id = $1 AND status = 'pending'
                             AND (created_at, id) < ($2, $3)) AS "exists!""#,
        indication,
        row.created_at,
        row.id,
    )
    .fetch_one(db)
    .await
}

pub async fn get(db: impl PgExecutor<'_>, id: Uuid) -> Result<Option<CallbackRow>, sqlx::Error> {
    query_callback!("SELECT ", " FROM callbacks WHERE id = $1", id)
        .fetch_optional(db)
        .await
}

/// Records an attempt: `status` delivered or failed ends it, pending keeps it for the next run.
pub async fn attempted(
    db: impl PgExecutor<'_>,
    id: Uuid,
    attempts: i32,
    status: &str,
    http_status: Option<u16>,
    error: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE callbacks
            SET status = $2, attempts = $3, last_status = $4, last_error = $5,
                delivered_at = CASE WHEN $2 = 'delivered' THEN now() END,
                failed_at = CASE WHEN $2 = 'failed' THEN now() END
          WHERE id = $1",
        id,
        status,
        attempts,
        http_status.map(i32::from),
        error,
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Deliveries to `target`, newest first, by status.
pub async fn list(
    db: impl PgExecutor<'_>,
    target: &str,
    status: Option<&str>,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<CallbackRow>, sqlx::Error> {
    let (after_at, after_id) = after.map_or((None, None), |(at, id)| (Some(at), Some(id)));
    query_callback!(
        "SELECT ",
        " FROM callbacks
          WHERE ($1::text IS NULL OR status = $1)
            AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3::uuid))
            AND target = $5
          ORDER BY created_at DESC, id DESC
          LIMIT $4",
        status,
        after_at,
        after_id,
        limit,
        target,
    )
    .fetch_all(db)
    .await
}

/// Sends a failed delivery again: pending, with a new step. Answers false when it was not failed.
pub async fn retry(tx: &mut Tx, id: Uuid) -> Result<bool, sqlx::Error> {
    let reopened = sqlx::query!(
        "UPDATE callbacks SET status = 'pending', failed_at = NULL, created_at = now()
          WHERE id = $1 AND status = 'failed'",
        id,
    )
    .execute(&mut **tx)
    .await?
    .rows_affected();
    if reopened == 0 {
        return Ok(false);
    }
    steps::queue(
        tx,
        StepKind::DeliverCallback,
        Subject::Callback(id),
        When::Now,
    )
    .await?;
    Ok(true)
}
