//! Fraud indications: those made here (the CPF sealed beside its keyed hash, every change also
//! a row of an append-only history) and those other institutions shared (keyed hashes only).

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use crate::crypto::PiiCipher;
use crate::store::StoreError;

/// How long an indication may wait for the sharing system before it is overdue.
pub const DEADLINE_SECS: i64 = 24 * 3600;

#[derive(Debug, Clone)]
pub struct IndicationRow {
    pub id: Uuid,
    pub onboarding_id: Option<Uuid>,
    pub cpf_masked: String,
    pub cpf_key_id: String,
    pub cpf_ciphertext: Vec<u8>,
    pub typology: String,
    pub description: String,
    pub evidence: Value,
    pub activity: String,
    pub institution: Option<String>,
    pub identified_at: DateTime<Utc>,
    pub registered_at: Option<DateTime<Utc>>,
    pub status: String,
    pub confidential: bool,
    pub created_by: String,
    /// Pending, not confidential, and identified more than 24 hours ago (when read).
    pub overdue: bool,
}

/// `sqlx::query_as!` into an `IndicationRow`: the SQL before its columns, and after them.
/// `overdue` is computed, so its name `"overdue!"` tells the macro it is never null; an ORDER BY
/// over it uses that name.
macro_rules! query_indication {
    ($before:literal, $($after:literal),+ ; $($arg:expr),* $(,)?) => {
        sqlx::query_as!(
            IndicationRow,
            $before
                + r#"id, onboarding_id, cpf_masked, cpf_key_id, cpf_ciphertext, typology,
                     description, evidence, activity, institution, identified_at, registered_at,
                     status, confidential, created_by,
                     (status = 'pending' AND registered_at IS NULL AND NOT confidential
                      AND identified_at < now() - make_interval(secs => 86400)) AS "overdue!""#
                $(+ $after)+,
            $($arg),*
        )
    };
}

/// The CPF is sealed under the indication's id and this label.
fn cpf_context(id: Uuid) -> Vec<u8> {
    [id.as_bytes().as_slice(), b"fraud_indication.cpf"].concat()
}

impl IndicationRow {
    /// The CPF's 11 digits, unsealed.
    pub fn cpf(&self, cipher: &PiiCipher) -> Result<String, StoreError> {
        let plain = cipher.decrypt(
            &self.cpf_key_id,
            &self.cpf_ciphertext,
            &cpf_context(self.id),
        )?;
        String::from_utf8(plain).map_err(|e| StoreError::Corrupt(e.to_string()))
    }
}

/// A line of an indication's history.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
#[schema(as = FraudIndicationHistoryLine)]
pub struct HistoryRow {
    pub at: DateTime<Utc>,
    /// policy, a reviewer, a key's name, or fraud_sharing (the sharing system's answer)
    pub by: String,
    #[schema(schema_with = what_schema)]
    pub what: String,
    /// Why it was altered or withdrawn; null otherwise
    #[schema(required = true)]
    pub reason: Option<String>,
    /// What an alteration changed: `typology` and `description`, each `{from, to}`
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Object)]
    pub detail: Option<Value>,
}

/// The kinds of line the store writes.
fn what_schema() -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(["made", "registered", "altered", "withdrawn"]))
        .build()
}

pub struct NewIndication<'a> {
    pub id: Uuid,
    pub onboarding_id: Option<Uuid>,
    /// The CPF's 11 digits.
    pub cpf: &'a str,
    pub cpf_masked: &'a str,
    pub typology: &'a str,
    pub description: &'a str,
    pub evidence: Value,
    pub institution: Option<&'a str>,
    pub identified_at: DateTime<Utc>,
    pub confidential: bool,
    pub created_by: &'a str,
}

