//! What the metrics read from the database when they are scraped: the backlog every replica
//! shares (the same figures from each; dashboards take the max over instances).

use sqlx::PgPool;

use crate::domain::transitions::StepKind;
use crate::metrics::Backlog;

pub async fn backlog(pool: &PgPool) -> Result<Backlog, sqlx::Error> {
    let (review_unresolved, review_overdue) = crate::store::reviews::counts(pool).await?;
    let subjects_overdue = crate::store::subjects::overdue(pool).await?;
    let (fraud_pending, oldest) = crate::store::fraud_indications::pending(pool).await?;
    let fraud_oldest_age_secs =
        oldest.map_or(0, |at| (chrono::Utc::now() - at).num_seconds().max(0));
    let pending = sqlx::query!(
        r#"SELECT state, count(*) AS "count!" FROM onboardings WHERE state <> 'decided' GROUP BY state"#,
    )
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(|row| (row.state, row.count))
    .collect();
    // The sums are over groups of at least one row, and the union's kind is the steps' kind.
    let pending_steps: Vec<(String, i64, i64, i64)> = sqlx::query!(
        // Each status through its own partial index: done steps are most of the table.
        r#"SELECT kind AS "kind!", sum(due)::bigint AS "due!", sum(retrying)::bigint AS "retrying!",
                  sum(failed)::bigint AS "failed!"
             FROM (SELECT kind, count(*) FILTER (WHERE run_at <= now()) AS due,
                          count(*) FILTER (WHERE last_error IS NOT NULL) AS retrying,
                          0::bigint AS failed
                     FROM steps WHERE status = 'pending' GROUP BY kind
                   UNION ALL
                   SELECT kind, 0, 0, count(*) FROM steps WHERE status = 'failed' GROUP BY kind) AS s
            GROUP BY kind"#,
    )
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(|row| (row.kind, row.due, row.retrying, row.failed))
    .collect();
    let steps = StepKind::ALL
        .iter()
        .map(|kind| {
            pending_steps
                .iter()
                .find(|(k, ..)| k == kind.as_str())
                .cloned()
                .unwrap_or_else(|| (kind.as_str().to_owned(), 0, 0, 0))
        })
        .collect();
    let lists = crate::store::lists::sizes(pool).await?;
    Ok(Backlog {
        review_unresolved,
        review_overdue,
        subjects_overdue,
        fraud_pending,
        fraud_oldest_age_secs,
        pending,
        steps,
        lists,
    })
}
