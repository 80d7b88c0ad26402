//! Human review: the person's request (`POST /v1/onboardings/{id}/review-requests`), the queue
//! (`GET /v1/reviews`), a case with its decision explained, claim, release and resolution.
//!
//! This file holds the routes and what the handlers share; `requests` the person's request,
//! `queue` the list and one case, `resolution` claim, release and resolution, `case_notes` the
//! reviewers' notes.

use axum::Router;
use axum::routing::{get, post};
use uuid::Uuid;

use crate::config::Scope;
use crate::http::auth::Caller;
use crate::http::error::{ApiError, FieldError};
use crate::http::state::AppState;
use crate::onboarding::cases::CaseView;
use crate::store::reviews::{CaseRow, Refusal};

mod case_notes;
mod queue;
mod requests;
mod resolution;

use case_notes::{add_note, notes};
use queue::{list, show};
use requests::request;
use resolution::{claim, release, resolve};

pub use case_notes::{__path_add_note, __path_notes, NoteBody, NoteList};
pub use queue::{__path_list, __path_show};
pub use requests::{__path_request, ReviewRequestBody};
pub use resolution::{__path_claim, __path_release, __path_resolve, ResolutionBody};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/onboardings/{id}/review-requests", post(request))
        .route("/v1/reviews", get(list))
        .route("/v1/reviews/{id}", get(show))
        .route("/v1/reviews/{id}/claim", post(claim))
        .route("/v1/reviews/{id}/release", post(release))
        .route("/v1/reviews/{id}/resolution", post(resolve))
        .route("/v1/reviews/{id}/notes", get(notes).post(add_note))
}

const NOTE_MAX: usize = 2000;

fn view(st: &AppState, case: CaseRow, with_statement: bool) -> CaseView {
    CaseView::of(case, &st.cipher, with_statement)
}

/// Reviewers read statements; auditors only with `pii:read`.
fn may_read_statement(caller: &Caller) -> bool {
    caller.has(Scope::ReviewsWrite) || caller.has(Scope::PiiRead)
}

async fn load(st: &AppState, id: &str) -> Result<CaseRow, ApiError> {
    let id = Uuid::parse_str(id).map_err(|_| ApiError::NotFound("review case"))?;
    crate::store::reviews::get(&st.db, id)
        .await?
        .ok_or(ApiError::NotFound("review case"))
}

fn case_id(id: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(id).map_err(|_| ApiError::NotFound("review case"))
}

/// The refusal of a reviewer whose own decision the person's request contests.
fn contested() -> ApiError {
    ApiError::SeparationOfDuties(
        "you made the decision this person contests (LGPD Art. 20): another reviewer must \
         review the request"
            .into(),
    )
}

fn refused(refusal: Refusal) -> ApiError {
    match refusal {
        Refusal::NotFound => ApiError::NotFound("review case"),
        Refusal::Resolved => ApiError::Conflict("the case is resolved".into()),
        Refusal::HeldBy(_) | Refusal::NotAssignee => {
            ApiError::Forbidden("only the reviewer who claimed the case")
        }
        Refusal::ContestedDecisionMaker => contested(),
        Refusal::AnswerWithoutRequest => ApiError::Validation(vec![FieldError::new(
            "answer",
            "goes only with a case the person opened (opened_by subject_request)",
        )]),
        Refusal::AnswerMissing => ApiError::Validation(vec![FieldError::new(
            "answer",
            "is required: the person asked for this review",
        )]),
    }
}
