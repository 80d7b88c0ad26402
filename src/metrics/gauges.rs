//! The gauges set when metrics are scraped, from what the database and the connection pool say.

use super::registry::*;

/// What the database says when metrics are scraped.
#[derive(Debug, Default)]
pub struct Backlog {
    pub review_unresolved: i64,
    pub review_overdue: i64,
    /// Subject requests open past their `due_at`.
    pub subjects_overdue: i64,
    /// Fraud indications waiting for the sharing system, and the age of the oldest in seconds.
    pub fraud_pending: i64,
    pub fraud_oldest_age_secs: i64,
    /// (state, count) of onboardings not decided.
    pub pending: Vec<(String, i64)>,
    /// (kind, due, retrying, failed) of steps, every kind listed (0 when none is pending):
    /// pending ones due or retrying, and failed ones waiting for an operator.
    pub steps: Vec<(String, i64, i64, i64)>,
    /// (key, live entries) of every list: the key its values are of.
    pub lists: Vec<(String, i64)>,
}

/// Sets the gauges read from the database. A state or kind absent from `backlog` reads 0.
pub fn backlog(backlog: &Backlog) {
    let m = &*METRICS;
    m.review_open.set(backlog.review_unresolved);
    m.review_overdue.set(backlog.review_overdue);
    m.subjects_overdue.set(backlog.subjects_overdue);
    m.fraud_pending.set(backlog.fraud_pending);
    m.fraud_oldest_age.set(backlog.fraud_oldest_age_secs);
    for state in ["received", "biometrics", "device"] {
        let count = backlog
            .pending
            .iter()
            .find(|(s, _)| s == state)
            .map_or(0, |(_, n)| *n);
        m.pending
            .get_or_create(&StateLabels {
                state: state.to_owned(),
            })
            .set(count);
    }
    for (kind, due, retrying, failed) in &backlog.steps {
        let label = KindName { kind: kind.clone() };
        m.steps_due.get_or_create(&label).set(*due);
        m.steps_retrying.get_or_create(&label).set(*retrying);
        m.steps_failed.get_or_create(&label).set(*failed);
        drop(m.step_failures.get_or_create(&label));
        drop(m.step_gave_up.get_or_create(&label));
        drop(m.lease_lost.get_or_create(&label));
    }
    for key in crate::domain::LinkKey::ALL {
        let entries = backlog
            .lists
            .iter()
            .filter(|(of, _)| of == key.as_str())
            .map(|(_, n)| n)
            .sum();
        m.list_entries
            .get_or_create(&ListLabels { key: key.as_str() })
            .set(entries);
    }
}

/// The connection pool as it is now.
pub fn pool(size: u32, idle: usize, max: u32, waiters: i64) {
    let m = &*METRICS;
    let idle = i64::try_from(idle).unwrap_or(i64::MAX);
    m.pool
        .get_or_create(&PoolLabels { state: "idle" })
        .set(idle);
    m.pool
        .get_or_create(&PoolLabels { state: "in_use" })
        .set(i64::from(size) - idle);
    m.pool_max.set(i64::from(max));
    m.pool_waiters.set(waiters);
}
