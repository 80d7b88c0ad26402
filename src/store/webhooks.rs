//! Every unico notification received, trusted or not.

use serde_json::Value;
use sqlx::PgExecutor;

pub struct NewWebhook<'a> {
    pub authenticated: bool,
    pub process_id: Option<&'a str>,
    pub state: Option<&'a str>,
    pub payload: Option<Value>,
    pub known_process: bool,
}

pub async fn insert(db: impl PgExecutor<'_>, hook: NewWebhook<'_>) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar!(
        "INSERT INTO unico_webhooks (authenticated, process_id, state, payload, known_process)
         VALUES ($1, $2, $3, $4, $5) RETURNING id",
        hook.authenticated,
        hook.process_id,
        hook.state,
        hook.payload,
        hook.known_process,
    )
    .fetch_one(db)
    .await
}

/// A delivery without unico's secret: counted in its minute's row, so forged ones cost at most
/// one row a minute however many come.
pub async fn count_forged(db: impl PgExecutor<'_>) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "INSERT INTO forged_webhooks (minute, deliveries, last_at)
         VALUES (date_trunc('minute', now()), 1, now())
         ON CONFLICT (minute) DO UPDATE
            SET deliveries = forged_webhooks.deliveries + 1, last_at = now()",
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Whether an authenticated notification for this process arrived before the process was stored.
pub async fn arrived_early(db: impl PgExecutor<'_>, process_id: &str) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM unico_webhooks WHERE process_id = $1 AND authenticated)
                  AS "exists!""#,
        process_id,
    )
    .fetch_one(db)
    .await
}

/// Deletes up to `batch` deliveries received more than `days` ago; answers how many went.
pub async fn delete_older_than(
    db: impl PgExecutor<'_>,
    days: u32,
    batch: i64,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query!(
        "DELETE FROM unico_webhooks WHERE id IN (
             SELECT id FROM unico_webhooks
              WHERE received_at < now() - make_interval(days => $1)
              ORDER BY received_at LIMIT $2)",
        i32::try_from(days).unwrap_or(i32::MAX),
        batch,
    )
    .execute(db)
    .await?;
    Ok(done.rows_affected())
}

/// Deletes the counts of forged deliveries older than `days` (one row a minute at most).
pub async fn delete_forged_older_than(
    db: impl PgExecutor<'_>,
    days: u32,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query!(
        "DELETE FROM forged_webhooks WHERE minute < now() - make_interval(days => $1)",
        i32::try_from(days).unwrap_or(i32::MAX),
    )
    .execute(db)
    .await?;
    Ok(done.rows_affected())
}
