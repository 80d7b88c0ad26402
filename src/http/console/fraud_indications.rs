//! The compliance team's fraud indications.

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::Utc;
use maud::html;

use crate::config::Scope;
use crate::http::console::layout::page;
use crate::http::console::session::Session;
use crate::http::error::ApiError;
use crate::http::state::AppState;
use crate::onboarding::fraud::{CpfShown, IndicationView};
use crate::store::fraud_indications::Filter;

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/console/fraud-indications", get(indications_page))
}

/// Indications the indications page shows at most (the overdue ones first).
const INDICATIONS_SHOWN: i64 = 200;

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
