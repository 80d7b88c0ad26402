//! unico processes: what unico answered for each onboarding's biometric check. When the next
//! GetProcess is sent is the read step's to say (`store::steps`).

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgExecutor;
use sqlx::types::Json;
use uuid::Uuid;

use crate::domain::evidence::BiometricResult;
use crate::domain::transitions::StepKind;
use crate::store::onboardings::OnboardingRow;
use crate::store::steps::{Row as StepRow, Step};

#[derive(Debug, Clone)]
pub struct ProcessRow {
    pub process_id: String,
    pub onboarding_id: Uuid,
    pub status: i32,
    pub result: Json<BiometricResult>,
    pub final_: bool,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// The process with its onboarding, in one statement: what a read step needs.
pub async fn with_onboarding(
    db: impl PgExecutor<'_>,
    onboarding_id: Uuid,
) -> Result<Option<(OnboardingRow, ProcessRow)>, sqlx::Error> {
    let joined = sqlx::query_as!(
        Joined,
        r#"SELECT o.id, o.client_name, o.reference, o.account_id, o.person_id, o.device,
                  o.open_finance, o.state, o.pii_key_id, o.pii_ciphertext, o.last_error,
                  o.created_at, o.decided_at, o.memory,
                  p.process_id AS p_process_id, p.status AS p_status,
                  p.result AS "p_result: Json<BiometricResult>", p.final AS p_final,
                  p.created_at AS p_created_at, p.finished_at AS p_finished_at,
                  NULL::bigint AS "s_id?", NULL::text AS "s_kind?",
                  NULL::uuid AS "s_onboarding_id?", NULL::uuid AS "s_device_validation_id?",
                  NULL::uuid AS "s_callback_id?", NULL::int4 AS "s_attempts?",
                  NULL::text AS "s_last_error?", NULL::timestamptz AS "s_claimed_at?",
                  NULL::text AS "s_traceparent?"
             FROM unico_processes p JOIN onboardings o ON o.id = p.onboarding_id
            WHERE p.onboarding_id = $1"#,
        onboarding_id,
    )
    .fetch_optional(db)
    .await?;
    Ok(joined.map(Joined::split))
}

/// What a unico notification found, in the one statement that records it.
pub struct Arrival {
    /// The process with its onboarding, open or final (None: no process by that id is stored).
    pub found: Option<(OnboardingRow, ProcessRow)>,
    /// The read step, when the process is open and the statement claimed it (None when a
    /// runner holds it: it was made due again).
    pub claimed: Option<Step>,
}

/// A notification that process `process_id` may be over (`state` as unico said), in one
/// statement, so one round trip and one commit: the process and its onboarding are read; when
/// the process is open, its read step is claimed for `lease` (`steps::claiming`) and
/// `webhook_received` goes on the timeline. With `payload`, the notification itself is recorded
/// as an authenticated webhook, marked known or not by the same snapshot that looked for the
/// process.
pub async fn notified(
    db: &sqlx::PgPool,
    process_id: &str,
    state: Option<&str>,
    payload: Option<Option<Value>>,
    lease: Duration,
) -> Result<Arrival, sqlx::Error> {
    let record = payload.is_some();
    let row = crate::store::steps::claiming!(
        Joined,
        "WITH found AS (
             SELECT o.id, o.client_name, o.reference, o.account_id, o.person_id, o.device,
                    o.open_finance, o.state, o.pii_key_id, o.pii_ciphertext, o.last_error,
                    o.created_at, o.decided_at, o.memory,
                    p.process_id AS p_process_id, p.status AS p_status, p.result AS p_result,
                    p.final AS p_final, p.created_at AS p_created_at,
                    p.finished_at AS p_finished_at
               FROM unico_processes p JOIN onboardings o ON o.id = p.onboarding_id
              WHERE p.process_id = $4
         ), subject AS (
             SELECT id AS onboarding_id FROM found WHERE NOT p_final
         ), ",
        StepKind::ReadProcess,
        lease,
        r#"event AS (
               INSERT INTO onboarding_events (onboarding_id, kind, detail)
               SELECT onboarding_id, 'webhook_received',
                      jsonb_build_object('process_id', $4::text, 'state', $5::text)
                 FROM subject
           ), hook AS (
               INSERT INTO unico_webhooks (authenticated, process_id, state, payload, known_process)
               SELECT true, $4, $5, $7, EXISTS (SELECT 1 FROM found)
                WHERE $6
           )
           SELECT f.id AS "id!", f.client_name AS "client_name!", f.reference AS "reference?",
                  f.account_id AS "account_id!", f.person_id AS "person_id!",
                  f.device AS "device!", f.open_finance AS "open_finance?", f.state AS "state!",
                  f.pii_key_id AS "pii_key_id?", f.pii_ciphertext AS "pii_ciphertext?",
                  f.last_error AS "last_error?", f.created_at AS "created_at!",
                  f.decided_at AS "decided_at?", f.memory AS "memory?",
                  f.p_process_id AS "p_process_id!", f.p_status AS "p_status!",
                  f.p_result AS "p_result!: Json<BiometricResult>", f.p_final AS "p_final!",
                  f.p_created_at AS "p_created_at!",
                  f.p_finished_at AS "p_finished_at?",
                  c.id AS "s_id?", c.kind AS "s_kind?", c.onboarding_id AS "s_onboarding_id?",
                  c.device_validation_id AS "s_device_validation_id?",
                  c.callback_id AS "s_callback_id?", c.attempts AS "s_attempts?",
                  c.last_error AS "s_last_error?", c.claimed_at AS "s_claimed_at?",
                  c.traceparent AS "s_traceparent?"
             FROM found f LEFT JOIN claimed c ON true"#,
        process_id,
        state,
        record,
        payload.flatten(),
    )
    .fetch_optional(db)
    .await?;
    let Some(row) = row else {
        return Ok(Arrival {
            found: None,
            claimed: None,
        });
    };
    let claimed = match (row.s_id, row.s_kind.clone(), row.s_attempts) {
        (Some(id), Some(kind), Some(attempts)) => Some(Step::try_from(StepRow {
            id,
            kind,
            onboarding_id: row.s_onboarding_id,
            device_validation_id: row.s_device_validation_id,
            callback_id: row.s_callback_id,
            attempts,
            last_error: row.s_last_error.clone(),
            claimed_at: row.s_claimed_at,
            traceparent: row.s_traceparent.clone(),
        })?),
        _ => None,
    };
    Ok(Arrival {
        found: Some(row.split()),
        claimed,
    })
}

