//! Review cases: opened by the policy's `review` or by the person's request, claimed by one
//! reviewer at a time, resolved once.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use crate::crypto::PiiCipher;
use crate::store::StoreError;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CaseRow {
    pub id: Uuid,
    pub onboarding_id: Uuid,
    pub status: String,
    pub opened_by: String,
    pub statement_key_id: Option<String>,
    pub statement_ciphertext: Option<Vec<u8>>,
    pub reasons: Vec<String>,
    pub decision_id: Uuid,
    pub assignee: Option<String>,
    pub due_at: DateTime<Utc>,
    pub opened_at: DateTime<Utc>,
    pub claimed_at: Option<DateTime<Utc>>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub resolution_outcome: Option<String>,
    pub resolution_note: Option<String>,
    pub resolution_reviewer: Option<String>,
    pub resolution_decision_id: Option<Uuid>,
}

impl CaseRow {
    /// The person's statement, or None (none given, or erased).
    pub fn statement(&self, cipher: &PiiCipher) -> Result<Option<String>, StoreError> {
        let (Some(key_id), Some(sealed)) = (&self.statement_key_id, &self.statement_ciphertext)
        else {
            return Ok(None);
        };
        let plain = cipher.decrypt(key_id, sealed, self.id.as_bytes())?;
        String::from_utf8(plain)
            .map(Some)
            .map_err(|_| StoreError::Corrupt("a sealed statement is not text".into()))
    }
}

/// A query of `review_cases` checked at build time, whose SQL is given as pieces in brackets:
/// string literals, `COLUMNS` for a `CaseRow`'s columns and `FILTERED` for the queue's filter
/// (bound, from the `CaseFilter` after `filter:`, as `$1` to `$9`). The query macros take only
/// literals (joined with `+`), so this writes both into each statement that uses them.
macro_rules! case_query {
    ($out:path, [$($sql:tt)*], filter: $f:expr $(, $arg:expr)* $(,)?) => {
        case_query!(
            $out,
            [$($sql)*],
            $f.status.as_deref(),
            $f.assignee.as_deref(),
            $f.reason.as_deref(),
            $f.overdue,
            $f.opened_by.as_deref(),
            $f.unassigned,
            $f.unresolved,
            $f.opened_from,
            $f.opened_to
            $(, $arg)*
        )
    };
    ($out:path, [$($sql:tt)*] $(, $arg:expr)* $(,)?) => {
        case_query!(@sql $out, [], [$($sql)*], [$($arg),*])
    };
    (@sql $out:path, [$($done:tt)*], [COLUMNS $($rest:tt)*], $args:tt) => {
        case_query!(@sql $out, [$($done)*
            "id, onboarding_id, status, opened_by, statement_key_id, statement_ciphertext,
             reasons, decision_id, assignee, due_at, opened_at, claimed_at, resolved_at,
             resolution_outcome, resolution_note, resolution_reviewer, resolution_decision_id" +
        ], [$($rest)*], $args)
    };
    (@sql $out:path, [$($done:tt)*], [FILTERED $($rest:tt)*], $args:tt) => {
        case_query!(@sql $out, [$($done)*
            "($1::text IS NULL OR status = $1)
             AND ($2::text IS NULL OR assignee = $2)
             AND ($3::text IS NULL OR $3 = ANY (reasons))
             AND (NOT $4 OR (status <> 'resolved' AND due_at < now()))
             AND ($5::text IS NULL OR opened_by = $5)
             AND (NOT $6 OR (status = 'open' AND assignee IS NULL))
             AND (NOT $7 OR status <> 'resolved')
             AND ($8::timestamptz IS NULL OR opened_at >= $8)
             AND ($9::timestamptz IS NULL OR opened_at < $9)" +
        ], [$($rest)*], $args)
    };
    (@sql $out:path, [$($done:tt)*], [$piece:literal $($rest:tt)*], $args:tt) => {
        case_query!(@sql $out, [$($done)* $piece +], [$($rest)*], $args)
    };
    (@sql $out:path, [$($done:tt)*], [], [$($arg:expr),*]) => {
        sqlx::query_as!($out, $($done)* "", $($arg),*)
    };
}

