//! Fraud indications (`fraud:write` to make, alter, withdraw and import; `decisions:read` to
//! read; the whole CPF and a search by CPF take `pii:read`) and the monthly report.

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

use crate::config::Scope;
use crate::domain::Cpf;
use crate::http::auth::Caller;
use crate::http::error::{ApiError, FieldError};
use crate::http::json::JsonBody;
use crate::http::page::{Keyset, ListQuery, finish};
use crate::http::state::AppState;
use crate::onboarding::fraud::{
    self, Alteration, IndicationView, MonthReport, NewIndication, Outcome, ReceivedBatch,
    Withdrawal,
};
use crate::store::fraud_indications::{Filter, Imported, Refusal};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/fraud-indications", get(list).post(create))
        .route("/v1/fraud-indications/received", post(received))
        .route("/v1/fraud-indications/{id}", get(show).patch(alter))
        .route("/v1/fraud-indications/{id}/withdrawal", post(withdraw))
        .route("/v1/reports/fraud-indications", get(report))
}

fn answer<T>(outcome: Outcome<T>) -> Result<T, ApiError> {
    match outcome {
        Outcome::Done(done) => Ok(done),
        Outcome::NotFound => Err(ApiError::NotFound("fraud indication")),
        Outcome::Invalid(errors) => Err(ApiError::Validation(errors)),
        Outcome::Refused(Refusal::Withdrawn) => Err(ApiError::Conflict(
            "the indication is withdrawn: it no longer changes".into(),
        )),
        Outcome::Refused(Refusal::OwnIndication) => Err(ApiError::Forbidden(
            "fraud:write of a key other than the one that made the indication",
        )),
        Outcome::Refused(Refusal::NotFound) => Err(ApiError::NotFound("fraud indication")),
    }
}

fn indication_id(text: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(text).map_err(|_| ApiError::NotFound("fraud indication"))
}

