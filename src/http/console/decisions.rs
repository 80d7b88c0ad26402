//! The decisions: their search, one decision, and the way from a linked onboarding to its case
//! or decision.

use axum::Router;
use axum::extract::{Path, Query, RawQuery, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use maud::html;
use serde::Deserialize;
use uuid::Uuid;

use crate::config::Scope;
use crate::domain::Cpf;
use crate::http::console::explanation::{Explained, LINKS_WINDOW_SECS, explained, links_section};
use crate::http::console::layout::{Keys, at, day_start, page, shortcuts};
use crate::http::console::session::Reader;
use crate::http::decisions::{DecisionItem, Explanation, ExportFormat, export_response};
use crate::http::error::ApiError;
use crate::http::state::AppState;
use crate::policy::Reason;
use crate::store::audit;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/console/decisions", get(decisions))
        .route("/console/decisions/export", get(export))
        .route("/console/decisions/{id}", get(decision_page))
        .route("/console/onboardings/{id}", get(onboarding_page))
}

#[derive(Deserialize, Default)]
struct DecisionQuery {
    #[serde(default)]
    outcome: Option<String>,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    reference: Option<String>,
    #[serde(default)]
    cpf: Option<String>,
    /// Decided on or after this São Paulo day (YYYY-MM-DD).
    #[serde(default)]
    from: Option<String>,
    /// Decided on or before this São Paulo day.
    #[serde(default)]
    to: Option<String>,
}

/// The search the form asks for and how it is recorded (the filters, a CPF only as its keyed
/// hash), or what is wrong with it.
fn search_of(
    st: &AppState,
    pii: bool,
    query: &DecisionQuery,
) -> Result<(audit::DecisionFilter, serde_json::Value), &'static str> {
    let clean = |v: &Option<String>| v.clone().filter(|s| !s.is_empty() && !s.contains('\0'));
    let mut filter = audit::DecisionFilter {
        outcome: clean(&query.outcome)
            .filter(|o| matches!(o.as_str(), "approved" | "rejected" | "review" | "retry")),
        reason: clean(&query.reason),
        // A reference is searched by its start: reviewers often hold part of one.
        reference_prefix: clean(&query.reference),
        decided_from: clean(&query.from).and_then(|d| day_start(&d)),
        decided_to: clean(&query.to)
            .and_then(|d| day_start(&d))
            .map(|t| t + chrono::Duration::days(1)),
        ..Default::default()
    };
    if let Some(cpf) = clean(&query.cpf) {
        match (pii, Cpf::parse(&cpf)) {
            (true, Ok(cpf)) => filter.cpf_hash = Some(st.cipher.cpf_hash(&cpf.digits())),
            (true, Err(_)) => return Err("Not a valid CPF."),
            (false, _) => return Err("Searching by CPF needs the pii:read scope."),
        }
    }
    let logged = serde_json::json!({
        "outcome": filter.outcome,
        "reason": filter.reason,
        "reference_prefix": filter.reference_prefix,
        "decided_from": filter.decided_from,
        "decided_to": filter.decided_to,
        "cpf": filter.cpf_hash.as_ref().map(|h| serde_json::json!({ "hmac": hex::encode(h) })),
    });
    Ok((filter, logged))
}

/// Decisions shown on the page at most (newest first); the export holds all the search finds.
const SHOWN: i64 = 100;

async fn decisions(
    State(st): State<AppState>,
    Reader(session): Reader,
    Query(query): Query<DecisionQuery>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let pii = session.caller.has(Scope::PiiRead);
    let search = search_of(&st, pii, &query);
    let notice = search.as_ref().err().copied();
    let (filter, rows) = match search {
        Ok((filter, logged)) => {
            // Recorded like the API's searches.
            audit::record_search(
                &st.db,
                &session.caller.name,
                "console /console/decisions",
                &logged,
            )
            .await?;
            let rows = audit::search(&st.reads, &filter, None, SHOWN).await?;
            (filter, rows)
        }
        Err(_) => (audit::DecisionFilter::default(), Vec::new()),
    };
    let export = format!("/console/decisions/export?{}", raw.as_deref().unwrap_or(""));
    let items: Vec<DecisionItem> = rows
        .iter()
        .map(|r| DecisionItem::new(&st, r, pii))
        .collect();
    let onboarding_ids: Vec<uuid::Uuid> = items.iter().map(|d| d.onboarding_id).collect();
    let cases = crate::store::reviews::of_onboardings(&st.db, &onboarding_ids).await?;
    let body = html! {
        form method="get" action="/console/decisions" {
            label.inline { "Outcome "
                select name="outcome" {
                    option value="" { "any" }
                    @for o in ["approved", "rejected", "review", "retry"] {
                        option value=(o) selected[filter.outcome.as_deref() == Some(o)] { (o) }
                    }
                }
            }
            label.inline { "Reason " input name="reason" value=(query.reason.as_deref().unwrap_or("")); }
            label.inline { "Reference starts with " input name="reference" value=(query.reference.as_deref().unwrap_or("")); }
            label.inline { "From " input type="date" name="from" value=(query.from.as_deref().unwrap_or("")); }
            label.inline { "to " input type="date" name="to" value=(query.to.as_deref().unwrap_or("")); }
            @if pii { label.inline { "CPF " input name="cpf" value=(query.cpf.as_deref().unwrap_or("")); } }
            button type="submit" { "Search" }
        }
        @if let Some(notice) = notice { p.error { (notice) } }
        table id="decisions" {
            thead { tr { th { "Decided" } th { "Outcome" } th { "By" } th { "Reasons" } th { "CPF" } th { "Reference" } th { "Case" } } }
            tbody {
                @for d in &items {
                    tr data-href={ "/console/decisions/" (d.id) } {
                        td { a.decision href={ "/console/decisions/" (d.id) } { (at(&d.decided_at)) } }
                        td { (d.outcome) }
                        td { (d.decided_by) @if let Some(r) = &d.reviewer { " (" (r) ")" } }
                        td { (serde_json::from_value::<Vec<Reason>>(d.reasons.clone()).unwrap_or_default().iter().map(|r| r.code.as_str()).collect::<Vec<_>>().join(", ")) }
                        td.cpf { (d.cpf.as_deref().unwrap_or("erased")) }
                        td.ref title=(d.reference.as_deref().unwrap_or("")) { (d.reference.as_deref().unwrap_or("")) }
                        td { @if let Some(case) = cases.iter().rev().find(|c| c.onboarding_id == d.onboarding_id) {
                            a.case href={ "/console/reviews/" (case.id) } { "Case" }
                        } }
                    }
                }
            }
        }
        @if items.len() as i64 == SHOWN {
            p.muted { "The newest " (SHOWN) " are shown; the export holds every decision the search finds." }
        }
        p { a id="export" href=(export) { "Export as CSV" } " (recorded as an export)" }
        (shortcuts(Keys::Rows))
    };
    Ok(page("Decisions", Some(&session), body).into_response())
}

