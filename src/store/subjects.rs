//! The people's requests under LGPD Art. 18 and 19: the request as received, its answer, the
//! onboardings an erasure found and what each erasure removed. Every row is written once.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use crate::crypto::PiiCipher;
use crate::store::StoreError;

/// The CPF of a request is sealed under its id and this label, so it cannot pass for another
/// row's data.
const CPF_CONTEXT: &[u8] = b"subject_request";

fn cpf_context(id: Uuid) -> Vec<u8> {
    [id.as_bytes().as_slice(), CPF_CONTEXT].concat()
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RequestRow {
    pub id: Uuid,
    pub kind: String,
    pub cpf_hash: Vec<u8>,
    pub cpf_key_id: String,
    pub cpf_ciphertext: Vec<u8>,
    pub note: Option<String>,
    pub received_at: DateTime<Utc>,
    pub due_at: DateTime<Utc>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub answered_at: Option<DateTime<Utc>>,
    pub answered_by: Option<String>,
}

impl RequestRow {
    /// The CPF's 11 digits.
    pub fn cpf(&self, cipher: &PiiCipher) -> Result<String, StoreError> {
        let plain = cipher.decrypt(
            &self.cpf_key_id,
            &self.cpf_ciphertext,
            &cpf_context(self.id),
        )?;
        String::from_utf8(plain).map_err(|_| StoreError::Corrupt("a sealed CPF is not text".into()))
    }
}

pub struct NewRequest<'a> {
    pub id: Uuid,
    pub kind: &'a str,
    /// The CPF's 11 digits.
    pub cpf: &'a str,
    pub note: Option<&'a str>,
    pub received_at: DateTime<Utc>,
    pub created_by: &'a str,
}

/// Stores a request; `due_at` is 15 days after it was received (Art. 19 II).
pub async fn insert(
    tx: &mut PgConnection,
    cipher: &PiiCipher,
    new: NewRequest<'_>,
) -> Result<RequestRow, StoreError> {
    let (key_id, sealed) = cipher.encrypt(new.cpf.as_bytes(), &cpf_context(new.id))?;
    sqlx::query!(
        "INSERT INTO subject_requests (id, kind, cpf_hash, cpf_key_id, cpf_ciphertext, note,
                                       received_at, due_at, created_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7::timestamptz + interval '15 days', $8)",
        new.id,
        new.kind,
        cipher.cpf_hash(new.cpf),
        key_id,
        sealed,
        new.note,
        new.received_at,
        new.created_by,
    )
    .execute(&mut *tx)
    .await?;
    get(&mut *tx, new.id)
        .await?
        .ok_or_else(|| StoreError::Corrupt("a request just stored is missing".into()))
}

pub async fn get(db: impl PgExecutor<'_>, id: Uuid) -> Result<Option<RequestRow>, sqlx::Error> {
    sqlx::query_as!(
        RequestRow,
        // The answer's columns are NULL while there is none: `?` says so (the macros do not
        // see it through the outer join).
        r#"SELECT r.id, r.kind, r.cpf_hash, r.cpf_key_id, r.cpf_ciphertext, r.note, r.received_at,
                  r.due_at, r.created_by, r.created_at, a.answered_at AS "answered_at?",
                  a.answered_by AS "answered_by?"
             FROM subject_requests r
             LEFT JOIN subject_request_answers a ON a.request_id = r.id
            WHERE r.id = $1"#,
        id,
    )
    .fetch_optional(db)
    .await
}

/// What the list can be narrowed by.
#[derive(Debug, Clone, Default)]
pub struct RequestFilter {
    /// open or answered.
    pub status: Option<String>,
    /// Open past `due_at`.
    pub overdue: bool,
}

