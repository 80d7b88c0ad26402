//! The review queue as a worklist: who each case is about, its reason, age and state, filters
//! by what reviewers ask for (mine, unassigned, who opened it, a reason in use, dates), counts,
//! and pages of `PAGE` cases by keyset.

use axum::Router;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Utc};
use maud::html;
use serde::Deserialize;
use uuid::Uuid;

use crate::config::Scope;
use crate::domain::Cpf;
use crate::http::console::case::opened_by;
use crate::http::console::layout::{Keys, age, at, day, day_start, flash, page, shortcuts};
use crate::http::console::session::Reader;
use crate::http::error::ApiError;
use crate::http::state::AppState;
use crate::store::reviews::{CaseCursor, CaseFilter, Direction};

/// Cases on a page.
const PAGE: i64 = 50;

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/console/reviews", get(queue))
}

#[derive(Deserialize, Default)]
struct QueueQuery {
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    overdue: Option<String>,
    /// mine, unassigned, or empty for everyone's.
    #[serde(default)]
    who: Option<String>,
    /// policy or subject_request.
    #[serde(default)]
    opened_by: Option<String>,
    /// Opened on or after this São Paulo day (YYYY-MM-DD).
    #[serde(default)]
    from: Option<String>,
    /// Opened on or before this São Paulo day.
    #[serde(default)]
    to: Option<String>,
    /// `{due_at micros}/{id}` of the page's edge.
    #[serde(default)]
    after: Option<String>,
    #[serde(default)]
    before: Option<String>,
}

fn cursor(raw: &Option<String>) -> Option<CaseCursor> {
    let (micros, id) = raw.as_deref()?.split_once('/')?;
    Some(CaseCursor {
        due_at: DateTime::<Utc>::from_timestamp_micros(micros.parse().ok()?)?,
        id: Uuid::parse_str(id).ok()?,
    })
}

fn cursor_text(due_at: &DateTime<Utc>, id: Uuid) -> String {
    format!("{}/{id}", due_at.timestamp_micros())
}

