//! The audit side of the store: searching decisions, reading one back with everything around
//! it, and the upkeep of personal data at rest (key rotation and retention erasure).

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{PgExecutor, PgPool, Postgres, QueryBuilder};
use uuid::Uuid;

use crate::crypto::PiiCipher;
use crate::store::StoreError;

/// What a search may be narrowed by. Every field is optional; values are already validated.
#[derive(Debug, Clone, Default)]
pub struct DecisionFilter {
    pub outcome: Option<String>,
    pub reason: Option<String>,
    /// The keyed hash of the CPF's digits (never the CPF itself).
    pub cpf_hash: Option<Vec<u8>>,
    pub reference: Option<String>,
    /// References that start with this.
    pub reference_prefix: Option<String>,
    pub policy_version: Option<String>,
    pub created_from: Option<DateTime<Utc>>,
    pub created_to: Option<DateTime<Utc>>,
    pub decided_from: Option<DateTime<Utc>>,
    pub decided_to: Option<DateTime<Utc>>,
}

/// The position after the last decision of a page, in the listing's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub decided_at: DateTime<Utc>,
    pub id: Uuid,
}

/// A decision with the onboarding fields the audit views show.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AuditRow {
    pub id: Uuid,
    pub onboarding_id: Uuid,
    pub reference: Option<String>,
    pub pii_key_id: Option<String>,
    pub pii_ciphertext: Option<Vec<u8>>,
    pub outcome: String,
    pub reasons: Value,
    pub reason_codes: Vec<String>,
    pub policy_version: String,
    pub thresholds: Value,
    pub evidence: Value,
    pub created_at: DateTime<Utc>,
    pub decided_at: DateTime<Utc>,
    pub decided_by: String,
    pub reviewer: Option<String>,
    pub note: Option<String>,
}

impl AuditRow {
    pub fn cursor(&self) -> Cursor {
        Cursor {
            decided_at: self.decided_at,
            id: self.id,
        }
    }

    /// The personal data, or None once retention erased it.
    pub fn person(
        &self,
        cipher: &PiiCipher,
    ) -> Result<Option<crate::store::onboardings::PersonData>, StoreError> {
        let (Some(key_id), Some(sealed)) = (&self.pii_key_id, &self.pii_ciphertext) else {
            return Ok(None);
        };
        let plain = cipher.decrypt(key_id, sealed, self.onboarding_id.as_bytes())?;
        serde_json::from_slice(&plain)
            .map(Some)
            .map_err(|e| StoreError::Corrupt(e.to_string()))
    }
}

const AUDIT_COLUMNS: &str =
    "d.id, d.onboarding_id, o.reference, o.pii_key_id, o.pii_ciphertext, d.outcome, d.reasons,
     d.reason_codes, d.policy_version, d.thresholds, d.evidence, o.created_at, d.decided_at,
     d.decided_by, d.reviewer, d.note";

/// Appends the search to `q`. Only the filters present become predicates: a fixed statement
/// with `$n IS NULL OR ...` for every filter would be planned once generically and lose the
/// indexes. So this one statement is built at run time and is not checked at build time; `get`
/// below reads the same columns through a checked query, which a change to them breaks.
fn push_search(
    q: &mut QueryBuilder<'static, Postgres>,
    filter: &DecisionFilter,
    after: Option<Cursor>,
    limit: i64,
) {
    q.push(format!("SELECT {AUDIT_COLUMNS} FROM decisions d JOIN onboardings o ON o.id = d.onboarding_id WHERE true"));
    if let Some(outcome) = &filter.outcome {
        q.push(" AND d.outcome = ").push_bind(outcome.clone());
    }
    if let Some(reason) = &filter.reason {
        q.push(" AND d.reason_codes @> ARRAY[")
            .push_bind(reason.clone())
            .push("]::text[]");
    }
    if let Some(hash) = &filter.cpf_hash {
        q.push(" AND o.cpf_hash = ").push_bind(hash.clone());
    }
    if let Some(reference) = &filter.reference {
        q.push(" AND o.reference = ").push_bind(reference.clone());
    }
    if let Some(prefix) = &filter.reference_prefix {
        let escaped = prefix
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        q.push(" AND o.reference LIKE ")
            .push_bind(format!("{escaped}%"))
            .push(" ESCAPE '\\'");
    }
    if let Some(version) = &filter.policy_version {
        q.push(" AND d.policy_version = ")
            .push_bind(version.clone());
    }
    if let Some(from) = filter.created_from {
        q.push(" AND o.created_at >= ").push_bind(from);
    }
    if let Some(to) = filter.created_to {
        q.push(" AND o.created_at <= ").push_bind(to);
    }
    if let Some(from) = filter.decided_from {
        q.push(" AND d.decided_at >= ").push_bind(from);
    }
    if let Some(to) = filter.decided_to {
        q.push(" AND d.decided_at <= ").push_bind(to);
    }
    if let Some(cursor) = after {
        // A row comparison, so the (decided_at DESC, id DESC) index seeks straight to the cursor.
        q.push(" AND (d.decided_at, d.id) < (")
            .push_bind(cursor.decided_at)
            .push(", ")
            .push_bind(cursor.id)
            .push(")");
    }
    q.push(" ORDER BY d.decided_at DESC, d.id DESC LIMIT ")
        .push_bind(limit);
}