/// What the search finds, as CSV, recorded as the API's exports are.
async fn export(
    State(st): State<AppState>,
    Reader(session): Reader,
    Query(query): Query<DecisionQuery>,
) -> Result<Response, ApiError> {
    let pii = session.caller.has(Scope::PiiRead);
    let (filter, logged) =
        search_of(&st, pii, &query).map_err(|wrong| ApiError::validation("cpf", wrong))?;
    audit::record_search(
        &st.db,
        &session.caller.name,
        "console /console/decisions/export",
        &logged,
    )
    .await?;
    Ok(export_response(st, filter, ExportFormat::Csv, pii))
}

/// One decision as the API explains it, with the onboardings linked to its onboarding.
/// Recorded in the access record like the API's read of a decision.
async fn decision_page(
    State(st): State<AppState>,
    Reader(session): Reader,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = Uuid::parse_str(&id).map_err(|_| ApiError::NotFound("decision"))?;
    audit::record_search(
        &st.db,
        &session.caller.name,
        "console /console/decisions/{id}",
        &serde_json::json!({ "decision_id": id }),
    )
    .await?;
    let row = audit::get(&st.db, id)
        .await?
        .ok_or(ApiError::NotFound("decision"))?;
    let onboarding_id = row.onboarding_id;
    let pii = session.caller.has(Scope::PiiRead);
    let e = Explained::of(&Explanation::load(&st, row, pii).await?)?;
    let links = crate::onboarding::links::of(&st.flow, onboarding_id, LINKS_WINDOW_SECS)
        .await?
        .ok_or(ApiError::NotFound("onboarding"))?;
    let codes: Vec<&str> = e.reasons.iter().map(|r| r.code.as_str()).collect();
    let body = html! {
        div.box id="summary" {
            dl.fields {
                dt { "Outcome" } dd { strong id="outcome" { (e.outcome) } " — " span id="reasons" { (codes.join(", ")) } }
                dt { "Decided" } dd { (at(&e.decided_at)) " by " (e.decided_by)
                    @if let Some(reviewer) = &e.reviewer { " (" (reviewer) ")" } }
                dt { "Policy version" } dd { (e.policy_version) }
                @if pii { dt { "Name" } dd { (e.name.as_deref().unwrap_or("erased")) } }
                dt { "CPF" } dd.cpf id="cpf" { (e.cpf.as_deref().unwrap_or("erased")) }
                dt { "Reference" } dd { (e.reference.as_deref().unwrap_or("—")) }
            }
        }
        (links_section(&links))
        (explained(&e))
    };
    Ok(page("Decision", Some(&session), body).into_response())
}

/// An onboarding, from a link: its review case when it had one, otherwise its latest decision.
async fn onboarding_page(
    State(st): State<AppState>,
    Reader(session): Reader,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = Uuid::parse_str(&id).map_err(|_| ApiError::NotFound("onboarding"))?;
    let cases = crate::store::reviews::of_onboardings(&st.db, &[id]).await?;
    if let Some(case) = cases.last() {
        return Ok(Redirect::to(&format!("/console/reviews/{}", case.id)).into_response());
    }
    if let Some(decision) = crate::store::decisions::for_onboarding(&st.db, id).await? {
        return Ok(Redirect::to(&format!("/console/decisions/{}", decision.id)).into_response());
    }
    if crate::store::onboardings::state(&st.db, id)
        .await?
        .is_none()
    {
        return Err(ApiError::NotFound("onboarding"));
    }
    let body = html! { p.muted id="undecided" { "This onboarding has no decision yet." } };
    Ok(page("Onboarding", Some(&session), body).into_response())
}
