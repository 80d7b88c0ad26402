//! The review queue (`GET /v1/reviews`) and one case with its decision explained.

use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::json;

use super::{case_id, load, may_read_statement, view};
use crate::config::Scope;
use crate::http::auth::Caller;
use crate::http::decisions::Explanation;
use crate::http::error::{ApiError, FieldError};
use crate::http::page::{Keyset, ListQuery, finish};
use crate::http::state::AppState;
use crate::onboarding::cases::CaseView;
use crate::store::audit;
use crate::store::reviews::{CaseCursor, CaseFilter};

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
        (status = 200, description = "A page of cases", body = ReviewPage),
        crate::http::problems::QueryRefusals,
        crate::http::problems::Refusals,
    ),
    security(("apiKey" = [])),
)]
pub(super) async fn list(
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
    let items = rows.into_iter().map(|c| view(&st, c, statements)).collect();
    Ok(Json(ReviewPage {
        items,
        next_cursor: next,
    })
    .into_response())
}

/// A page of the queue: the list's `{"items": [...], "next_cursor": ...}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReviewPage {
    items: Vec<CaseView>,
    /// Where the next page starts; null on the last page
    #[schema(required = true)]
    next_cursor: Option<String>,
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
        (status = 200, description = "The case, with its decision explained", body = ReviewCaseExplained),
        crate::http::problems::NotFound,
        crate::http::problems::Refusals,
    ),
    security(("apiKey" = [])),
)]
pub(super) async fn show(
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
    Ok(Json(ReviewCaseExplained {
        case: view(&st, case, may_read_statement(&caller)),
        decision: explanation,
    })
    .into_response())
}

/// A case as `GET /v1/reviews/{id}` shows it: with the decision under review explained.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct ReviewCaseExplained {
    #[serde(flatten)]
    case: CaseView,
    /// The decision under review, explained as `GET /v1/decisions/{id}` does.
    decision: Explanation,
}
