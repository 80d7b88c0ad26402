//! Review cases as they are opened (by the policy's `review`, or by the person's request) and as
//! reviewers, auditors and callbacks see them.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

use crate::crypto::PiiCipher;
use crate::onboarding::callbacks::{self, REVIEW_OPENED};
use crate::onboarding::error::FlowError;
use crate::onboarding::services::Services;
use crate::store::Tx;
use crate::store::decisions::DecisionRow;
use crate::store::reviews::{self as store, CaseRow, NewCase};

/// A case as reviewers, auditors and callbacks see it.
#[derive(Debug, Clone, Serialize)]
pub struct CaseView {
    pub id: Uuid,
    pub onboarding_id: Uuid,
    pub status: String,
    pub opened_by: String,
    /// The person's words; null for callers who may not read personal data.
    pub statement: Option<String>,
    pub reasons: Vec<String>,
    pub decision_id: Uuid,
    pub assignee: Option<String>,
    pub due_at: DateTime<Utc>,
    pub overdue: bool,
    pub opened_at: DateTime<Utc>,
    pub claimed_at: Option<DateTime<Utc>>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub resolution: Option<ResolutionView>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ResolutionView {
    pub outcome: String,
    pub note: String,
    pub reviewer: String,
    pub decision_id: Uuid,
}

impl CaseView {
    pub fn of(case: CaseRow, cipher: &PiiCipher, with_statement: bool) -> CaseView {
        let statement = if with_statement {
            case.statement(cipher).unwrap_or_else(|e| {
                tracing::warn!(error = %e, case_id = %case.id, "a statement could not be read");
                None
            })
        } else {
            None
        };
        let resolution = match (
            case.resolution_outcome,
            case.resolution_note,
            case.resolution_reviewer,
            case.resolution_decision_id,
        ) {
            (Some(outcome), Some(note), Some(reviewer), Some(decision_id)) => {
                Some(ResolutionView {
                    outcome,
                    note,
                    reviewer,
                    decision_id,
                })
            }
            _ => None,
        };
        CaseView {
            id: case.id,
            onboarding_id: case.onboarding_id,
            overdue: case.status != "resolved" && case.due_at < Utc::now(),
            status: case.status,
            opened_by: case.opened_by,
            statement,
            reasons: case.reasons,
            decision_id: case.decision_id,
            assignee: case.assignee,
            due_at: case.due_at,
            opened_at: case.opened_at,
            claimed_at: case.claimed_at,
            resolved_at: case.resolved_at,
            resolution,
        }
    }
}

/// Opens a case on `decision` in the caller's transaction, unless one is open: answers the case
/// and whether it is new. A new case is in the timeline and announced by callback.
pub async fn open(
    tx: &mut Tx,
    flow: &Services,
    onboarding_id: Uuid,
    decision: &DecisionRow,
    opened_by: &str,
    statement: Option<&str>,
) -> Result<(CaseRow, bool), FlowError> {
    let (case, created) = store::open(
        tx,
        &flow.cipher,
        NewCase {
            onboarding_id,
            opened_by,
            statement,
            reasons: &decision.reason_codes,
            decision_id: decision.id,
            // The person waits for an answer (LGPD Art. 20): a deadline of its own.
            sla: if opened_by == "subject_request" {
                flow.settings.review.subject_request_sla
            } else {
                flow.settings.review.sla
            },
        },
    )
    .await?;
    if created {
        tx.event(
            onboarding_id,
            "review_opened",
            json!({ "case_id": case.id, "opened_by": opened_by, "due_at": case.due_at }),
        );
        // Without the statement: the delivery unseals it from the case.
        let view = CaseView::of(case.clone(), &flow.cipher, false);
        callbacks::review_event(tx, flow, REVIEW_OPENED, onboarding_id, json!(view)).await?;
        crate::metrics::review("opened");
    }
    Ok((case, created))
}
