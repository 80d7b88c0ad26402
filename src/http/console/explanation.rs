//! How a decision reads on the console: its linked onboardings and its explanation, read into
//! the domain's types (the evidence, the rules as evaluated) and shown as labelled fields.

use chrono::{DateTime, Utc};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::Value;

use crate::domain::LinkKey;
use crate::domain::evidence::{
    BiometricEvidence, BiometricResult, DeviceEvidence, DeviceRegistration, Evidence, RiskSignals,
};
use crate::http::console::layout::{at, at_text};
use crate::http::decisions::Explanation;
use crate::http::error::ApiError;
use crate::onboarding::links::Links;
use crate::policy::{Reason, RuleEvaluation};

/// How far back the console looks for linked onboardings: the API's default.
pub(super) const LINKS_WINDOW_SECS: i64 = 180 * 24 * 3600;

/// A decision as the API explains it (`GET /v1/decisions/{id}`), typed.
#[derive(Debug, Deserialize)]
pub(super) struct Explained {
    pub outcome: String,
    pub reasons: Vec<Reason>,
    pub policy_version: String,
    pub reference: Option<String>,
    /// Whole for pii:read, masked otherwise; null once erased.
    pub cpf: Option<String>,
    /// Only for pii:read.
    #[serde(default)]
    pub name: Option<String>,
    pub decided_by: String,
    pub reviewer: Option<String>,
    pub decided_at: DateTime<Utc>,
    pub evaluations: Vec<RuleEvaluation>,
    pub evidence: Evidence,
    pub timeline: Vec<TimelineEntry>,
    pub provider_calls: Vec<Call>,
}

#[derive(Debug, Deserialize)]
pub(super) struct TimelineEntry {
    pub kind: String,
    pub at: DateTime<Utc>,
    pub detail: Value,
}