pub struct NewCase<'a> {
    pub onboarding_id: Uuid,
    pub opened_by: &'a str,
    pub statement: Option<&'a str>,
    pub reasons: &'a [String],
    pub decision_id: Uuid,
    pub sla: Duration,
}

/// Opens a case, unless one is open already: answers the new case (true) or the open one
/// (false).
pub async fn open(
    tx: &mut PgConnection,
    cipher: &PiiCipher,
    new: NewCase<'_>,
) -> Result<(CaseRow, bool), StoreError> {
    let id = Uuid::new_v4();
    let sealed = match new.statement {
        Some(text) => Some(cipher.encrypt(text.as_bytes(), id.as_bytes())?),
        None => None,
    };
    let (key_id, ciphertext) = sealed.map_or((None, None), |(k, c)| (Some(k), Some(c)));
    let inserted = case_query!(
        CaseRow,
        ["INSERT INTO review_cases (id, onboarding_id, opened_by, statement_key_id, statement_ciphertext,
                                   reasons, decision_id, due_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, now() + make_interval(secs => $8))
         ON CONFLICT (onboarding_id) WHERE status <> 'resolved' DO NOTHING
         RETURNING " COLUMNS],
        id,
        new.onboarding_id,
        new.opened_by,
        key_id,
        ciphertext,
        new.reasons,
        new.decision_id,
        new.sla.as_secs_f64(),
    )
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(case) = inserted {
        return Ok((case, true));
    }
    let open = case_query!(
        CaseRow,
        ["SELECT " COLUMNS " FROM review_cases WHERE onboarding_id = $1 AND status <> 'resolved'"],
        new.onboarding_id,
    )
    .fetch_one(&mut *tx)
    .await?;
    Ok((open, false))
}

pub async fn get(db: impl PgExecutor<'_>, id: Uuid) -> Result<Option<CaseRow>, sqlx::Error> {
    case_query!(CaseRow, ["SELECT " COLUMNS " FROM review_cases WHERE id = $1"], id)
        .fetch_optional(db)
        .await
}

/// The cases of any of `onboarding_ids`, oldest first.
pub async fn of_onboardings(
    db: impl PgExecutor<'_>,
    onboarding_ids: &[Uuid],
) -> Result<Vec<CaseRow>, sqlx::Error> {
    case_query!(
        CaseRow,
        ["SELECT " COLUMNS " FROM review_cases WHERE onboarding_id = ANY($1) ORDER BY opened_at, id"],
        onboarding_ids,
    )
    .fetch_all(db)
    .await
}

/// What the queue can be filtered by.
#[derive(Debug, Clone, Default)]
pub struct CaseFilter {
    pub status: Option<String>,
    /// Open and claimed cases, when `status` is None and this is set.
    pub unresolved: bool,
    pub assignee: Option<String>,
    /// Open cases held by nobody.
    pub unassigned: bool,
    pub reason: Option<String>,
    /// policy or subject_request.
    pub opened_by: Option<String>,
    pub overdue: bool,
    /// Opened at or after.
    pub opened_from: Option<DateTime<Utc>>,
    /// Opened before.
    pub opened_to: Option<DateTime<Utc>>,
}

/// A position in the queue: a case of a page's edge.
#[derive(Debug, Clone, Copy)]
pub struct CaseCursor {
    pub due_at: DateTime<Utc>,
    pub id: Uuid,
}

/// Which way a page goes from its cursor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    After,
    Before,
}

/// Cases soonest due first (then by id), after `after`.
pub async fn list(
    db: impl PgExecutor<'_>,
    filter: &CaseFilter,
    after: Option<CaseCursor>,
    limit: i64,
) -> Result<Vec<CaseRow>, sqlx::Error> {
    page(db, filter, after, Direction::After, limit).await
}

