//! The onboarding timeline: what happened, when, in order. Entries are written by the
//! transaction of the change they record (`Tx::event`), at its commit.

use serde_json::Value;
use sqlx::PgExecutor;
use uuid::Uuid;

#[derive(Debug, Clone, serde::Serialize)]
pub struct EventRow {
    pub kind: String,
    pub detail: Value,
    pub at: chrono::DateTime<chrono::Utc>,
}

pub async fn list(
    db: impl PgExecutor<'_>,
    onboarding_id: Uuid,
) -> Result<Vec<EventRow>, sqlx::Error> {
    sqlx::query_as!(
        EventRow,
        "SELECT kind, detail, at FROM onboarding_events WHERE onboarding_id = $1 ORDER BY id",
        onboarding_id,
    )
    .fetch_all(db)
    .await
}