/// Requests most recently received first, after (`received_at`, `id`) when given.
pub async fn list(
    db: impl PgExecutor<'_>,
    filter: &RequestFilter,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<RequestRow>, sqlx::Error> {
    let (after_at, after_id) = after.unzip();
    sqlx::query_as!(
        RequestRow,
        r#"SELECT r.id, r.kind, r.cpf_hash, r.cpf_key_id, r.cpf_ciphertext, r.note, r.received_at,
                  r.due_at, r.created_by, r.created_at, a.answered_at AS "answered_at?",
                  a.answered_by AS "answered_by?"
             FROM subject_requests r
             LEFT JOIN subject_request_answers a ON a.request_id = r.id
            WHERE ($1::text IS NULL OR ($1 = 'open') = (a.request_id IS NULL))
              AND (NOT $2 OR (a.request_id IS NULL AND r.due_at < now()))
              AND ($3::timestamptz IS NULL OR (r.received_at, r.id) < ($3, $4::uuid))
            ORDER BY r.received_at DESC, r.id DESC
            LIMIT $5"#,
        filter.status.as_deref(),
        filter.overdue,
        after_at,
        after_id,
        limit,
    )
    .fetch_all(db)
    .await
}

/// Requests not answered within their 15 days, for the gauge.
pub async fn overdue(db: impl PgExecutor<'_>) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar!(
        r#"SELECT count(*) AS "count!" FROM subject_requests r
          WHERE r.due_at < now()
            AND NOT EXISTS (SELECT 1 FROM subject_request_answers a WHERE a.request_id = r.id)"#,
    )
    .fetch_one(db)
    .await
}

/// Records the answer (`how`: report or erasure) unless the request has one: the first answer
/// stands, later reads are access records only.
pub async fn answer(
    db: impl PgExecutor<'_>,
    id: Uuid,
    by: &str,
    how: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "INSERT INTO subject_request_answers (request_id, answered_by, how) VALUES ($1, $2, $3)
         ON CONFLICT (request_id) DO NOTHING",
        id,
        by,
        how,
    )
    .execute(db)
    .await?;
    Ok(())
}

/// An onboarding of the person as an erasure sees it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Found {
    pub id: Uuid,
    pub state: String,
    pub pii_key_id: Option<String>,
    pub pii_ciphertext: Option<Vec<u8>>,
    /// A reviewer still has to decide on it.
    pub unresolved_case: bool,
}

impl Found {
    /// Decided, and no reviewer is still to decide: nothing of the flow needs the data again.
    pub fn settled(&self) -> bool {
        self.state == "decided" && !self.unresolved_case
    }
}

/// A query of the onboardings `o` answering `Found`s: the columns, then `$rest`.
macro_rules! found_query {
    ($rest:literal, $arg:expr) => {
        sqlx::query_as!(
            Found,
            r#"SELECT o.id, o.state, o.pii_key_id, o.pii_ciphertext,
                      EXISTS (SELECT 1 FROM review_cases c
                               WHERE c.onboarding_id = o.id AND c.status <> 'resolved')
                          AS "unresolved_case!"
                 FROM onboardings o "#
                + $rest,
            $arg
        )
    };
}

/// The onboardings of the CPF whose keyed hash is `cpf_hash`, locked: a decision being made on
/// one of them either committed before (and is seen) or waits for this transaction (and then
/// sees the request).
pub async fn lock_onboardings_of(
    tx: &mut PgConnection,
    cpf_hash: &[u8],
) -> Result<Vec<Found>, sqlx::Error> {
    found_query!(
        "WHERE o.cpf_hash = $1 ORDER BY o.created_at, o.id FOR UPDATE OF o",
        cpf_hash
    )
    .fetch_all(tx)
    .await
}

pub async fn found(tx: &mut PgConnection, id: Uuid) -> Result<Option<Found>, sqlx::Error> {
    found_query!("WHERE o.id = $1", id).fetch_optional(tx).await
}

