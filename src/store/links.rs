//! What ties onboardings together: each onboarding's link keys (keyed hashes of its CPF,
//! device, phone and e-mail), the figures the risk-memory rules judge, and the links a reviewer
//! sees. Onboardings sharing a value are serialised on it by a transaction-scoped advisory lock
//! taken in the statement that stores them (`onboardings::insert`), so they count each other in
//! the order they were stored, on every replica.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use crate::crypto::PiiCipher;
use crate::domain::LinkKey;
use crate::domain::evidence::MemoryEvidence;
use crate::policy::memory::{FRAUD_REASONS, Questions};
use crate::store::StoreError;
use crate::store::onboardings::PersonData;

/// The figures as one JSON document, computed in one statement from the onboarding's own link
/// rows: list entries live at `as_of`; onboardings sharing a value stored up to this one (by
/// `seq`) and created within the window before it; for linked fraud, their latest decision at
/// `as_of`. `$2` null means now.
fn figures_sql() -> String {
    let fraud = FRAUD_REASONS
        .iter()
        .map(|r| format!("'{r}'"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "WITH me AS (
             SELECT key, hash, seq, created_at FROM onboarding_links WHERE onboarding_id = $1
         ), clock AS (
             SELECT COALESCE($2::timestamptz, clock_timestamp()) AS as_of
         ), list_figures AS (
             SELECT COALESCE(jsonb_agg(jsonb_build_object(
                        'list', q.name, 'key', l.key,
                        'hit', CASE WHEN e.action = 'added'
                                     AND (e.expires_at IS NULL OR e.expires_at > clock.as_of)
                                    THEN jsonb_build_object('entry_id', e.id, 'value', e.masked,
                                         'reason', e.reason, 'added_by', e.by, 'added_at', e.at,
                                         'expires_at', e.expires_at) END)
                    ORDER BY q.i), '[]'::jsonb) AS figures
               FROM unnest($3::text[]) WITH ORDINALITY AS q(name, i)
              CROSS JOIN clock
               LEFT JOIN lists l ON l.name = q.name
               LEFT JOIN me ON me.key = l.key
               LEFT JOIN LATERAL (
                    SELECT e.id, e.action, e.expires_at, e.masked, e.reason, e.by, e.at
                      FROM list_entries e
                     WHERE e.list_name = l.name AND e.hash = me.hash AND e.at <= clock.as_of
                     ORDER BY e.id DESC LIMIT 1) e ON true
         ), velocity_figures AS (
             SELECT COALESCE(jsonb_agg(jsonb_build_object(
                        'key', q.key, 'distinct', q.distinct_key, 'window_secs', q.window_secs,
                        'count', (SELECT CASE WHEN q.distinct_key IS NULL THEN count(*)
                                              ELSE count(DISTINCT d.hash) END
                                    FROM me
                                    JOIN onboarding_links o
                                      ON o.key = me.key AND o.hash = me.hash AND o.seq <= me.seq
                                     AND o.created_at >= me.created_at - make_interval(secs => q.window_secs)
                                    LEFT JOIN onboarding_links d
                                      ON d.onboarding_id = o.onboarding_id AND d.key = q.distinct_key
                                   WHERE me.key = q.key
                                  HAVING count(*) > 0))
                    ORDER BY q.i), '[]'::jsonb) AS figures
               FROM unnest($4::text[], $5::text[], $6::bigint[]) WITH ORDINALITY
                    AS q(key, distinct_key, window_secs, i)
         ), linked_figures AS (
             SELECT COALESCE(jsonb_agg(jsonb_build_object(
                        'keys', to_jsonb(string_to_array(q.keys, ',')),
                        'window_secs', q.window_secs,
                        'onboardings', (
                            SELECT COALESCE(jsonb_agg(s.linked ORDER BY s.seq), '[]'::jsonb) FROM (
                                SELECT DISTINCT ON (o.onboarding_id) o.seq,
                                       jsonb_build_object('onboarding_id', o.onboarding_id,
                                           'key', o.key, 'decision_id', d.id,
                                           'reasons', to_jsonb(d.reason_codes)) AS linked
                                  FROM me
                                  JOIN onboarding_links o
                                    ON o.key = me.key AND o.hash = me.hash AND o.seq < me.seq
                                   AND o.created_at >= me.created_at - make_interval(secs => q.window_secs)
                                  CROSS JOIN clock
                                  CROSS JOIN LATERAL (
                                       SELECT d.id, d.outcome, d.reason_codes, d.evaluations
                                         FROM decisions d
                                        WHERE d.onboarding_id = o.onboarding_id
                                          AND d.decided_at <= clock.as_of
                                        ORDER BY d.decided_at DESC LIMIT 1) d
                                 WHERE me.key = ANY (string_to_array(q.keys, ','))
                                   AND o.onboarding_id <> $1
                                   AND d.outcome = 'rejected'
                                   AND (d.reason_codes && ARRAY[{fraud}]::text[]
                                        OR EXISTS (SELECT 1 FROM fraud_indications fi
                                                    WHERE fi.evidence->>'decision_id' = d.id::text
                                                      AND fi.created_by <> 'policy'
                                                      AND fi.created_at <= clock.as_of)
                                        OR EXISTS (SELECT 1 FROM jsonb_array_elements(d.evaluations) ev
                                                    WHERE ev->>'code' LIKE 'list.%'
                                                      AND ev->>'outcome' = 'rejected'
                                                      AND (ev->>'fired')::boolean))
                                 ORDER BY o.onboarding_id, o.seq
                                 LIMIT {LINKED_AT_MOST}) s))
                    ORDER BY q.i), '[]'::jsonb) AS figures
               FROM unnest($7::text[], $8::bigint[]) WITH ORDINALITY AS q(keys, window_secs, i)
         ), shared_figures AS (
             SELECT COALESCE(jsonb_agg(jsonb_build_object(
                        'window_secs', q.window_secs,
                        'indications', (
                            SELECT COALESCE(jsonb_agg(jsonb_build_object(
                                       'source', r.source, 'external_id', r.external_id,
                                       'typology', r.typology, 'identified_at', r.identified_at)
                                   ORDER BY r.identified_at DESC), '[]'::jsonb)
                              FROM (SELECT r.* FROM me
                                      JOIN received_fraud_indications r ON r.cpf_hash = me.hash
                                     CROSS JOIN clock
                                     WHERE me.key = 'cpf'
                                       AND r.received_at <= clock.as_of
                                       AND (r.withdrawn_at IS NULL OR r.withdrawn_at > clock.as_of)
                                       AND r.identified_at >= clock.as_of - make_interval(secs => q.window_secs)
                                     ORDER BY r.identified_at DESC
                                     LIMIT {LINKED_AT_MOST}) r))
                    ORDER BY q.i), '[]'::jsonb) AS figures
               FROM unnest($9::bigint[]) WITH ORDINALITY AS q(window_secs, i)
         )
         SELECT jsonb_build_object('as_of', clock.as_of, 'lists', lf.figures,
                                   'velocity', vf.figures, 'linked', lf2.figures,
                                   'shared', sf.figures) AS figures
           FROM clock, list_figures lf, velocity_figures vf, linked_figures lf2,
                shared_figures sf"
    )
}

