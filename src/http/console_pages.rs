//! The console's pages for the risk team's lists, the data-protection officer's requests and
//! the compliance team's fraud indications. They go through the same flow functions as
//! `/v1/lists`, `/v1/subject-requests` and `/v1/fraud-indications`, record the session's key
//! name as who did it, and sit behind the console's guard and sessions.

use axum::Router;
use axum::extract::{Form, Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use chrono::{NaiveDate, Utc};
use maud::html;
use serde::Deserialize;
use uuid::Uuid;

use crate::config::Scope;
use crate::domain::Cpf;
use crate::http::console::{Session, page};
use crate::http::error::ApiError;
use crate::http::state::AppState;
use crate::onboarding::fraud::{CpfShown, IndicationView};
use crate::onboarding::lists::{self, EntryInput, NewEntries, Outcome, Removal};
use crate::store::fraud_indications::Filter;
use crate::store::subjects::RequestFilter;

/// Live entries a list's page shows at most (newest first).
const ENTRIES_SHOWN: i64 = 200;
/// Requests the requests page shows at most (most recently received first).
const REQUESTS_SHOWN: i64 = 200;
/// Indications the indications page shows at most (the overdue ones first).
const INDICATIONS_SHOWN: i64 = 200;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console/lists", get(lists_page))
        .route("/console/lists/{name}/entries", post(add_entry))
        .route("/console/lists/{name}/removal", post(remove_entry))
        .route("/console/subject-requests", get(requests_page))
        .route("/console/subject-requests/{id}/report", get(report_page))
        .route("/console/fraud-indications", get(indications_page))
}