/// An onboarding and its process, as the statements that read them together answer them, and
/// the read step `notified` claimed (`s_*`; null for `with_onboarding`, which claims none).
struct Joined {
    id: Uuid,
    client_name: String,
    reference: Option<String>,
    account_id: String,
    person_id: String,
    device: Value,
    open_finance: Option<Value>,
    state: String,
    pii_key_id: Option<String>,
    pii_ciphertext: Option<Vec<u8>>,
    last_error: Option<String>,
    created_at: DateTime<Utc>,
    decided_at: Option<DateTime<Utc>>,
    memory: Option<Value>,
    p_process_id: String,
    p_status: i32,
    p_result: Json<BiometricResult>,
    p_final: bool,
    p_created_at: DateTime<Utc>,
    p_finished_at: Option<DateTime<Utc>>,
    s_id: Option<i64>,
    s_kind: Option<String>,
    s_onboarding_id: Option<Uuid>,
    s_device_validation_id: Option<Uuid>,
    s_callback_id: Option<Uuid>,
    s_attempts: Option<i32>,
    s_last_error: Option<String>,
    s_claimed_at: Option<DateTime<Utc>>,
    s_traceparent: Option<String>,
}

impl Joined {
    fn split(self) -> (OnboardingRow, ProcessRow) {
        let process = ProcessRow {
            process_id: self.p_process_id,
            onboarding_id: self.id,
            status: self.p_status,
            result: self.p_result,
            final_: self.p_final,
            created_at: self.p_created_at,
            finished_at: self.p_finished_at,
        };
        let onboarding = OnboardingRow {
            id: self.id,
            client_name: self.client_name,
            reference: self.reference,
            account_id: self.account_id,
            person_id: self.person_id,
            device: self.device,
            open_finance: self.open_finance,
            state: self.state,
            pii_key_id: self.pii_key_id,
            pii_ciphertext: self.pii_ciphertext,
            last_error: self.last_error,
            created_at: self.created_at,
            decided_at: self.decided_at,
            memory: self.memory,
        };
        (onboarding, process)
    }
}

/// Stores a poll that did not finish the process (the read step says when to look again).
pub async fn record_poll(
    db: impl PgExecutor<'_>,
    process_id: &str,
    result: Option<&BiometricResult>,
    error: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE unico_processes
            SET status = COALESCE($2, status), result = COALESCE($3, result), last_error = $4
          WHERE process_id = $1 AND NOT final",
        process_id,
        result.map(|r| r.status),
        result.map(Json) as _,
        error,
    )
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
    sqlx::query!(
        "UPDATE unico_processes SET status = $2, result = $3, final = true, finished_at = now(), last_error = NULL
          WHERE process_id = $1",
        process_id,
        result.status,
        Json(result) as _,
    )
    .execute(db)
    .await?;
    Ok(())
}
