//! What ties onboardings together: each onboarding's link keys (keyed hashes of its CPF,
//! device, phone and e-mail), the figures the risk-memory rules judge, and the links a reviewer
//! sees. Onboardings sharing a value are serialised on it by a transaction-scoped advisory lock
//! taken in the statement that stores them (`onboardings::insert`), so they count each other in
//! the order they were stored, on every replica.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgExecutor;
use uuid::Uuid;

use crate::crypto::PiiCipher;
use crate::domain::LinkKey;
use crate::domain::evidence::MemoryEvidence;
use crate::policy::memory::Questions;
use crate::store::StoreError;
use crate::store::figures::{FigureArgs, bind_figure_args, parse};
use crate::store::onboardings::PersonData;

/// The figures for `questions` as they stood at `as_of` (replay and shadow under another
/// version): onboardings stored before this one, entries live then, decisions made by then.
pub async fn figures_as_of(
    db: impl PgExecutor<'_>,
    onboarding_id: Uuid,
    as_of: DateTime<Utc>,
    questions: &Questions,
) -> Result<MemoryEvidence, StoreError> {
    static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!(
            "SELECT {}",
            FigureArgs::call("risk_memory_figures", ["$1", "NULL", "NULL", "$2"], 3)
        )
    });
    let args = FigureArgs::of(questions);
    let query = sqlx::query_scalar(SQL.as_str())
        .bind(onboarding_id)
        .bind(as_of);
    let figures = bind_figure_args!(query, args).fetch_one(db).await?;
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
    sqlx::query_as!(
        LinkedRow,
        "SELECT s.key AS \"key!\", s.count AS \"count!\", o.id, o.reference, o.created_at, o.state,
                d.outcome AS \"outcome?\", d.decided_by AS \"decided_by?\", d.reason_codes AS \"reason_codes?\",
                o.pii_key_id, o.pii_ciphertext
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
        id,
        window_secs as f64,
        per_key
    )
    .fetch_all(db)
    .await
}

/// The keys `id` has a value of.
pub async fn keys_of(db: impl PgExecutor<'_>, id: Uuid) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar!(
        "SELECT key FROM onboarding_links WHERE onboarding_id = $1",
        id
    )
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
    struct Pending {
        id: Uuid,
        created_at: DateTime<Utc>,
        device: Value,
        pii_key_id: Option<String>,
        pii_ciphertext: Option<Vec<u8>>,
    }
    let mut tx = db.begin().await?;
    let pending: Vec<Pending> = sqlx::query_as!(
        Pending,
        "SELECT o.id, o.created_at, o.device, o.pii_key_id, o.pii_ciphertext
           FROM onboarding_links_backfill b JOIN onboardings o ON o.id = b.onboarding_id
          ORDER BY o.created_at, o.id
          LIMIT $1
          FOR UPDATE OF b SKIP LOCKED",
        batch
    )
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
    sqlx::query!(
        "INSERT INTO onboarding_links (onboarding_id, key, hash, created_at)
         SELECT * FROM unnest($1::uuid[], $2::text[], $3::bytea[], $4::timestamptz[])
         ON CONFLICT (onboarding_id, key) DO NOTHING",
        &ids,
        &keys as &[&str],
        &hashes,
        &created
    )
    .execute(&mut *tx)
    .await?;
    let done: Vec<Uuid> = pending.iter().map(|p| p.id).collect();
    sqlx::query!(
        "DELETE FROM onboarding_links_backfill WHERE onboarding_id = ANY ($1)",
        &done
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(pending.len())
}
