//! Policies as versioned data: drafts, replay under a version, shadow on live traffic and its
//! report, and publication by a key other than the one that drafted it.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::config::Scope;
use crate::http::auth::Caller;
use crate::http::error::{ApiError, FieldError};
use crate::http::json::JsonBody;
use crate::http::state::AppState;
use crate::onboarding::policies::{self, Changed, Drafted, ShadowReport};
use crate::onboarding::replay::ReplayReport;
use crate::policy::document::PolicyDocument;
use crate::store::policies::VersionRow;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/policies", get(list).post(create))
        .route("/v1/policies/{version}", get(show))
        .route("/v1/policies/{version}/replay", post(replay))
        .route("/v1/policies/{version}/shadow", post(shadow))
        .route("/v1/policies/{version}/shadow-report", get(shadow_report))
        .route("/v1/policies/{version}/publish", post(publish))
}

/// A policy version with its document, as every answer but the list shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = PolicyVersion)]
pub struct VersionView {
    #[serde(flatten)]
    version: VersionRow,
    document: PolicyDocument,
}

impl VersionView {
    fn of(row: VersionRow) -> Result<Self, ApiError> {
        Ok(VersionView {
            document: row.document()?,
            version: row,
        })
    }
}

/// Every version, newest first, on one page: the list's `{"items": [...], "next_cursor": null}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PolicyPage {
    items: Vec<VersionRow>,
    /// Always null: every version is on this page
    #[schema(required = true)]
    next_cursor: Option<String>,
}

#[utoipa::path(
    get,
    path = "/v1/policies",
    tag = "policies",
    operation_id = "listPolicies",
    responses(
        (status = 200, description = "Every version", body = PolicyPage),
        crate::http::problems::Refusals,
    ),
    security(("apiKey" = [])),
)]
async fn list(State(st): State<AppState>, caller: Caller) -> Result<Response, ApiError> {
    caller.require(Scope::DecisionsRead)?;
    let rows = crate::store::policies::list(&st.db).await?;
    Ok(Json(PolicyPage {
        items: rows,
        next_cursor: None,
    })
    .into_response())
}

#[utoipa::path(
    get,
    path = "/v1/policies/{version}",
    tag = "policies",
    operation_id = "getPolicy",
    params(
        ("version" = String, Path, description = "The policy version"),
    ),
    responses(
        (status = 200, description = "The version", body = VersionView),
        crate::http::problems::NotFound,
        crate::http::problems::Refusals,
    ),
    security(("apiKey" = [])),
)]
async fn show(
    State(st): State<AppState>,
    caller: Caller,
    Path(version): Path<String>,
) -> Result<Response, ApiError> {
    caller.require(Scope::DecisionsRead)?;
    let row = crate::store::policies::get(&st.db, &version)
        .await?
        .ok_or(ApiError::NotFound("policy version"))?;
    Ok(Json(VersionView::of(row)?).into_response())
}

#[utoipa::path(
    post,
    path = "/v1/policies",
    tag = "policies",
    operation_id = "draftPolicy",
    request_body(content = PolicyDocument, content_type = "application/json"),
    responses(
        (status = 201, description = "Drafted", body = VersionView),
        crate::http::problems::Conflict,
        crate::http::problems::BodyRefusals,
        crate::http::problems::Refusals,
    ),
    security(("apiKey" = [])),
)]
async fn create(
    State(st): State<AppState>,
    caller: Caller,
    body: Result<JsonBody<PolicyDocument>, ApiError>,
) -> Result<Response, ApiError> {
    caller.require(Scope::PoliciesWrite)?;
    match policies::draft(&st.flow, body?.value, &caller.name).await? {
        Drafted::Stored(row) => {
            Ok((StatusCode::CREATED, Json(VersionView::of(row)?)).into_response())
        }
        Drafted::Invalid(errors) => Err(ApiError::Validation(errors)),
        Drafted::Exists => Err(ApiError::Conflict(
            "this version exists; a version never changes, draft another".into(),
        )),
    }
}

fn changed(result: Changed) -> Result<Response, ApiError> {
    match result {
        Changed::Done(row) => Ok(Json(VersionView::of(row)?).into_response()),
        Changed::NotFound => Err(ApiError::NotFound("policy version")),
        Changed::NotAllowed(why) => Err(ApiError::Conflict(why)),
        Changed::SameKey => Err(ApiError::Forbidden(
            "a key other than the one that drafted the version",
        )),
    }
}