#[derive(Debug, Deserialize)]
pub(super) struct Call {
    pub provider: String,
    pub operation: String,
    pub http_status: Option<i32>,
    pub latency_ms: i32,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl Explained {
    pub(super) fn of(explanation: &Explanation) -> Result<Explained, ApiError> {
        serde_json::to_value(explanation)
            .and_then(serde_json::from_value)
            .map_err(|e| ApiError::Internal(anyhow::anyhow!("a decision's explanation: {e}")))
    }
}

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
                h3 { "Same " (key_label(of_key.key)) ": " span.count { (of_key.count) } }
                @if of_key.count > of_key.onboardings.len() as i64 {
                    p.muted { "The newest " (of_key.onboardings.len()) " are shown." }
                }
                table.links data-key=(of_key.key.as_str()) {
                    thead { tr { th { "Created" } th { "CPF" } th { "Status" } th { "Outcome" } th { "By" } th { "Reasons" } th { "Reference" } th { "" } } }
                    tbody {
                        @for linked in &of_key.onboardings {
                            tr.linked data-href={ "/console/onboardings/" (linked.id) } {
                                td { (at(&linked.created_at)) }
                                td.cpf { (linked.cpf.as_deref().unwrap_or("erased")) }
                                td { (linked.status) }
                                td.outcome { (linked.outcome.as_deref().unwrap_or("—")) }
                                td { (linked.decided_by.as_deref().unwrap_or("—")) }
                                td { (linked.reasons.join(", ")) }
                                td.ref title=(linked.reference.as_deref().unwrap_or("")) { (linked.reference.as_deref().unwrap_or("")) }
                                td { a.open href={ "/console/onboardings/" (linked.id) } { "Open" } }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn key_label(key: LinkKey) -> &'static str {
    match key {
        LinkKey::Cpf => "CPF",
        LinkKey::DeviceId => "device",
        LinkKey::Phone => "phone",
        LinkKey::Email => "e-mail",
    }
}

/// The rules (fired first, with their messages; the others folded), the evidence as labelled
/// fields, the timeline with runs of identical events as one row, and the provider calls.
pub(super) fn explained(e: &Explained) -> Markup {
    let (fired, unfired): (Vec<&RuleEvaluation>, Vec<&RuleEvaluation>) =
        e.evaluations.iter().partition(|r| r.fired);
    let message = |code: &str| {
        e.reasons
            .iter()
            .find(|r| r.code == code)
            .map(|r| r.message.clone())
    };
    html! {
        h2 { "Rules that fired" }
        table id="rules" {
            thead { tr { th { "Rule" } th { "Outcome" } th { "Why" } th { "Read" } } }
            tbody {
                @for rule in &fired {
                    tr.fired {
                        td.nowrap { (rule.code) }
                        td { (rule.outcome.as_str()) }
                        td { (message(&rule.code).unwrap_or_default()) }
                        td { (inputs(&rule.inputs)) }
                    }
                }
                @if fired.is_empty() { tr { td colspan="4" .muted { "None: the policy approved." } } }
            }
        }
        details id="unfired" {
            summary { (unfired.len()) " rules evaluated that did not fire" }
            table {
                thead { tr { th { "Rule" } th { "Would decide" } th { "Read" } } }
                tbody {
                    @for rule in &unfired {
                        tr { td.nowrap { (rule.code) } td { (rule.outcome.as_str()) } td { (inputs(&rule.inputs)) } }
                    }
                }
            }
        }
        h2 { "Evidence" }
        div.pair id="evidence" {
            div.box { h3 { "Biometrics (unico)" } (biometrics(&e.evidence.biometrics)) }
            div.box { h3 { "Device registration (QI Tech)" } (device(&e.evidence.device)) }
            div.box id="signals" { h3 { "The phone's risk signals" } (signals(e.evidence.risk_signals.as_ref())) }
            @if let Some(memory) = &e.evidence.memory {
                div.box id="memory" {
                    h3 { "What veredito knew (" (at(&memory.as_of)) ")" }
                    dl.fields {
                        @for list in &memory.lists {
                            dt { "list " (list.list) }
                            dd { @match &list.hit { Some(hit) => { "listed: " (hit.value) " — " (hit.reason) }, None => "not listed" } }
                        }
                        @for v in &memory.velocity {
                            dt { "onboardings per " (v.key.as_str()) @if let Some(d) = v.distinct { " (distinct " (d.as_str()) ")" } " in " (v.window_secs / 3600) " h" }
                            dd { (v.count.map_or("—".to_owned(), |c| c.to_string())) }
                        }
                        @for l in &memory.linked {
                            dt { "rejected for fraud, same " (l.keys.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(" or ")) }
                            dd { (l.onboardings.len()) }
                        }
                        @for s in &memory.shared {
                            dt { "indications shared by others" }
                            dd { (s.indications.len()) @for i in &s.indications { " · " (i.typology) " (" (i.source) ")" } }
                        }
                    }
                }
            }
        }
        h2 { "Timeline" }
        table id="timeline" {
            thead { tr { th { "When" } th { "Event" } th { "Detail" } } }
            tbody {
                @for run in runs(&e.timeline) {
                    tr {
                        td { (at(&run.first.at)) @if run.count > 1 { br; "to " (at(&run.last.at)) } }
                        td.nowrap { (run.first.kind) @if run.count > 1 { " " span.tag.count { "×" (run.count) } } }
                        td { (inputs(&run.first.detail)) }
                    }
                }
            }
        }
        h2 { "Provider calls" }
        table id="calls" {
            thead { tr { th { "When" } th { "Provider" } th { "Operation" } th { "HTTP status" } th { "Latency" } th { "Error" } } }
            tbody {
                @for call in &e.provider_calls {
                    tr {
                        td { (at(&call.created_at)) }
                        td { (call.provider) }
                        td { (call.operation) }
                        td { (call.http_status.map_or("—".to_owned(), |s| s.to_string())) }
                        td.nowrap { (call.latency_ms) " ms" }
                        td { (call.error.as_deref().unwrap_or("")) }
                    }
                }
            }
        }
    }
}

/// A run of timeline events of one kind with one detail (a biometric process polled 29 times).
struct Run<'a> {
    first: &'a TimelineEntry,
    last: &'a TimelineEntry,
    count: usize,
}

fn runs(timeline: &[TimelineEntry]) -> Vec<Run<'_>> {
    let mut runs: Vec<Run<'_>> = Vec::new();
    for entry in timeline {
        match runs.last_mut() {
            Some(run) if run.first.kind == entry.kind && run.first.detail == entry.detail => {
                run.last = entry;
                run.count += 1;
            }
            _ => runs.push(Run {
                first: entry,
                last: entry,
                count: 1,
            }),
        }
    }
    runs
}

/// What a rule read or an event holds, as `name value` pairs; nested values flattened by path.
fn inputs(value: &Value) -> Markup {
    let mut pairs = Vec::new();
    flatten("", value, &mut pairs);
    html! {
        @if !pairs.is_empty() {
            dl.fields { @for (name, text) in &pairs { dt { (name) } dd { (text) } } }
        }
    }
}

fn flatten(path: &str, value: &Value, out: &mut Vec<(String, String)>) {
    let label = |key: &str| {
        if path.is_empty() {
            key.replace('_', " ")
        } else {
            format!("{path} {}", key.replace('_', " "))
        }
    };
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                flatten(&label(key), inner, out);
            }
        }
        Value::Array(items) if items.iter().all(|i| !i.is_object()) => out.push((
            path.to_owned(),
            items.iter().map(scalar).collect::<Vec<_>>().join(", "),
        )),
        Value::Array(items) => {
            for (i, inner) in items.iter().enumerate() {
                flatten(&label(&(i + 1).to_string()), inner, out);
            }
        }
        other => out.push((path.to_owned(), scalar(other))),
    }
}

