//! Decisions: written once, in the same transaction that closes the onboarding, never changed
//! (the database refuses UPDATE and DELETE on the table).

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgExecutor;
use uuid::Uuid;

use crate::domain::evidence::Evidence;
use crate::policy::Verdict;
use crate::store::Tx;

/// The channel on which a replica announces a decision; waiting requests on every replica
/// listen to it.
pub const DECIDED_CHANNEL: &str = "veredito_decided";

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DecisionRow {
    pub id: Uuid,
    pub onboarding_id: Uuid,
    pub outcome: String,
    pub reasons: Value,
    pub reason_codes: Vec<String>,
    pub policy_version: String,
    pub thresholds: Value,
    pub evidence: Value,
    pub evaluations: Value,
    pub decided_at: DateTime<Utc>,
    /// policy or reviewer.
    pub decided_by: String,
    pub reviewer: Option<String>,
    pub note: Option<String>,
}

/// `sqlx::query_as!` into a `DecisionRow`: the SQL before its columns, and after them.
macro_rules! query_decision {
    ($before:literal, $after:literal $(, $arg:expr)* $(,)?) => {
        sqlx::query_as!(
            DecisionRow,
            $before
                + "id, onboarding_id, outcome, reasons, reason_codes, policy_version, thresholds,
                   evidence, evaluations, decided_at, decided_by, reviewer, note"
                + $after
            $(, $arg)*
        )
    };
}

/// Who made a decision.
#[derive(Debug, Clone, Copy)]
pub enum DecidedBy<'a> {
    Policy,
    Reviewer { name: &'a str, note: &'a str },
}

/// Stores the decision and announces it to the waiting requests of every replica, in the
/// transaction that moved the onboarding to `decided` (so there is exactly one).
pub async fn insert(
    tx: &mut Tx,
    id: Uuid,
    onboarding_id: Uuid,
    verdict: &Verdict,
    evidence: &Evidence,
    by: DecidedBy<'_>,
) -> Result<DecisionRow, sqlx::Error> {
    let codes: Vec<&str> = verdict.reasons.iter().map(|r| r.code.as_str()).collect();
    let (decided_by, reviewer, note) = match by {
        DecidedBy::Policy => ("policy", None, None),
        DecidedBy::Reviewer { name, note } => ("reviewer", Some(name), Some(note)),
    };
    let row = query_decision!(
        "INSERT INTO decisions (id, onboarding_id, outcome, reasons, reason_codes, policy_version, thresholds,
                                evidence, evaluations, decided_by, reviewer, note)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
         RETURNING ",
        "",
        id,
        onboarding_id,
        verdict.outcome.as_str(),
        serde_json::to_value(&verdict.reasons).unwrap_or_default(),
        &codes as &[&str],
        verdict.policy_version,
        serde_json::to_value(verdict.thresholds).unwrap_or_default(),
        serde_json::to_value(evidence.for_the_record()).unwrap_or_default(),
        serde_json::to_value(&verdict.evaluations).unwrap_or_default(),
        decided_by,
        reviewer,
        note,
    )
    .fetch_one(&mut **tx)
    .await?;
    tx.notify(DECIDED_CHANNEL, onboarding_id.to_string());
    Ok(row)
}

/// The onboarding's verdict: its latest decision.
pub async fn for_onboarding(
    db: impl PgExecutor<'_>,
    onboarding_id: Uuid,
) -> Result<Option<DecisionRow>, sqlx::Error> {
    query_decision!(
        "SELECT ",
        " FROM decisions WHERE onboarding_id = $1 ORDER BY decided_at DESC, decided_by DESC LIMIT 1",
        onboarding_id,
    )
    .fetch_optional(db)
    .await
}

pub async fn get(db: impl PgExecutor<'_>, id: Uuid) -> Result<Option<DecisionRow>, sqlx::Error> {
    query_decision!("SELECT ", " FROM decisions WHERE id = $1", id)
        .fetch_optional(db)
        .await
}
