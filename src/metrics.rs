//! Prometheus metrics, in one registry for the process.

use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    method: String,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: String,
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    provider: String,
    operation: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallTimeLabels {
    provider: String,
    operation: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: String,
}

fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.005, 2.0, 14))
}

struct Metrics {
    registry: Registry,
    http_requests: Family<HttpLabels, Counter>,
    http_duration: Family<RouteLabels, Histogram>,
    provider_calls: Family<CallLabels, Counter>,
    provider_duration: Family<CallTimeLabels, Histogram>,
    decisions: Family<OutcomeLabels, Counter>,
    webhooks: Family<KindLabels, Counter>,
    polls: Family<KindLabels, Counter>,
    step_failures: Family<KindLabels, Counter>,
    handed_over: Counter,
    callbacks: Family<KindLabels, Counter>,
    reviews: Family<KindLabels, Counter>,
    review_open: Gauge,
    review_overdue: Gauge,
}

static METRICS: LazyLock<Mutex<Metrics>> = LazyLock::new(|| {
    let mut registry = Registry::with_prefix("veredito");
    let http_requests = Family::<HttpLabels, Counter>::default();
    let http_duration = Family::<RouteLabels, Histogram>::new_with_constructor(
        latency_histogram as fn() -> Histogram,
    );
    let provider_calls = Family::<CallLabels, Counter>::default();
    let provider_duration = Family::<CallTimeLabels, Histogram>::new_with_constructor(
        latency_histogram as fn() -> Histogram,
    );
    let decisions = Family::<OutcomeLabels, Counter>::default();
    let webhooks = Family::<KindLabels, Counter>::default();
    let polls = Family::<KindLabels, Counter>::default();
    let step_failures = Family::<KindLabels, Counter>::default();
    let handed_over = Counter::default();
    let callbacks = Family::<KindLabels, Counter>::default();
    let reviews = Family::<KindLabels, Counter>::default();
    let review_open = Gauge::default();
    let review_overdue = Gauge::default();
    registry.register(
        "http_requests",
        "HTTP requests answered",
        http_requests.clone(),
    );
    registry.register(
        "http_request_duration_seconds",
        "Time to answer HTTP requests",
        http_duration.clone(),
    );
    registry.register(
        "provider_calls",
        "Calls made to providers, by HTTP status",
        provider_calls.clone(),
    );
    registry.register(
        "provider_call_duration_seconds",
        "Provider call latency",
        provider_duration.clone(),
    );
    registry.register("decisions", "Decisions made, by outcome", decisions.clone());
    registry.register(
        "unico_webhooks",
        "unico notifications received",
        webhooks.clone(),
    );
    registry.register("unico_polls", "GetProcess polls, by result", polls.clone());
    registry.register(
        "step_failures",
        "Steps whose run ended in an error of veredito's own (the database), by kind",
        step_failures.clone(),
    );
    registry.register(
        "steps_handed_to_runners",
        "First steps of requests left to the runners because this replica ran as many as it may",
        handed_over.clone(),
    );
    registry.register(
        "callback_attempts",
        "Callback delivery attempts, by result (delivered, retry, failed)",
        callbacks.clone(),
    );
    registry.register(
        "review_cases",
        "Review cases opened and resolved",
        reviews.clone(),
    );
    registry.register(
        "review_cases_unresolved",
        "Review cases open or claimed",
        review_open.clone(),
    );
    registry.register(
        "review_cases_overdue",
        "Unresolved review cases past their due time (review.sla)",
        review_overdue.clone(),
    );
    Mutex::new(Metrics {
        registry,
        http_requests,
        http_duration,
        provider_calls,
        provider_duration,
        decisions,
        webhooks,
        polls,
        step_failures,
        handed_over,
        callbacks,
        reviews,
        review_open,
        review_overdue,
    })
});

fn with<F: FnOnce(&Metrics)>(f: F) {
    if let Ok(m) = METRICS.lock() {
        f(&m);
    }
}

pub fn http_request(method: &str, route: &str, status: u16, elapsed: Duration) {
    with(|m| {
        m.http_requests
            .get_or_create(&HttpLabels {
                method: method.into(),
                route: route.into(),
                status,
            })
            .inc();
        m.http_duration
            .get_or_create(&RouteLabels {
                method: method.into(),
                route: route.into(),
            })
            .observe(elapsed.as_secs_f64());
    });
}

pub fn provider_call(provider: &str, operation: &str, status: Option<u16>, latency_ms: u32) {
    with(|m| {
        let status = status.map_or_else(|| "none".to_owned(), |s| s.to_string());
        m.provider_calls
            .get_or_create(&CallLabels {
                provider: provider.into(),
                operation: operation.into(),
                status,
            })
            .inc();
        m.provider_duration
            .get_or_create(&CallTimeLabels {
                provider: provider.into(),
                operation: operation.into(),
            })
            .observe(f64::from(latency_ms) / 1000.0);
    });
}

pub fn decision(outcome: &str) {
    with(|m| {
        m.decisions
            .get_or_create(&OutcomeLabels {
                outcome: outcome.into(),
            })
            .inc();
    });
}

pub fn webhook(kind: &str) {
    with(|m| {
        m.webhooks
            .get_or_create(&KindLabels { kind: kind.into() })
            .inc();
    });
}

pub fn poll(kind: &str) {
    with(|m| {
        m.polls
            .get_or_create(&KindLabels { kind: kind.into() })
            .inc();
    });
}

pub fn step_failed(kind: &str) {
    with(|m| {
        m.step_failures
            .get_or_create(&KindLabels { kind: kind.into() })
            .inc();
    });
}

pub fn step_handed_over() {
    with(|m| {
        m.handed_over.inc();
    });
}

pub fn review(kind: &str) {
    with(|m| {
        m.reviews
            .get_or_create(&KindLabels { kind: kind.into() })
            .inc();
    });
}

/// Sets the review gauges (read from the database when metrics are scraped).
pub fn review_cases(unresolved: i64, overdue: i64) {
    with(|m| {
        m.review_open.set(unresolved);
        m.review_overdue.set(overdue);
    });
}

pub fn callback(kind: &str) {
    with(|m| {
        m.callbacks
            .get_or_create(&KindLabels { kind: kind.into() })
            .inc();
    });
}

pub fn render() -> String {
    let mut out = String::new();
    if let Ok(m) = METRICS.lock() {
        let _ = encode(&mut out, &m.registry);
    }
    out
}