/// Linked onboardings a decision's figures name at most, per rule.
const LINKED_AT_MOST: i64 = 20;

fn bind_questions<'q>(
    query: sqlx::query::QueryScalar<'q, sqlx::Postgres, Value, sqlx::postgres::PgArguments>,
    questions: &'q Questions,
) -> sqlx::query::QueryScalar<'q, sqlx::Postgres, Value, sqlx::postgres::PgArguments> {
    let secs = |s: u64| i64::try_from(s).unwrap_or(i64::MAX);
    query
        .bind(&questions.lists)
        .bind(
            questions
                .velocity
                .iter()
                .map(|(k, _, _)| k.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(
            questions
                .velocity
                .iter()
                .map(|(_, d, _)| d.map(LinkKey::as_str))
                .collect::<Vec<_>>(),
        )
        .bind(
            questions
                .velocity
                .iter()
                .map(|(_, _, w)| secs(*w))
                .collect::<Vec<_>>(),
        )
        .bind(
            questions
                .linked
                .iter()
                .map(|(keys, _)| {
                    keys.iter()
                        .map(|k| k.as_str())
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .collect::<Vec<_>>(),
        )
        .bind(
            questions
                .linked
                .iter()
                .map(|(_, w)| secs(*w))
                .collect::<Vec<_>>(),
        )
        .bind(
            questions
                .shared
                .iter()
                .map(|w| secs(*w))
                .collect::<Vec<_>>(),
        )
}

fn parse(figures: Value) -> Result<MemoryEvidence, StoreError> {
    serde_json::from_value(figures)
        .map_err(|e| StoreError::Corrupt(format!("risk-memory figures: {e}")))
}

/// Computes the figures for `questions` now and keeps them with the onboarding, in one
/// statement of the transaction that stored it (after the statement that took the locks, so
/// everything stored before it under the same values is visible).
pub async fn judge_and_keep(
    tx: &mut PgConnection,
    onboarding_id: Uuid,
    questions: &Questions,
) -> Result<MemoryEvidence, StoreError> {
    static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!(
            "UPDATE onboardings SET memory = f.figures FROM ({}) f WHERE id = $1 RETURNING memory",
            figures_sql()
        )
    });
    let query = sqlx::query_scalar(SQL.as_str())
        .bind(onboarding_id)
        .bind(None::<DateTime<Utc>>);
    let figures = bind_questions(query, questions).fetch_one(tx).await?;
    parse(figures)
}

/// The figures for `questions` as they stood at `as_of` (replay and shadow under another
/// version): onboardings stored up to this one, entries live then, decisions made by then.
pub async fn figures_as_of(
    db: impl PgExecutor<'_>,
    onboarding_id: Uuid,
    as_of: DateTime<Utc>,
    questions: &Questions,
) -> Result<MemoryEvidence, StoreError> {
    static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(figures_sql);
    let query = sqlx::query_scalar(SQL.as_str())
        .bind(onboarding_id)
        .bind(Some(as_of));
    let figures = bind_questions(query, questions).fetch_one(db).await?;
    parse(figures)
}

// ---- links, as a reviewer sees them ----------------------------------------------------------

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LinkedRow {
    pub key: String,
    pub count: i64,
    pub id: Uuid,
    pub reference: Option<String>,
    pub created_at: DateTime<Utc>,
    pub state: String,
    pub outcome: Option<String>,
    pub decided_by: Option<String>,
    pub reason_codes: Option<Vec<String>>,
    pub pii_key_id: Option<String>,
    pub pii_ciphertext: Option<Vec<u8>>,
}

impl LinkedRow {
    /// The linked onboarding's CPF, when retention has not erased it.
    pub fn person(&self, cipher: &PiiCipher) -> Result<Option<PersonData>, StoreError> {
        let (Some(key_id), Some(sealed)) = (&self.pii_key_id, &self.pii_ciphertext) else {
            return Ok(None);
        };
        let plain = cipher.decrypt(key_id, sealed, self.id.as_bytes())?;
        serde_json::from_slice(&plain)
            .map(Some)
            .map_err(|e| StoreError::Corrupt(e.to_string()))
    }
}

/// For each link key of `id`, the other onboardings created within `window_secs` of now that
/// share its value, newest first, `per_key` at most, each row with the count of all of them.
/// One index range scan per key.
pub async fn linked(
    db: impl PgExecutor<'_>,
    id: Uuid,
    window_secs: i64,
    per_key: i64,
) -> Result<Vec<LinkedRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT s.key, s.count, o.id, o.reference, o.created_at, o.state, d.outcome, d.decided_by,
                d.reason_codes, o.pii_key_id, o.pii_ciphertext
           FROM (SELECT l.key, l.onboarding_id, l.created_at, l.seq,
                        count(*) OVER (PARTITION BY l.key) AS count,
                        row_number() OVER (PARTITION BY l.key ORDER BY l.created_at DESC, l.seq DESC) AS n
                   FROM onboarding_links me
                   JOIN onboarding_links l
                     ON l.key = me.key AND l.hash = me.hash
                    AND l.created_at >= now() - make_interval(secs => $2)
                    AND l.onboarding_id <> me.onboarding_id
                  WHERE me.onboarding_id = $1) s
           JOIN onboardings o ON o.id = s.onboarding_id
           LEFT JOIN LATERAL (
                SELECT d.outcome, d.decided_by, d.reason_codes FROM decisions d
                 WHERE d.onboarding_id = o.id ORDER BY d.decided_at DESC LIMIT 1) d ON true
          WHERE s.n <= $3
          ORDER BY s.key, s.created_at DESC, s.seq DESC",
    )
    .bind(id)
    .bind(window_secs as f64)
    .bind(per_key)
    .fetch_all(db)
    .await
}

