//! The onboarding timeline: what happened, when, in order.

use serde_json::Value;
use sqlx::PgExecutor;
use uuid::Uuid;

pub async fn record(
    db: impl PgExecutor<'_>,
    onboarding_id: Uuid,
    kind: &str,
    detail: Value,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO onboarding_events (onboarding_id, kind, detail) VALUES ($1, $2, $3)")
        .bind(onboarding_id)
        .bind(kind)
        .bind(detail)
        .execute(db)
        .await?;
    Ok(())
}

#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct EventRow {
    pub kind: String,
    pub detail: Value,
    pub at: chrono::DateTime<chrono::Utc>,
}

pub async fn list(
    db: impl PgExecutor<'_>,
    onboarding_id: Uuid,
) -> Result<Vec<EventRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT kind, detail, at FROM onboarding_events WHERE onboarding_id = $1 ORDER BY id",
    )
    .bind(onboarding_id)
    .fetch_all(db)
    .await
}
