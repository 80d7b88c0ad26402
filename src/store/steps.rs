//! The one step queue. Every piece of work that follows a state change is a row here, written in
//! the transaction of that change; runners on any replica claim due rows with
//! `FOR UPDATE SKIP LOCKED` and a lease, and NOTIFY wakes them when a row becomes due now.
//!
//! A statement that names a step by id says `status <> 'done'` rather than `status = 'pending'`
//! (the same rows: a status is one or the other). With `= 'pending'` the planner may take the
//! partial index of pending steps, small by its statistics, and scan every entry in it, dead
//! ones included, instead of looking the id up in the primary key.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor, PgPool};
use uuid::Uuid;

use crate::domain::transitions::StepKind;
use crate::store::Tx;

/// NOTIFY channel: a step became due now (queued, or made due by a webhook), or falls due
/// sooner than a runner's longest sleep.
pub const STEPS_CHANNEL: &str = "veredito_steps";

/// The longest a runner sleeps without looking. A step that falls due sooner than this wakes
/// the runners (NOTIFY) so they sleep until it instead; later ones they find on their own.
pub const LONGEST_SLEEP: Duration = Duration::from_secs(1);

/// What a step works on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    Onboarding(Uuid),
    Validation(Uuid),
    Callback(Uuid),
}

impl Subject {
    fn columns(self) -> (Option<Uuid>, Option<Uuid>, Option<Uuid>) {
        match self {
            Subject::Onboarding(id) => (Some(id), None, None),
            Subject::Validation(id) => (None, Some(id), None),
            Subject::Callback(id) => (None, None, Some(id)),
        }
    }
}

/// When a queued step runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// Due now: any runner on any replica may take it (they are notified).
    Now,
    /// Due after this long.
    In(Duration),
    /// Held by the writer for this lease: it runs the step itself at once, and if it dies the
    /// lease runs out and a runner takes the step.
    Claimed(Duration),
}

/// A step as stored.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    pub id: i64,
    pub kind: String,
    pub onboarding_id: Option<Uuid>,
    pub device_validation_id: Option<Uuid>,
    pub callback_id: Option<Uuid>,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub claimed_at: Option<DateTime<Utc>>,
    pub traceparent: Option<String>,
}

/// A step as a runner holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub id: i64,
    pub kind: StepKind,
    pub subject: Subject,
    /// Runs so far, this one included.
    pub attempts: i32,
    pub last_error: Option<String>,
    pub claimed_at: Option<DateTime<Utc>>,
    /// The trace of the work that queued the step, which its run continues.
    pub traceparent: Option<String>,
}

impl TryFrom<Row> for Step {
    type Error = sqlx::Error;
    fn try_from(row: Row) -> Result<Step, sqlx::Error> {
        let kind = StepKind::parse(&row.kind)
            .ok_or_else(|| sqlx::Error::Decode(format!("unknown step kind {}", row.kind).into()))?;
        let subject = match (row.onboarding_id, row.device_validation_id, row.callback_id) {
            (Some(id), None, None) => Subject::Onboarding(id),
            (None, Some(id), None) => Subject::Validation(id),
            (None, None, Some(id)) => Subject::Callback(id),
            _ => return Err(sqlx::Error::Decode("a step names one subject".into())),
        };
        Ok(Step {
            id: row.id,
            kind,
            subject,
            attempts: row.attempts,
            last_error: row.last_error,
            claimed_at: row.claimed_at,
            traceparent: row.traceparent,
        })
    }
}

/// Sends a statement that marks step `$1` (an `Option<i64>`; None: no step) done, followed by
/// the data-modifying CTEs of `$rest` and its final SELECT: the writes a step's transaction kept
/// (`store::tx`) and the end of the step go in one round trip, while the SQL that writes the
/// queue stays in this module. `$rest` numbers its parameters from `$2`.
macro_rules! finishing {
    ($step:expr, $rest:literal, $($args:expr),* $(,)?) => {
        sqlx::query!(
            "WITH done AS (
                 UPDATE steps SET status = 'done', finished_at = now(), claimed_until = NULL
                  WHERE id = $1::int8 AND status <> 'done'
             ), " + $rest,
            $step,
            $($args),*
        )
    };
}
pub(crate) use finishing;