#[derive(Deserialize, Default)]
struct ListsQuery {
    #[serde(default)]
    list: Option<String>,
    #[serde(default)]
    done: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

/// Every list with its count of live entries; for the chosen one, its live entries masked and,
/// for `lists:write`, the forms that add and remove an entry.
async fn lists_page(
    State(st): State<AppState>,
    session: Session,
    Query(query): Query<ListsQuery>,
) -> Result<Response, ApiError> {
    if !session.reads_lists() {
        return Ok(session.refused("decisions:read or lists:write"));
    }
    let writer = session.caller.has(Scope::ListsWrite);
    let all = lists::all(&st.flow).await?;
    let chosen = query
        .list
        .as_deref()
        .and_then(|name| all.iter().find(|l| l.name == name))
        .or(all.first());
    let entries = match chosen {
        Some(list) => match lists::live(&st.flow, &list.name, None, ENTRIES_SHOWN).await? {
            Outcome::Done((entries, _)) => entries,
            _ => Vec::new(),
        },
        None => Vec::new(),
    };
    let body = html! {
        @if let Some(done) = &query.done { p.notice { (done) } }
        @if let Some(error) = &query.error { p.error id="error" { (error) } }
        @if all.is_empty() {
            p.muted { "No list yet. Lists are created through POST /v1/lists with a lists:write key." }
        } @else {
            table id="lists" {
                thead { tr { th { "List" } th { "Key" } th { "Live entries" } th { "Note" } th { "Created by" } } }
                tbody {
                    @for list in &all {
                        tr {
                            td { a href={ "/console/lists?list=" (list.name) } { (list.name) } }
                            td { (list.key) }
                            td { (list.entries) }
                            td { (list.note.as_deref().unwrap_or("")) }
                            td { (list.created_by) " · " (list.created_at.format("%Y-%m-%d")) }
                        }
                    }
                }
            }
        }
        @if let Some(list) = chosen {
            h2 { "Entries of " span id="list" { (list.name) } " (" (list.key) ")" }
            @if entries.is_empty() {
                p.muted { "No live entry." }
            } @else {
                table id="entries" {
                    thead { tr { th { "Value" } th { "Reason" } th { "Expires" } th { "Added by" } } }
                    tbody {
                        @for entry in &entries {
                            tr {
                                td { (entry.value) }
                                td { (entry.reason) }
                                td { @match entry.expires_at { Some(at) => (at.format("%Y-%m-%d %H:%M UTC")), None => "never" } }
                                td { (entry.added_by) " · " (entry.added_at.format("%Y-%m-%d %H:%M UTC")) }
                            }
                        }
                    }
                }
                @if list.entries > entries.len() as i64 {
                    p.muted { "The newest " (entries.len()) " are shown; GET /v1/lists/" (list.name) "/entries pages through all." }
                }
            }
            @if writer {
                div.pair {
                    form.box id="add" method="post" action={ "/console/lists/" (list.name) "/entries" } {
                        h3 { "Add an entry" }
                        input type="hidden" name="csrf" value=(session.csrf);
                        label { "Value (" (list.key) ") " input name="value" required autocomplete="off"; }
                        label { "Reason " textarea name="reason" required maxlength="2000" {} }
                        label { "Expires on (00:00 UTC; empty: never) " input type="date" name="expires_on"; }
                        button type="submit" { "Add" }
                    }
                    form.box id="remove" method="post" action={ "/console/lists/" (list.name) "/removal" } {
                        h3 { "Remove an entry" }
                        input type="hidden" name="csrf" value=(session.csrf);
                        label { "Value (" (list.key) ") " input name="value" required autocomplete="off"; }
                        label { "Reason " textarea name="reason" required maxlength="2000" {} }
                        button type="submit" { "Remove" }
                    }
                }
                p.muted { "Values are kept only as keyed hashes and masks: to remove one, type it again. Every addition and removal is kept with who, when and why." }
            } @else {
                p.muted { "Adding and removing entries takes a key with lists:write." }
            }
        }
    };
    Ok(page("Lists", Some(&session), body).into_response())
}

#[derive(Deserialize)]
struct EntryForm {
    csrf: String,
    #[serde(default)]
    value: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    expires_on: String,
}

async fn add_entry(
    State(st): State<AppState>,
    session: Session,
    Path(name): Path<String>,
    Form(form): Form<EntryForm>,
) -> Result<Response, ApiError> {
    session.check(&form.csrf)?;
    session.caller.require(Scope::ListsWrite)?;
    let expires_at = match form.expires_on.trim() {
        "" => None,
        day => match NaiveDate::parse_from_str(day, "%Y-%m-%d") {
            Ok(day) => day.and_hms_opt(0, 0, 0).map(|at| at.and_utc()),
            Err(_) => return Ok(back(&name, Err("The expiry is not a date.".into()))),
        },
    };
    let new = NewEntries {
        entries: vec![EntryInput {
            value: form.value,
            reason: form.reason,
            expires_at,
        }],
    };
    let result = match lists::add(&st.flow, &name, new, &session.caller.name).await? {
        Outcome::Done(added) if added.added == 1 => Ok("Added."),
        Outcome::Done(_) => Ok("That value is already listed."),
        other => Err(refusal(other)),
    };
    Ok(back(&name, result))
}

async fn remove_entry(
    State(st): State<AppState>,
    session: Session,
    Path(name): Path<String>,
    Form(form): Form<EntryForm>,
) -> Result<Response, ApiError> {
    session.check(&form.csrf)?;
    session.caller.require(Scope::ListsWrite)?;
    let removal = Removal {
        value: form.value,
        reason: form.reason,
    };
    let result = match lists::remove(&st.flow, &name, removal, &session.caller.name).await? {
        Outcome::Done(()) => Ok("Removed."),
        Outcome::NotFound => Err("That value is not listed.".to_owned()),
        other => Err(refusal(other)),
    };
    Ok(back(&name, result))
}

/// What the page says when the flow refuses a change.
fn refusal<T>(outcome: Outcome<T>) -> String {
    match outcome {
        Outcome::Invalid(errors) => errors
            .iter()
            .map(|e| {
                let field = e.field.rsplit('.').next().unwrap_or(&e.field);
                format!("The {} {}.", field.replace('_', " "), e.message)
            })
            .collect::<Vec<_>>()
            .join(" "),
        Outcome::NotFound => "No such list.".to_owned(),
        Outcome::Exists | Outcome::Done(_) => "Not done.".to_owned(),
    }
}

fn back(list: &str, result: Result<&str, String>) -> Response {
    let (key, text) = match result {
        Ok(text) => ("done", text.to_owned()),
        Err(text) => ("error", text),
    };
    let query =
        serde_urlencoded::to_string([("list", list), (key, text.as_str())]).unwrap_or_default();
    Redirect::to(&format!("/console/lists?{query}")).into_response()
}

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
    Ok(crate::http::subject_page::render(&request, &report))
}

