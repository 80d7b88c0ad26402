//! The people's requests under LGPD Art. 18 and 19, as the data-protection officer records them
//! (`subjects:write`): `POST /v1/subject-requests`, the list, and a request's access report
//! (`pii:read` too), in JSON or, for `Accept: text/html`, as a printable page in Portuguese.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use crate::config::Scope;
use crate::domain::cpf::Cpf;
use crate::http::auth::Caller;
use crate::http::error::{ApiError, FieldError};
use crate::http::json::JsonBody;
use crate::http::page::{Keyset, ListQuery, finish};
use crate::http::state::AppState;
use crate::onboarding::subjects::{self, Kind, NewRequest};
use crate::store::audit;
use crate::store::subjects::RequestFilter;

pub mod page;
mod view;

pub use view::RequestView;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/subject-requests", get(list).post(create))
        .route("/v1/subject-requests/{id}/report", get(report))
}

const NOTE_MAX: usize = 2000;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubjectRequestBody {
    /// The person's CPF, punctuated or not.
    cpf: String,
    /// access (Art. 18 I, II, VII) or erasure (Art. 18 IV, VI).
    kind: String,
    /// When the person made the request (RFC 3339); now when left out. Not in the future.
    #[serde(default)]
    received_at: Option<String>,
    /// The officer's note, up to 2000 characters.
    #[serde(default)]
    note: Option<String>,
}

#[utoipa::path(
    post,
    path = "/v1/subject-requests",
    tag = "subjects",
    operation_id = "createSubjectRequest",
    request_body(content = crate::http::subjects::SubjectRequestBody, content_type = "application/json"),
    responses(
        (status = 201, description = "Recorded; an erasure is carried out at once and answers what was erased, what is kept and why, and what waits for a decision", body = RequestView,
         headers(("Location" = String, description = "/v1/subject-requests/{id}/report"))),
        crate::http::problems::BodyRefusals,
        crate::http::problems::Refusals,
    ),
    security(("apiKey" = [])),
)]
async fn create(
    State(st): State<AppState>,
    caller: Caller,
    // Taken as a Result so a caller without the scope hears 403, whatever the body.
    body: Result<JsonBody<SubjectRequestBody>, ApiError>,
) -> Result<Response, ApiError> {
    caller.require(Scope::SubjectsWrite)?;
    let body = body?.value;
    let mut errors = Vec::new();
    let cpf = Cpf::parse(&body.cpf)
        .map_err(|_| errors.push(FieldError::new("cpf", "is not a valid CPF")))
        .ok();
    let kind = match body.kind.as_str() {
        "access" => Some(Kind::Access),
        "erasure" => Some(Kind::Erasure),
        _ => {
            errors.push(FieldError::new("kind", "must be access or erasure"));
            None
        }
    };
    let now = Utc::now();
    let received_at = match body.received_at.as_deref() {
        None => Some(now),
        Some(text) => match DateTime::parse_from_rfc3339(text) {
            // A little clock skew between the officer's tools and this service is allowed.
            Ok(at) if at.with_timezone(&Utc) <= now + chrono::Duration::minutes(5) => {
                Some(at.with_timezone(&Utc))
            }
            Ok(_) => {
                errors.push(FieldError::new("received_at", "must not be in the future"));
                None
            }
            Err(_) => {
                errors.push(FieldError::new("received_at", "must be an RFC 3339 time"));
                None
            }
        },
    };
    let note = body.note.filter(|n| !n.trim().is_empty());
    if note
        .as_ref()
        .is_some_and(|n| n.chars().count() > NOTE_MAX || n.contains('\0'))
    {
        errors.push(FieldError::new(
            "note",
            format!("must have at most {NOTE_MAX} characters"),
        ));
    }
    let (Some(cpf), Some(kind), Some(received_at), true) =
        (cpf, kind, received_at, errors.is_empty())
    else {
        return Err(ApiError::Validation(errors));
    };
    let received = subjects::receive(
        &st.flow,
        NewRequest {
            cpf: &cpf,
            kind,
            received_at,
            note: note.as_deref(),
            by: &caller.name,
        },
    )
    .await?;
    let location = format!("/v1/subject-requests/{}/report", received.request.id);
    let view = RequestView::of(
        &st,
        received.request,
        caller.has(Scope::PiiRead),
        received.erasure,
    );
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(view),
    )
        .into_response())
}

