//! How a decision reads on the console: its linked onboardings and its explanation.

use maud::{Markup, html};
use serde_json::Value;

use crate::onboarding::links::Links;

/// How far back the console looks for linked onboardings: the API's default.
pub(super) const LINKS_WINDOW_SECS: i64 = 180 * 24 * 3600;

/// For each of an onboarding's values, the other onboardings sharing it (newest first), each
/// with its verdict and a link to its case or decision.
pub(super) fn links_section(links: &Links) -> Markup {
    html! {
        h2 { "Linked onboardings (last 180 days)" }
        div id="links" {
            @if links.items.iter().all(|k| k.count == 0) {
                p.muted { "No other onboarding shares its CPF, device, phone or e-mail." }
            }
            @for of_key in links.items.iter().filter(|k| k.count > 0) {
                h3 { "Same " (of_key.key.as_str()) ": " span.count { (of_key.count) } }
                @if of_key.count > of_key.onboardings.len() as i64 {
                    p.muted { "The newest " (of_key.onboardings.len()) " are shown." }
                }
                table.links data-key=(of_key.key.as_str()) {
                    thead { tr { th { "Created" } th { "CPF" } th { "Status" } th { "Outcome" } th { "By" } th { "Reasons" } th { "Reference" } th { "" } } }
                    tbody {
                        @for linked in &of_key.onboardings {
                            tr.linked {
                                td { (linked.created_at.format("%Y-%m-%d %H:%M UTC")) }
                                td { (linked.cpf.as_deref().unwrap_or("erased")) }
                                td { (linked.status) }
                                td.outcome { (linked.outcome.as_deref().unwrap_or("—")) }
                                td { (linked.decided_by.as_deref().unwrap_or("—")) }
                                td { (linked.reasons.join(", ")) }
                                td { (linked.reference.as_deref().unwrap_or("")) }
                                td { a.open href={ "/console/onboardings/" (linked.id) } { "Open" } }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A decision's explanation as the API answers it: every rule with its inputs, the evidence,
/// the timeline and the provider calls.
pub(super) fn explained(explanation: &Value) -> Markup {
    html! {
        h2 { "Rules evaluated" }
        table id="rules" {
            thead { tr { th { "Rule" } th { "Outcome" } th { "Fired" } th { "Inputs" } } }
            tbody {
                @for rule in explanation["evaluations"].as_array().into_iter().flatten() {
                    tr class=[rule["fired"].as_bool().unwrap_or(false).then_some("fired")] {
                        td { (rule["code"].as_str().unwrap_or("")) }
                        td { (rule["outcome"].as_str().unwrap_or("")) }
                        td { @if rule["fired"].as_bool().unwrap_or(false) { "yes" } @else { "no" } }
                        td { pre { (rule["inputs"].to_string()) } }
                    }
                }
            }
        }
        h2 { "Evidence" }
        div.box { pre id="evidence" { (serde_json::to_string_pretty(&explanation["evidence"]).unwrap_or_default()) } }
        h2 { "Timeline" }
        table id="timeline" {
            tbody {
                @for event in explanation["timeline"].as_array().into_iter().flatten() {
                    tr { td { (event["at"].as_str().unwrap_or("")) } td { (event["kind"].as_str().unwrap_or("")) }
                         td { pre { (event["detail"].to_string()) } } }
                }
            }
        }
        h2 { "Provider calls" }
        table id="calls" {
            tbody {
                @for call in explanation["provider_calls"].as_array().into_iter().flatten() {
                    tr { td { (call["provider"].as_str().unwrap_or("")) } td { (call["operation"].as_str().unwrap_or("")) }
                         td { (call["http_status"].to_string()) } td { (call["latency_ms"].to_string()) " ms" } }
                }
            }
        }
    }
}
