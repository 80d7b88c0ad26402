//! Human review: the person's request (`POST /v1/onboardings/{id}/review-requests`), the queue
//! (`GET /v1/reviews`), a case with its decision explained, claim, release and resolution.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use crate::config::Scope;
use crate::http::auth::Caller;
use crate::http::decisions::Explanation;
use crate::http::error::{ApiError, FieldError};
use crate::http::json::{JsonBody, MaybeJson};
use crate::http::page::{Keyset, ListQuery, answer, finish};
use crate::http::state::AppState;
use crate::onboarding::cases::CaseView;
use crate::onboarding::notes::{self, NoteRefusal, NoteView};
use crate::onboarding::reviews::{self, Requested};
use crate::policy::Outcome;
use crate::store::audit;
use crate::store::reviews::{CaseCursor, CaseFilter, CaseRow, Refusal};

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

const STATEMENT_MAX: usize = 2000;
const NOTE_MAX: usize = 2000;

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewRequestBody {
    #[serde(default)]
    statement: Option<String>,
}

#[utoipa::path(
    post,
    path = "/v1/onboardings/{id}/review-requests",
    tag = "reviews",
    operation_id = "requestReview",
    params(
        ("id" = String, Path, description = "The onboarding id (a UUID)"),
    ),
    request_body(content = Option<crate::http::reviews::ReviewRequestBody>, content_type = "application/json", description = "Optional: an empty body is allowed"),
    responses(
        (status = 201, description = "A case was opened", body = ref("#/components/schemas/ReviewCase")),
        (status = 200, description = "The case already open", body = ref("#/components/schemas/ReviewCase")),
        crate::http::problems::NotFound,
        crate::http::problems::Conflict,
        crate::http::problems::BodyRefusals,
        crate::http::problems::Refusals,
    ),
    security(("apiKey" = [])),
)]
async fn request(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    // Taken as a Result so a caller without the scope hears 403, whatever the body.
    body: Result<MaybeJson<ReviewRequestBody>, ApiError>,
) -> Result<Response, ApiError> {
    caller.require(Scope::OnboardingWrite)?;
    let MaybeJson(body) = body?;
    let id = Uuid::parse_str(&id).map_err(|_| ApiError::NotFound("onboarding"))?;
    let statement = body.and_then(|b| b.value.statement);
    if let Some(text) = &statement {
        if text.chars().count() > STATEMENT_MAX {
            return Err(ApiError::validation(
                "statement",
                format!("must be at most {STATEMENT_MAX} characters"),
            ));
        }
    }
    let statement = statement.filter(|s| !s.trim().is_empty());
    match reviews::request(&st.flow, id, statement.as_deref()).await? {
        Requested::Opened(case) => {
            Ok((StatusCode::CREATED, Json(view(&st, case, true))).into_response())
        }
        Requested::AlreadyOpen(case) => {
            Ok((StatusCode::OK, Json(view(&st, case, true))).into_response())
        }
        Requested::Processing => Err(ApiError::Conflict(
            "the onboarding is still processing: there is no decision to review yet".into(),
        )),
        Requested::NotFound => Err(ApiError::NotFound("onboarding")),
    }
}

fn view(st: &AppState, case: CaseRow, with_statement: bool) -> CaseView {
    CaseView::of(case, &st.cipher, with_statement)
}

/// Reviewers read statements; auditors only with `pii:read`.
fn may_read_statement(caller: &Caller) -> bool {
    caller.has(Scope::ReviewsWrite) || caller.has(Scope::PiiRead)
}

