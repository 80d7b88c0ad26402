//! `GET /v1/callbacks` (deliveries and their attempts) and `POST /v1/callbacks/{id}/retry` (send
//! a failed one again).

use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use chrono::DateTime;
use serde_json::json;
use uuid::Uuid;

use crate::config::Scope;
use crate::http::auth::Caller;
use crate::http::error::{ApiError, FieldError};
use crate::http::state::AppState;
use crate::store::callbacks;

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
        ("limit" = Option<i64>, Query, description = "1 to 500, default 50"),
        ("cursor" = Option<String>, Query, description = "next_cursor of the previous page"),
    ),
    responses(
        (status = 200, description = "A page of callbacks", body = ref("#/components/schemas/CallbackPage")),
        (status = 400, description = "The request is malformed", body = ref("#/components/schemas/Problem"), content_type = "application/problem+json"),
        (status = 422, description = "Invalid values, each named by its field", body = ref("#/components/schemas/Problem"), content_type = "application/problem+json"),
        crate::http::problems::Refusals,
    ),
    security(("apiKey" = [])),
)]
async fn list(
    State(st): State<AppState>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    caller.require(Scope::DecisionsRead)?;
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(query.as_deref().unwrap_or(""))
            .map_err(|_| ApiError::BadRequest("the query string cannot be read".into()))?;
    let (mut status, mut limit, mut after, mut errors) = (None, 50i64, None, Vec::new());
    let mut target = callbacks::TO_CALLBACKS;
    for (name, value) in pairs {
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
            "limit" => match value.parse::<i64>() {
                Ok(n) if (1..=200).contains(&n) => limit = n,
                _ => errors.push(FieldError::new("limit", "must be a number from 1 to 200")),
            },
            "cursor" => match decode(&value) {
                Some(c) => after = Some(c),
                None => errors.push(FieldError::new(
                    "cursor",
                    "is not a cursor this service gave",
                )),
            },
            other => errors.push(FieldError::new(other, "unknown parameter")),
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let mut rows = callbacks::list(&st.db, target, status.as_deref(), after, limit + 1).await?;
    let next = if rows.len() as i64 > limit {
        rows.truncate(limit as usize);
        rows.last().map(|r| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!(
                "{}|{}",
                r.created_at.timestamp_micros(),
                r.id
            ))
        })
    } else {
        None
    };
    Ok(Json(json!({ "items": rows, "next_cursor": next })).into_response())
}

fn decode(text: &str) -> Option<(chrono::DateTime<chrono::Utc>, Uuid)> {
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .ok()?;
    let raw = String::from_utf8(raw).ok()?;
    let (micros, id) = raw.split_once('|')?;
    Some((
        DateTime::from_timestamp_micros(micros.parse().ok()?)?,
        Uuid::parse_str(id).ok()?,
    ))
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
        (status = 200, description = "Queued again", body = ref("#/components/schemas/Callback")),
        (status = 404, description = "Not found", body = ref("#/components/schemas/Problem"), content_type = "application/problem+json"),
        (status = 409, description = "Conflict with the current state", body = ref("#/components/schemas/Problem"), content_type = "application/problem+json"),
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
