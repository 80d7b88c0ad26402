//! The policy versions, and how one of them compares over recent decisions.

use axum::Router;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use maud::html;
use serde::Deserialize;

use crate::http::console::layout::page;
use crate::http::console::session::Reader;
use crate::http::error::ApiError;
use crate::http::state::AppState;

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/console/policies", get(policies_page))
}

#[derive(Deserialize, Default)]
struct PoliciesQuery {
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    days: Option<i64>,
}

/// The versions, and for one of them its replay over recent decisions beside its shadow report.
async fn policies_page(
    State(st): State<AppState>,
    Reader(session): Reader,
    Query(query): Query<PoliciesQuery>,
) -> Result<Response, ApiError> {
    let versions = crate::store::policies::list(&st.db).await?;
    let days = query.days.unwrap_or(7).clamp(1, 90);
    let chosen = query
        .version
        .clone()
        .filter(|v| versions.iter().any(|r| &r.version == v))
        .or_else(|| {
            versions
                .iter()
                .find(|r| r.status == "shadow" || r.status == "draft")
                .map(|r| r.version.clone())
        });
    let to = chrono::Utc::now();
    let from = to - chrono::Duration::days(days);
    let mut compared = None;
    if let Some(version) = &chosen {
        let row = versions.iter().find(|r| &r.version == version);
        if let Some(policy) = row
            .and_then(|r| r.document().ok())
            .and_then(|d| d.parse().ok())
        {
            let replay =
                crate::onboarding::replay::run(&st.flow, from, to, 10_000, version, |_| {
                    policy.clone()
                })
                .await?;
            let shadow =
                crate::onboarding::policies::shadow_report(&st.flow, version, from, to).await?;
            compared = Some((replay, shadow));
        }
    }
    let body = html! {
        table id="versions" {
            thead { tr { th { "Version" } th { "Status" } th { "Created by" } th { "Published by" } th { "" } } }
            tbody {
                @for v in &versions {
                    tr {
                        td { (v.version) }
                        td { (v.status) }
                        td { (v.created_by) " · " (v.created_at.format("%Y-%m-%d %H:%M")) }
                        td { (v.published_by.as_deref().unwrap_or("—")) }
                        td { a href={ "/console/policies?version=" (v.version) "&days=" (days) } { "Compare" } }
                    }
                }
            }
        }
        @if let (Some(version), Some((replay, shadow))) = (&chosen, &compared) {
            h2 { "Version " (version) " over the last " (days) " days" }
            div.pair {
                div.box id="replay" {
                    h3 { "Replay over stored decisions" }
                    p { (replay.evaluated) " evaluated · " strong { (replay.changed) } " would change · "
                        (replay.reasons_changed) " with other reasons" }
                    table { tbody { @for (transition, n) in &replay.by_transition { tr { td { (transition) } td { (n) } } } } }
                }
                div.box id="shadow" {
                    h3 { "Shadow on live traffic" }
                    p { (shadow.evaluated) " evaluated · " strong { (shadow.agreed) } " agreed" }
                    table { tbody { @for pair in &shadow.pairs { tr { td { (pair.live) "->" (pair.shadow) } td { (pair.count) } } } } }
                }
            }
        }
        p.muted { "Drafting, shadowing and publishing happen through /v1/policies with a policies:write key; publishing takes a second key." }
    };
    Ok(page("Policies", Some(&session), body).into_response())
}
