//! A review case: who the person is, what ties them to others, the evidence, the notes, and the
//! forms that claim, release, note and resolve it.

use axum::Form;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::{Markup, html};
use serde::Deserialize;
use uuid::Uuid;

use crate::config::Scope;
use crate::domain::fraud::Typology;
use crate::http::console::explanation::{Explained, LINKS_WINDOW_SECS, explained, links_section};
use crate::http::console::layout::{Keys, at, flash, page, shortcuts};
use crate::http::console::session::{Flash, Reader, Session};
use crate::http::decisions::Explanation;
use crate::http::error::ApiError;
use crate::http::state::AppState;
use crate::onboarding::cases::CaseView;
use crate::onboarding::fraud::ReviewerFraud;
use crate::onboarding::notes::{self, NoteRefusal};
use crate::onboarding::reviews;
use crate::policy::Outcome;
use crate::store::audit;
use crate::store::reviews::{CaseCursor, CaseFilter, CaseRow, Direction, Refusal};

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/console/reviews/{id}", get(case_page))
        .route("/console/reviews/{id}/{action}", post(act))
}

/// What the reviewer typed into a form, shown again beside what is wrong with it.
#[derive(Default)]
struct Typed {
    outcome: String,
    note: String,
    answer: String,
    fraud_typology: String,
    fraud_description: String,
    /// A note for the thread.
    thread_note: String,
}

/// The label of who opened a case.
pub(super) fn opened_by(opened_by: &str) -> &str {
    match opened_by {
        "subject_request" => "Art. 20 request",
        "policy" => "automatic",
        other => other,
    }
}

async fn case_page(
    State(st): State<AppState>,
    Reader(session): Reader,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = Uuid::parse_str(&id).map_err(|_| ApiError::NotFound("review case"))?;
    let shown = session.take_flash(&st).await?;
    let body = case_body(&st, &session, id, &shown, &Typed::default()).await?;
    Ok(page("Review case", Some(&session), body).into_response())
}

/// The cases just before and after `case` in the queue of unresolved cases.
async fn neighbours(
    st: &AppState,
    case: &CaseRow,
) -> Result<(Option<Uuid>, Option<Uuid>), ApiError> {
    let filter = CaseFilter {
        unresolved: true,
        ..CaseFilter::default()
    };
    let cursor = Some(CaseCursor {
        due_at: case.due_at,
        id: case.id,
    });
    let before = crate::store::reviews::page(&st.db, &filter, cursor, Direction::Before, 1).await?;
    let after = crate::store::reviews::page(&st.db, &filter, cursor, Direction::After, 1).await?;
    Ok((before.first().map(|c| c.id), after.first().map(|c| c.id)))
}

