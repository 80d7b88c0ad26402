//! Prometheus metrics, in one registry for the process, served in the OpenMetrics text format.
//!
//! Every label takes its value from a closed set: HTTP methods outside the usual ones count as
//! `other`, routes are the router's templates (or `unmatched`), providers, operations, step
//! kinds, outcomes and reason codes are the program's own constants. A caller therefore cannot
//! make a new series by sending something new.
//!
//! This file holds what the code records as it happens; `registry` the series and their
//! names, `gauges` what is read from the database and the pool when metrics are scraped.

use std::time::Duration;

use prometheus_client::encoding::text::encode;

mod gauges;
mod registry;

pub use gauges::{Backlog, backlog, pool};
use registry::*;

/// The background tasks a replica supervises, by the name their restarts are counted under.
pub const TASKS: [&str; 5] = [
    "listener",
    "flow_runner",
    "callback_runner",
    "link_backfill",
    "retention",
];

/// The content type of what `render` writes.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A method as a label: the usual ones by name, anything else `other`.
fn method_label(method: &str) -> &'static str {
    const KNOWN: [&str; 7] = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];
    KNOWN
        .into_iter()
        .find(|known| *known == method)
        .unwrap_or("other")
}

pub fn http_request(method: &str, route: &str, status: u16, elapsed: Duration) {
    let method = method_label(method);
    let m = &*METRICS;
    m.http_requests
        .get_or_create(&HttpLabels {
            method,
            route: route.to_owned(),
            status,
        })
        .inc();
    m.http_duration
        .get_or_create(&RouteLabels {
            method,
            route: route.to_owned(),
        })
        .observe(elapsed.as_secs_f64());
}

pub fn provider_call(
    provider: &'static str,
    operation: &'static str,
    status: Option<u16>,
    latency_ms: u32,
) {
    let m = &*METRICS;
    // The error classes of an operation in use start at 0, so an error ratio has a series.
    for class in ERROR_CLASSES {
        drop(m.provider_errors.get_or_create(&ErrorLabels {
            provider,
            operation,
            class,
        }));
    }
    let status = status.map_or_else(|| "none".to_owned(), |s| s.to_string());
    m.provider_calls
        .get_or_create(&CallLabels {
            provider,
            operation,
            status,
        })
        .inc();
    m.provider_duration
        .get_or_create(&CallTimeLabels {
            provider,
            operation,
        })
        .observe(f64::from(latency_ms) / 1000.0);
}

const ERROR_CLASSES: [&str; 5] = ["timeout", "transport", "429", "4xx", "5xx"];

/// A provider call that failed: `class` is one of timeout, transport, 429, 4xx, 5xx.
pub fn provider_error(provider: &'static str, operation: &'static str, class: &'static str) {
    METRICS
        .provider_errors
        .get_or_create(&ErrorLabels {
            provider,
            operation,
            class,
        })
        .inc();
}

/// A decision: its outcome, its decisive reason code and how long it took from the request.
pub fn decision(outcome: &'static str, reason: &str, since_received: Option<Duration>) {
    let m = &*METRICS;
    m.decisions
        .get_or_create(&DecisionLabels {
            outcome,
            reason: reason_label(reason),
        })
        .inc();
    if let Some(elapsed) = since_received {
        m.decision_duration
            .get_or_create(&OutcomeLabels { outcome })
            .observe(elapsed.as_secs_f64());
    }
}

/// Reason codes are the policy's own (`biometrics.score_low`); anything else is `other`.
fn reason_label(reason: &str) -> String {
    let plausible = !reason.is_empty()
        && reason.len() <= 48
        && reason
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_'));
    if plausible {
        reason.to_owned()
    } else {
        "other".to_owned()
    }
}

pub fn webhook(kind: &'static str) {
    METRICS.webhooks.get_or_create(&KindLabels { kind }).inc();
}

pub fn poll(kind: &'static str) {
    METRICS.polls.get_or_create(&KindLabels { kind }).inc();
}

pub fn token_refresh(ok: bool) {
    let result = if ok { "ok" } else { "error" };
    METRICS
        .token_refreshes
        .get_or_create(&ResultLabels { result })
        .inc();
}

pub fn step_failed(kind: &str) {
    METRICS
        .step_failures
        .get_or_create(&KindName {
            kind: kind.to_owned(),
        })
        .inc();
}

pub fn connections_open(n: usize) {
    METRICS
        .connections_open
        .set(i64::try_from(n).unwrap_or(i64::MAX));
}

pub fn connection_closed(reason: &'static str) {
    connection_closed_n(reason, 1);
}

pub fn connection_closed_n(reason: &'static str, n: u64) {
    METRICS
        .connections_closed
        .get_or_create(&ReasonLabels { reason })
        .inc_by(n);
}

pub fn step_gave_up(kind: &str) {
    METRICS
        .step_gave_up
        .get_or_create(&KindName {
            kind: kind.to_owned(),
        })
        .inc();
}

pub fn step_lease_lost(kind: &str) {
    METRICS
        .lease_lost
        .get_or_create(&KindName {
            kind: kind.to_owned(),
        })
        .inc();
}

pub fn step_handed_over() {
    METRICS.handed_over.inc();
}

pub fn review(kind: &'static str) {
    METRICS.reviews.get_or_create(&KindLabels { kind }).inc();
}

pub fn callback(result: &'static str) {
    METRICS
        .callbacks
        .get_or_create(&ResultLabels { result })
        .inc();
}

pub fn rejected(reason: &'static str) {
    METRICS
        .rejected
        .get_or_create(&ReasonLabels { reason })
        .inc();
}

pub fn task_restarted(task: &'static str) {
    METRICS.restarts.get_or_create(&TaskLabels { task }).inc();
}

pub fn audit_search() {
    METRICS.audit_searches.inc();
}

/// A list, velocity or linked-fraud rule fired in an automatic decision.
pub fn risk_rule_fired(reason: &str) {
    METRICS
        .risk_rules
        .get_or_create(&CodeLabels {
            reason: reason_label(reason),
        })
        .inc();
}

pub fn render() -> String {
    let mut out = String::new();
    let _ = encode(&mut out, &METRICS.registry);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_come_from_closed_sets() {
        assert_eq!(method_label("GET"), "GET");
        assert_eq!(method_label("BREW"), "other");
        assert_eq!(reason_label("biometrics.score_low"), "biometrics.score_low");
        assert_eq!(reason_label("Maria 123.456.789-09"), "other");
        assert_eq!(reason_label(&"a".repeat(200)), "other");
    }
}