/// Sends a statement that claims a step in the same round trip as the caller's own CTEs, into
/// `$record` (`query_as!`). `$head` opens it (`WITH ...,`) and defines a CTE `subject` whose
/// `onboarding_id` names the onboarding (none: nothing is claimed). Its pending step of kind
/// `$kind` is then claimed for `$lease` when no runner holds it, and answered as the CTE
/// `claimed` (a step's columns) for `$tail` to read; when a runner holds it, it is made due
/// again, so it runs again after the current run, and the runners are notified. `$tail` holds
/// the caller's other CTEs and its final SELECT; the caller numbers its parameters from `$4`.
macro_rules! claiming {
    ($record:path, $head:literal, $kind:expr, $lease:expr, $tail:literal, $($args:expr),* $(,)?) => {
        sqlx::query_as!(
            $record,
            $head
                + "claimed AS (
                       UPDATE steps
                          SET run_at = now(), claimed_at = now(),
                              claimed_until = now() + make_interval(secs => $1),
                              attempts = attempts + 1
                        WHERE onboarding_id = (SELECT onboarding_id FROM subject) AND kind = $2
                          AND status = 'pending'
                          AND (claimed_until IS NULL OR claimed_until < now())
                       RETURNING id, kind, onboarding_id, device_validation_id, callback_id,
                                 attempts, last_error, claimed_at, traceparent
                   ), held AS (
                       UPDATE steps SET run_at = now()
                        WHERE onboarding_id = (SELECT onboarding_id FROM subject) AND kind = $2
                          AND status = 'pending' AND claimed_until >= now()
                       RETURNING pg_notify($3, '')
                   ), "
                + $tail,
            $lease.as_secs_f64(),
            $kind.as_str(),
            $crate::store::steps::STEPS_CHANNEL,
            $($args),*
        )
    };
}
pub(crate) use claiming;

/// Queues `kind` for `subject` in the caller's transaction. A pending step of the same kind for
/// the same subject is left as it is (None). With `When::Claimed` the new step is answered,
/// held by the caller.
pub async fn queue(
    tx: &mut Tx,
    kind: StepKind,
    subject: Subject,
    when: When,
) -> Result<Option<Step>, sqlx::Error> {
    if tx.finishing(kind, subject) {
        // The step this one follows is still pending until the transaction writes it done.
        tx.flush().await?;
    }
    let (onboarding_id, validation_id, callback_id) = subject.columns();
    let (delay, lease) = match when {
        When::Now => (Duration::ZERO, None),
        When::In(delay) => (delay, None),
        When::Claimed(lease) => (Duration::ZERO, Some(lease)),
    };
    let row = sqlx::query_as!(
        Row,
        "INSERT INTO steps (kind, onboarding_id, device_validation_id, callback_id, run_at, attempts,
                            claimed_at, claimed_until, traceparent)
         VALUES ($1, $2, $3, $6, now() + make_interval(secs => $4),
                 CASE WHEN $5::float8 IS NULL THEN 0 ELSE 1 END,
                 CASE WHEN $5::float8 IS NULL THEN NULL ELSE now() END,
                 now() + make_interval(secs => $5), $7)
         ON CONFLICT DO NOTHING
         RETURNING id, kind, onboarding_id, device_validation_id, callback_id, attempts,
                   last_error, claimed_at, traceparent",
        kind.as_str(),
        onboarding_id,
        validation_id,
        delay.as_secs_f64(),
        lease.map(|l| l.as_secs_f64()),
        callback_id,
        crate::telemetry::traceparent(&tracing::Span::current()),
    )
    .fetch_optional(&mut **tx)
    .await?;
    if row.is_some() && matches!(when, When::Now | When::In(_)) && delay < LONGEST_SLEEP {
        tx.notify(STEPS_CHANNEL, String::new());
    }
    match (when, row) {
        (When::Claimed(_), Some(row)) => Ok(Some(row.try_into()?)),
        _ => Ok(None),
    }
}