#[utoipa::path(
    post,
    path = "/v1/fraud-indications",
    tag = "fraud indications",
    operation_id = "createFraudIndication",
    request_body(content = NewIndication, content_type = "application/json"),
    responses(
        (status = 201, description = "Made; shared with the sharing system unless confidential", body = IndicationView, headers(("Location" = String, description = "/v1/fraud-indications/{id}"))),
        crate::http::problems::BodyRefusals,
        crate::http::problems::Refusals,
    ),
    security(("apiKey" = [])),
)]
async fn create(
    State(st): State<AppState>,
    caller: Caller,
    body: Result<JsonBody<NewIndication>, ApiError>,
) -> Result<Response, ApiError> {
    caller.require(Scope::FraudWrite)?;
    let view = answer(
        fraud::create(
            &st.flow,
            body?.value,
            &caller.name,
            caller.has(Scope::PiiRead),
        )
        .await?,
    )?;
    let mut response = (StatusCode::CREATED, Json(&view)).into_response();
    if let Ok(location) = HeaderValue::from_str(&format!("/v1/fraud-indications/{}", view.id)) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

fn timestamp(name: &str, value: &str, errors: &mut Vec<FieldError>) -> Option<DateTime<Utc>> {
    match DateTime::parse_from_rfc3339(value) {
        Ok(at) => Some(at.with_timezone(&Utc)),
        Err(_) => {
            errors.push(FieldError::new(name, "must be an RFC 3339 time"));
            None
        }
    }
}

#[utoipa::path(
    get,
    path = "/v1/fraud-indications",
    tag = "fraud indications",
    operation_id = "listFraudIndications",
    params(
        ("status" = Option<String>, Query, description = "pending, registered or withdrawn"),
        ("cpf" = Option<String>, Query, description = "The person's CPF (needs pii:read)"),
        ("overdue" = Option<bool>, Query, description = "true: only those pending more than 24 hours after identified_at"),
        ("from" = Option<String>, Query, description = "identified_at at or after (RFC 3339)"),
        ("to" = Option<String>, Query, description = "identified_at before (RFC 3339)"),
        crate::http::page::ListQuery<crate::http::page::Keyset>,
    ),
    responses(
        (status = 200, description = "Newest identified first", body = FraudIndicationPage),
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
    caller.require_any(&[Scope::DecisionsRead, Scope::FraudWrite])?;
    let ListQuery {
        page,
        rest,
        mut errors,
    } = query;
    let mut filter = Filter {
        limit: page.fetch(),
        after: page.cursor.map(|k| (k.at, k.id)),
        ..Filter::default()
    };
    let mut cpf = None;
    for (name, value) in rest {
        match name.as_str() {
            "status" if matches!(value.as_str(), "pending" | "registered" | "withdrawn") => {
                filter.status = Some(value)
            }
            "status" => errors.push(FieldError::new(
                "status",
                "must be pending, registered or withdrawn",
            )),
            "cpf" => match Cpf::parse(&value) {
                Ok(parsed) => cpf = Some(parsed),
                Err(e) => errors.push(FieldError::new("cpf", e.to_string())),
            },
            "overdue" => match value.as_str() {
                "true" => filter.overdue = true,
                "false" => filter.overdue = false,
                _ => errors.push(FieldError::new("overdue", "must be true or false")),
            },
            "from" => filter.from = timestamp("from", &value, &mut errors),
            "to" => filter.to = timestamp("to", &value, &mut errors),
            other => errors.push(FieldError::new(other, "unknown parameter")),
        }
    }
    finish(errors)?;
    if let Some(cpf) = &cpf {
        // A search for a person: it takes pii:read, and it leaves an access record with the
        // CPF masked.
        caller.require(Scope::PiiRead)?;
        filter.cpf_hash = Some(fraud::cpf_hash(&st.flow, cpf));
        crate::store::audit::record_search(
            &st.db,
            &caller.name,
            "GET /v1/fraud-indications",
            &json!({ "cpf": cpf.masked() }),
        )
        .await?;
    }
    let mut items = fraud::list(&st.flow, &filter, caller.has(Scope::PiiRead)).await?;
    let next = page.cut(&mut items, |i| Keyset {
        at: i.identified_at,
        id: i.id,
    });
    Ok(Json(FraudIndicationPage {
        items,
        next_cursor: next,
    })
    .into_response())
}

/// A page of indications: the list's `{"items": [...], "next_cursor": ...}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FraudIndicationPage {
    items: Vec<IndicationView>,
    /// Where the next page starts; null on the last page
    #[schema(required = true)]
    next_cursor: Option<String>,
}

#[utoipa::path(
    get,
    path = "/v1/fraud-indications/{id}",
    tag = "fraud indications",
    operation_id = "getFraudIndication",
    params(("id" = String, Path, description = "The indication's id (a UUID)")),
    responses(
        (status = 200, description = "The indication with its history", body = IndicationView),
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
    caller.require_any(&[Scope::DecisionsRead, Scope::FraudWrite])?;
    let id = indication_id(&id)?;
    let view = fraud::get(&st.flow, id, caller.has(Scope::PiiRead))
        .await?
        .ok_or(ApiError::NotFound("fraud indication"))?;
    Ok(Json(view).into_response())
}

#[utoipa::path(
    patch,
    path = "/v1/fraud-indications/{id}",
    tag = "fraud indications",
    operation_id = "alterFraudIndication",
    params(("id" = String, Path, description = "The indication's id (a UUID)")),
    request_body(content = Alteration, content_type = "application/json"),
    responses(
        (status = 200, description = "Altered, with a line of history; shared again", body = IndicationView),
        crate::http::problems::NotFound,
        (status = 409, description = "The indication is withdrawn", body = ref("#/components/schemas/Problem"), content_type = "application/problem+json"),
        crate::http::problems::BodyRefusals,
        crate::http::problems::Refusals,
    ),
    security(("apiKey" = [])),
)]
async fn alter(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Result<JsonBody<Alteration>, ApiError>,
) -> Result<Response, ApiError> {
    caller.require(Scope::FraudWrite)?;
    let body = body?;
    let id = indication_id(&id)?;
    let view = answer(
        fraud::alter(
            &st.flow,
            id,
            body.value,
            &caller.name,
            caller.has(Scope::PiiRead),
        )
        .await?,
    )?;
    Ok(Json(view).into_response())
}

