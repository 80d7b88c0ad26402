//! The decisions: their search, one decision, and the way from a linked onboarding to its case
//! or decision.

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use maud::html;
use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

use crate::config::Scope;
use crate::domain::Cpf;
use crate::http::console::explanation::{LINKS_WINDOW_SECS, explained, links_section};
use crate::http::console::layout::page;
use crate::http::console::session::Session;
use crate::http::decisions::{DecisionItem, Explanation};
use crate::http::error::ApiError;
use crate::http::state::AppState;
use crate::store::audit;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/console/decisions", get(decisions))
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
}

async fn decisions(
    State(st): State<AppState>,
    session: Session,
    Query(query): Query<DecisionQuery>,
) -> Result<Response, ApiError> {
    if !session.reads_decisions() {
        return Ok(session.refused("reviews:write or decisions:read"));
    }
    let pii = session.caller.has(Scope::PiiRead);
    let clean = |v: &Option<String>| v.clone().filter(|s| !s.is_empty() && !s.contains('\0'));
    let mut filter = audit::DecisionFilter {
        outcome: clean(&query.outcome)
            .filter(|o| matches!(o.as_str(), "approved" | "rejected" | "review" | "retry")),
        reason: clean(&query.reason),
        reference: clean(&query.reference),
        ..Default::default()
    };
    let mut notice = None;
    if let Some(cpf) = clean(&query.cpf) {
        match (pii, Cpf::parse(&cpf)) {
            (true, Ok(cpf)) => filter.cpf_hash = Some(st.cipher.cpf_hash(&cpf.digits())),
            (true, Err(_)) => notice = Some("Not a valid CPF."),
            (false, _) => notice = Some("Searching by CPF needs the pii:read scope."),
        }
    }
    let rows = if notice.is_some() {
        Vec::new()
    } else {
        // Recorded like the API's searches: the filters, a CPF only as its keyed hash.
        let logged = serde_json::json!({
            "outcome": filter.outcome,
            "reason": filter.reason,
            "reference": filter.reference,
            "cpf": filter.cpf_hash.as_ref().map(|h| serde_json::json!({ "hmac": hex::encode(h) })),
        });
        audit::record_search(
            &st.db,
            &session.caller.name,
            "console /console/decisions",
            &logged,
        )
        .await?;
        audit::search(&st.reads, &filter, None, 100).await?
    };
    let items: Vec<DecisionItem> = rows
        .iter()
        .map(|r| DecisionItem::new(&st, r, pii))
        .collect();
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
            label.inline { "Reference " input name="reference" value=(query.reference.as_deref().unwrap_or("")); }
            @if pii { label.inline { "CPF " input name="cpf" value=(query.cpf.as_deref().unwrap_or("")); } }
            button type="submit" { "Search" }
        }
        @if let Some(notice) = notice { p.error { (notice) } }
        table id="decisions" {
            thead { tr { th { "Decided" } th { "Outcome" } th { "By" } th { "Reasons" } th { "CPF" } th { "Reference" } } }
            tbody {
                @for d in &items {
                    tr {
                        td { a.decision href={ "/console/decisions/" (d.id) } { (d.decided_at.format("%Y-%m-%d %H:%M:%S UTC")) } }
                        td { (d.outcome) }
                        td { (d.decided_by) @if let Some(r) = &d.reviewer { " (" (r) ")" } }
                        td { @for r in d.reasons.as_array().into_iter().flatten() { (r["code"].as_str().unwrap_or("")) " " } }
                        td { (d.cpf.as_deref().unwrap_or("erased")) }
                        td { (d.reference.as_deref().unwrap_or("")) }
                    }
                }
            }
        }
    };
    Ok(page("Decisions", Some(&session), body).into_response())
}

/// One decision as the API explains it, with the onboardings linked to its onboarding.
/// Recorded in the access record like the API's read of a decision.
async fn decision_page(
    State(st): State<AppState>,
    session: Session,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    if !session.reads_decisions() {
        return Ok(session.refused("reviews:write or decisions:read"));
    }
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
    let explanation =
        serde_json::to_value(Explanation::load(&st, row, pii).await?).unwrap_or(Value::Null);
    let links = crate::onboarding::links::of(&st.flow, onboarding_id, LINKS_WINDOW_SECS)
        .await?
        .ok_or(ApiError::NotFound("onboarding"))?;
    let codes: Vec<&str> = explanation["reasons"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["code"].as_str())
        .collect();
    let body = html! {
        div.box id="summary" {
            p { "Outcome: " strong id="outcome" { (explanation["outcome"].as_str().unwrap_or("")) }
                " — reasons " span id="reasons" { (codes.join(", ")) } }
            p { "Decided by " (explanation["decided_by"].as_str().unwrap_or(""))
                @if let Some(reviewer) = explanation["reviewer"].as_str() { " (" (reviewer) ")" }
                " on " (explanation["decided_at"].as_str().unwrap_or(""))
                " under policy " (explanation["policy_version"].as_str().unwrap_or("")) }
            p { "CPF: " span id="cpf" { (explanation["cpf"].as_str().unwrap_or("erased")) }
                @if let Some(name) = explanation["name"].as_str() { " · " (name) }
                @if let Some(reference) = explanation["reference"].as_str() { " · reference " (reference) } }
        }
        (links_section(&links))
        (explained(&explanation))
    };
    Ok(page("Decision", Some(&session), body).into_response())
}

/// An onboarding, from a link: its review case when it had one, otherwise its latest decision.
async fn onboarding_page(
    State(st): State<AppState>,
    session: Session,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    if !session.reads_decisions() {
        return Ok(session.refused("reviews:write or decisions:read"));
    }
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