/// The case with its forms; `typed` fills them in again.
async fn case_body(
    st: &AppState,
    session: &Session,
    id: Uuid,
    shown: &Option<Flash>,
    typed: &Typed,
) -> Result<Markup, ApiError> {
    // The page shows the person's statement, the notes, the decision and, with pii:read, the
    // CPF, the name and where the phone was: recorded like the API's reads of the same.
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
    let (previous, next) = neighbours(st, &case).await?;
    let view = CaseView::of(case.clone(), &st.cipher, reviewer || pii);
    let row = audit::get(&st.db, case.decision_id)
        .await?
        .ok_or(ApiError::NotFound("decision"))?;
    let policy_version = row.policy_version.clone();
    let e = Explained::of(&Explanation::load(st, row, pii).await?)?;
    let onboarding = crate::store::onboardings::get(&st.db, case.onboarding_id).await?;
    let device_id = onboarding
        .and_then(|o| serde_json::from_value::<DeviceSeen>(o.device).ok())
        .and_then(|d| d.device_id);
    let latest = crate::store::decisions::for_onboarding(&st.db, case.onboarding_id).await?;
    let links = crate::onboarding::links::of(&st.flow, case.onboarding_id, LINKS_WINDOW_SECS)
        .await?
        .ok_or(ApiError::NotFound("onboarding"))?;
    let thread = notes::thread(&st.flow, id).await?;
    let (answers, internal): (Vec<_>, Vec<_>) = thread.iter().partition(|n| n.kind == "answer");
    let holds = view.assignee.as_deref() == Some(session.caller.name.as_ref());
    let held_by_other = view.assignee.is_some() && !holds;
    let asked = view.opened_by == "subject_request";
    // The person contests this reviewer's own decision: the case is for someone else.
    let contested = asked && e.reviewer.as_deref() == Some(session.caller.name.as_ref());
    let open = view.status != "resolved";
    let body = html! {
        (flash(shown))
        nav.pages id="steps" {
            a href="/console/reviews" { "← Queue" }
            @if let Some(p) = previous { a rel="prev" href={ "/console/reviews/" (p) } { "Previous case" } }
            @if let Some(n) = next { a rel="next" href={ "/console/reviews/" (n) } { "Next case" } }
        }
        div.pair {
            div.box id="summary" {
                dl.fields {
                    dt { "Status" } dd { strong id="status" { (view.status) }
                        @if let Some(assignee) = &view.assignee { " · held by " span id="assignee" { (assignee) } } }
                    dt { "Opened" } dd { span id="opened-by" { (opened_by(&view.opened_by)) } " · " (at(&view.opened_at)) }
                    dt { "Due" } dd class=[view.overdue.then_some("overdue")] { (at(&view.due_at)) @if view.overdue { " (overdue)" } }
                    dt { "Automatic decision" } dd { strong id="automatic" { (e.outcome) } " — " span id="reasons" { (view.reasons.join(", ")) } }
                    @if let Some(latest) = &latest {
                        dt { "Current verdict" } dd id="verdict" { strong { (latest.outcome) } " (decided by " (latest.decided_by)
                            @if let Some(r) = &latest.reviewer { ", " (r) } ")" }
                    }
                    @if let Some(resolution) = &view.resolution {
                        dt { "Resolution" } dd id="resolution" { (resolution.outcome) " by " (resolution.reviewer) ": " (resolution.note)
                            @if let Some(at_) = &view.resolved_at { " · " (at(at_)) } }
                    }
                }
            }
            div.box id="person" {
                dl.fields {
                    dt { "Name" } dd id="name" { @if pii { (e.name.as_deref().unwrap_or("erased")) } @else { span.muted { "needs pii:read" } } }
                    dt { "CPF" } dd.cpf id="cpf" { (e.cpf.as_deref().unwrap_or("erased")) }
                    dt { "Reference" } dd id="reference" { (e.reference.as_deref().unwrap_or("—")) }
                    dt { "Device" } dd id="device" { (device_id.as_deref().unwrap_or("—")) }
                    dt { "Policy version" } dd id="policy-version" { (policy_version) }
                    @if let Some(statement) = &view.statement { dt { "The person wrote" } dd { q id="statement" { (statement) } } }
                }
            }
        }
        @if reviewer && open {
            div.box id="actions" {
                @if contested {
                    p.muted id="contested" { "You made the decision this person contests (LGPD Art. 20): another reviewer must review the request." }
                    @if holds { (post_button(session, view.id, "release", "Release")) }
                } @else if held_by_other {
                    p.muted id="held" { "Held by " (view.assignee.as_deref().unwrap_or("")) ": only they may resolve or release it." }
                    button id="claim" type="button" disabled { "Claim" }
                } @else if !holds {
                    (post_button(session, view.id, "claim", "Claim"))
                } @else {
                    (post_button(session, view.id, "release", "Release"))
                    form id="resolve" method="post" action={ "/console/reviews/" (view.id) "/resolution" } {
                        input type="hidden" name="csrf" value=(session.csrf);
                        label { "Outcome "
                            select name="outcome" {
                                @for (value, text) in [("approved", "approved"), ("rejected", "rejected"), ("retry", "retry (new capture)")] {
                                    option value=(value) selected[typed.outcome == value] { (text) }
                                }
                            }
                        }
                        label { "Note (internal, kept with the decision) " textarea name="note" required maxlength="2000" { (typed.note) } }
                        @if asked {
                            label { "Answer to the person (sent to the onboarding backend with the resolution) "
                                textarea name="answer" id="answer" required maxlength="2000" { (typed.answer) } }
                        }
                        details id="fraud" open[!typed.fraud_typology.is_empty() || !typed.fraud_description.is_empty()] {
                            summary { "Record fraud (with a rejected outcome only)" }
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
        @if asked {
            div.box id="answer-to-person" {
                h2 { "Answer to the person (Art. 20)" }
                @if answers.is_empty() {
                    p.muted { "Not written yet: it is written with the resolution, due " (at(&view.due_at)) "." }
                }
                @for n in &answers { (note(n)) }
            }
        }
        h2 { "Notes" }
        div id="notes" {
            @if internal.is_empty() { p.muted { "No note yet." } }
            @for n in &internal { (note(n)) }
        }
        @if reviewer && open {
            form id="add-note" method="post" action={ "/console/reviews/" (view.id) "/note" } {
                input type="hidden" name="csrf" value=(session.csrf);
                label { "Note " textarea name="thread_note" required maxlength="2000" { (typed.thread_note) } }
                button type="submit" { "Add note" }
            }
        }
        (links_section(&links))
        (explained(&e))
        (shortcuts(Keys::Case))
    };
    Ok(body)
}

/// What the onboarding held of the device, for its id.
#[derive(Deserialize)]
struct DeviceSeen {
    device_id: Option<String>,
}

fn note(n: &notes::NoteView) -> Markup {
    html! {
        div.note.answer[n.kind == "answer"] {
            p.muted { strong { (n.author) } " · " (at(&n.created_at)) }
            p.text { (n.text.as_deref().unwrap_or("(erased)")) }
        }
    }
}

fn post_button(session: &Session, id: Uuid, action: &str, text: &str) -> Markup {
    html! {
        form.inline method="post" action={ "/console/reviews/" (id) "/" (action) } {
            input type="hidden" name="csrf" value=(session.csrf);
            button id=(action) type="submit" { (text) }
        }
    }
}

#[derive(Deserialize)]
struct ActionForm {
    csrf: String,
    #[serde(default)]
    outcome: String,
    #[serde(default)]
    note: String,
    #[serde(default)]
    answer: String,
    #[serde(default)]
    fraud_typology: String,
    #[serde(default)]
    fraud_description: String,
    #[serde(default)]
    thread_note: String,
}

async fn act(
    State(st): State<AppState>,
    session: Session,
    Path((id, action)): Path<(String, String)>,
    Form(form): Form<ActionForm>,
) -> Result<Response, ApiError> {
    session.check(&form.csrf)?;
    if !session.caller.has(Scope::ReviewsWrite) {
        return Ok(session.refused("reviews:write"));
    }
    let id = Uuid::parse_str(&id).map_err(|_| ApiError::NotFound("review case"))?;
    let reviewer: &str = &session.caller.name;
    let typed = Typed {
        outcome: form.outcome,
        note: form.note,
        answer: form.answer,
        fraud_typology: form.fraud_typology,
        fraud_description: form.fraud_description,
        thread_note: form.thread_note,
    };
    let result = match action.as_str() {
        "claim" => reviews::claim(&st.flow, id, reviewer)
            .await?
            .map(|_| "Claimed."),
        "release" => reviews::release(&st.flow, id, reviewer)
            .await?
            .map(|_| "Released."),
        "note" => match notes::add(&st.flow, id, reviewer, &typed.thread_note).await? {
            Ok(_) => Ok("Note added."),
            Err(NoteRefusal::NotFound) => return Err(ApiError::NotFound("review case")),
            Err(refusal) => {
                let error = match refusal {
                    NoteRefusal::Resolved => "The case is resolved: its notes are closed.",
                    _ => "Write a note of 1 to 2000 characters.",
                };
                return again(&st, &session, id, error, &typed).await;
            }
        },
        "resolution" => {
            let (outcome, note, fraud, answer) = match resolution(&typed) {
                Ok(resolution) => resolution,
                // The page again, with what is wrong and what was typed.
                Err(error) => return again(&st, &session, id, &error, &typed).await,
            };
            let resolution = reviews::Resolution {
                outcome,
                note,
                fraud,
                answer,
                answer_required: true,
            };
            match reviews::resolve(&st.flow, id, reviewer, resolution).await? {
                Ok(_) => {
                    session
                        .flash(
                            &st,
                            Flash::Notice("Resolved. This is the next case.".into()),
                        )
                        .await?;
                    return Ok(Redirect::to(&next_case(&st, reviewer).await?).into_response());
                }
                Err(refusal) => {
                    return again(&st, &session, id, refused(&refusal), &typed).await;
                }
            }
        }
        _ => return Err(ApiError::NotFound("console action")),
    };
    let shown = match result {
        Ok(text) => Flash::Notice(text.to_owned()),
        Err(refusal) => Flash::Error(refused(&refusal).to_owned()),
    };
    session.flash(&st, shown).await?;
    Ok(Redirect::to(&format!("/console/reviews/{id}")).into_response())
}

/// The case page again with `error` and what was typed: nothing the reviewer wrote is lost.
async fn again(
    st: &AppState,
    session: &Session,
    id: Uuid,
    error: &str,
    typed: &Typed,
) -> Result<Response, ApiError> {
    let shown = Some(Flash::Error(error.to_owned()));
    let body = case_body(st, session, id, &shown, typed).await?;
    let markup = page("Review case", Some(session), body);
    Ok((StatusCode::UNPROCESSABLE_ENTITY, markup).into_response())
}

/// Where a reviewer goes after a resolution: the first unresolved case they hold, else the
/// first open one nobody holds (soonest due), else the queue.
async fn next_case(st: &AppState, reviewer: &str) -> Result<String, ApiError> {
    for filter in [
        CaseFilter {
            status: Some("claimed".into()),
            assignee: Some(reviewer.to_owned()),
            ..CaseFilter::default()
        },
        CaseFilter {
            unassigned: true,
            ..CaseFilter::default()
        },
    ] {
        let cases = crate::store::reviews::list(&st.db, &filter, None, 1).await?;
        if let Some(case) = cases.first() {
            return Ok(format!("/console/reviews/{}", case.id));
        }
    }
    Ok("/console/reviews".to_owned())
}

fn refused(refusal: &Refusal) -> &'static str {
    match refusal {
        Refusal::NotFound => "No such case.",
        Refusal::Resolved => "The case is resolved.",
        Refusal::HeldBy(_) => "Another reviewer holds this case.",
        Refusal::NotAssignee => "Only the reviewer holding the case may do that.",
        Refusal::ContestedDecisionMaker => {
            "You may not review this request: you made the decision this person contests \
             (LGPD Art. 20). Another reviewer must review it."
        }
        Refusal::AnswerWithoutRequest => "Only a case the person opened takes an answer to them.",
        Refusal::AnswerMissing => "Write the answer to the person: they asked for this review.",
    }
}

/// An outcome, a note and what a rejection records as fraud.
type Resolution<'a> = (
    Outcome,
    &'a str,
    Option<(Typology, String)>,
    Option<&'a str>,
);

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
    let answer = match typed.answer.trim() {
        "" => None,
        text => match notes::valid_text(text) {
            Some(text) => Some(text),
            None => return Err("Write an answer to the person of 1 to 2000 characters.".into()),
        },
    };
    let (typology, description) = (typed.fraud_typology.trim(), typed.fraud_description.trim());
    if typology.is_empty() && description.is_empty() {
        return Ok((outcome, note, None, answer));
    }
    if outcome != Outcome::Rejected {
        return Err("Fraud is recorded only with a rejected outcome.".into());
    }
    let fraud = ReviewerFraud {
        typology: typology.to_owned(),
        description: description.to_owned(),
    };
    match fraud.parse() {
        Ok(parsed) => Ok((outcome, note, Some(parsed), answer)),
        Err(errors) => Err(errors
            .iter()
            .map(|e| format!("The {} {}.", e.field.replace('.', " "), e.message))
            .collect::<Vec<_>>()
            .join(" ")),
    }
}