async fn queue(
    State(st): State<AppState>,
    Reader(session): Reader,
    Query(query): Query<QueueQuery>,
) -> Result<Response, ApiError> {
    let clean = |v: &Option<String>| v.clone().filter(|s| !s.is_empty() && !s.contains('\0'));
    let status =
        clean(&query.status).filter(|s| matches!(s.as_str(), "open" | "claimed" | "resolved"));
    let who = clean(&query.who).filter(|w| matches!(w.as_str(), "mine" | "unassigned"));
    let filter = CaseFilter {
        // The queue is what is left to do; resolved cases are one filter away.
        unresolved: status.is_none(),
        status: status.clone(),
        assignee: (who.as_deref() == Some("mine")).then(|| session.caller.name.to_string()),
        unassigned: who.as_deref() == Some("unassigned"),
        reason: clean(&query.reason),
        opened_by: clean(&query.opened_by)
            .filter(|o| matches!(o.as_str(), "policy" | "subject_request")),
        overdue: query.overdue.as_deref() == Some("on"),
        opened_from: clean(&query.from).and_then(|d| day_start(&d)),
        opened_to: clean(&query.to)
            .and_then(|d| day_start(&d))
            .map(|t| t + chrono::Duration::days(1)),
    };
    let (edge, direction) = match (cursor(&query.after), cursor(&query.before)) {
        (Some(c), _) => (Some(c), Direction::After),
        (None, Some(c)) => (Some(c), Direction::Before),
        (None, None) => (None, Direction::After),
    };
    // One more than a page tells whether there is another page that way.
    let mut cases = crate::store::reviews::page(&st.db, &filter, edge, direction, PAGE + 1).await?;
    let more = cases.len() as i64 > PAGE;
    if more {
        match direction {
            Direction::After => cases.truncate(PAGE as usize),
            Direction::Before => {
                cases.remove(0);
            }
        }
    }
    let has_next = (direction == Direction::After && more) || direction == Direction::Before;
    let has_previous =
        (direction == Direction::Before && more) || edge.is_some() && direction == Direction::After;
    let (total, open, claimed, resolved, overdue) =
        crate::store::reviews::count(&st.db, &filter).await?;
    let reasons = crate::store::reviews::reasons_in_use(&st.db).await?;
    let ids: Vec<Uuid> = cases.iter().map(|c| c.id).collect();
    let same = crate::store::reviews::same_person_open(&st.db, &ids).await?;
    let onboarding_ids: Vec<Uuid> = cases.iter().map(|c| c.onboarding_id).collect();
    let onboardings = crate::store::onboardings::many(&st.db, &onboarding_ids).await?;
    let pii = session.caller.has(Scope::PiiRead);
    if pii && !cases.is_empty() {
        // Whole CPFs and names: an access to personal data, recorded as the API's reads are.
        crate::store::audit::record_search(
            &st.db,
            &session.caller.name,
            "console /console/reviews",
            &serde_json::json!({ "cases": ids }),
        )
        .await?;
    }
    let person = |onboarding_id: Uuid| {
        let row = onboardings.iter().find(|o| o.id == onboarding_id)?;
        let data = row.person(&st.cipher).ok().flatten();
        let cpf = data.as_ref().and_then(|p| Cpf::parse(&p.cpf).ok());
        Some((
            cpf.map(|c| if pii { c.punctuated() } else { c.masked() }),
            data.and_then(|p| p.name).filter(|_| pii),
            row.reference.clone(),
        ))
    };
    let shown = session.take_flash(&st).await?;
    let link = |key: &str, value: String| {
        let mut pairs: Vec<(&str, String)> = [
            ("status", status.clone()),
            ("reason", filter.reason.clone()),
            ("who", who.clone()),
            ("opened_by", filter.opened_by.clone()),
            ("from", clean(&query.from)),
            ("to", clean(&query.to)),
            ("overdue", filter.overdue.then(|| "on".to_owned())),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect();
        pairs.push((key, value));
        format!(
            "/console/reviews?{}",
            serde_urlencoded::to_string(pairs).unwrap_or_default()
        )
    };
    let body = html! {
        (flash(&shown))
        form method="get" action="/console/reviews" id="filters" {
            label.inline { "Status "
                select name="status" {
                    option value="" { "open and claimed" }
                    @for s in ["open", "claimed", "resolved"] {
                        option value=(s) selected[status.as_deref() == Some(s)] { (s) }
                    }
                }
            }
            label.inline { "Held by "
                select name="who" {
                    option value="" { "anyone" }
                    option value="mine" selected[who.as_deref() == Some("mine")] { "me" }
                    option value="unassigned" selected[who.as_deref() == Some("unassigned")] { "nobody" }
                }
            }
            label.inline { "Opened "
                select name="opened_by" {
                    option value="" { "either way" }
                    option value="policy" selected[filter.opened_by.as_deref() == Some("policy")] { "automatic" }
                    option value="subject_request" selected[filter.opened_by.as_deref() == Some("subject_request")] { "Art. 20 request" }
                }
            }
            label.inline { "Reason "
                select name="reason" {
                    option value="" { "any" }
                    @for r in &reasons { option value=(r) selected[filter.reason.as_deref() == Some(r)] { (r) } }
                }
            }
            label.inline { "From " input type="date" name="from" value=(clean(&query.from).unwrap_or_default()); }
            label.inline { "to " input type="date" name="to" value=(clean(&query.to).unwrap_or_default()); }
            label.inline { input type="checkbox" name="overdue" checked[filter.overdue]; " overdue only" }
            button type="submit" { "Filter" }
        }
        p.counts id="counts" {
            span { strong id="total" { (total) } " cases" }
            span { (open) " open" } span { (claimed) " claimed" } span { (resolved) " resolved" }
            span class=[(overdue > 0).then_some("overdue")] { (overdue) " overdue" }
        }
        @if cases.is_empty() {
            p.muted { "No case matches." }
        } @else {
            table id="queue" {
                thead { tr { th { "Due" } th { "Age" } th { "CPF" } @if pii { th { "Name" } } th { "Reference" } th { "Opened" } th { "Reasons" } th { "Status" } th { "Held by" } th { "" } } }
                tbody {
                    @for case in &cases {
                        @let (cpf, name, reference) = person(case.onboarding_id).unwrap_or((None, None, None));
                        @let late = case.status != "resolved" && case.due_at < Utc::now();
                        tr.case-row.same[same.contains(&case.id)] data-href={ "/console/reviews/" (case.id) } {
                            td class=[late.then_some("overdue")] { (at(&case.due_at)) }
                            td.nowrap { (age(&case.opened_at)) }
                            td.cpf { (cpf.as_deref().unwrap_or("erased")) }
                            @if pii { td { (name.as_deref().unwrap_or("—")) } }
                            td.ref title=(reference.as_deref().unwrap_or("")) { (reference.as_deref().unwrap_or("")) }
                            td.nowrap { (opened_by(&case.opened_by)) }
                            td { (case.reasons.join(", ")) }
                            td {
                                (case.status)
                                @if let (Some(outcome), Some(resolved_at)) = (&case.resolution_outcome, &case.resolved_at) {
                                    " " strong.outcome { (outcome) } br; (at(resolved_at))
                                }
                                @if same.contains(&case.id) { br; span.tag.same-person title="Another unresolved case has this CPF" { "same person" } }
                            }
                            td { (case.assignee.as_deref().unwrap_or("—")) }
                            td { a.case href={ "/console/reviews/" (case.id) } { "Open" } }
                        }
                    }
                }
            }
            nav.pages id="paging" {
                @if has_previous {
                    @if let Some(first) = cases.first() { a id="previous" href=(link("before", cursor_text(&first.due_at, first.id))) { "← Previous " (PAGE) } }
                }
                @if has_next {
                    @if let Some(last) = cases.last() { a id="next" href=(link("after", cursor_text(&last.due_at, last.id))) { "Next " (PAGE) " →" } }
                }
            }
        }
        p.muted { "Times are São Paulo's. Dates filter by the day a case was opened; today is " (day(&Utc::now())) "." }
        (shortcuts(Keys::Rows))
    };
    Ok(page("Review queue", Some(&session), body).into_response())
}
