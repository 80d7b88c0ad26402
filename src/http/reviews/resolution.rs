//! A reviewer's work on a case: claim, release, and the resolution that records the
//! reviewer's decision.

use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::{NOTE_MAX, case_id, contested, refused, view};
use crate::config::Scope;
use crate::http::auth::Caller;
use crate::http::error::{ApiError, FieldError};
use crate::http::json::JsonBody;
use crate::http::state::AppState;
use crate::onboarding::cases::CaseView;
use crate::onboarding::reviews::{self};
use crate::policy::Outcome;
use crate::store::reviews::Refusal;

#[utoipa::path(
    post,
    path = "/v1/reviews/{id}/claim",
    tag = "reviews",
    operation_id = "claimReview",
    params(
        ("id" = String, Path, description = "The case id (a UUID)"),
    ),
    responses(
        (status = 200, description = "Claimed by the caller", body = CaseView),
        crate::http::problems::NotFound,
        crate::http::problems::Conflict,
        crate::http::problems::Refusals,
    ),
    security(("apiKey" = [])),
)]
pub(super) async fn claim(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    caller.require(Scope::ReviewsWrite)?;
    match reviews::claim(&st.flow, case_id(&id)?, &caller.name).await? {
        Ok(case) => Ok(Json(view(&st, case, true)).into_response()),
        Err(Refusal::NotFound) => Err(ApiError::NotFound("review case")),
        Err(Refusal::Resolved) => Err(ApiError::Conflict("the case is resolved".into())),
        Err(Refusal::HeldBy(_) | Refusal::NotAssignee) => Err(ApiError::Conflict(
            "another reviewer holds this case".into(),
        )),
        Err(Refusal::ContestedDecisionMaker) => Err(contested()),
        Err(refusal) => Err(refused(refusal)),
    }
}

#[utoipa::path(
    post,
    path = "/v1/reviews/{id}/release",
    tag = "reviews",
    operation_id = "releaseReview",
    params(
        ("id" = String, Path, description = "The case id (a UUID)"),
    ),
    responses(
        (status = 200, description = "Back in the queue", body = CaseView),
        crate::http::problems::NotFound,
        crate::http::problems::Conflict,
        crate::http::problems::Refusals,
    ),
    security(("apiKey" = [])),
)]
pub(super) async fn release(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    caller.require(Scope::ReviewsWrite)?;
    match reviews::release(&st.flow, case_id(&id)?, &caller.name).await? {
        Ok(case) => Ok(Json(view(&st, case, true)).into_response()),
        Err(refusal) => Err(refused(refusal)),
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolutionBody {
    outcome: String,
    note: String,
    /// With a `rejected` outcome only: the reviewer found fraud, and a fraud indication of
    /// this typology and description is made with the decision.
    #[serde(default)]
    fraud: Option<crate::onboarding::fraud::ReviewerFraud>,
    /// For a case the person opened (`opened_by: subject_request`, LGPD Art. 20) only: the
    /// answer to the person, 1-2000 chars, kept apart from the note and sent in
    /// `review.resolved` as `answer`.
    #[serde(default)]
    answer: Option<String>,
}

#[utoipa::path(
    post,
    path = "/v1/reviews/{id}/resolution",
    tag = "reviews",
    operation_id = "resolveReview",
    params(
        ("id" = String, Path, description = "The case id (a UUID)"),
    ),
    request_body(content = crate::http::reviews::ResolutionBody, content_type = "application/json"),
    responses(
        (status = 200, description = "Resolved; the reviewer's decision is recorded", body = CaseView),
        crate::http::problems::NotFound,
        crate::http::problems::Conflict,
        crate::http::problems::BodyRefusals,
        crate::http::problems::Refusals,
    ),
    security(("apiKey" = [])),
)]
pub(super) async fn resolve(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    // Taken as a Result so a caller without the scope hears 403, whatever the body.
    body: Result<JsonBody<ResolutionBody>, ApiError>,
) -> Result<Response, ApiError> {
    caller.require(Scope::ReviewsWrite)?;
    let body = body?;
    let id = case_id(&id)?;
    let mut errors = Vec::new();
    let outcome = match body.value.outcome.as_str() {
        "approved" => Some(Outcome::Approved),
        "rejected" => Some(Outcome::Rejected),
        "retry" => Some(Outcome::Retry),
        _ => {
            errors.push(FieldError::new(
                "outcome",
                "must be approved, rejected or retry",
            ));
            None
        }
    };
    let note = body.value.note.trim();
    if note.is_empty() || note.chars().count() > NOTE_MAX || note.contains('\0') {
        errors.push(FieldError::new(
            "note",
            format!("must have 1 to {NOTE_MAX} characters"),
        ));
    }
    let fraud = match &body.value.fraud {
        None => None,
        Some(_) if outcome.is_some_and(|o| o != Outcome::Rejected) => {
            errors.push(FieldError::new(
                "fraud",
                "is recorded only with a rejected outcome",
            ));
            None
        }
        Some(fraud) => match fraud.parse() {
            Ok(parsed) => Some(parsed),
            Err(wrong) => {
                errors.extend(wrong);
                None
            }
        },
    };
    let answer = match body.value.answer.as_deref() {
        None => None,
        Some(text) => {
            let valid = crate::onboarding::notes::valid_text(text);
            if valid.is_none() {
                errors.push(FieldError::new(
                    "answer",
                    format!("must have 1 to {NOTE_MAX} characters"),
                ));
            }
            valid
        }
    };
    let Some(outcome) = outcome.filter(|_| errors.is_empty()) else {
        return Err(ApiError::Validation(errors));
    };
    let resolution = reviews::Resolution {
        outcome,
        note,
        fraud,
        answer,
        answer_required: false,
    };
    match reviews::resolve(&st.flow, id, &caller.name, resolution).await? {
        Ok(case) => Ok(Json(view(&st, case, true)).into_response()),
        Err(refusal) => Err(refused(refusal)),
    }
}
