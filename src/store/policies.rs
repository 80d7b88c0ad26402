//! Policy versions and the shadow verdicts stored beside live decisions.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use sqlx::types::Json;
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use crate::domain::schema::one_of;
use crate::policy::Verdict;
use crate::policy::document::PolicyDocument;
use crate::store::StoreError;

/// NOTIFY channel: the active or the shadow version changed.
pub const POLICY_CHANNEL: &str = "veredito_policy";

/// A policy version; shown without its document in the list of versions.
#[derive(Debug, Clone, sqlx::FromRow, Serialize, utoipa::ToSchema)]
#[schema(as = PolicyVersionSummary)]
pub struct VersionRow {
    pub version: String,
    #[serde(skip)]
    pub document: Value,
    #[schema(schema_with = status)]
    pub status: String,
    /// The key that drafted it (`configuration` for the version seeded from the configuration).
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    #[schema(required = true)]
    pub shadowed_at: Option<DateTime<Utc>>,
    /// The key that published it: not the one that drafted it, but for the seeded version.
    #[schema(required = true)]
    pub published_by: Option<String>,
    #[schema(required = true)]
    pub published_at: Option<DateTime<Utc>>,
}

fn status() -> utoipa::openapi::schema::Object {
    one_of(&["draft", "shadow", "active", "retired"], None)
}

impl VersionRow {
    pub fn document(&self) -> Result<PolicyDocument, StoreError> {
        serde_json::from_value(self.document.clone())
            .map_err(|e| StoreError::Corrupt(format!("policy {}: {e}", self.version)))
    }
}

/// Stores a draft. False when the version exists.
pub async fn insert_draft(
    db: impl PgExecutor<'_>,
    document: &PolicyDocument,
    created_by: &str,
) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query!(
        "INSERT INTO policy_versions (version, document, created_by) VALUES ($1, $2, $3)
         ON CONFLICT (version) DO NOTHING",
        document.version,
        Json(document) as Json<&PolicyDocument>,
        created_by,
    )
    .execute(db)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

/// At first start: the configured policy becomes the active version, unless one is active.
pub async fn seed(db: &mut PgConnection, document: &PolicyDocument) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "INSERT INTO policy_versions (version, document, status, created_by, published_by, published_at)
         SELECT $1, $2, 'active', 'configuration', 'configuration', now()
          WHERE NOT EXISTS (SELECT 1 FROM policy_versions WHERE status = 'active')
         ON CONFLICT DO NOTHING",
        document.version,
        Json(document) as Json<&PolicyDocument>,
    )
    .execute(db)
    .await?;
    Ok(())
}

pub async fn get(
    db: impl PgExecutor<'_>,
    version: &str,
) -> Result<Option<VersionRow>, sqlx::Error> {
    sqlx::query_as!(
        VersionRow,
        "SELECT version, document, status, created_by, created_at, shadowed_at, published_by,
                published_at
           FROM policy_versions WHERE version = $1",
        version,
    )
    .fetch_optional(db)
    .await
}

pub async fn list(db: impl PgExecutor<'_>) -> Result<Vec<VersionRow>, sqlx::Error> {
    sqlx::query_as!(
        VersionRow,
        "SELECT version, document, status, created_by, created_at, shadowed_at, published_by,
                published_at
           FROM policy_versions ORDER BY created_at DESC, version",
    )
    .fetch_all(db)
    .await
}

/// The active version and the one in shadow.
pub async fn in_force(
    db: impl PgExecutor<'_>,
) -> Result<(Option<VersionRow>, Option<VersionRow>), sqlx::Error> {
    let rows = sqlx::query_as!(
        VersionRow,
        "SELECT version, document, status, created_by, created_at, shadowed_at, published_by,
                published_at
           FROM policy_versions WHERE status IN ('active', 'shadow')",
    )
    .fetch_all(db)
    .await?;
    let active = rows.iter().find(|r| r.status == "active").cloned();
    let shadow = rows.into_iter().find(|r| r.status == "shadow");
    Ok((active, shadow))
}