/// One page of the search, newest first, strictly after `after`.
pub async fn search(
    pool: &PgPool,
    filter: &DecisionFilter,
    after: Option<Cursor>,
    limit: i64,
) -> Result<Vec<AuditRow>, sqlx::Error> {
    let mut q = QueryBuilder::new("");
    push_search(&mut q, filter, after, limit);
    q.build_query_as().fetch_all(pool).await
}

/// The plan PostgreSQL runs a search with, executed (`EXPLAIN ANALYZE`), for benchmarks and docs.
pub async fn explain_search(
    pool: &PgPool,
    filter: &DecisionFilter,
    after: Option<Cursor>,
    limit: i64,
) -> Result<String, sqlx::Error> {
    let mut q = QueryBuilder::new("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) ");
    push_search(&mut q, filter, after, limit);
    let lines: Vec<String> = q.build_query_scalar().fetch_all(pool).await?;
    Ok(lines.join("\n"))
}

pub async fn get(pool: &PgPool, id: Uuid) -> Result<Option<AuditRow>, sqlx::Error> {
    sqlx::query_as!(
        AuditRow,
        "SELECT d.id, d.onboarding_id, o.reference, o.pii_key_id, o.pii_ciphertext, d.outcome,
                d.reasons, d.reason_codes, d.policy_version, d.thresholds, d.evidence, o.created_at,
                d.decided_at, d.decided_by, d.reviewer, d.note
           FROM decisions d JOIN onboardings o ON o.id = d.onboarding_id WHERE d.id = $1",
        id,
    )
    .fetch_optional(pool)
    .await
}

/// The rule-by-rule trace stored with a decision.
pub async fn evaluations(pool: &PgPool, id: Uuid) -> Result<Value, sqlx::Error> {
    sqlx::query_scalar!("SELECT evaluations FROM decisions WHERE id = $1", id)
        .fetch_one(pool)
        .await
}

/// A stored decision as replay needs it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ReplayRow {
    pub id: Uuid,
    pub onboarding_id: Uuid,
    pub outcome: String,
    pub reason_codes: Vec<String>,
    pub thresholds: Value,
    pub evidence: Value,
    pub decided_at: DateTime<Utc>,
}

/// Decisions decided in [from, to], oldest first, strictly after `after`, in pages of `limit`.
pub async fn replay_page(
    pool: &PgPool,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    after: Option<Cursor>,
    limit: i64,
) -> Result<Vec<ReplayRow>, sqlx::Error> {
    let (after_at, after_id) = after.map_or((None, None), |c| (Some(c.decided_at), Some(c.id)));
    sqlx::query_as!(
        ReplayRow,
        "SELECT id, onboarding_id, outcome, reason_codes, thresholds, evidence, decided_at
           FROM decisions
          WHERE decided_by = 'policy' AND decided_at >= $1 AND decided_at <= $2
            AND ($3::timestamptz IS NULL OR (decided_at, id) > ($3, $4::uuid))
          ORDER BY decided_at, id
          LIMIT $5",
        from,
        to,
        after_at,
        after_id,
        limit,
    )
    .fetch_all(pool)
    .await
}