/// Stores an indication and the first line of its history in one statement. None when the
/// policy already made one for the decision it names (a step that ran twice).
pub async fn insert(
    db: &mut PgConnection,
    cipher: &PiiCipher,
    new: NewIndication<'_>,
) -> Result<Option<IndicationRow>, StoreError> {
    let (key_id, sealed) = cipher.encrypt(new.cpf.as_bytes(), &cpf_context(new.id))?;
    let row = query_indication!(
        "WITH made AS (
             INSERT INTO fraud_indications (id, onboarding_id, cpf_hash, cpf_masked, cpf_key_id,
                 cpf_ciphertext, typology, description, evidence, institution, identified_at,
                 confidential, created_by)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
             ON CONFLICT ((evidence->>'decision_id')) WHERE created_by = 'policy' DO NOTHING
             RETURNING *
         ), history AS (
             INSERT INTO fraud_indication_history (indication_id, at, by, what)
             SELECT id, created_at, created_by, 'made' FROM made
         )
         SELECT ",
        " FROM made";
        new.id,
        new.onboarding_id,
        cipher.cpf_hash(new.cpf),
        new.cpf_masked,
        key_id,
        sealed,
        new.typology,
        new.description,
        new.evidence,
        new.institution,
        new.identified_at,
        new.confidential,
        new.created_by,
    )
    .fetch_optional(db)
    .await?;
    Ok(row)
}

pub async fn get(db: impl PgExecutor<'_>, id: Uuid) -> Result<Option<IndicationRow>, sqlx::Error> {
    query_indication!("SELECT ", " FROM fraud_indications WHERE id = $1"; id)
        .fetch_optional(db)
        .await
}

async fn get_for_update(
    db: &mut PgConnection,
    id: Uuid,
) -> Result<Option<IndicationRow>, sqlx::Error> {
    query_indication!("SELECT ", " FROM fraud_indications WHERE id = $1 FOR UPDATE"; id)
        .fetch_optional(db)
        .await
}

pub async fn history(db: impl PgExecutor<'_>, id: Uuid) -> Result<Vec<HistoryRow>, sqlx::Error> {
    sqlx::query_as!(
        HistoryRow,
        "SELECT at, by, what, reason, detail FROM fraud_indication_history
          WHERE indication_id = $1 ORDER BY id",
        id,
    )
    .fetch_all(db)
    .await
}

/// The filters of a listing.
#[derive(Debug, Default, Clone)]
pub struct Filter {
    pub status: Option<String>,
    pub cpf_hash: Option<Vec<u8>>,
    pub overdue: bool,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    /// Overdue ones before the rest (the console's queue).
    pub overdue_first: bool,
    pub after: Option<(DateTime<Utc>, Uuid)>,
    pub limit: i64,
}

/// Indications, newest identified first (or, with `overdue_first`, the overdue ones oldest
/// first, then the rest newest first; that order takes no cursor).
pub async fn list(db: impl PgExecutor<'_>, f: &Filter) -> Result<Vec<IndicationRow>, sqlx::Error> {
    let (after_at, after_id) = f
        .after
        .map_or((None, None), |(at, id)| (Some(at), Some(id)));
    // The two orders stay two statements (as when the order was spliced in at run time), each
    // with its own plan.
    macro_rules! ordered_by {
        ($order:literal) => {
            query_indication!(
                "SELECT * FROM (SELECT ",
                " FROM fraud_indications
                  WHERE ($1::text IS NULL OR status = $1)
                    AND ($2::bytea IS NULL OR cpf_hash = $2)
                    AND ($3::timestamptz IS NULL OR identified_at >= $3)
                    AND ($4::timestamptz IS NULL OR identified_at < $4)
                    AND ($5::timestamptz IS NULL OR (identified_at, id) < ($5, $6::uuid))
                    AND (NOT $7 OR (status = 'pending' AND registered_at IS NULL AND NOT confidential
                                    AND identified_at < now() - make_interval(secs => 86400)))) i
                  ORDER BY ",
                $order,
                " LIMIT $8";
                f.status.as_deref(),
                f.cpf_hash.as_deref(),
                f.from,
                f.to,
                after_at,
                after_id,
                f.overdue,
                f.limit,
            )
            .fetch_all(db)
            .await
        };
    }
    if f.overdue_first {
        ordered_by!(
            r#""overdue!" DESC, CASE WHEN "overdue!" THEN identified_at END ASC, identified_at DESC, id DESC"#
        )
    } else {
        ordered_by!("identified_at DESC, id DESC")
    }
}

/// Why a change was not made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    NotFound,
    Withdrawn,
    /// A withdrawal asked by the key that made the indication.
    OwnIndication,
}