/// Wakes the runners of every replica when the transaction commits.
pub async fn notify(db: impl PgExecutor<'_>) -> Result<(), sqlx::Error> {
    sqlx::query!("SELECT pg_notify($1, '')", STEPS_CHANNEL)
        .execute(db)
        .await?;
    Ok(())
}

/// Which steps a runner takes: callback deliveries have a lane of their own, so a slow or dead
/// callback URL never holds up a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    Flow,
    Callbacks,
}

impl Lane {
    /// The lane a step of `kind` runs in.
    pub fn of(kind: StepKind) -> Lane {
        match kind {
            StepKind::DeliverCallback => Lane::Callbacks,
            StepKind::CreateProcess
            | StepKind::ReadProcess
            | StepKind::RegisterDevice
            | StepKind::ReadDevice
            | StepKind::OpenFinanceSignal
            | StepKind::SendValidation
            | StepKind::ReadValidation => Lane::Flow,
        }
    }

    /// The kinds of step the lane runs, as stored.
    fn kinds(self) -> Vec<String> {
        StepKind::ALL
            .into_iter()
            .filter(|&kind| Lane::of(kind) == self)
            .map(|kind| kind.as_str().to_owned())
            .collect()
    }
}

/// Claims up to `limit` due steps of `lane` for `lease`, oldest due first.
pub async fn claim_due(
    pool: &PgPool,
    lane: Lane,
    limit: i64,
    lease: Duration,
) -> Result<Vec<Step>, sqlx::Error> {
    let rows = sqlx::query_as!(
        Row,
        "UPDATE steps s
            SET claimed_at = now(), claimed_until = now() + make_interval(secs => $2),
                attempts = s.attempts + 1
          WHERE s.id IN (
                SELECT id FROM steps
                 WHERE status = 'pending' AND run_at <= now()
                   AND (claimed_until IS NULL OR claimed_until < now())
                   AND kind = ANY($3::text[])
                 ORDER BY run_at
                 LIMIT $1
                 FOR UPDATE SKIP LOCKED)
          RETURNING id, kind, onboarding_id, device_validation_id, callback_id, attempts,
                    last_error, claimed_at, traceparent",
        limit,
        lease.as_secs_f64(),
        &lane.kinds(),
    )
    .fetch_all(pool)
    .await?;
    rows.into_iter().map(Step::try_from).collect()
}

/// Gives back a step its writer will not run after all: due now, for any runner (notified).
pub async fn release(pool: &PgPool, step: &Step) -> Result<(), sqlx::Error> {
    let mut tx = crate::store::begin(pool).await?;
    sqlx::query!(
        "UPDATE steps SET claimed_at = NULL, claimed_until = NULL, attempts = greatest(attempts - 1, 0)
          WHERE id = $1 AND status <> 'done'",
        step.id,
    )
    .execute(&mut *tx)
    .await?;
    notify(&mut *tx).await?;
    tx.commit().await
}

/// The step ran to its end.
pub async fn complete(db: impl PgExecutor<'_>, step: &Step) -> Result<(), sqlx::Error> {
    complete_id(db, step.id).await
}

