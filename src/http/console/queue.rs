//! The review queue.

use axum::Router;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use maud::html;
use serde::Deserialize;

use crate::config::Scope;
use crate::http::console::layout::page;
use crate::http::console::session::Session;
use crate::http::error::ApiError;
use crate::http::state::AppState;
use crate::onboarding::cases::CaseView;
use crate::store::reviews::CaseFilter;

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
}

async fn queue(
    State(st): State<AppState>,
    session: Session,
    Query(query): Query<QueueQuery>,
) -> Result<Response, ApiError> {
    if !session.reads_decisions() {
        return Ok(session.refused("reviews:write or decisions:read"));
    }
    let status = query
        .status
        .filter(|s| matches!(s.as_str(), "open" | "claimed" | "resolved"));
    let filter = CaseFilter {
        status: status.clone(),
        assignee: None,
        reason: query
            .reason
            .clone()
            .filter(|r| !r.is_empty() && !r.contains('\0')),
        overdue: query.overdue.as_deref() == Some("on"),
    };
    let mut cases = crate::store::reviews::list(&st.db, &filter, None, 200).await?;
    if status.is_none() {
        // The queue is what is left to do; resolved cases are one filter away.
        cases.retain(|c| c.status != "resolved");
    }
    let statements = session.caller.has(Scope::ReviewsWrite) || session.caller.has(Scope::PiiRead);
    let cases: Vec<CaseView> = cases
        .into_iter()
        .map(|c| CaseView::of(c, &st.cipher, statements))
        .collect();
    let body = html! {
        form method="get" action="/console/reviews" {
            label.inline { "Status "
                select name="status" {
                    option value="" { "open and claimed" }
                    @for s in ["open", "claimed", "resolved"] {
                        option value=(s) selected[status.as_deref() == Some(s)] { (s) }
                    }
                }
            }
            label.inline { "Reason " input name="reason" value=(query.reason.as_deref().unwrap_or("")); }
            label.inline { input type="checkbox" name="overdue" checked[filter.overdue]; " overdue only" }
            button type="submit" { "Filter" }
        }
        @if cases.is_empty() {
            p.muted { "No case matches." }
        } @else {
            table id="queue" {
                thead { tr { th { "Due" } th { "Status" } th { "Opened by" } th { "Reasons" } th { "Assignee" } th { "Case" } } }
                tbody {
                    @for case in &cases {
                        tr {
                            td class=[case.overdue.then_some("overdue")] {
                                (case.due_at.format("%Y-%m-%d %H:%M UTC")) @if case.overdue { " (overdue)" }
                            }
                            td { (case.status) }
                            td { (case.opened_by) }
                            td { (case.reasons.join(", ")) }
                            td { (case.assignee.as_deref().unwrap_or("—")) }
                            td { a.case href={ "/console/reviews/" (case.id) } { "Open" } }
                        }
                    }
                }
            }
        }
    };
    Ok(page("Review queue", Some(&session), body).into_response())
}
