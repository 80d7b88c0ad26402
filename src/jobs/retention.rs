//! Erases the personal data of onboardings decided more than `retention.pii_days` ago (LGPD:
//! keep personal data no longer than needed). The decision, its reasons and its evidence stay,
//! so the record of who was approved or rejected and why outlives the data that named them.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::onboarding::services::Services;
use crate::store::audit;

/// How often the job looks. Retention is counted in days, so an hour late is no harm.
pub const EVERY: Duration = Duration::from_secs(3600);

/// Rows erased per statement: small enough to keep each transaction and its locks short.
const BATCH: i64 = 500;

pub async fn run(st: std::sync::Arc<Services>, every: Duration, shutdown: CancellationToken) {
    // A first pass soon after start, so a service restarted daily still erases daily.
    let mut wait = Duration::from_secs(30).min(every);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.cancelled() => return,
        }
        wait = every;
        match erase_expired(&st, &shutdown).await {
            Ok(0) => {}
            Ok(erased) => tracing::info!(
                erased,
                days = st.settings.retention.pii_days,
                "erased expired personal data"
            ),
            Err(e) => tracing::warn!(error = %e, "retention pass failed; retrying at the next one"),
        }
    }
}

/// Erases everything due, batch by batch, and answers how many onboardings were erased.
pub async fn erase_expired(
    st: &Services,
    shutdown: &CancellationToken,
) -> Result<usize, sqlx::Error> {
    erase_expired_by(st, BATCH, shutdown).await.map(|(n, _)| n)
}

/// Erases everything due in batches of `batch`; answers how many onboardings were erased and in
/// how many statements.
pub async fn erase_expired_by(
    st: &Services,
    batch: i64,
    shutdown: &CancellationToken,
) -> Result<(usize, usize), sqlx::Error> {
    let (mut total, mut statements) = (0, 0);
    loop {
        let erased =
            audit::erase_expired_pii(&st.db, st.settings.retention.pii_days, batch).await?;
        total += erased.len();
        statements += 1;
        if (erased.len() as i64) < batch || shutdown.is_cancelled() {
            break;
        }
    }
    // What providers said, kept as long as the personal data it may echo.
    loop {
        let erased =
            crate::store::calls::erase_older_than(&st.db, st.settings.retention.pii_days, batch)
                .await?;
        if (erased as i64) < batch || shutdown.is_cancelled() {
            break;
        }
    }
    // unico's deliveries: wake-ups, evidence for nothing once their process is decided; and
    // the per-minute counts of forged ones.
    crate::store::webhooks::delete_forged_older_than(&st.db, st.settings.retention.webhook_days)
        .await?;
    loop {
        let deleted = crate::store::webhooks::delete_older_than(
            &st.db,
            st.settings.retention.webhook_days,
            batch,
        )
        .await?;
        if (deleted as i64) < batch || shutdown.is_cancelled() {
            return Ok((total, statements));
        }
    }
}