#[utoipa::path(
    get,
    path = "/v1/reviews",
    tag = "reviews",
    operation_id = "listReviews",
    params(
        ("status" = Option<String>, Query, description = "open, claimed or resolved"),
        ("assignee" = Option<String>, Query),
        ("reason" = Option<String>, Query),
        ("overdue" = Option<bool>, Query),
        crate::http::page::ListQuery<crate::http::page::Keyset>,
    ),
    responses(
        (status = 200, description = "A page of cases", body = ref("#/components/schemas/ReviewPage")),
        crate::http::problems::QueryRefusals,
        crate::http::problems::Refusals,
    ),
    security(("apiKey" = [])),
)]
async fn list(
    State(st): State<AppState>,
    caller: Caller,
    query: ListQuery<Keyset>,
) -> Result<Response, ApiError> {
    caller.require_any(&[Scope::ReviewsWrite, Scope::DecisionsRead])?;
    let ListQuery {
        page,
        rest,
        mut errors,
    } = query;
    let mut filter = CaseFilter::default();
    for (name, value) in rest {
        match name.as_str() {
            "status" if matches!(value.as_str(), "open" | "claimed" | "resolved") => {
                filter.status = Some(value)
            }
            "status" => errors.push(FieldError::new(
                "status",
                "must be open, claimed or resolved",
            )),
            "assignee" => filter.assignee = Some(value),
            "reason" => filter.reason = Some(value),
            "overdue" => match value.as_str() {
                "true" => filter.overdue = true,
                "false" => filter.overdue = false,
                _ => errors.push(FieldError::new("overdue", "must be true or false")),
            },
            other => errors.push(FieldError::new(other, "unknown parameter")),
        }
    }
    if let Some(reason) = &filter.reason {
        if reason.contains('\0') || reason.len() > 100 {
            errors.push(FieldError::new("reason", "is not a reason code"));
        }
    }
    finish(errors)?;
    // Cases carry the person's statement: every page is recorded, as searches of decisions are.
    let logged = json!({
        "status": filter.status,
        "assignee": filter.assignee,
        "reason": filter.reason,
        "overdue": filter.overdue,
    });
    audit::record_search(&st.db, &caller.name, "GET /v1/reviews", &logged).await?;
    let cursor = page.cursor.map(|k| CaseCursor {
        due_at: k.at,
        id: k.id,
    });
    let mut rows = crate::store::reviews::list(&st.db, &filter, cursor, page.fetch()).await?;
    let next = page.cut(&mut rows, |c| Keyset {
        at: c.due_at,
        id: c.id,
    });
    let statements = may_read_statement(&caller);
    let items: Vec<CaseView> = rows.into_iter().map(|c| view(&st, c, statements)).collect();
    Ok(answer(items, next).into_response())
}

#[utoipa::path(
    get,
    path = "/v1/reviews/{id}",
    tag = "reviews",
    operation_id = "getReview",
    params(
        ("id" = String, Path, description = "The case id (a UUID)"),
    ),
    responses(
        (status = 200, description = "The case", body = ref("#/components/schemas/ReviewCase")),
        crate::http::problems::NotFound,
        crate::http::problems::Refusals,
    ),
    security(("apiKey" = [])),
)]
async fn show(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    caller.require_any(&[Scope::ReviewsWrite, Scope::DecisionsRead])?;
    // The case and its decision explained (the CPF, the name and where the phone was, with
    // pii:read): recorded like an explanation.
    let looked_at = json!({ "case_id": case_id(&id)? });
    audit::record_search(&st.db, &caller.name, "GET /v1/reviews/{id}", &looked_at).await?;
    let case = load(&st, &id).await?;
    let row = audit::get(&st.db, case.decision_id)
        .await?
        .ok_or(ApiError::NotFound("decision"))?;
    let explanation = Explanation::load(&st, row, caller.has(Scope::PiiRead)).await?;
    let mut body = json!(view(&st, case, may_read_statement(&caller)));
    body["decision"] = json!(explanation);
    Ok(Json(body).into_response())
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

#[utoipa::path(
    post,
    path = "/v1/reviews/{id}/claim",
    tag = "reviews",
    operation_id = "claimReview",
    params(
        ("id" = String, Path, description = "The case id (a UUID)"),
    ),
    responses(
        (status = 200, description = "Claimed by the caller", body = ref("#/components/schemas/ReviewCase")),
        crate::http::problems::NotFound,
        crate::http::problems::Conflict,
        crate::http::problems::Refusals,
    ),
    security(("apiKey" = [])),
)]
async fn claim(
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

/// The refusal of a reviewer whose own decision the person's request contests.
fn contested() -> ApiError {
    ApiError::SeparationOfDuties(
        "you made the decision this person contests (LGPD Art. 20): another reviewer must \
         review the request"
            .into(),
    )
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
        (status = 200, description = "Back in the queue", body = ref("#/components/schemas/ReviewCase")),
        crate::http::problems::NotFound,
        crate::http::problems::Conflict,
        crate::http::problems::Refusals,
    ),
    security(("apiKey" = [])),
)]
async fn release(
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
        (status = 200, description = "Resolved; the reviewer's decision is recorded", body = ref("#/components/schemas/ReviewCase")),
        crate::http::problems::NotFound,
        crate::http::problems::Conflict,
        crate::http::problems::BodyRefusals,
        crate::http::problems::Refusals,
    ),
    security(("apiKey" = [])),
)]
async fn resolve(
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

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoteBody {
    /// 1-2000 chars; sealed at rest, never sent out of veredito.
    text: String,
}

#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct NoteList {
    /// Oldest first; the answer to the person (`kind: answer`) among them.
    items: Vec<NoteView>,
}