#[utoipa::path(
    post,
    path = "/v1/fraud-indications/{id}/withdrawal",
    tag = "fraud indications",
    operation_id = "withdrawFraudIndication",
    params(("id" = String, Path, description = "The indication's id (a UUID)")),
    request_body(content = Withdrawal, content_type = "application/json"),
    responses(
        (status = 200, description = "Withdrawn, with a line of history; shared again", body = IndicationView),
        crate::http::problems::NotFound,
        (status = 409, description = "Already withdrawn", body = ref("#/components/schemas/Problem"), content_type = "application/problem+json"),
        crate::http::problems::BodyRefusals,
        crate::http::problems::Refusals,
    ),
    security(("apiKey" = [])),
)]
async fn withdraw(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Result<JsonBody<Withdrawal>, ApiError>,
) -> Result<Response, ApiError> {
    caller.require(Scope::FraudWrite)?;
    let body = body?;
    let id = indication_id(&id)?;
    let view = answer(
        fraud::withdraw(
            &st.flow,
            id,
            body.value,
            &caller.name,
            caller.has(Scope::PiiRead),
        )
        .await?,
    )?;
    Ok(Json(view).into_response())
}

#[utoipa::path(
    post,
    path = "/v1/fraud-indications/received",
    tag = "fraud indications",
    operation_id = "importReceivedFraudIndications",
    request_body(content = ReceivedBatch, content_type = "application/json"),
    responses(
        (status = 200, description = "Kept in one statement; copies already kept change nothing", body = Imported),
        crate::http::problems::BodyRefusals,
        (status = 422, description = "Invalid values, each named by its field (items[i].cpf, ...); nothing kept", body = ref("#/components/schemas/Problem"), content_type = "application/problem+json"),
        crate::http::problems::Refusals,
    ),
    security(("apiKey" = [])),
)]
async fn received(
    State(st): State<AppState>,
    caller: Caller,
    body: Result<JsonBody<ReceivedBatch>, ApiError>,
) -> Result<Response, ApiError> {
    caller.require(Scope::FraudWrite)?;
    let imported = answer(fraud::import(&st.flow, body?.value, &caller.name).await?)?;
    Ok(Json(imported).into_response())
}

#[utoipa::path(
    get,
    path = "/v1/reports/fraud-indications",
    tag = "fraud indications",
    operation_id = "fraudIndicationsReport",
    params(("month" = String, Query, description = "YYYY-MM: a calendar month in Brasília time, by identified_at")),
    responses(
        (status = 200, description = "The month's figures for the declaration of conformity", body = MonthReport),
        crate::http::problems::QueryRefusals,
        crate::http::problems::Refusals,
    ),
    security(("apiKey" = [])),
)]
async fn report(
    State(st): State<AppState>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    caller.require_any(&[Scope::DecisionsRead, Scope::FraudWrite])?;
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(query.as_deref().unwrap_or(""))
            .map_err(|_| ApiError::BadRequest("the query string cannot be read".into()))?;
    let mut month = None;
    let mut errors = Vec::new();
    for (name, value) in pairs {
        match name.as_str() {
            "month" => month = Some(value),
            other => errors.push(FieldError::new(other, "unknown parameter")),
        }
    }
    let bad_month = || FieldError::new("month", "must be a month as YYYY-MM, such as 2026-11");
    let report = match month {
        Some(month) if errors.is_empty() => fraud::report(&st.flow, &month).await?,
        None => {
            errors.push(bad_month());
            None
        }
        Some(_) => None,
    };
    match report {
        Some(report) => Ok(Json(report).into_response()),
        None => {
            if errors.is_empty() {
                errors.push(bad_month());
            }
            Err(ApiError::Validation(errors))
        }
    }
}
