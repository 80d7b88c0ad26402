//! unico processes, and the polling queue they form: a process not yet final is due for a
//! GetProcess at `next_poll_at`.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;
use uuid::Uuid;

use crate::domain::evidence::BiometricResult;
use crate::store::onboardings::OnboardingRow;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ProcessRow {
    pub process_id: String,
    pub onboarding_id: Uuid,
    pub status: i32,
    pub result: sqlx::types::Json<BiometricResult>,
    pub final_: bool,
    pub poll_count: i32,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str = "process_id, onboarding_id, status, result, final AS final_, poll_count, created_at, finished_at";

pub async fn insert(
    db: impl PgExecutor<'_>,
    onboarding_id: Uuid,
    result: &BiometricResult,
    first_poll_in: Duration,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO unico_processes (process_id, onboarding_id, status, result, final, finished_at, next_poll_at)
         VALUES ($1, $2, $3, $4, $5, CASE WHEN $5 THEN now() END, now() + make_interval(secs => $6))",
    )
    .bind(&result.process_id)
    .bind(onboarding_id)
    .bind(result.status)
    .bind(sqlx::types::Json(result))
    .bind(result.is_final())
    .bind(first_poll_in.as_secs_f64())
    .execute(db)
    .await?;
    Ok(())
}

pub async fn for_onboarding(
    db: impl PgExecutor<'_>,
    onboarding_id: Uuid,
) -> Result<Option<ProcessRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM unico_processes WHERE onboarding_id = $1"
    ))
    .bind(onboarding_id)
    .fetch_optional(db)
    .await
}

/// The process with its onboarding, in one statement: what a read step needs.
pub async fn with_onboarding(
    db: impl PgExecutor<'_>,
    onboarding_id: Uuid,
) -> Result<Option<(OnboardingRow, ProcessRow)>, sqlx::Error> {
    static SQL: std::sync::LazyLock<String> =
        std::sync::LazyLock::new(|| joined_sql("p.onboarding_id = $1"));
    joined(db, SQL.as_str(), onboarding_id).await
}

/// What a unico notification found, in the one statement that records it.
pub struct Arrival {
    /// The process is open: its onboarding and process, and its read step when the statement
    /// claimed it (None when a runner holds it; it was made due again).
    pub open: Option<(OnboardingRow, ProcessRow, Option<crate::store::steps::Step>)>,
    /// Whether a process by that id is stored, open or final.
    pub known: bool,
}

/// A notification that process `process_id` may be over (`state` as unico said), in one
/// statement, so one round trip and one commit: when the process is open, its onboarding and
/// process are read, its read step is claimed for `lease` (or made due again when a runner holds
/// it, and the runners notified), and `webhook_received` goes on the timeline. With `payload`,
/// the notification itself is recorded as an authenticated webhook, marked known or not by the
/// same snapshot that looked for the process.
pub async fn notified(
    db: &sqlx::PgPool,
    process_id: &str,
    state: Option<&str>,
    payload: Option<Option<serde_json::Value>>,
    lease: Duration,
) -> Result<Arrival, sqlx::Error> {
    use sqlx::{FromRow as _, Row as _};
    // `held` is a data-modifying CTE, so it runs whether or not it is read; its NOTIFY is a
    // plain SELECT, which runs only when read, hence the `woken` column nobody looks at.
    static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!(
            "WITH found AS (
                 {found}
             ), claimed AS (
                 UPDATE steps
                    SET run_at = now(), claimed_at = now(),
                        claimed_until = now() + make_interval(secs => $3), attempts = attempts + 1
                  WHERE onboarding_id = (SELECT id FROM found) AND kind = 'read_process'
                    AND status = 'pending' AND (claimed_until IS NULL OR claimed_until < now())
                 RETURNING *
             ), held AS (
                 UPDATE steps SET run_at = now()
                  WHERE onboarding_id = (SELECT id FROM found) AND kind = 'read_process'
                    AND status = 'pending' AND claimed_until >= now()
                 RETURNING id
             ), event AS (
                 INSERT INTO onboarding_events (onboarding_id, kind, detail)
                 SELECT id, 'webhook_received',
                        jsonb_build_object('process_id', $1::text, 'state', $2::text)
                   FROM found
             ), hook AS (
                 INSERT INTO unico_webhooks (authenticated, process_id, state, payload, known_process)
                 SELECT true, $1, $2, $5,
                        EXISTS (SELECT 1 FROM unico_processes WHERE process_id = $1)
                  WHERE $4
             )
             SELECT EXISTS (SELECT 1 FROM unico_processes WHERE process_id = $1) AS known,
                    (SELECT count(*) FROM (SELECT pg_notify($6, '') FROM held) AS n) AS woken,
                    found.*, {step}
               FROM (SELECT) AS one
               LEFT JOIN found ON true
               LEFT JOIN claimed c ON true",
            found = joined_sql("p.process_id = $1 AND NOT p.final"),
            step = crate::store::steps::columns_as("c", "s_"),
        )
    });
    let row = sqlx::query(SQL.as_str())
        .bind(process_id)
        .bind(state)
        .bind(lease.as_secs_f64())
        .bind(payload.is_some())
        .bind(payload.flatten())
        .bind(crate::store::steps::STEPS_CHANNEL)
        .fetch_one(db)
        .await?;
    let open = match row.try_get::<Option<Uuid>, _>("id")? {
        Some(_) => {
            let (onboarding, process) = Joined::from_row(&row)?.split();
            let step = crate::store::steps::from_columns(&row, "s_")?;
            Some((onboarding, process, step))
        }
        None => None,
    };
    Ok(Arrival {
        open,
        known: row.try_get("known")?,
    })
}