/// Alters the typology and description, with a line of history saying what changed.
pub async fn alter(
    db: &mut PgConnection,
    id: Uuid,
    typology: Option<&str>,
    description: Option<&str>,
    by: &str,
    reason: &str,
) -> Result<Result<IndicationRow, Refusal>, sqlx::Error> {
    let Some(before) = get_for_update(&mut *db, id).await? else {
        return Ok(Err(Refusal::NotFound));
    };
    if before.status == "withdrawn" {
        return Ok(Err(Refusal::Withdrawn));
    }
    let typology = typology.unwrap_or(&before.typology);
    let description = description.unwrap_or(&before.description);
    let detail = serde_json::json!({
        "typology": {"from": before.typology, "to": typology},
        "description": {"from": before.description, "to": description},
    });
    sqlx::query!(
        "WITH altered AS (
             UPDATE fraud_indications SET typology = $2, description = $3 WHERE id = $1
         )
         INSERT INTO fraud_indication_history (indication_id, by, what, reason, detail)
         VALUES ($1, $4, 'altered', $5, $6)",
        id,
        typology,
        description,
        by,
        reason,
        detail,
    )
    .execute(&mut *db)
    .await?;
    Ok(get(&mut *db, id).await?.ok_or(Refusal::NotFound))
}

/// Withdraws the indication, by a key other than the one that made it.
pub async fn withdraw(
    db: &mut PgConnection,
    id: Uuid,
    by: &str,
    reason: &str,
) -> Result<Result<IndicationRow, Refusal>, sqlx::Error> {
    let Some(before) = get_for_update(&mut *db, id).await? else {
        return Ok(Err(Refusal::NotFound));
    };
    if before.status == "withdrawn" {
        return Ok(Err(Refusal::Withdrawn));
    }
    if before.created_by == by {
        return Ok(Err(Refusal::OwnIndication));
    }
    sqlx::query!(
        "WITH withdrawn AS (
             UPDATE fraud_indications SET status = 'withdrawn' WHERE id = $1
         )
         INSERT INTO fraud_indication_history (indication_id, by, what, reason)
         VALUES ($1, $2, 'withdrawn', $3)",
        id,
        by,
        reason,
    )
    .execute(&mut *db)
    .await?;
    Ok(get(&mut *db, id).await?.ok_or(Refusal::NotFound))
}

/// The sharing system acknowledged an event of the indication: the first time, it is
/// registered now (a withdrawn one keeps its status) and its history says so.
pub async fn registered(db: &mut PgConnection, id: Uuid, by: &str) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "WITH first AS (
             UPDATE fraud_indications
                SET registered_at = clock_timestamp(),
                    status = CASE WHEN status = 'pending' THEN 'registered' ELSE status END
              WHERE id = $1 AND registered_at IS NULL
             RETURNING id, registered_at
         )
         INSERT INTO fraud_indication_history (indication_id, at, by, what)
         SELECT id, registered_at, $2, 'registered' FROM first",
        id,
        by,
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Indications waiting for the sharing system (not confidential, not withdrawn), and the
/// `identified_at` of the oldest.
pub async fn pending(db: impl PgExecutor<'_>) -> Result<(i64, Option<DateTime<Utc>>), sqlx::Error> {
    let pending = sqlx::query!(
        r#"SELECT count(*) AS "count!", min(identified_at) FROM fraud_indications
            WHERE registered_at IS NULL AND status = 'pending' AND NOT confidential"#,
    )
    .fetch_one(db)
    .await?;
    Ok((pending.count, pending.min))
}

/// A month's figures, from the history: made in [from, to) by `identified_at`; registered
/// within 24 hours or late by the history's `registered` line, whatever happened after.
#[derive(Debug, Clone)]
pub struct MonthFigures {
    pub identified: i64,
    pub registered_within_24h: i64,
    pub registered_late: i64,
    pub pending: i64,
    pub withdrawn: i64,
    pub confidential: i64,
    pub late: Vec<Uuid>,
}