/// Records that the erasure request `request_id` covers the onboarding, in the state it was.
pub async fn cover(
    db: impl PgExecutor<'_>,
    request_id: Uuid,
    onboarding_id: Uuid,
    state: &str,
) -> Result<(), sqlx::Error> {
    // The flag on the onboarding's row (locked by this transaction) is what its deciding
    // transaction sees when it moves the row to decided.
    sqlx::query!(
        "WITH covered AS (
             INSERT INTO subject_request_onboardings (request_id, onboarding_id, found_state)
             VALUES ($1, $2, $3) ON CONFLICT DO NOTHING
         )
         UPDATE onboardings SET erasure_requested = true WHERE id = $2",
        request_id,
        onboarding_id,
        state,
    )
    .execute(db)
    .await?;
    Ok(())
}

/// The erasure requests that cover the onboarding and have not erased it yet.
pub async fn pending_erasures(
    db: impl PgExecutor<'_>,
    onboarding_id: Uuid,
) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar!(
        "SELECT c.request_id FROM subject_request_onboardings c
          WHERE c.onboarding_id = $1
            AND NOT EXISTS (SELECT 1 FROM subject_erasures e
                             WHERE e.request_id = c.request_id AND e.onboarding_id = c.onboarding_id)
          ORDER BY c.request_id",
        onboarding_id,
    )
    .fetch_all(db)
    .await
}

/// What one erasure removed from one onboarding.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ErasureRow {
    pub request_id: Uuid,
    pub onboarding_id: Uuid,
    pub erased_at: DateTime<Utc>,
    /// [{"category", "erased_from": [where]}]
    pub erased: Value,
}

/// Erases what the person may have erased of a decided onboarding (the owner's function
/// `erase_subject_personal_data`, migration 0016: some of it is in records the service's role
/// cannot change). `sealed` is the onboarding's personal data re-sealed with the CPF alone, and
/// `fields` what that removed. None when the onboarding is not decided or this request already
/// erased it.
pub async fn erase(
    db: impl PgExecutor<'_>,
    request_id: Uuid,
    onboarding_id: Uuid,
    sealed: Option<(String, Vec<u8>)>,
    fields: &[&str],
) -> Result<Option<ErasureRow>, sqlx::Error> {
    let (key_id, ciphertext) = sealed.unzip();
    // A function's columns carry no NOT NULL: the table it returns (subject_erasures) has them.
    sqlx::query_as!(
        ErasureRow,
        r#"SELECT request_id AS "request_id!", onboarding_id AS "onboarding_id!",
                  erased_at AS "erased_at!", erased AS "erased!"
             FROM erase_subject_personal_data($1, $2, $3, $4, $5)"#,
        request_id,
        onboarding_id,
        key_id,
        ciphertext,
        // `&[&str]` encodes as text[] just as the `&[String]` the macro expects.
        fields as &[&str],
    )
    .fetch_optional(db)
    .await
}

/// The erasures recorded for any of `onboarding_ids`, oldest first.
pub async fn erasures_of(
    db: impl PgExecutor<'_>,
    onboarding_ids: &[Uuid],
) -> Result<Vec<ErasureRow>, sqlx::Error> {
    sqlx::query_as!(
        ErasureRow,
        "SELECT request_id, onboarding_id, erased_at, erased FROM subject_erasures
          WHERE onboarding_id = ANY($1) ORDER BY erased_at, onboarding_id",
        onboarding_ids,
    )
    .fetch_all(db)
    .await
}

/// The onboardings an erasure request covers that it has not erased yet.
pub async fn waiting_of(
    db: impl PgExecutor<'_>,
    request_id: Uuid,
) -> Result<Vec<(Uuid, String)>, sqlx::Error> {
    let rows = sqlx::query!(
        "SELECT c.onboarding_id, o.state FROM subject_request_onboardings c
           JOIN onboardings o ON o.id = c.onboarding_id
          WHERE c.request_id = $1
            AND NOT EXISTS (SELECT 1 FROM subject_erasures e
                             WHERE e.request_id = c.request_id AND e.onboarding_id = c.onboarding_id)
          ORDER BY o.created_at",
        request_id,
    )
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| (r.onboarding_id, r.state))
        .collect())
}