/// Runs one of the `joined_sql` statements with its one argument.
async fn joined<A>(
    db: impl PgExecutor<'_>,
    sql: &'static str,
    arg: A,
) -> Result<Option<(OnboardingRow, ProcessRow)>, sqlx::Error>
where
    A: 'static + Send + sqlx::Encode<'static, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
{
    let joined: Option<Joined> = sqlx::query_as(sql).bind(arg).fetch_optional(db).await?;
    Ok(joined.map(Joined::split))
}

#[derive(sqlx::FromRow)]
struct Joined {
    #[sqlx(flatten)]
    onboarding: OnboardingRow,
    p_process_id: String,
    p_status: i32,
    p_result: sqlx::types::Json<BiometricResult>,
    p_final: bool,
    p_poll_count: i32,
    p_created_at: DateTime<Utc>,
    p_finished_at: Option<DateTime<Utc>>,
}

impl Joined {
    fn split(self) -> (OnboardingRow, ProcessRow) {
        let process = ProcessRow {
            process_id: self.p_process_id,
            onboarding_id: self.onboarding.id,
            status: self.p_status,
            result: self.p_result,
            final_: self.p_final,
            poll_count: self.p_poll_count,
            created_at: self.p_created_at,
            finished_at: self.p_finished_at,
        };
        (self.onboarding, process)
    }
}

/// The statement that reads a process with its onboarding, for the rows `filter` names (built
/// once per filter: the statement is the same for every step).
fn joined_sql(filter: &str) -> String {
    format!(
        "SELECT {}, p.process_id AS p_process_id, p.status AS p_status, p.result AS p_result,
                p.final AS p_final, p.poll_count AS p_poll_count, p.created_at AS p_created_at,
                p.finished_at AS p_finished_at
           FROM unico_processes p JOIN onboardings o ON o.id = p.onboarding_id
          WHERE {filter}",
        crate::store::onboardings::columns_of("o")
    )
}

/// Stores a poll that did not finish the process, and when to look again.
pub async fn record_poll(
    db: impl PgExecutor<'_>,
    process_id: &str,
    result: Option<&BiometricResult>,
    error: Option<&str>,
    next_poll_in: Duration,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE unico_processes
            SET status = COALESCE($2, status), result = COALESCE($3, result), last_error = $4,
                next_poll_at = now() + make_interval(secs => $5)
          WHERE process_id = $1 AND NOT final",
    )
    .bind(process_id)
    .bind(result.map(|r| r.status))
    .bind(result.map(sqlx::types::Json))
    .bind(error)
    .bind(next_poll_in.as_secs_f64())
    .execute(db)
    .await?;
    Ok(())
}

/// Stores the final answer (or the give-up at the deadline); the process leaves the queue.
pub async fn finish(
    db: impl PgExecutor<'_>,
    process_id: &str,
    result: &BiometricResult,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE unico_processes SET status = $2, result = $3, final = true, finished_at = now(), last_error = NULL
          WHERE process_id = $1",
    )
    .bind(process_id)
    .bind(result.status)
    .bind(sqlx::types::Json(result))
    .execute(db)
    .await?;
    Ok(())
}