#[utoipa::path(
    get,
    path = "/v1/subject-requests",
    tag = "subjects",
    operation_id = "listSubjectRequests",
    params(
        ("status" = Option<String>, Query, description = "open or answered"),
        ("overdue" = Option<bool>, Query, description = "true: open past due_at (15 days after received_at)"),
        crate::http::page::ListQuery<crate::http::page::Keyset>,
    ),
    responses(
        (status = 200, description = "A page of requests, most recently received first", body = SubjectRequestPage),
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
    caller.require(Scope::SubjectsWrite)?;
    let ListQuery {
        page,
        rest,
        mut errors,
    } = query;
    let mut filter = RequestFilter::default();
    for (name, value) in rest {
        match name.as_str() {
            "status" if matches!(value.as_str(), "open" | "answered") => {
                filter.status = Some(value)
            }
            "status" => errors.push(FieldError::new("status", "must be open or answered")),
            "overdue" => match value.as_str() {
                "true" => filter.overdue = true,
                "false" => filter.overdue = false,
                _ => errors.push(FieldError::new("overdue", "must be true or false")),
            },
            other => errors.push(FieldError::new(other, "unknown parameter")),
        }
    }
    finish(errors)?;
    let pii = caller.has(Scope::PiiRead);
    if pii {
        // Whole CPFs are shown: an access to personal data, recorded as such.
        let asked = json!({ "status": filter.status, "overdue": filter.overdue });
        audit::record_search(&st.db, &caller.name, "GET /v1/subject-requests", &asked).await?;
    }
    let cursor = page.cursor.map(|k| (k.at, k.id));
    let mut rows = crate::store::subjects::list(&st.db, &filter, cursor, page.fetch()).await?;
    let next = page.cut(&mut rows, |r| Keyset {
        at: r.received_at,
        id: r.id,
    });
    let items = rows
        .into_iter()
        .map(|r| RequestView::of(&st, r, pii, None))
        .collect();
    Ok(Json(SubjectRequestPage {
        items,
        next_cursor: next,
    })
    .into_response())
}

/// A page of requests, most recently received first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SubjectRequestPage {
    items: Vec<RequestView>,
    /// Where the next page starts; null on the last page
    #[schema(required = true)]
    next_cursor: Option<String>,
}

#[utoipa::path(
    get,
    path = "/v1/subject-requests/{id}/report",
    tag = "subjects",
    operation_id = "getSubjectReport",
    params(
        ("id" = String, Path, description = "The request id (a UUID)"),
    ),
    responses(
        (status = 200, description = "Everything held about the person, from what is stored: JSON, or with Accept: text/html a printable page in Portuguese. The first read answers the request; every read is an access record", body = ReportView,
         content(
             (ReportView = "application/json"),
             (String = "text/html"),
         )),
        crate::http::problems::NotFound,
        crate::http::problems::Refusals,
    ),
    security(("apiKey" = [])),
)]
async fn report(
    State(st): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    caller.require(Scope::SubjectsWrite)?;
    caller.require(Scope::PiiRead)?;
    let id = Uuid::parse_str(&id).map_err(|_| ApiError::NotFound("subject request"))?;
    let html = wants_html(&headers);
    let (request, report) = read_report(
        &st,
        &caller.name,
        id,
        "GET /v1/subject-requests/{id}/report",
        html,
    )
    .await?;
    if html {
        return Ok(page::render(&request, &report));
    }
    Ok(Json(ReportView { report, request }).into_response())
}

/// The access report, with the request as the officer sees it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = SubjectReport)]
pub struct ReportView {
    #[serde(flatten)]
    #[schema(inline)]
    report: subjects::Report,
    request: RequestView,
}

/// A read of a request's report by `by` (who holds `subjects:write` and `pii:read`), through
/// the API or the console (`what` names which, for the access record): recorded as an access
/// to personal data, answers the request on its first read, and gives the request as the
/// officer sees it beside the report.
pub async fn read_report(
    st: &AppState,
    by: &str,
    id: Uuid,
    what: &str,
    html: bool,
) -> Result<(RequestView, subjects::Report), ApiError> {
    let looked_at =
        json!({ "subject_request_id": id, "format": if html { "html" } else { "json" } });
    audit::record_search(&st.db, by, what, &looked_at).await?;
    if crate::store::subjects::get(&st.db, id).await?.is_none() {
        return Err(ApiError::NotFound("subject request"));
    }
    subjects::answered_by_report(&st.flow, id, by).await?;
    let request = crate::store::subjects::get(&st.db, id)
        .await?
        .ok_or(ApiError::NotFound("subject request"))?;
    let report = subjects::report(&st.flow, &request).await?;
    let erasure = if request.kind == Kind::Erasure.as_str() {
        Some(subjects::erasure_answer(&st.flow, &request).await?)
    } else {
        None
    };
    Ok((RequestView::of(st, request, true, erasure), report))
}

/// Whether the caller asked for the page: `text/html` in `Accept` before any JSON type.
fn wants_html(headers: &HeaderMap) -> bool {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let html = accept.find("text/html");
    let json = accept.find("json");
    match (html, json) {
        (Some(h), Some(j)) => h < j,
        (Some(_), None) => true,
        _ => false,
    }
}
