//! Prometheus metrics, in one registry for the process, served in the OpenMetrics text format.
//!
//! Every label takes its value from a closed set: HTTP methods outside the usual ones count as
//! `other`, routes are the router's templates (or `unmatched`), providers, operations, step
//! kinds, outcomes and reason codes are the program's own constants. A caller therefore cannot
//! make a new series by sending something new.

use std::sync::LazyLock;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

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

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    method: &'static str,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: &'static str,
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    provider: &'static str,
    operation: &'static str,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallTimeLabels {
    provider: &'static str,
    operation: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    provider: &'static str,
    operation: &'static str,
    class: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DecisionLabels {
    outcome: &'static str,
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindName {
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TaskLabels {
    task: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolLabels {
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
}

fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.005, 2.0, 14))
}

/// Received to decided: from a few milliseconds (synchronous) to the biometrics deadline.
fn decision_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.01, 2.5, 14))
}

struct Metrics {
    registry: Registry,
    http_requests: Family<HttpLabels, Counter>,
    http_duration: Family<RouteLabels, Histogram>,
    provider_calls: Family<CallLabels, Counter>,
    provider_errors: Family<ErrorLabels, Counter>,
    provider_duration: Family<CallTimeLabels, Histogram>,
    decisions: Family<DecisionLabels, Counter>,
    decision_duration: Family<OutcomeLabels, Histogram>,
    webhooks: Family<KindLabels, Counter>,
    polls: Family<KindLabels, Counter>,
    token_refreshes: Family<ResultLabels, Counter>,
    step_failures: Family<KindName, Counter>,
    step_gave_up: Family<KindName, Counter>,
    lease_lost: Family<KindName, Counter>,
    steps_failed: Family<KindName, Gauge>,
    handed_over: Counter,
    callbacks: Family<ResultLabels, Counter>,
    reviews: Family<KindLabels, Counter>,
    review_open: Gauge,
    review_overdue: Gauge,
    subjects_overdue: Gauge,
    fraud_pending: Gauge,
    fraud_oldest_age: Gauge,
    pending: Family<StateLabels, Gauge>,
    steps_due: Family<KindName, Gauge>,
    steps_retrying: Family<KindName, Gauge>,
    pool: Family<PoolLabels, Gauge>,
    pool_max: Gauge,
    pool_waiters: Gauge,
    rejected: Family<ReasonLabels, Counter>,
    connections_closed: Family<ReasonLabels, Counter>,
    connections_open: Gauge,
    restarts: Family<TaskLabels, Counter>,
    audit_searches: Counter,
    risk_rules: Family<CodeLabels, Counter>,
    list_entries: Family<ListLabels, Gauge>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CodeLabels {
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ListLabels {
    key: &'static str,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let mut registry = Registry::with_prefix("veredito");
    let m = Metrics {
        registry: Registry::default(),
        http_requests: Family::default(),
        http_duration: Family::new_with_constructor(latency_histogram as fn() -> Histogram),
        provider_calls: Family::default(),
        provider_errors: Family::default(),
        provider_duration: Family::new_with_constructor(latency_histogram as fn() -> Histogram),
        decisions: Family::default(),
        decision_duration: Family::new_with_constructor(decision_histogram as fn() -> Histogram),
        webhooks: Family::default(),
        polls: Family::default(),
        token_refreshes: Family::default(),
        step_failures: Family::default(),
        step_gave_up: Family::default(),
        lease_lost: Family::default(),
        steps_failed: Family::default(),
        handed_over: Counter::default(),
        callbacks: Family::default(),
        reviews: Family::default(),
        review_open: Gauge::default(),
        review_overdue: Gauge::default(),
        subjects_overdue: Gauge::default(),
        fraud_pending: Gauge::default(),
        fraud_oldest_age: Gauge::default(),
        pending: Family::default(),
        steps_due: Family::default(),
        steps_retrying: Family::default(),
        pool: Family::default(),
        pool_max: Gauge::default(),
        pool_waiters: Gauge::default(),
        rejected: Family::default(),
        connections_closed: Family::default(),
        connections_open: Gauge::default(),
        restarts: Family::default(),
        audit_searches: Counter::default(),
        risk_rules: Family::default(),
        list_entries: Family::default(),
    };
    drop(m.risk_rules.get_or_create(&CodeLabels {
        reason: "links.fraud".into(),
    }));
    for key in crate::domain::LinkKey::ALL {
        drop(
            m.list_entries
                .get_or_create(&ListLabels { key: key.as_str() }),
        );
    }
    for reason in ["idle", "evicted"] {
        drop(m.connections_closed.get_or_create(&ReasonLabels { reason }));
    }
    let r = &mut registry;
    r.register(
        "http_requests",
        "HTTP requests answered, by method, route template and status",
        m.http_requests.clone(),
    );
    r.register(
        "http_request_duration_seconds",
        "Time to answer HTTP requests",
        m.http_duration.clone(),
    );
    r.register(
        "provider_calls",
        "Calls made to providers, by HTTP status (none: no answer)",
        m.provider_calls.clone(),
    );
    r.register(
        "provider_errors",
        "Provider calls that failed, by class: timeout, transport, 429, 4xx, 5xx",
        m.provider_errors.clone(),
    );
    r.register(
        "provider_call_duration_seconds",
        "Provider call latency",
        m.provider_duration.clone(),
    );
    r.register(
        "decisions",
        "Decisions made, by outcome and decisive reason",
        m.decisions.clone(),
    );
    r.register(
        "decision_duration_seconds",
        "From an onboarding received to its decision, by outcome",
        m.decision_duration.clone(),
    );
    r.register(
        "unico_webhooks",
        "unico notifications received, by kind (forged ones only counted)",
        m.webhooks.clone(),
    );
    r.register(
        "unico_polls",
        "GetProcess polls, by result",
        m.polls.clone(),
    );
    r.register(
        "unico_token_refreshes",
        "Access tokens obtained from unico's identity host, by result",
        m.token_refreshes.clone(),
    );
    r.register(
        "step_failures",
        "Steps whose run ended in an error of veredito's own (the database), by kind",
        m.step_failures.clone(),
    );
    r.register(
        "step_gave_up",
        "Steps that ended failed after jobs.step_max_failures failures of veredito's own in a row",
        m.step_gave_up.clone(),
    );
    r.register(
        "step_leases_lost",
        "Step runs stopped because their claim could not be renewed in time, by kind",
        m.lease_lost.clone(),
    );
    r.register(
        "steps_failed",
        "Steps that failed for good and wait for an operator (veredito retry-steps), by kind",
        m.steps_failed.clone(),
    );
    r.register(
        "steps_handed_to_runners",
        "First steps of requests left to the runners because this replica ran as many as it may",
        m.handed_over.clone(),
    );
    r.register(
        "callback_attempts",
        "Callback delivery attempts, by result (delivered, retry, failed)",
        m.callbacks.clone(),
    );
    r.register(
        "review_cases",
        "Review cases opened and resolved",
        m.reviews.clone(),
    );
    r.register(
        "risk_memory_rule_fires",
        "List, velocity and linked-fraud rules that fired in automatic decisions, by reason code",
        m.risk_rules.clone(),
    );
    r.register(
        "list_entries",
        "Live entries of the risk team's lists, by the key of their values (per list: GET /v1/lists)",
        m.list_entries.clone(),
    );
    r.register(
        "review_cases_unresolved",
        "Review cases open or claimed",
        m.review_open.clone(),
    );
    r.register(
        "review_cases_overdue",
        "Unresolved review cases past their due time (review.sla)",
        m.review_overdue.clone(),
    );
    r.register(
        "subject_requests_overdue",
        "People's requests (LGPD Art. 18) not answered within their 15 days (Art. 19 II)",
        m.subjects_overdue.clone(),
    );
    r.register(
        "fraud_indications_pending",
        "Fraud indications the sharing system has not acknowledged yet (confidential and withdrawn ones left out)",
        m.fraud_pending.clone(),
    );
    r.register(
        "fraud_indication_oldest_pending_age_seconds",
        "Seconds since the oldest of those was identified (0 when none waits); the rule allows 24 hours",
        m.fraud_oldest_age.clone(),
    );
    r.register(
        "onboardings_pending",
        "Onboardings not decided yet, by state",
        m.pending.clone(),
    );
    r.register(
        "steps_due",
        "Pending steps whose time has come, by kind",
        m.steps_due.clone(),
    );
    r.register(
        "steps_retrying",
        "Pending steps whose last run failed, by kind",
        m.steps_retrying.clone(),
    );
    r.register(
        "db_pool_connections",
        "Database connections of this replica, by state (in_use, idle)",
        m.pool.clone(),
    );
    r.register(
        "db_pool_max_connections",
        "The most connections this replica opens (database.max_connections)",
        m.pool_max.clone(),
    );
    r.register(
        "db_pool_waiters",
        "Requests waiting for a database connection",
        m.pool_waiters.clone(),
    );
    r.register(
        "requests_rejected",
        "Requests answered 503 or 429 before any work, by reason (overloaded, rate_limited)",
        m.rejected.clone(),
    );
    r.register(
        "connections_open",
        "HTTP connections open on this replica (idle ones included)",
        m.connections_open.clone(),
    );
    r.register(
        "connections_closed",
        "Connections closed by the server, by reason (idle: past its deadline; evicted: idle when every slot was taken)",
        m.connections_closed.clone(),
    );
    r.register(
        "task_restarts",
        "Background tasks restarted after a panic, by task",
        m.restarts.clone(),
    );
    r.register(
        "audit_searches",
        "Audit searches and exports, each also recorded in audit_searches",
        m.audit_searches.clone(),
    );
    let build = Family::<BuildLabels, Gauge>::default();
    build
        .get_or_create(&BuildLabels {
            version: env!("CARGO_PKG_VERSION"),
        })
        .set(1);
    r.register("build_info", "The running build, value 1", build);
    // Counters an alert watches start at 0, so the first failure is an increase.
    for result in ["delivered", "retry", "failed"] {
        drop(m.callbacks.get_or_create(&ResultLabels { result }));
    }
    for result in ["ok", "error"] {
        drop(m.token_refreshes.get_or_create(&ResultLabels { result }));
    }
    for reason in ["overloaded", "rate_limited"] {
        drop(m.rejected.get_or_create(&ReasonLabels { reason }));
    }
    for kind in ["accepted", "forged", "malformed", "unknown_process"] {
        drop(m.webhooks.get_or_create(&KindLabels { kind }));
    }
    for kind in ["open", "error", "final", "deadline"] {
        drop(m.polls.get_or_create(&KindLabels { kind }));
    }
    for kind in ["opened", "resolved"] {
        drop(m.reviews.get_or_create(&KindLabels { kind }));
    }
    for task in TASKS {
        drop(m.restarts.get_or_create(&TaskLabels { task }));
    }
    Metrics { registry, ..m }
});

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

/// What the database says when metrics are scraped.
#[derive(Debug, Default)]
pub struct Backlog {
    pub review_unresolved: i64,
    pub review_overdue: i64,
    /// Subject requests open past their `due_at`.
    pub subjects_overdue: i64,
    /// Fraud indications waiting for the sharing system, and the age of the oldest in seconds.
    pub fraud_pending: i64,
    pub fraud_oldest_age_secs: i64,
    /// (state, count) of onboardings not decided.
    pub pending: Vec<(String, i64)>,
    /// (kind, due, retrying, failed) of steps, every kind listed (0 when none is pending):
    /// pending ones due or retrying, and failed ones waiting for an operator.
    pub steps: Vec<(String, i64, i64, i64)>,
    /// (key, live entries) of every list: the key its values are of.
    pub lists: Vec<(String, i64)>,
}

/// Sets the gauges read from the database. A state or kind absent from `backlog` reads 0.
pub fn backlog(backlog: &Backlog) {
    let m = &*METRICS;
    m.review_open.set(backlog.review_unresolved);
    m.review_overdue.set(backlog.review_overdue);
    m.subjects_overdue.set(backlog.subjects_overdue);
    m.fraud_pending.set(backlog.fraud_pending);
    m.fraud_oldest_age.set(backlog.fraud_oldest_age_secs);
    for state in ["received", "biometrics", "device"] {
        let count = backlog
            .pending
            .iter()
            .find(|(s, _)| s == state)
            .map_or(0, |(_, n)| *n);
        m.pending
            .get_or_create(&StateLabels {
                state: state.to_owned(),
            })
            .set(count);
    }
    for (kind, due, retrying, failed) in &backlog.steps {
        let label = KindName { kind: kind.clone() };
        m.steps_due.get_or_create(&label).set(*due);
        m.steps_retrying.get_or_create(&label).set(*retrying);
        m.steps_failed.get_or_create(&label).set(*failed);
        drop(m.step_failures.get_or_create(&label));
        drop(m.step_gave_up.get_or_create(&label));
        drop(m.lease_lost.get_or_create(&label));
    }
    for key in crate::domain::LinkKey::ALL {
        let entries = backlog
            .lists
            .iter()
            .filter(|(of, _)| of == key.as_str())
            .map(|(_, n)| n)
            .sum();
        m.list_entries
            .get_or_create(&ListLabels { key: key.as_str() })
            .set(entries);
    }
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

/// The connection pool as it is now.
pub fn pool(size: u32, idle: usize, max: u32, waiters: i64) {
    let m = &*METRICS;
    let idle = i64::try_from(idle).unwrap_or(i64::MAX);
    m.pool
        .get_or_create(&PoolLabels { state: "idle" })
        .set(idle);
    m.pool
        .get_or_create(&PoolLabels { state: "in_use" })
        .set(i64::from(size) - idle);
    m.pool_max.set(i64::from(max));
    m.pool_waiters.set(waiters);
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
