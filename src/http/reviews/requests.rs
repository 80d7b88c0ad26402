//! The person's request for a human review of an automated decision (LGPD Art. 20), with an
//! optional statement.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use uuid::Uuid;

use super::view;
use crate::config::Scope;
use crate::http::auth::Caller;
use crate::http::error::ApiError;
use crate::http::json::MaybeJson;
use crate::http::state::AppState;
use crate::onboarding::cases::CaseView;
use crate::onboarding::reviews::{self, Requested};

const STATEMENT_MAX: usize = 2000;

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
        (status = 201, description = "A case was opened", body = CaseView),
        (status = 200, description = "The case already open", body = CaseView),
        crate::http::problems::NotFound,
        crate::http::problems::Conflict,
        crate::http::problems::BodyRefusals,
        crate::http::problems::Refusals,
    ),
    security(("apiKey" = [])),
)]
pub(super) async fn request(
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
