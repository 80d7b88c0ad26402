//! `GET /v1/callbacks` (deliveries and their attempts) and `POST /v1/callbacks/{id}/retry` (send
//! a failed one again).

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use uuid::Uuid;

use crate::config::Scope;
use crate::http::auth::Caller;
use crate::http::error::{ApiError, FieldError};
use crate::http::page::{Keyset, ListQuery, finish};
use crate::http::state::AppState;
use crate::store::callbacks::{self, CallbackRow};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/callbacks", get(list))
        .route("/v1/callbacks/{id}/retry", post(retry))
}

#[utoipa::path(
    get,
    path = "/v1/callbacks",
    tag = "callbacks",
    operation_id = "listCallbacks",
    params(
        ("status" = Option<String>, Query, description = "pending, delivered or failed"),
        ("target" = Option<String>, Query, description = "callbacks (decision events to callbacks.url, the default) or fraud_sharing (fraud indications to fraud_sharing.url)"),
        crate::http::page::ListQuery<crate::http::page::Keyset>,
    ),
    responses(
        (status = 200, description = "A page of callbacks", body = CallbackPage),
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
    caller.require(Scope::DecisionsRead)?;
    let ListQuery {
        page,
        rest,
        mut errors,
    } = query;
    let mut status = None;
    let mut target = callbacks::TO_CALLBACKS;
    for (name, value) in rest {
        match name.as_str() {
            "status" if matches!(value.as_str(), "pending" | "delivered" | "failed") => {
                status = Some(value)
            }
            "status" => errors.push(FieldError::new(
                "status",
                "must be pending, delivered or failed",
            )),
            "target" => match value.as_str() {
                "callbacks" => target = callbacks::TO_CALLBACKS,
                "fraud_sharing" => target = callbacks::TO_FRAUD_SHARING,
                _ => errors.push(FieldError::new(
                    "target",
                    "must be callbacks or fraud_sharing",
                )),
            },
            other => errors.push(FieldError::new(other, "unknown parameter")),
        }
    }
    finish(errors)?;
    let after = page.cursor.map(|k| (k.at, k.id));
    let mut rows = callbacks::list(&st.db, target, status.as_deref(), after, page.fetch()).await?;
    let next = page.cut(&mut rows, |r| Keyset {
        at: r.created_at,
        id: r.id,
    });
    Ok(Json(CallbackPage {
        items: rows,
        next_cursor: next,
    })
    .into_response())
}

/// A page of callbacks, newest first: the list's `{"items": [...], "next_cursor": ...}`.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct CallbackPage {
    items: Vec<CallbackRow>,
    /// Where the next page starts; null on the last page
    #[schema(required = true)]
    next_cursor: Option<String>,
}

#[utoipa::path(
    post,
    path = "/v1/callbacks/{id}/retry",
    tag = "callbacks",
    operation_id = "retryCallback",
    params(
        ("id" = String, Path, description = "The callback id (a UUID)"),
    ),
    responses(
        (status = 200, description = "Queued again", body = CallbackRow),
        crate::http::problems::NotFound,
        crate::http::problems::Conflict,
        crate::http::problems::Refusals,
    ),
    security(("apiKey" = [])),
)]
async fn retry(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    caller.require_any(&[Scope::ReviewsWrite, Scope::OnboardingWrite])?;
    let id = Uuid::parse_str(&id).map_err(|_| ApiError::NotFound("callback"))?;
    let mut tx = crate::store::begin(&st.db).await?;
    let reopened = callbacks::retry(&mut tx, id).await?;
    tx.commit().await?;
    let row = callbacks::get(&st.db, id)
        .await?
        .ok_or(ApiError::NotFound("callback"))?;
    if !reopened {
        return Err(ApiError::Conflict(format!(
            "only a failed callback is sent again; this one is {}",
            row.status
        )));
    }
    Ok(Json(row).into_response())
}
