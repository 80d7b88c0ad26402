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

const COLUMNS: &str = "id, onboarding_id, outcome, reasons, reason_codes, policy_version, thresholds, evidence, evaluations, decided_at, decided_by, reviewer, note";

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
    let row: DecisionRow = sqlx::query_as(&format!(
        "INSERT INTO decisions (id, onboarding_id, outcome, reasons, reason_codes, policy_version, thresholds,
                                evidence, evaluations, decided_by, reviewer, note)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
         RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(onboarding_id)
    .bind(verdict.outcome.as_str())
    .bind(serde_json::to_value(&verdict.reasons).unwrap_or_default())
    .bind(&codes)
    .bind(&verdict.policy_version)
    .bind(serde_json::to_value(verdict.thresholds).unwrap_or_default())
    .bind(serde_json::to_value(evidence.for_the_record()).unwrap_or_default())
    .bind(serde_json::to_value(&verdict.evaluations).unwrap_or_default())
    .bind(match by {
        DecidedBy::Policy => "policy",
        DecidedBy::Reviewer { .. } => "reviewer",
    })
    .bind(match by {
        DecidedBy::Policy => None,
        DecidedBy::Reviewer { name, .. } => Some(name),
    })
    .bind(match by {
        DecidedBy::Policy => None,
        DecidedBy::Reviewer { note, .. } => Some(note),
    })
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
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM decisions WHERE onboarding_id = $1 ORDER BY decided_at DESC, decided_by DESC LIMIT 1"
    ))
    .bind(onboarding_id)
    .fetch_optional(db)
    .await
}

pub async fn get(db: impl PgExecutor<'_>, id: Uuid) -> Result<Option<DecisionRow>, sqlx::Error> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM decisions WHERE id = $1"))
        .bind(id)
        .fetch_optional(db)
        .await
}
