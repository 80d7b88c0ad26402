//! Human review: a case opens when the policy decides `review` or when the person asks for a
//! human review of an automated decision (LGPD Art. 20); one reviewer at a time holds it; a
//! resolution appends the reviewer's decision and never touches the automatic one.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::crypto::PiiCipher;
use crate::domain::evidence::{DeviceEvidence, Evidence};
use crate::domain::transitions::{OnboardingEvent, OnboardingState};
use crate::onboarding::callbacks::{self, REVIEW_OPENED, REVIEW_RESOLVED};
use crate::onboarding::decide::{self, Applied};
use crate::onboarding::error::FlowError;
use crate::onboarding::services::{Flow, Services};
use crate::onboarding::steps;
use crate::policy::Outcome;
use crate::store::decisions::{DecidedBy, DecisionRow};
use crate::store::reviews::{self as store, CaseRow, NewCase, Refusal};
use crate::store::{StoreError, decisions, devices, events, onboardings};

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
    tx: &mut PgConnection,
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
            sla: flow.settings.review.sla,
        },
    )
    .await?;
    if created {
        events::record(
            &mut *tx,
            onboarding_id,
            "review_opened",
            json!({ "case_id": case.id, "opened_by": opened_by, "due_at": case.due_at }),
        )
        .await?;
        let view = CaseView::of(case.clone(), &flow.cipher, true);
        callbacks::review_event(tx, flow, REVIEW_OPENED, onboarding_id, json!(view)).await?;
        crate::metrics::review("opened");
    }
    Ok((case, created))
}

/// What a person's request for review led to.
pub enum Requested {
    Opened(CaseRow),
    AlreadyOpen(CaseRow),
    /// The onboarding is not decided yet: there is nothing to review.
    Processing,
    NotFound,
}

/// The person asks for a human review of the decision (forwarded by the onboarding backend).
pub async fn request(
    flow: &Services,
    onboarding_id: Uuid,
    statement: Option<&str>,
) -> Result<Requested, FlowError> {
    let mut tx = flow.db.begin().await?;
    let Some(onboarding) = onboardings::get(&mut *tx, onboarding_id).await? else {
        return Ok(Requested::NotFound);
    };
    if onboarding.state != OnboardingState::Decided.as_str() {
        return Ok(Requested::Processing);
    }
    let Some(decision) = decisions::for_onboarding(&mut *tx, onboarding_id).await? else {
        return Ok(Requested::Processing);
    };
    let (case, created) = open(
        &mut tx,
        flow,
        onboarding_id,
        &decision,
        "subject_request",
        statement,
    )
    .await?;
    tx.commit().await?;
    Ok(if created {
        Requested::Opened(case)
    } else {
        Requested::AlreadyOpen(case)
    })
}

/// Claims the case for `reviewer`.
pub async fn claim(
    flow: &Services,
    case_id: Uuid,
    reviewer: &str,
) -> Result<Result<CaseRow, Refusal>, FlowError> {
    let mut tx = flow.db.begin().await?;
    let claimed = store::claim(&mut tx, case_id, reviewer).await?;
    if let Ok(case) = &claimed {
        events::record(
            &mut *tx,
            case.onboarding_id,
            "review_claimed",
            json!({ "case_id": case.id, "reviewer": reviewer }),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(claimed)
}

/// Gives the case back to the queue.
pub async fn release(
    flow: &Services,
    case_id: Uuid,
    reviewer: &str,
) -> Result<Result<CaseRow, Refusal>, FlowError> {
    let mut tx = flow.db.begin().await?;
    let released = store::release(&mut tx, case_id, reviewer).await?;
    if let Ok(case) = &released {
        events::record(
            &mut *tx,
            case.onboarding_id,
            "review_released",
            json!({ "case_id": case.id, "reviewer": reviewer }),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(released)
}

/// Resolves the case with the reviewer's outcome and note. The reviewer's decision is appended
/// at once; an approval of an onboarding whose device was never registered first registers it
/// with QI Tech, and QI Tech's answer completes the decision (its id is drawn now).
pub async fn resolve(
    flow: &Flow,
    case_id: Uuid,
    reviewer: &str,
    outcome: Outcome,
    note: &str,
) -> Result<Result<CaseRow, Refusal>, FlowError> {
    let decision_id = Uuid::new_v4();
    let mut tx = flow.db.begin().await?;
    let resolved = store::resolve(
        &mut tx,
        case_id,
        reviewer,
        outcome.as_str(),
        note,
        decision_id,
    )
    .await?;
    let case = match resolved {
        Ok(case) => case,
        Err(refusal) => return Ok(Err(refusal)),
    };
    let id = case.onboarding_id;
    let automatic = decisions::get(&mut *tx, case.decision_id)
        .await?
        .ok_or_else(|| StoreError::Corrupt("a case names no decision".into()))?;
    let evidence: Evidence = serde_json::from_value(automatic.evidence.clone())
        .map_err(|e| StoreError::Corrupt(format!("stored evidence: {e}")))?;
    events::record(
        &mut *tx,
        id,
        "review_resolved",
        json!({ "case_id": case.id, "reviewer": reviewer, "outcome": outcome.as_str(),
                "decision_id": decision_id }),
    )
    .await?;
    let view = CaseView::of(case.clone(), &flow.cipher, true);
    callbacks::review_event(&mut tx, flow, REVIEW_RESOLVED, id, json!(view)).await?;
    crate::metrics::review("resolved");

    let needs_device =
        outcome == Outcome::Approved && matches!(evidence.device, DeviceEvidence::NotRun);
    let applied = if needs_device {
        let applied = decide::apply(
            &mut tx,
            id,
            OnboardingState::Decided,
            OnboardingEvent::ReviewerApprovedUnregistered,
            |kind| decide::default_timing(flow, kind),
        )
        .await?;
        devices::insert_registration(
            &mut *tx,
            id,
            &evidence.biometrics,
            flow.settings.policy.device_deadline,
            Some(case.id),
        )
        .await?;
        events::record(
            &mut *tx,
            id,
            "device_registration_queued",
            json!({ "for": "review" }),
        )
        .await?;
        applied
    } else {
        let verdict = flow.policies.active().reviewer_verdict(outcome, None);
        decisions::insert(
            &mut tx,
            decision_id,
            id,
            &verdict,
            &evidence,
            DecidedBy::Reviewer {
                name: reviewer,
                note,
            },
        )
        .await?;
        events::record(
            &mut *tx,
            id,
            "decided",
            json!({ "decision_id": decision_id, "outcome": outcome.as_str(),
                    "reasons": verdict.reasons.iter().map(|r| r.code.as_str()).collect::<Vec<_>>(),
                    "decided_by": "reviewer" }),
        )
        .await?;
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(crate::store::decisions::DECIDED_CHANNEL)
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        callbacks::onboarding_decided(&mut tx, flow, id).await?;
        crate::metrics::decision(outcome.as_str());
        Applied::default()
    };
    tx.commit().await?;
    steps::spawn(flow, applied.steps);
    Ok(Ok(case))
}
