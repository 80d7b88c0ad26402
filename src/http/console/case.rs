//! A review case: what the reviewer decides on, and the forms that claim, release and resolve
//! it.

use axum::Form;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

use crate::config::Scope;
use crate::domain::fraud::Typology;
use crate::http::console::explanation::{LINKS_WINDOW_SECS, explained, links_section};
use crate::http::console::layout::page;
use crate::http::console::session::Session;
use crate::http::decisions::Explanation;
use crate::http::error::ApiError;
use crate::http::state::AppState;
use crate::onboarding::cases::CaseView;
use crate::onboarding::fraud::ReviewerFraud;
use crate::onboarding::reviews;
use crate::policy::Outcome;
use crate::store::audit;
use crate::store::reviews::Refusal;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/console/reviews/{id}", get(case_page))
        .route("/console/reviews/{id}/{action}", post(act))
}

#[derive(Deserialize, Default)]
struct CaseQuery {
    #[serde(default)]
    done: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

/// What the reviewer typed into the resolution form, shown again beside what is wrong with it.
#[derive(Default)]
struct Typed {
    outcome: String,
    note: String,
    fraud_typology: String,
    fraud_description: String,
}

async fn case_page(
    State(st): State<AppState>,
    session: Session,
    Path(id): Path<String>,
    Query(query): Query<CaseQuery>,
) -> Result<Response, ApiError> {
    if !session.reads_decisions() {
        return Ok(session.refused("reviews:write or decisions:read"));
    }
    let id = Uuid::parse_str(&id).map_err(|_| ApiError::NotFound("review case"))?;
    let body = case_body(&st, &session, id, &query, &Typed::default()).await?;
    Ok(page("Review case", Some(&session), body).into_response())
}

/// The case with its forms; `typed` fills the resolution form in.
async fn case_body(
    st: &AppState,
    session: &Session,
    id: Uuid,
    query: &CaseQuery,
    typed: &Typed,
) -> Result<Markup, ApiError> {
    // The page shows the person's statement, the decision and, with pii:read, the CPF, the name
    // and where the phone was: recorded like the API's reads of the same.
    audit::record_search(
        &st.db,
        &session.caller.name,
        "console /console/reviews/{id}",
        &serde_json::json!({ "case_id": id }),
    )
    .await?;
    let case = crate::store::reviews::get(&st.db, id)
        .await?
        .ok_or(ApiError::NotFound("review case"))?;
    let pii = session.caller.has(Scope::PiiRead);
    let reviewer = session.caller.has(Scope::ReviewsWrite);
    let view = CaseView::of(case.clone(), &st.cipher, reviewer || pii);
    let row = audit::get(&st.db, case.decision_id)
        .await?
        .ok_or(ApiError::NotFound("decision"))?;
    let explanation =
        serde_json::to_value(Explanation::load(st, row, pii).await?).unwrap_or(Value::Null);
    let latest = crate::store::decisions::for_onboarding(&st.db, case.onboarding_id).await?;
    let links = crate::onboarding::links::of(&st.flow, case.onboarding_id, LINKS_WINDOW_SECS)
        .await?
        .ok_or(ApiError::NotFound("onboarding"))?;
    let holds = view.assignee.as_deref() == Some(session.caller.name.as_ref());
    // The person contests this reviewer's own decision: the case is for someone else.
    let contested = view.opened_by == "subject_request"
        && explanation["reviewer"].as_str() == Some(session.caller.name.as_ref());
    let body = html! {
        @if let Some(done) = &query.done { p.notice { (done) } }
        @if let Some(error) = &query.error { p.error id="error" { (error) } }
        div.box id="summary" {
            p { "Status: " strong id="status" { (view.status) }
                @if let Some(assignee) = &view.assignee { " · held by " span id="assignee" { (assignee) } } }
            p { "Opened by " (view.opened_by) " on " (view.opened_at.format("%Y-%m-%d %H:%M UTC"))
                " · due " span class=[view.overdue.then_some("overdue")] { (view.due_at.format("%Y-%m-%d %H:%M UTC")) } }
            p { "CPF: " span id="cpf" { (explanation["cpf"].as_str().unwrap_or("erased")) }
                @if let Some(name) = explanation["name"].as_str() { " · " (name) } }
            p { "Automatic decision: " strong id="automatic" { (explanation["outcome"].as_str().unwrap_or("")) }
                " — reasons " span id="reasons" { (view.reasons.join(", ")) } }
            @if let Some(statement) = &view.statement { p { "The person wrote: " q { (statement) } } }
            @if let Some(latest) = &latest {
                p id="verdict" { "Current verdict: " strong { (latest.outcome) } " (decided by " (latest.decided_by)
                    @if let Some(r) = &latest.reviewer { ", " (r) } ")" }
            }
            @if let Some(resolution) = &view.resolution {
                p id="resolution" { "Resolved " (resolution.outcome) " by " (resolution.reviewer) ": " (resolution.note) }
            }
        }
        @if reviewer && view.status != "resolved" {
            div.box id="actions" {
                @if contested {
                    p.muted id="contested" { "You made the decision this person contests (LGPD Art. 20): another reviewer must review the request." }
                    @if holds {
                        form.inline method="post" action={ "/console/reviews/" (view.id) "/release" } {
                            input type="hidden" name="csrf" value=(session.csrf);
                            button id="release" type="submit" { "Release" }
                        }
                    }
                } @else if !holds {
                    form.inline method="post" action={ "/console/reviews/" (view.id) "/claim" } {
                        input type="hidden" name="csrf" value=(session.csrf);
                        button id="claim" type="submit" { "Claim" }
                    }
                } @else {
                    form.inline method="post" action={ "/console/reviews/" (view.id) "/release" } {
                        input type="hidden" name="csrf" value=(session.csrf);
                        button id="release" type="submit" { "Release" }
                    }
                    form id="resolve" method="post" action={ "/console/reviews/" (view.id) "/resolution" } {
                        input type="hidden" name="csrf" value=(session.csrf);
                        label { "Outcome "
                            select name="outcome" {
                                @for (value, text) in [("approved", "approved"), ("rejected", "rejected"), ("retry", "retry (new capture)")] {
                                    option value=(value) selected[typed.outcome == value] { (text) }
                                }
                            }
                        }
                        label { "Note " textarea name="note" required maxlength="2000" { (typed.note) } }
                        fieldset id="fraud" {
                            legend { "Fraud (with a rejected outcome only)" }
                            label { "Typology "
                                select name="fraud_typology" {
                                    option value="" { "no fraud" }
                                    @for t in Typology::ALL {
                                        option value=(t.as_str()) selected[typed.fraud_typology == t.as_str()] { (t.as_str()) }
                                    }
                                }
                            }
                            label { "Description " textarea name="fraud_description" maxlength="2000" { (typed.fraud_description) } }
                            p.muted { "A typology records a fraud indication with the rejection, shared with the sharing system within 24 hours." }
                        }
                        button type="submit" { "Resolve" }
                    }
                }
            }
        }
        (links_section(&links))
        (explained(&explanation))
    };
    Ok(body)
}

#[derive(Deserialize)]
struct ActionForm {
    csrf: String,
    #[serde(default)]
    outcome: String,
    #[serde(default)]
    note: String,
    #[serde(default)]
    fraud_typology: String,
    #[serde(default)]
    fraud_description: String,
}

async fn act(
    State(st): State<AppState>,
    session: Session,
    Path((id, action)): Path<(String, String)>,
    Form(form): Form<ActionForm>,
) -> Result<Response, ApiError> {
    session.check(&form.csrf)?;
    session.caller.require(Scope::ReviewsWrite)?;
    let id = Uuid::parse_str(&id).map_err(|_| ApiError::NotFound("review case"))?;
    let reviewer: &str = &session.caller.name;
    let result = match action.as_str() {
        "claim" => reviews::claim(&st.flow, id, reviewer)
            .await?
            .map(|_| "Claimed."),
        "release" => reviews::release(&st.flow, id, reviewer)
            .await?
            .map(|_| "Released."),
        "resolution" => {
            let typed = Typed {
                outcome: form.outcome,
                note: form.note,
                fraud_typology: form.fraud_typology,
                fraud_description: form.fraud_description,
            };
            let (outcome, note, fraud) = match resolution(&typed) {
                Ok(resolution) => resolution,
                Err(error) => {
                    // The page again, with what is wrong and what was typed.
                    let query = CaseQuery {
                        done: None,
                        error: Some(error),
                    };
                    let body = case_body(&st, &session, id, &query, &typed).await?;
                    let markup = page("Review case", Some(&session), body);
                    return Ok((StatusCode::UNPROCESSABLE_ENTITY, markup).into_response());
                }
            };
            reviews::resolve(&st.flow, id, reviewer, outcome, note, fraud)
                .await?
                .map(|_| "Resolved.")
        }
        _ => return Err(ApiError::NotFound("console action")),
    };
    Ok(back(
        id,
        result.map_err(|refusal| match refusal {
            Refusal::NotFound => "No such case.",
            Refusal::Resolved => "The case is resolved.",
            Refusal::HeldBy(_) => "Another reviewer holds this case.",
            Refusal::NotAssignee => "Only the reviewer holding the case may do that.",
            Refusal::ContestedDecisionMaker => {
                "You may not review this request: you made the decision this person contests \
                 (LGPD Art. 20). Another reviewer must review it."
            }
        }),
    ))
}

/// An outcome, a note and what a rejection records as fraud.
type Resolution<'a> = (Outcome, &'a str, Option<(Typology, String)>);