/// Re-seals up to `limit` rows whose personal data is under a key other than the active one.
/// Answers how many were moved; call until it answers 0 to finish a rotation. Rows are locked
/// while re-sealed and skipped if another replica holds them, so replicas can share the work.
pub async fn reencrypt_batch(
    pool: &PgPool,
    cipher: &PiiCipher,
    limit: i64,
) -> Result<usize, StoreError> {
    let active = cipher.active_key_id();
    let mut tx = crate::store::begin(pool).await?;
    // `<>` cannot use an index; the two ranges around the active id can.
    // The comparison and the IS NOT NULL leave neither column NULL.
    let rows = sqlx::query!(
        r#"SELECT id, pii_key_id AS "pii_key_id!", pii_ciphertext AS "pii_ciphertext!"
             FROM onboardings
            WHERE (pii_key_id < $1 OR pii_key_id > $1) AND pii_ciphertext IS NOT NULL
            ORDER BY id LIMIT $2
              FOR UPDATE SKIP LOCKED"#,
        active,
        limit,
    )
    .fetch_all(&mut *tx)
    .await?;
    for row in &rows {
        let (id, key_id, sealed) = (&row.id, &row.pii_key_id, &row.pii_ciphertext);
        let plain = cipher.decrypt(key_id, sealed, id.as_bytes())?;
        let (new_key, resealed) = cipher.encrypt(&plain, id.as_bytes())?;
        sqlx::query!(
            "UPDATE onboardings SET pii_key_id = $2, pii_ciphertext = $3, updated_at = now() WHERE id = $1",
            id,
            new_key,
            resealed,
        )
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(rows.len())
}

/// How many rows are sealed under each key, for watching a rotation progress.
pub async fn rows_by_key(pool: &PgPool) -> Result<Vec<(String, i64)>, sqlx::Error> {
    let rows = sqlx::query!(
        r#"SELECT pii_key_id AS "pii_key_id!", count(*) AS "count!"
             FROM onboardings WHERE pii_key_id IS NOT NULL GROUP BY pii_key_id ORDER BY 1"#,
    )
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|r| (r.pii_key_id, r.count)).collect())
}

/// Erases the personal data of up to `limit` onboardings decided more than `days` ago: the
/// ciphertext, its key id, the CPF hash, the sealed selfie, the phone's coordinates (in the
/// onboarding and in its decisions' evidence) and the review statements. The decisions, their
/// reasons and the rest of their evidence stay. Each erasure is written
/// to the onboarding's timeline. It runs as the owner's function (`erase_expired_personal_data`,
/// migration 0012), since some of what it erases is in records the service's role cannot change.
pub async fn erase_expired_pii(
    pool: &PgPool,
    days: u32,
    limit: i64,
) -> Result<Vec<Uuid>, sqlx::Error> {
    // The function answers the ids it erased, never NULL.
    sqlx::query_scalar!(
        r#"SELECT erased AS "erased!" FROM erase_expired_personal_data($1, $2) AS erased"#,
        i32::try_from(days).unwrap_or(i32::MAX),
        limit,
    )
    .fetch_all(pool)
    .await
}

/// One audit search as recorded.
#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct SearchRecord {
    pub id: i64,
    pub at: DateTime<Utc>,
    /// The API key's name.
    pub caller: String,
    /// The operation, e.g. `GET /v1/decisions/{id}`.
    pub endpoint: String,
    /// The filters given; a CPF appears only masked and as its keyed hash.
    #[schema(value_type = Object)]
    pub filters: serde_json::Value,
}

/// Records an audit search: who, where, which filters (already stripped of personal data).
pub async fn record_search(
    db: impl PgExecutor<'_>,
    caller: &str,
    endpoint: &str,
    filters: &serde_json::Value,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "INSERT INTO audit_searches (caller, endpoint, filters) VALUES ($1, $2, $3)",
        caller,
        endpoint,
        filters,
    )
    .execute(db)
    .await?;
    crate::metrics::audit_search();
    Ok(())
}

/// Recorded searches, newest first, before `before` (an id) when given.
pub async fn searches(
    db: impl PgExecutor<'_>,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<SearchRecord>, sqlx::Error> {
    sqlx::query_as!(
        SearchRecord,
        "SELECT id, at, caller, endpoint, filters FROM audit_searches
          WHERE $1::bigint IS NULL OR id < $1 ORDER BY id DESC LIMIT $2",
        before,
        limit,
    )
    .fetch_all(db)
    .await
}