pub async fn month(
    db: impl PgExecutor<'_>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<MonthFigures, sqlx::Error> {
    sqlx::query_as!(
        MonthFigures,
        r#"WITH made AS (
             SELECT i.id, i.identified_at, i.confidential,
                    (SELECT min(h.at) FROM fraud_indication_history h
                      WHERE h.indication_id = i.id AND h.what = 'registered') AS registered,
                    EXISTS (SELECT 1 FROM fraud_indication_history h
                             WHERE h.indication_id = i.id AND h.what = 'withdrawn') AS withdrawn
               FROM fraud_indications i
              WHERE i.identified_at >= $1 AND i.identified_at < $2
         )
         SELECT count(*) AS "identified!",
                count(*) FILTER (WHERE registered - identified_at <= interval '24 hours')
                    AS "registered_within_24h!",
                count(*) FILTER (WHERE registered - identified_at > interval '24 hours')
                    AS "registered_late!",
                count(*) FILTER (WHERE registered IS NULL AND NOT confidential AND NOT withdrawn)
                    AS "pending!",
                count(*) FILTER (WHERE withdrawn) AS "withdrawn!",
                count(*) FILTER (WHERE confidential) AS "confidential!",
                COALESCE(array_agg(id ORDER BY identified_at, id)
                    FILTER (WHERE registered - identified_at > interval '24 hours'), '{}') AS "late!"
           FROM made"#,
        from,
        to,
    )
    .fetch_one(db)
    .await
}

// ---- received from the sharing system ------------------------------------------------------

/// One received indication, its CPF already hashed.
pub struct Received {
    pub source: String,
    pub external_id: String,
    pub cpf_hash: Vec<u8>,
    pub typology: String,
    pub identified_at: DateTime<Utc>,
    pub withdrawn: bool,
}

/// What an import changed.
#[derive(Debug, Clone, Copy, serde::Serialize, utoipa::ToSchema)]
#[schema(as = ReceivedFraudIndications)]
pub struct Imported {
    /// New indications kept
    pub received: i64,
    /// Copies of indications already kept (nothing changed)
    pub already_received: i64,
    /// Live indications this call withdrew
    pub withdrawn: i64,
}

/// Keeps the items in one statement: new ones inserted (withdrawn at once when the copy says
/// so), known ones left as they are unless the copy withdraws a live one. A second import of
/// the same items changes nothing.
pub async fn import(
    db: &mut PgConnection,
    items: &[Received],
    by: &str,
) -> Result<Imported, sqlx::Error> {
    let mut sources = Vec::with_capacity(items.len());
    let mut ids = Vec::with_capacity(items.len());
    let mut hashes = Vec::with_capacity(items.len());
    let mut typologies = Vec::with_capacity(items.len());
    let mut identified = Vec::with_capacity(items.len());
    let mut withdrawn = Vec::with_capacity(items.len());
    for item in items {
        sources.push(item.source.as_str());
        ids.push(item.external_id.as_str());
        hashes.push(item.cpf_hash.as_slice());
        typologies.push(item.typology.as_str());
        identified.push(item.identified_at);
        withdrawn.push(item.withdrawn);
    }
    sqlx::query_as!(
        Imported,
        r#"WITH items AS (
             -- The last copy of an id within one call is the one that counts.
             SELECT DISTINCT ON (source, external_id) *
               FROM unnest($1::text[], $2::text[], $3::bytea[], $4::text[], $5::timestamptz[],
                           $6::bool[]) WITH ORDINALITY
                    AS t(source, external_id, cpf_hash, typology, identified_at, withdrawn, n)
              ORDER BY source, external_id, n DESC
         ), inserted AS (
             INSERT INTO received_fraud_indications (source, external_id, cpf_hash, typology,
                 identified_at, received_by, withdrawn_at, withdrawn_by)
             SELECT source, external_id, cpf_hash, typology, identified_at, $7,
                    CASE WHEN withdrawn THEN clock_timestamp() END, CASE WHEN withdrawn THEN $7 END
               FROM items
             ON CONFLICT (source, external_id) DO NOTHING
             RETURNING source, external_id
         ), withdrawn AS (
             UPDATE received_fraud_indications r
                SET withdrawn_at = clock_timestamp(), withdrawn_by = $7
               FROM items
              WHERE items.withdrawn AND r.source = items.source
                AND r.external_id = items.external_id AND r.withdrawn_at IS NULL
             RETURNING r.source
         )
         SELECT (SELECT count(*) FROM inserted) AS "received!",
                (SELECT count(*) FROM items) - (SELECT count(*) FROM inserted) AS "already_received!",
                (SELECT count(*) FROM withdrawn) AS "withdrawn!""#,
        &sources as &[&str],
        &ids as &[&str],
        &hashes as &[&[u8]],
        &typologies as &[&str],
        &identified as &[DateTime<Utc>],
        &withdrawn as &[bool],
        by,
    )
    .fetch_one(db)
    .await
}