/// The keys `id` has a value of.
pub async fn keys_of(db: impl PgExecutor<'_>, id: Uuid) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT key FROM onboarding_links WHERE onboarding_id = $1")
        .bind(id)
        .fetch_all(db)
        .await
}

// ---- the link keys of onboardings stored before they existed ---------------------------------

/// Writes the device, phone and e-mail links of up to `batch` onboardings stored before
/// migration 0015 (their CPF's came with it): these need the application's key, so they are
/// written here rather than by the migration. Answers how many onboardings were done; several
/// replicas may run it at once.
pub async fn backfill(
    db: &sqlx::PgPool,
    cipher: &PiiCipher,
    batch: i64,
) -> Result<usize, StoreError> {
    #[derive(sqlx::FromRow)]
    struct Pending {
        id: Uuid,
        created_at: DateTime<Utc>,
        device: Value,
        pii_key_id: Option<String>,
        pii_ciphertext: Option<Vec<u8>>,
    }
    let mut tx = db.begin().await?;
    let pending: Vec<Pending> = sqlx::query_as(
        "SELECT o.id, o.created_at, o.device, o.pii_key_id, o.pii_ciphertext
           FROM onboarding_links_backfill b JOIN onboardings o ON o.id = b.onboarding_id
          ORDER BY o.created_at, o.id
          LIMIT $1
          FOR UPDATE OF b SKIP LOCKED",
    )
    .bind(batch)
    .fetch_all(&mut *tx)
    .await?;
    if pending.is_empty() {
        return Ok(0);
    }
    let (mut ids, mut keys, mut hashes, mut created) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for row in &pending {
        let person: Option<PersonData> = match (&row.pii_key_id, &row.pii_ciphertext) {
            (Some(key_id), Some(sealed)) => {
                let plain = cipher.decrypt(key_id, sealed, row.id.as_bytes())?;
                serde_json::from_slice(&plain).ok()
            }
            _ => None,
        };
        let device_id = row.device.get("device_id").and_then(Value::as_str);
        for (key, raw) in [
            (LinkKey::DeviceId, device_id),
            (
                LinkKey::Phone,
                person.as_ref().and_then(|p| p.phone.as_deref()),
            ),
            (
                LinkKey::Email,
                person.as_ref().and_then(|p| p.email.as_deref()),
            ),
        ] {
            if let Some(value) = raw.and_then(|raw| key.normalise(raw).ok()) {
                ids.push(row.id);
                keys.push(key.as_str());
                hashes.push(cipher.link_hash(&value));
                created.push(row.created_at);
            }
        }
    }
    sqlx::query(
        "INSERT INTO onboarding_links (onboarding_id, key, hash, created_at)
         SELECT * FROM unnest($1::uuid[], $2::text[], $3::bytea[], $4::timestamptz[])
         ON CONFLICT (onboarding_id, key) DO NOTHING",
    )
    .bind(&ids)
    .bind(&keys)
    .bind(&hashes)
    .bind(&created)
    .execute(&mut *tx)
    .await?;
    let done: Vec<Uuid> = pending.iter().map(|p| p.id).collect();
    sqlx::query("DELETE FROM onboarding_links_backfill WHERE onboarding_id = ANY ($1)")
        .bind(&done)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(pending.len())
}