pub(crate) async fn complete_id(db: impl PgExecutor<'_>, id: i64) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE steps SET status = 'done', finished_at = now(), claimed_until = NULL
          WHERE id = $1 AND status <> 'done'",
        id,
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Releases the step to run again after `run_in` (or at once, when it was made due while it
/// ran), remembering why. `error` is a code or a class, never a provider's text.
pub async fn reschedule(
    tx: &mut PgConnection,
    step: &Step,
    run_in: Duration,
    error: Option<&str>,
) -> Result<(), sqlx::Error> {
    if run_in < LONGEST_SLEEP {
        notify(&mut *tx).await?;
    }
    sqlx::query!(
        "UPDATE steps
            SET run_at = CASE WHEN claimed_at IS NOT NULL AND run_at > claimed_at THEN now()
                              ELSE now() + make_interval(secs => $2) END,
                claimed_until = NULL, last_error = $3
          WHERE id = $1 AND status <> 'done'",
        step.id,
        run_in.as_secs_f64(),
        error,
    )
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Renews the claims of the steps a replica is running, each named by its id and the
/// `claimed_at` that makes the claim that replica's, for `lease` from now; answers the ids whose
/// claims were still theirs and had not run out.
pub async fn renew(
    pool: &PgPool,
    claims: &[(i64, DateTime<Utc>)],
    lease: Duration,
) -> Result<Vec<i64>, sqlx::Error> {
    let (ids, claimed): (Vec<i64>, Vec<DateTime<Utc>>) = claims.iter().copied().unzip();
    sqlx::query_scalar!(
        "UPDATE steps s SET claimed_until = clock_timestamp() + make_interval(secs => $3)
           FROM unnest($1::bigint[], $2::timestamptz[]) AS c(id, claimed_at)
          WHERE s.id = c.id AND s.claimed_at = c.claimed_at AND s.status = 'pending'
            AND s.claimed_until > clock_timestamp()
          RETURNING s.id",
        &ids,
        &claimed,
        lease.as_secs_f64(),
    )
    .fetch_all(pool)
    .await
}

/// What became of a step that failed on veredito's own side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failed {
    /// It runs again after this long.
    Retried(Duration),
    /// It failed `max` times in a row: it runs no more until an operator retries it.
    GaveUp,
}

/// Records a failure of veredito's own (`error` is a class, never a message with data in it):
/// the step runs again after `backoff` (computed from its failures so far), or, at the
/// `max`-th failure in a row, ends `failed`, with a timeline entry for its onboarding.
pub async fn fail(
    pool: &PgPool,
    step: &Step,
    error: &str,
    backoff: impl Fn(i32) -> Duration,
    max: i32,
) -> Result<Failed, sqlx::Error> {
    let mut tx = crate::store::begin(pool).await?;
    let failures = sqlx::query_scalar!(
        "SELECT failures FROM steps WHERE id = $1 AND status = 'pending' FOR UPDATE",
        step.id,
    )
    .fetch_optional(&mut *tx)
    .await?;
    let Some(failures) = failures.map(|f| f + 1) else {
        // Finished meanwhile (a webhook's run, another replica): nothing to record.
        return Ok(Failed::Retried(Duration::ZERO));
    };
    let outcome = if failures >= max {
        sqlx::query!(
            "UPDATE steps SET status = 'failed', failures = $2, last_error = $3,
                              claimed_until = NULL, finished_at = now()
              WHERE id = $1",
            step.id,
            failures,
            error,
        )
        .execute(&mut *tx)
        .await?;
        if let Subject::Onboarding(id) = step.subject {
            sqlx::query!(
                "INSERT INTO onboarding_events (onboarding_id, kind, detail)
                 VALUES ($1, 'step_failed',
                         jsonb_build_object('step', $2::text, 'failures', $3::int, 'error', $4::text))",
                id,
                step.kind.as_str(),
                failures,
                error,
            )
            .execute(&mut *tx)
            .await?;
        }
        Failed::GaveUp
    } else {
        let wait = backoff(failures);
        sqlx::query!(
            "UPDATE steps SET failures = $2, last_error = $3, claimed_until = NULL,
                              run_at = now() + make_interval(secs => $4)
              WHERE id = $1",
            step.id,
            failures,
            error,
            wait.as_secs_f64(),
        )
        .execute(&mut *tx)
        .await?;
        if wait < LONGEST_SLEEP {
            notify(&mut *tx).await?;
        }
        Failed::Retried(wait)
    };
    tx.commit().await?;
    Ok(outcome)
}

/// Puts failed steps back in the queue, due now, with their failures forgotten: `ids`, or every
/// failed step when it is empty. Answers the ids queued again (a step whose subject has a pending
/// step of the same kind meanwhile stays failed).
pub async fn retry_failed(pool: &PgPool, ids: &[i64]) -> Result<Vec<i64>, sqlx::Error> {
    let mut tx = crate::store::begin(pool).await?;
    let retried = sqlx::query_scalar!(
        "UPDATE steps s SET status = 'pending', failures = 0, run_at = now(),
                            claimed_at = NULL, claimed_until = NULL, finished_at = NULL
          WHERE s.status = 'failed' AND (cardinality($1::bigint[]) = 0 OR s.id = ANY($1))
            AND NOT EXISTS (
                SELECT 1 FROM steps p
                 WHERE p.status = 'pending' AND p.kind = s.kind
                   AND (p.onboarding_id = s.onboarding_id
                        OR p.device_validation_id = s.device_validation_id
                        OR p.callback_id = s.callback_id))
          RETURNING s.id",
        ids,
    )
    .fetch_all(&mut *tx)
    .await?;
    sqlx::query!(
        "INSERT INTO onboarding_events (onboarding_id, kind, detail)
         SELECT onboarding_id, 'step_retried', jsonb_build_object('step', kind)
           FROM steps WHERE id = ANY($1) AND onboarding_id IS NOT NULL",
        &retried,
    )
    .execute(&mut *tx)
    .await?;
    notify(&mut *tx).await?;
    tx.commit().await?;
    Ok(retried)
}

/// How long until the next step of `lane` falls due (None: nothing is scheduled).
pub async fn next_due_in(pool: &PgPool, lane: Lane) -> Result<Option<Duration>, sqlx::Error> {
    let at = sqlx::query_scalar!(
        "SELECT min(run_at) FROM steps
          WHERE status = 'pending' AND run_at > now() AND kind = ANY($1::text[])",
        &lane.kinds(),
    )
    .fetch_one(pool)
    .await?;
    Ok(at.map(|at| (at - Utc::now()).to_std().unwrap_or_default()))
}

/// The one backoff: `initial` doubled per attempt up to `max`, spread by ±20% so work that
/// failed together does not retry together.
pub fn backoff(initial: Duration, max: Duration, attempt: i32) -> Duration {
    let exponent = attempt.clamp(1, 16) as u32 - 1;
    let base = initial.saturating_mul(1u32 << exponent).min(max);
    base.mul_f64(0.8 + fastrand::f64() * 0.4)
}

/// When to try again after a failure: the backoff, never sooner than the provider's
/// `Retry-After`, never later than `left` (the deadline, where the step decides anyway).
pub fn retry_in(
    backoff: Duration,
    retry_after: Option<Duration>,
    left: Option<Duration>,
) -> Duration {
    let wait = retry_after.map_or(backoff, |r| backoff.max(r));
    match left {
        Some(left) => wait.min(left),
        None => wait,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_with_jitter() {
        let initial = Duration::from_secs(1);
        let max = Duration::from_secs(30);
        for (attempt, base) in [(0, 1), (1, 1), (2, 2), (3, 4), (5, 16), (6, 30), (40, 30)] {
            for _ in 0..50 {
                let wait = backoff(initial, max, attempt).as_secs_f64();
                let base = base as f64;
                assert!(
                    wait >= base * 0.8 - 1e-9 && wait <= base * 1.2 + 1e-9,
                    "attempt {attempt}: {wait}"
                );
            }
        }
    }

    #[test]
    fn retry_in_never_before_retry_after_and_never_past_the_deadline() {
        let s = Duration::from_secs;
        assert_eq!(retry_in(s(1), None, None), s(1));
        assert_eq!(retry_in(s(1), Some(s(2)), None), s(2));
        assert_eq!(retry_in(s(5), Some(s(2)), None), s(5));
        assert_eq!(retry_in(s(5), Some(s(2)), Some(s(3))), s(3));
        assert_eq!(retry_in(s(5), None, Some(Duration::ZERO)), Duration::ZERO);
    }
}