#[utoipa::path(
    post,
    path = "/v1/reviews/{id}/notes",
    tag = "reviews",
    operation_id = "addReviewNote",
    params(
        ("id" = String, Path, description = "The case id (a UUID)"),
    ),
    request_body(content = crate::http::reviews::NoteBody, content_type = "application/json"),
    responses(
        (status = 201, description = "Appended to the case's notes", body = NoteView),
        crate::http::problems::NotFound,
        (status = 409, description = "The case is resolved", body = ref("#/components/schemas/Problem"), content_type = "application/problem+json"),
        crate::http::problems::BodyRefusals,
        crate::http::problems::Refusals,
    ),
    security(("apiKey" = [])),
)]
async fn add_note(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Result<JsonBody<NoteBody>, ApiError>,
) -> Result<Response, ApiError> {
    caller.require(Scope::ReviewsWrite)?;
    let body = body?;
    match notes::add(&st.flow, case_id(&id)?, &caller.name, &body.value.text).await? {
        Ok(note) => Ok((StatusCode::CREATED, Json(note)).into_response()),
        Err(NoteRefusal::NotFound) => Err(ApiError::NotFound("review case")),
        Err(NoteRefusal::Resolved) => Err(ApiError::Conflict(
            "the case is resolved: its notes are closed".into(),
        )),
        Err(NoteRefusal::Text) => Err(ApiError::validation(
            "text",
            format!("must have 1 to {NOTE_MAX} characters"),
        )),
    }
}

#[utoipa::path(
    get,
    path = "/v1/reviews/{id}/notes",
    tag = "reviews",
    operation_id = "listReviewNotes",
    params(
        ("id" = String, Path, description = "The case id (a UUID)"),
    ),
    responses(
        (status = 200, description = "The case's notes, oldest first", body = NoteList),
        crate::http::problems::NotFound,
        crate::http::problems::Refusals,
    ),
    security(("apiKey" = [])),
)]
async fn notes(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    caller.require_any(&[Scope::ReviewsWrite, Scope::DecisionsRead])?;
    let case = load(&st, &id).await?;
    // Reviewers' words about a person, read like the person's own: recorded, and the text only
    // for reviews:write or pii:read.
    let looked_at = json!({ "case_id": case.id });
    audit::record_search(
        &st.db,
        &caller.name,
        "GET /v1/reviews/{id}/notes",
        &looked_at,
    )
    .await?;
    let mut items = notes::thread(&st.flow, case.id).await?;
    if !may_read_statement(&caller) {
        for note in &mut items {
            note.text = None;
        }
    }
    Ok(Json(NoteList { items }).into_response())
}