#[utoipa::path(
    post,
    path = "/v1/policies/{version}/shadow",
    tag = "policies",
    operation_id = "shadowPolicy",
    params(
        ("version" = String, Path, description = "The policy version"),
    ),
    responses(
        (status = 200, description = "In shadow", body = VersionView),
        crate::http::problems::NotFound,
        crate::http::problems::Conflict,
        crate::http::problems::Refusals,
    ),
    security(("apiKey" = [])),
)]
async fn shadow(
    State(st): State<AppState>,
    caller: Caller,
    Path(version): Path<String>,
) -> Result<Response, ApiError> {
    caller.require(Scope::PoliciesWrite)?;
    changed(policies::shadow(&st.flow, &version).await?)
}

#[utoipa::path(
    post,
    path = "/v1/policies/{version}/publish",
    tag = "policies",
    operation_id = "publishPolicy",
    params(
        ("version" = String, Path, description = "The policy version"),
    ),
    responses(
        (status = 200, description = "Active; the previous version is retired", body = VersionView),
        crate::http::problems::NotFound,
        crate::http::problems::Conflict,
        crate::http::problems::Refusals,
    ),
    security(("apiKey" = [])),
)]
async fn publish(
    State(st): State<AppState>,
    caller: Caller,
    Path(version): Path<String>,
) -> Result<Response, ApiError> {
    caller.require(Scope::PoliciesWrite)?;
    changed(policies::publish(&st.flow, &version, &caller.name).await?)
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VersionReplay {
    decided_from: DateTime<Utc>,
    decided_to: DateTime<Utc>,
    #[serde(default)]
    limit: Option<u32>,
}

#[utoipa::path(
    post,
    path = "/v1/policies/{version}/replay",
    tag = "policies",
    operation_id = "replayPolicy",
    params(
        ("version" = String, Path, description = "The policy version"),
    ),
    request_body(content = crate::http::policies::VersionReplay, content_type = "application/json"),
    responses(
        (status = 200, description = "What the version would have changed", body = ReplayReport),
        crate::http::problems::NotFound,
        crate::http::problems::BodyRefusals,
        crate::http::problems::Refusals,
    ),
    security(("apiKey" = [])),
)]
async fn replay(
    State(st): State<AppState>,
    caller: Caller,
    Path(version): Path<String>,
    body: Result<JsonBody<VersionReplay>, ApiError>,
) -> Result<Response, ApiError> {
    caller.require(Scope::DecisionsRead)?;
    let body = body?.value;
    let row = crate::store::policies::get(&st.db, &version)
        .await?
        .ok_or(ApiError::NotFound("policy version"))?;
    let policy = row.document()?.parse().map_err(|_| {
        ApiError::Internal(anyhow::anyhow!("stored policy {version} does not parse"))
    })?;
    let limit = body.limit.unwrap_or(10_000);
    let mut errors = Vec::new();
    if body.decided_from > body.decided_to {
        errors.push(FieldError::new(
            "decided_to",
            "must not be before decided_from",
        ));
    }
    if !(1..=100_000).contains(&limit) {
        errors.push(FieldError::new("limit", "must be from 1 to 100000"));
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let report = crate::onboarding::replay::run(
        &st.flow,
        body.decided_from,
        body.decided_to,
        limit,
        &policy.version,
        |_| policy.clone(),
    )
    .await?;
    Ok(Json(report).into_response())
}

#[derive(Debug, Deserialize)]
pub struct ReportQuery {
    #[serde(default)]
    from: Option<DateTime<Utc>>,
    #[serde(default)]
    to: Option<DateTime<Utc>>,
}

#[utoipa::path(
    get,
    path = "/v1/policies/{version}/shadow-report",
    tag = "policies",
    operation_id = "shadowReport",
    params(
        ("version" = String, Path, description = "The policy version"),
        ("from" = Option<String>, Query, format = DateTime, description = "RFC 3339; default: 7 days before to"),
        ("to" = Option<String>, Query, format = DateTime, description = "RFC 3339; default: now"),
    ),
    responses(
        (status = 200, description = "Live and shadow verdicts compared", body = ShadowReport),
        crate::http::problems::NotFound,
        (status = 422, description = "Invalid values, each named by its field", body = ref("#/components/schemas/Problem"), content_type = "application/problem+json"),
        crate::http::problems::Refusals,
    ),
    security(("apiKey" = [])),
)]
async fn shadow_report(
    State(st): State<AppState>,
    caller: Caller,
    Path(version): Path<String>,
    query: Result<Query<ReportQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    caller.require(Scope::DecisionsRead)?;
    let Query(query) = query
        .map_err(|_| ApiError::validation("from", "from and to must be RFC 3339 date-times"))?;
    crate::store::policies::get(&st.db, &version)
        .await?
        .ok_or(ApiError::NotFound("policy version"))?;
    let to = query.to.unwrap_or_else(Utc::now);
    let from = query.from.unwrap_or(to - chrono::Duration::days(7));
    let report = policies::shadow_report(&st.flow, &version, from, to).await?;
    Ok(Json(report).into_response())
}
