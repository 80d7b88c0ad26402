//! What the onboarding's answer shows, read in one statement: the onboarding, unico's result,
//! the verdict in force, QI Tech's latest answer while the device stage runs, and the Open
//! Finance signal. The answer of every `POST` and `GET /v1/onboardings` is this one query.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgExecutor;
use uuid::Uuid;

#[derive(Debug, sqlx::FromRow)]
pub struct OnboardingViewRow {
    pub reference: Option<String>,
    pub state: String,
    pub risk_signals: Option<Value>,
    pub created_at: DateTime<Utc>,
    /// unico's latest result, once a process exists.
    pub biometrics: Option<Value>,
    /// The verdict in force: only while the onboarding is decided (a reviewer's approval that
    /// waits for QI Tech makes it processing again).
    pub outcome: Option<String>,
    pub reasons: Option<Value>,
    pub decided_by: Option<String>,
    pub policy_version: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
    /// The device part of the decision's evidence.
    pub decided_device: Option<Value>,
    /// While the device stage runs: whether the registration exists, and QI Tech's latest answer.
    pub registering: bool,
    pub registration: Option<Value>,
    pub enrollment_id: Option<String>,
    pub signal_status: Option<String>,
    pub signal_attempts: Option<i32>,
    pub signal_http_status: Option<i32>,
    pub signal_error: Option<String>,
}

pub async fn onboarding(
    db: impl PgExecutor<'_>,
    id: Uuid,
) -> Result<Option<OnboardingViewRow>, sqlx::Error> {
    // Outer-joined columns are NULL where nothing joins: `?` says so (the macros do not see it).
    sqlx::query_as!(
        OnboardingViewRow,
        r#"SELECT o.reference, o.state, o.device -> 'risk_signals' AS risk_signals, o.created_at,
                p.result AS "biometrics?",
                d.outcome AS "outcome?", d.reasons AS "reasons?", d.decided_by AS "decided_by?",
                d.policy_version AS "policy_version?", d.decided_at AS "decided_at?",
                d.evidence -> 'device' AS "decided_device?",
                r.onboarding_id IS NOT NULL AS "registering!", r.registration AS "registration?",
                s.enrollment_id AS "enrollment_id?", s.status AS "signal_status?",
                s.attempts AS "signal_attempts?",
                s.http_status AS "signal_http_status?", s.last_error AS "signal_error?"
           FROM onboardings o
           LEFT JOIN unico_processes p ON p.onboarding_id = o.id
           LEFT JOIN LATERAL (
                SELECT outcome, reasons, decided_by, policy_version, decided_at, evidence
                  FROM decisions
                 WHERE onboarding_id = o.id
                 ORDER BY decided_at DESC, decided_by DESC
                 LIMIT 1) d ON o.state = 'decided'
           LEFT JOIN device_registrations r ON r.onboarding_id = o.id AND o.state = 'device'
           LEFT JOIN open_finance_signals s ON s.onboarding_id = o.id
          WHERE o.id = $1"#,
        id,
    )
    .fetch_optional(db)
    .await
}
