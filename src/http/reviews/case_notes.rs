//! The reviewers' notes on a case: appended, sealed at rest, read oldest first.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::{NOTE_MAX, case_id, load, may_read_statement};
use crate::config::Scope;
use crate::http::auth::Caller;
use crate::http::error::ApiError;
use crate::http::json::JsonBody;
use crate::http::state::AppState;
use crate::onboarding::notes::{self, NoteRefusal, NoteView};
use crate::store::audit;

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
pub(super) async fn add_note(
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
pub(super) async fn notes(
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