fn scalar(value: &Value) -> String {
    match value {
        Value::Null => "—".to_owned(),
        Value::Bool(true) => "yes".to_owned(),
        Value::Bool(false) => "no".to_owned(),
        // A moment in a detail reads as the page's other times do.
        Value::String(s) => match DateTime::parse_from_rfc3339(s) {
            Ok(t) => at_text(&t.with_timezone(&Utc)),
            Err(_) => s.clone(),
        },
        other => other.to_string(),
    }
}

fn biometrics(evidence: &BiometricEvidence) -> Markup {
    match evidence {
        BiometricEvidence::NotRun => html! { p.muted { "unico was not asked." } },
        BiometricEvidence::Received(result) => {
            html! { p { "Final answer received." } (biometric(result)) }
        }
        BiometricEvidence::TimedOut(last) => html! {
            p.overdue { "No final answer before the deadline." }
            @if let Some(result) = last { p.muted { "The last answer:" } (biometric(result)) }
        },
        BiometricEvidence::CaptureRefused { code } => html! {
            p { "unico refused the capture: " strong { (code) } " (a new capture is needed)." }
        },
    }
}

fn biometric(r: &BiometricResult) -> Markup {
    let or_dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "—".to_owned());
    html! {
        dl.fields {
            dt { "process" } dd { (r.process_id) }
            dt { "status" } dd { (r.status) " (" (match r.status { 1 => "processing", 2 => "divergence", 3 => "finished", 4 => "cancelled", 5 => "error", _ => "unknown" }) ")" }
            dt { "unico id" } dd { (or_dash(&r.unico_id)) }
            dt { "liveness" } dd { (match r.liveness { Some(1) => "live", Some(2) => "not live", _ => "—" }) }
            dt { "identity fraudsters" } dd { (or_dash(&r.identity_fraudsters)) }
            dt { "score" } dd { (r.score.map_or("—".to_owned(), |s| s.to_string())) }
        }
    }
}

fn device(evidence: &DeviceEvidence) -> Markup {
    match evidence {
        DeviceEvidence::NotRun => html! { p.muted { "Not registered for this decision." } },
        DeviceEvidence::Answered(r) => registration(r),
        DeviceEvidence::PendingPastDeadline(r) => html! {
            p.overdue { "Still pending when the deadline passed." } (registration(r))
        },
    }
}

fn registration(r: &DeviceRegistration) -> Markup {
    html! {
        dl.fields {
            dt { "status" } dd { (r.status) }
            dt { "analysis" } dd { (r.analysis_status) }
            @if let Some(reason) = &r.reason { dt { "reason" } dd { (reason) } }
            @if let Some(text) = &r.reason_description { dt { "described" } dd { (text) } }
        }
    }
}

/// Every signal the phone sent, by name; kept on the page whatever unico did.
fn signals(signals: Option<&RiskSignals>) -> Markup {
    let Some(signals) = signals else {
        return html! { p.muted { "The phone sent no risk signals." } };
    };
    let mut pairs = Vec::new();
    flatten(
        "",
        &serde_json::to_value(signals).unwrap_or(Value::Null),
        &mut pairs,
    );
    html! { dl.fields { @for (name, text) in &pairs { dt { (name) } dd { (text) } } } }
}
