//! Review cases as they are opened (by the policy's `review`, or by the person's request) and as
//! reviewers, auditors and callbacks see them.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

use crate::crypto::PiiCipher;
use crate::domain::schema::one_of;
use crate::onboarding::callbacks::{self, REVIEW_OPENED};
use crate::onboarding::error::FlowError;
use crate::onboarding::services::Services;
use crate::store::Tx;
use crate::store::decisions::DecisionRow;
use crate::store::reviews::{self as store, CaseRow, NewCase};

/// A case as reviewers, auditors and callbacks see it. In the `review.resolved` callback of a
/// case the person opened (`opened_by: subject_request`), `data` also holds `answer`: the
/// reviewer's answer to the person.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = ReviewCase)]
pub struct CaseView {
    pub id: Uuid,
    pub onboarding_id: Uuid,
    #[schema(schema_with = status)]
    pub status: String,
    #[schema(schema_with = opened_by)]
    pub opened_by: String,
    /// The person's words; null when they wrote none, and for callers without reviews:write or
    /// pii:read.
    #[schema(required = true)]
    pub statement: Option<String>,
    /// The reason codes of the decision under review.
    pub reasons: Vec<String>,
    /// The automatic decision under review.
    pub decision_id: Uuid,
    /// The reviewer who claimed the case.
    #[schema(required = true)]
    pub assignee: Option<String>,
    pub due_at: DateTime<Utc>,
    pub overdue: bool,
    pub opened_at: DateTime<Utc>,
    #[schema(required = true)]
    pub claimed_at: Option<DateTime<Utc>>,
    #[schema(required = true)]
    pub resolved_at: Option<DateTime<Utc>>,
    /// Null until the case is resolved.
    #[schema(inline, required = true)]
    pub resolution: Option<ResolutionView>,
}

fn status() -> utoipa::openapi::schema::Object {
    one_of(&["open", "claimed", "resolved"], None)
}

fn opened_by() -> utoipa::openapi::schema::Object {
    one_of(
        &["policy", "subject_request"],
        Some(
            "policy (its verdict was review), or subject_request (the person asked, LGPD Art. 20)",
        ),
    )
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ResolutionView {
    #[schema(schema_with = outcome)]
    pub outcome: String,
    pub note: String,
    pub reviewer: String,
    /// The reviewer's decision; an approval that registers the device first writes it when QI
    /// Tech answered.
    pub decision_id: Uuid,
}

fn outcome() -> utoipa::openapi::schema::Object {
    one_of(&["approved", "rejected", "retry"], None)
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