/// The resolution the form asks for, as the API takes it (`POST /v1/reviews/{id}/resolution`),
/// or what the page says is wrong with it. A fraud typology or description makes the
/// resolution carry `fraud`, which only a rejection may.
fn resolution(typed: &Typed) -> Result<Resolution<'_>, String> {
    let outcome = match typed.outcome.as_str() {
        "approved" => Outcome::Approved,
        "rejected" => Outcome::Rejected,
        "retry" => Outcome::Retry,
        _ => return Err("Choose an outcome.".into()),
    };
    let note = typed.note.trim();
    if note.is_empty() || note.chars().count() > 2000 || note.contains('\0') {
        return Err("Write a note of 1 to 2000 characters.".into());
    }
    let (typology, description) = (typed.fraud_typology.trim(), typed.fraud_description.trim());
    if typology.is_empty() && description.is_empty() {
        return Ok((outcome, note, None));
    }
    if outcome != Outcome::Rejected {
        return Err("Fraud is recorded only with a rejected outcome.".into());
    }
    let fraud = ReviewerFraud {
        typology: typology.to_owned(),
        description: description.to_owned(),
    };
    match fraud.parse() {
        Ok(parsed) => Ok((outcome, note, Some(parsed))),
        Err(errors) => Err(errors
            .iter()
            .map(|e| format!("The {} {}.", e.field.replace('.', " "), e.message))
            .collect::<Vec<_>>()
            .join(" ")),
    }
}

fn back(id: Uuid, result: Result<&str, &str>) -> Response {
    let (key, text) = match result {
        Ok(text) => ("done", text),
        Err(text) => ("error", text),
    };
    let query = serde_urlencoded::to_string([(key, text)]).unwrap_or_default();
    Redirect::to(&format!("/console/reviews/{id}?{query}")).into_response()
}
