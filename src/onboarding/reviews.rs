//! Human review: the person's request (LGPD Art. 20), claims, releases and resolutions. One
//! reviewer at a time holds a case; a resolution appends the reviewer's decision and never
//! touches the automatic one.

use serde_json::json;
use uuid::Uuid;

use crate::domain::evidence::{DeviceEvidence, Evidence};
use crate::domain::fraud::Typology;
use crate::domain::transitions::{OnboardingEvent, OnboardingState};
use crate::onboarding::applied::Applied;
use crate::onboarding::callbacks::{self, REVIEW_RESOLVED};
use crate::onboarding::cases::{CaseView, open};
use crate::onboarding::decide;
use crate::onboarding::error::FlowError;
use crate::onboarding::services::{Flow, Services};
use crate::onboarding::steps;
use crate::policy::Outcome;
use crate::store::decisions::DecidedBy;
use crate::store::reviews::{self as store, CaseRow, Refusal};
use crate::store::{StoreError, decisions, devices, onboardings};

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
    let mut tx = crate::store::begin(&flow.db).await?;
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
    let mut tx = crate::store::begin(&flow.db).await?;
    let claimed = store::claim(&mut tx, case_id, reviewer).await?;
    if let Ok(case) = &claimed {
        tx.event(
            case.onboarding_id,
            "review_claimed",
            json!({ "case_id": case.id, "reviewer": reviewer }),
        );
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
    let mut tx = crate::store::begin(&flow.db).await?;
    let released = store::release(&mut tx, case_id, reviewer).await?;
    if let Ok(case) = &released {
        tx.event(
            case.onboarding_id,
            "review_released",
            json!({ "case_id": case.id, "reviewer": reviewer }),
        );
    }
    tx.commit().await?;
    Ok(released)
}

/// What a reviewer resolves a case with.
pub struct Resolution<'a> {
    pub outcome: Outcome,
    pub note: &'a str,
    /// With a rejection: the fraud the reviewer found, made a fraud indication.
    pub fraud: Option<(Typology, String)>,
    /// For a case the person opened (LGPD Art. 20): the answer to them, kept sealed beside the
    /// case's notes and sent with `review.resolved`.
    pub answer: Option<&'a str>,
    /// Refuses a case the person opened resolved without an answer (the console asks for one;
    /// through the API it stays optional, as it was before answers existed).
    pub answer_required: bool,
}

/// Resolves the case with the reviewer's `resolution`. The reviewer's decision is appended
/// at once (a rejection that records `fraud` makes a fraud indication with it); an approval of an onboarding whose device was never registered first registers it
/// with QI Tech, and QI Tech's answer completes the decision (its id is drawn now).
pub async fn resolve(
    flow: &Flow,
    case_id: Uuid,
    reviewer: &str,
    resolution: Resolution<'_>,
) -> Result<Result<CaseRow, Refusal>, FlowError> {
    let Resolution {
        outcome,
        note,
        fraud,
        answer,
        answer_required,
    } = resolution;
    let decision_id = Uuid::new_v4();
    let mut tx = crate::store::begin(&flow.db).await?;
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
    let asked = case.opened_by == "subject_request";
    match (answer, asked) {
        // Dropping the transaction undoes the resolution.
        (Some(_), false) => return Ok(Err(Refusal::AnswerWithoutRequest)),
        (None, true) if answer_required => return Ok(Err(Refusal::AnswerMissing)),
        (Some(answer), true) => {
            crate::store::notes::add(
                &mut tx,
                &flow.cipher,
                case.id,
                crate::store::notes::NoteKind::Answer,
                reviewer,
                answer,
            )
            .await?;
        }
        _ => {}
    }
    let id = case.onboarding_id;
    let automatic = decisions::get(&mut *tx, case.decision_id)
        .await?
        .ok_or_else(|| StoreError::Corrupt("a case names no decision".into()))?;
    let evidence: Evidence = serde_json::from_value(automatic.evidence.clone())
        .map_err(|e| StoreError::Corrupt(format!("stored evidence: {e}")))?;
    tx.event(
        id,
        "review_resolved",
        json!({ "case_id": case.id, "reviewer": reviewer, "outcome": outcome.as_str(),
                "decision_id": decision_id }),
    );
    // Without the statement: the delivery unseals it from the case.
    let view = CaseView::of(case.clone(), &flow.cipher, false);
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
        tx.event(id, "device_registration_queued", json!({ "for": "review" }));
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
        tx.event(
            id,
            "decided",
            json!({ "decision_id": decision_id, "outcome": outcome.as_str(),
                    "reasons": verdict.reasons.iter().map(|r| r.code.as_str()).collect::<Vec<_>>(),
                    "decided_by": "reviewer" }),
        );
        if let Some((typology, description)) = fraud.filter(|_| outcome == Outcome::Rejected) {
            crate::onboarding::fraud::from_reviewer(
                &mut tx,
                flow,
                id,
                decision_id,
                reviewer,
                typology,
                &description,
            )
            .await?;
        }
        callbacks::onboarding_decided(&mut tx, flow, id, None).await?;
        // An erasure that waited for the reviewer takes effect with the decision.
        crate::onboarding::subjects::erase_when_decided(&mut tx, flow, id).await?;
        crate::metrics::decision(
            outcome.as_str(),
            verdict.reasons.first().map_or("none", |r| r.code.as_str()),
            None,
        );
        Applied::default()
    };
    tx.commit().await?;
    steps::spawn(flow, applied.steps, applied.carried);
    Ok(Ok(case))
}
