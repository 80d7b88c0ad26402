//! The risk team's lists: they go through the same flow functions as `/v1/lists` and record
//! the session's key name as who did it.

use axum::Router;
use axum::extract::{Form, Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use chrono::NaiveDate;
use maud::html;
use serde::Deserialize;

use crate::config::Scope;
use crate::http::console::layout::page;
use crate::http::console::session::Session;
use crate::http::error::ApiError;
use crate::http::state::AppState;
use crate::onboarding::lists::{self, EntryInput, NewEntries, Outcome, Removal};

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/console/lists", get(lists_page))
        .route("/console/lists/{name}/entries", post(add_entry))
        .route("/console/lists/{name}/removal", post(remove_entry))
}

/// Live entries a list's page shows at most (newest first).
const ENTRIES_SHOWN: i64 = 200;

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