/// A page of cases in queue order (soonest due first, then by id): the `limit` after the
/// cursor, or the `limit` just before it.
pub async fn page(
    db: impl PgExecutor<'_>,
    filter: &CaseFilter,
    cursor: Option<CaseCursor>,
    direction: Direction,
    limit: i64,
) -> Result<Vec<CaseRow>, sqlx::Error> {
    let (due, id) = cursor.map_or((None, None), |c| (Some(c.due_at), Some(c.id)));
    // One statement per direction: the comparison and the order are part of the SQL text.
    macro_rules! page_query {
        ($compare:literal, $order:literal) => {
            case_query!(
                CaseRow,
                ["SELECT " COLUMNS " FROM review_cases
                   WHERE " FILTERED "
                     AND ($10::timestamptz IS NULL OR (due_at, id) " $compare " ($10, $11::uuid))
                   ORDER BY due_at " $order ", id " $order "
                   LIMIT $12"],
                filter: filter,
                due,
                id,
                limit,
            )
            .fetch_all(db)
        };
    }
    Ok(match direction {
        Direction::After => page_query!(">", "ASC").await?,
        Direction::Before => {
            let mut rows = page_query!("<", "DESC").await?;
            rows.reverse();
            rows
        }
    })
}

struct CaseCounts {
    all: i64,
    open: i64,
    claimed: i64,
    resolved: i64,
    overdue: i64,
}

/// How many cases match `filter`: (all, open, claimed, resolved, overdue).
pub async fn count(
    db: impl PgExecutor<'_>,
    filter: &CaseFilter,
) -> Result<(i64, i64, i64, i64, i64), sqlx::Error> {
    let counts = case_query!(
        CaseCounts,
        [r#"SELECT count(*) AS "all!", count(*) FILTER (WHERE status = 'open') AS "open!",
                   count(*) FILTER (WHERE status = 'claimed') AS "claimed!",
                   count(*) FILTER (WHERE status = 'resolved') AS "resolved!",
                   count(*) FILTER (WHERE status <> 'resolved' AND due_at < now()) AS "overdue!"
              FROM review_cases WHERE "# FILTERED],
        filter: filter,
    )
    .fetch_one(db)
    .await?;
    Ok((
        counts.all,
        counts.open,
        counts.claimed,
        counts.resolved,
        counts.overdue,
    ))
}

/// The reason codes of the cases not yet resolved, and of those resolved in the last 90 days.
pub async fn reasons_in_use(db: impl PgExecutor<'_>) -> Result<Vec<String>, sqlx::Error> {
    // `reasons` is NOT NULL and a reason code is never NULL.
    sqlx::query_scalar!(
        r#"SELECT DISTINCT r AS "r!" FROM review_cases, unnest(reasons) AS r
          WHERE status <> 'resolved' OR resolved_at > now() - interval '90 days'
          ORDER BY r"#,
    )
    .fetch_all(db)
    .await
}

/// Of `case_ids`, those whose person (the onboarding's CPF hash) has another unresolved case.
pub async fn same_person_open(
    db: impl PgExecutor<'_>,
    case_ids: &[Uuid],
) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar!(
        "SELECT c.id FROM review_cases c JOIN onboardings o ON o.id = c.onboarding_id
          WHERE c.id = ANY($1) AND o.cpf_hash IS NOT NULL
            AND EXISTS (SELECT 1 FROM review_cases c2 JOIN onboardings o2 ON o2.id = c2.onboarding_id
                         WHERE o2.cpf_hash = o.cpf_hash AND c2.id <> c.id AND c2.status <> 'resolved')",
        case_ids,
    )
    .fetch_all(db)
    .await
}

/// What a claim, a release or a resolution ran into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    NotFound,
    /// Another reviewer holds it.
    HeldBy(String),
    /// Only the assignee may do this.
    NotAssignee,
    Resolved,
    /// The person's request (LGPD Art. 20) contests a decision this reviewer made: someone else
    /// must review it.
    ContestedDecisionMaker,
    /// An answer to the person goes only with a case the person opened (LGPD Art. 20).
    AnswerWithoutRequest,
    /// A case the person opened is resolved with an answer to them.
    AnswerMissing,
}

