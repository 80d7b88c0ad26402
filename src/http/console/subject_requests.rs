//! The data-protection officer's requests, and each one's access report.

use axum::Router;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::Utc;
use maud::html;
use uuid::Uuid;

use crate::config::Scope;
use crate::domain::Cpf;
use crate::http::console::layout::page;
use crate::http::console::session::Session;
use crate::http::error::ApiError;
use crate::http::state::AppState;
use crate::store::subjects::RequestFilter;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/console/subject-requests", get(requests_page))
        .route("/console/subject-requests/{id}/report", get(report_page))
}

/// Requests the requests page shows at most (most recently received first).
const REQUESTS_SHOWN: i64 = 200;

/// The people's requests, most recently received first, each with its report's page. The
/// CPFs are masked here, so listing them is no access to personal data; the report is.
async fn requests_page(State(st): State<AppState>, session: Session) -> Result<Response, ApiError> {
    if !session.caller.has(Scope::SubjectsWrite) {
        return Ok(session.refused("subjects:write"));
    }
    let reads_reports = session.caller.has(Scope::PiiRead);
    let rows =
        crate::store::subjects::list(&st.db, &RequestFilter::default(), None, REQUESTS_SHOWN)
            .await?;
    let now = Utc::now();
    let body = html! {
        @if rows.is_empty() {
            p.muted { "No request yet. Requests are recorded through POST /v1/subject-requests." }
        } @else {
            table id="requests" {
                thead { tr { th { "Received" } th { "Kind" } th { "CPF" } th { "Due" } th { "Answered" } th { "Report" } } }
                tbody {
                    @for row in &rows {
                        @let overdue = row.answered_at.is_none() && row.due_at < now;
                        @let cpf = row.cpf(&st.cipher).ok().and_then(|d| Cpf::parse(&d).ok()).map(|c| c.masked());
                        tr {
                            td { (row.received_at.format("%Y-%m-%d %H:%M UTC")) }
                            td { (row.kind) }
                            td { (cpf.as_deref().unwrap_or("—")) }
                            td class=[overdue.then_some("overdue")] {
                                (row.due_at.format("%Y-%m-%d")) @if overdue { " (overdue)" }
                            }
                            td { @match (&row.answered_at, &row.answered_by) {
                                (Some(at), Some(by)) => { (at.format("%Y-%m-%d %H:%M UTC")) " by " (by) },
                                (Some(at), None) => (at.format("%Y-%m-%d %H:%M UTC")),
                                _ => "open",
                            } }
                            td { @if reads_reports {
                                a.report href={ "/console/subject-requests/" (row.id) "/report" } { "Report" }
                            } @else { span.muted { "needs pii:read" } } }
                        }
                    }
                }
            }
            p.muted { "Opening a report is recorded as an access to the person's data and answers an open access request." }
        }
    };
    Ok(page("Subject requests", Some(&session), body).into_response())
}

/// The request's access report as the printable page the API answers for `Accept: text/html`:
/// the same read (recorded, and answering the request, by the session's key).
async fn report_page(
    State(st): State<AppState>,
    session: Session,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    if !(session.caller.has(Scope::SubjectsWrite) && session.caller.has(Scope::PiiRead)) {
        return Ok(session.refused("subjects:write and pii:read"));
    }
    let id = Uuid::parse_str(&id).map_err(|_| ApiError::NotFound("subject request"))?;
    let (request, report) = crate::http::subjects::read_report(
        &st,
        &session.caller.name,
        id,
        "console /console/subject-requests/{id}/report",
        true,
    )
    .await?;
    Ok(crate::http::subjects::page::render(&request, &report))
}