/// Puts `version` in shadow, retiring the one that was. False when it is active or retired.
pub async fn shadow(tx: &mut PgConnection, version: &str) -> Result<bool, sqlx::Error> {
    let eligible = sqlx::query_scalar!(
        "SELECT status FROM policy_versions WHERE version = $1 FOR UPDATE",
        version,
    )
    .fetch_optional(&mut *tx)
    .await?;
    if !matches!(eligible.as_deref(), Some("draft" | "shadow")) {
        return Ok(false);
    }
    sqlx::query!(
        "UPDATE policy_versions SET status = 'retired' WHERE status = 'shadow' AND version <> $1",
        version,
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!(
        "UPDATE policy_versions SET status = 'shadow', shadowed_at = COALESCE(shadowed_at, now())
          WHERE version = $1",
        version,
    )
    .execute(&mut *tx)
    .await?;
    notify(tx).await?;
    Ok(true)
}

/// Makes `version` the active one and retires the one that was. Who published it is the
/// four-eyes record, which the service's role cannot write: the owner's function does
/// (`publish_policy_version`, migration 0012), and refuses the version's creator too.
pub async fn publish(tx: &mut PgConnection, version: &str, by: &str) -> Result<(), sqlx::Error> {
    // In FROM, since a `void` column is no type the query macros can read.
    sqlx::query!("SELECT FROM publish_policy_version($1, $2)", version, by)
        .execute(&mut *tx)
        .await?;
    notify(tx).await?;
    Ok(())
}

async fn notify(tx: &mut PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query!("SELECT FROM pg_notify($1, '')", POLICY_CHANNEL)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// Stores what the shadow version says of a live decision, in the decision's transaction.
pub async fn insert_shadow_verdict(
    tx: &mut PgConnection,
    decision_id: Uuid,
    verdict: &Verdict,
    live_outcome: &str,
) -> Result<(), sqlx::Error> {
    let codes: Vec<&str> = verdict.reasons.iter().map(|r| r.code.as_str()).collect();
    sqlx::query!(
        "INSERT INTO shadow_verdicts (decision_id, version, outcome, reasons, reason_codes, live_outcome)
         VALUES ($1, $2, $3, $4, $5, $6)",
        decision_id,
        verdict.policy_version,
        verdict.outcome.as_str(),
        serde_json::to_value(&verdict.reasons).unwrap_or_default(),
        &codes as &[&str],
        live_outcome,
    )
    .execute(&mut *tx)
    .await?;
    Ok(())
}

#[derive(Debug, Clone, sqlx::FromRow, Serialize)]
pub struct ShadowRow {
    pub decision_id: Uuid,
    pub version: String,
    pub outcome: String,
    pub reason_codes: Vec<String>,
    pub live_outcome: String,
    pub created_at: DateTime<Utc>,
}

pub async fn shadow_of(
    db: impl PgExecutor<'_>,
    decision_id: Uuid,
) -> Result<Option<ShadowRow>, sqlx::Error> {
    sqlx::query_as!(
        ShadowRow,
        "SELECT decision_id, version, outcome, reason_codes, live_outcome, created_at
           FROM shadow_verdicts WHERE decision_id = $1",
        decision_id,
    )
    .fetch_optional(db)
    .await
}

/// Outcome pairs (live, shadow) with their counts over [from, to].
pub async fn shadow_pairs(
    db: impl PgExecutor<'_>,
    version: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<(String, String, i64)>, sqlx::Error> {
    let rows = sqlx::query!(
        r#"SELECT live_outcome, outcome, count(*) AS "count!" FROM shadow_verdicts
          WHERE version = $1 AND created_at >= $2 AND created_at <= $3
          GROUP BY 1, 2 ORDER BY 3 DESC, 1, 2"#,
        version,
        from,
        to,
    )
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| (r.live_outcome, r.outcome, r.count))
        .collect())
}

/// Up to `limit` decisions where the shadow disagreed, newest first.
pub async fn shadow_disagreements(
    db: impl PgExecutor<'_>,
    version: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<ShadowRow>, sqlx::Error> {
    sqlx::query_as!(
        ShadowRow,
        "SELECT decision_id, version, outcome, reason_codes, live_outcome, created_at
           FROM shadow_verdicts
          WHERE version = $1 AND created_at >= $2 AND created_at <= $3 AND outcome <> live_outcome
          ORDER BY created_at DESC LIMIT $4",
        version,
        from,
        to,
        limit,
    )
    .fetch_all(db)
    .await
}