/// The fraud indications, the overdue ones first (pending more than 24 hours after they were
/// identified: the oldest first), then the rest newest first. The CPF is masked; a key with
/// pii:read sees it whole, and then the read is recorded as an access to personal data.
async fn indications_page(
    State(st): State<AppState>,
    session: Session,
) -> Result<Response, ApiError> {
    if !session.reads_indications() {
        return Ok(session.refused("fraud:write or decisions:read"));
    }
    let pii = session.caller.has(Scope::PiiRead);
    if pii {
        crate::store::audit::record_search(
            &st.db,
            &session.caller.name,
            "console /console/fraud-indications",
            &serde_json::json!({ "overdue_first": true }),
        )
        .await?;
    }
    let filter = Filter {
        overdue_first: true,
        limit: INDICATIONS_SHOWN,
        ..Filter::default()
    };
    let shown = if pii {
        CpfShown::Whole
    } else {
        CpfShown::Masked
    };
    // The page shows no history: one query, each row's CPF unsealed only for pii:read.
    let items: Vec<IndicationView> = crate::store::fraud_indications::list(&st.db, &filter)
        .await?
        .into_iter()
        .map(|row| IndicationView::of(row, Vec::new(), &st.cipher, shown))
        .collect();
    let cases = session.reads_decisions();
    let at = |t: &chrono::DateTime<Utc>| t.format("%Y-%m-%d %H:%M UTC").to_string();
    let body = html! {
        @if items.is_empty() {
            p.muted { "No fraud indication yet." }
        } @else {
            table id="indications" {
                thead { tr { th { "Identified" } th { "CPF" } th { "Typology" } th { "Status" } th { "Registered" } th { "Made by" } th { "Description" } th { "Onboarding" } } }
                tbody {
                    @for i in &items {
                        tr.indication data-id=(i.id) {
                            td class=[i.overdue.then_some("overdue")] {
                                (at(&i.identified_at)) @if i.overdue { " (overdue)" }
                            }
                            td { (i.cpf.as_deref().unwrap_or("—")) }
                            td { (i.typology) }
                            td { (i.status) @if i.confidential { " (confidential)" } }
                            td { @match &i.registered_at { Some(t) => (at(t)), None => "—" } }
                            td { (i.created_by) }
                            td { (i.description) }
                            td { @match (i.onboarding_id, cases) {
                                (Some(id), true) => a href={ "/console/onboardings/" (id) } { "Open" },
                                (Some(_), false) => span.muted { "yes" },
                                (None, _) => "—",
                            } }
                        }
                    }
                }
            }
            @if items.len() as i64 == INDICATIONS_SHOWN {
                p.muted { "The first " (INDICATIONS_SHOWN) " are shown; GET /v1/fraud-indications pages through all." }
            }
        }
        p.muted { "An indication is overdue when the sharing system has not acknowledged it 24 hours after it was identified (Resolução Conjunta nº 6/2023). Indications are made, altered and withdrawn through /v1/fraud-indications with a fraud:write key, and by a reviewer's rejection that records fraud." }
    };
    Ok(page("Fraud indications", Some(&session), body).into_response())
}