// ---- what the access report reads ----------------------------------------------------------

/// An onboarding with what the report says of it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct HeldOnboarding {
    pub id: Uuid,
    pub reference: Option<String>,
    pub state: String,
    pub created_at: DateTime<Utc>,
    pub decided_at: Option<DateTime<Utc>>,
    pub pii_key_id: Option<String>,
    pub pii_ciphertext: Option<Vec<u8>>,
    pub pii_erased_at: Option<DateTime<Utc>>,
    pub selfie_held: bool,
    pub device: Value,
    pub account_id: String,
    pub person_id: String,
}

/// The person's onboardings, oldest first. Those retention erased have no CPF hash any more and
/// are not found: nothing left in them names the person.
pub async fn onboardings_of(
    db: impl PgExecutor<'_>,
    cpf_hash: &[u8],
) -> Result<Vec<HeldOnboarding>, sqlx::Error> {
    sqlx::query_as!(
        HeldOnboarding,
        r#"SELECT id, reference, state, created_at, decided_at, pii_key_id, pii_ciphertext,
                  pii_erased_at, selfie_ciphertext IS NOT NULL AS "selfie_held!", device,
                  account_id, person_id
             FROM onboardings WHERE cpf_hash = $1 ORDER BY created_at, id"#,
        cpf_hash,
    )
    .fetch_all(db)
    .await
}

/// Every decision on any of `onboarding_ids`, in the order they were made.
pub async fn decisions_of(
    db: impl PgExecutor<'_>,
    onboarding_ids: &[Uuid],
) -> Result<Vec<crate::store::decisions::DecisionRow>, sqlx::Error> {
    sqlx::query_as!(
        crate::store::decisions::DecisionRow,
        "SELECT id, onboarding_id, outcome, reasons, reason_codes, policy_version, thresholds,
                evidence, evaluations, decided_at, decided_by, reviewer, note
           FROM decisions WHERE onboarding_id = ANY($1) ORDER BY decided_at, id",
        onboarding_ids,
    )
    .fetch_all(db)
    .await
}

/// The review cases of any of `onboarding_ids`, oldest first.
pub async fn cases_of(
    db: impl PgExecutor<'_>,
    onboarding_ids: &[Uuid],
) -> Result<Vec<crate::store::reviews::CaseRow>, sqlx::Error> {
    crate::store::reviews::of_onboardings(db, onboarding_ids).await
}

/// One kind of call made to a provider for an onboarding: the first and the last, how many,
/// and whether any still holds the provider's own words.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CallsMade {
    pub onboarding_id: Uuid,
    pub provider: String,
    pub operation: String,
    pub calls: i64,
    pub first_at: DateTime<Utc>,
    pub last_at: DateTime<Utc>,
    pub answers_held: i64,
}

pub async fn calls_of(
    db: impl PgExecutor<'_>,
    onboarding_ids: &[Uuid],
) -> Result<Vec<CallsMade>, sqlx::Error> {
    // `onboarding_id = ANY($1)` leaves no NULL onboarding; aggregates over a group are never NULL.
    sqlx::query_as!(
        CallsMade,
        r#"SELECT onboarding_id AS "onboarding_id!", provider, operation, count(*) AS "calls!",
                  min(created_at) AS "first_at!", max(created_at) AS "last_at!",
                  count(*) FILTER (WHERE answer_ciphertext IS NOT NULL) AS "answers_held!"
             FROM provider_calls WHERE onboarding_id = ANY($1)
            GROUP BY onboarding_id, provider, operation
            ORDER BY onboarding_id, min(created_at)"#,
        onboarding_ids,
    )
    .fetch_all(db)
    .await
}