/// Assigns the case to `reviewer`: an open case, or one the reviewer holds already, unless the
/// reviewer made the decision that the case, opened at the person's request, contests
/// (`review_case_contested_by`, migration 0012, which the resolution applies as well): a review
/// of one's own decision is no human review in the sense of LGPD Art. 20.
pub async fn claim(
    tx: &mut PgConnection,
    id: Uuid,
    reviewer: &str,
) -> Result<Result<CaseRow, Refusal>, sqlx::Error> {
    let claimed = case_query!(
        CaseRow,
        ["UPDATE review_cases c
             SET status = 'claimed', assignee = $2,
                 claimed_at = CASE WHEN c.status = 'open' THEN now() ELSE c.claimed_at END
           WHERE c.id = $1 AND (c.status = 'open' OR (c.status = 'claimed' AND c.assignee = $2))
             AND NOT review_case_contested_by(c.opened_by, c.decision_id, $2)
           RETURNING " COLUMNS],
        id,
        reviewer,
    )
    .fetch_optional(&mut *tx)
    .await?;
    match claimed {
        Some(case) => Ok(Ok(case)),
        None => refusal(tx, id, reviewer).await.map(Err),
    }
}

/// Gives the case back to the queue; only its assignee may.
pub async fn release(
    tx: &mut PgConnection,
    id: Uuid,
    reviewer: &str,
) -> Result<Result<CaseRow, Refusal>, sqlx::Error> {
    let released = case_query!(
        CaseRow,
        ["UPDATE review_cases SET status = 'open', assignee = NULL, claimed_at = NULL
           WHERE id = $1 AND status = 'claimed' AND assignee = $2
           RETURNING " COLUMNS],
        id,
        reviewer,
    )
    .fetch_optional(&mut *tx)
    .await?;
    match released {
        Some(case) => Ok(Ok(case)),
        None => refusal(tx, id, reviewer).await.map(Err),
    }
}

/// Resolves the case; only its assignee may, once.
pub async fn resolve(
    tx: &mut PgConnection,
    id: Uuid,
    reviewer: &str,
    outcome: &str,
    note: &str,
    decision_id: Uuid,
) -> Result<Result<CaseRow, Refusal>, sqlx::Error> {
    // The resolution is part of the record: the service's role cannot write its columns, and
    // writes them once through the owner's function (migration 0012).
    // A function's columns carry no NOT NULL: those of review_cases are named here.
    let resolved = sqlx::query_as!(
        CaseRow,
        r#"SELECT id AS "id!", onboarding_id AS "onboarding_id!", status AS "status!",
                  opened_by AS "opened_by!", statement_key_id, statement_ciphertext,
                  reasons AS "reasons!", decision_id AS "decision_id!", assignee,
                  due_at AS "due_at!", opened_at AS "opened_at!", claimed_at, resolved_at,
                  resolution_outcome, resolution_note, resolution_reviewer, resolution_decision_id
             FROM resolve_review_case($1, $2, $3, $4, $5)"#,
        id,
        reviewer,
        outcome,
        note,
        decision_id,
    )
    .fetch_optional(&mut *tx)
    .await?;
    match resolved {
        Some(case) => Ok(Ok(case)),
        None => refusal(tx, id, reviewer).await.map(Err),
    }
}

/// Why `reviewer`'s change of `id` did not apply, read after it failed.
async fn refusal(tx: &mut PgConnection, id: Uuid, reviewer: &str) -> Result<Refusal, sqlx::Error> {
    let row = sqlx::query!(
        r#"SELECT c.status, c.assignee,
                  review_case_contested_by(c.opened_by, c.decision_id, $2) AS "contested!"
             FROM review_cases c WHERE c.id = $1"#,
        id,
        reviewer,
    )
    .fetch_optional(&mut *tx)
    .await?
    .map(|r| (r.status, r.assignee, r.contested));
    Ok(match row {
        None => Refusal::NotFound,
        Some((status, _, _)) if status == "resolved" => Refusal::Resolved,
        Some((_, _, true)) => Refusal::ContestedDecisionMaker,
        Some((_, Some(holder), _)) => Refusal::HeldBy(holder),
        Some(_) => Refusal::NotAssignee,
    })
}

/// Open and overdue cases, for the metrics.
pub async fn counts(db: impl PgExecutor<'_>) -> Result<(i64, i64), sqlx::Error> {
    let row = sqlx::query!(
        r#"SELECT count(*) AS "unresolved!", count(*) FILTER (WHERE due_at < now()) AS "overdue!"
             FROM review_cases WHERE status <> 'resolved'"#,
    )
    .fetch_one(db)
    .await?;
    Ok((row.unresolved, row.overdue))
}
