//! The process's one registry: every series with its labels, its name and its help text, and
//! the counters an alert watches created at 0.

use std::sync::LazyLock;

use super::TASKS;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct HttpLabels {
    pub(super) method: &'static str,
    pub(super) route: String,
    pub(super) status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct RouteLabels {
    pub(super) method: &'static str,
    pub(super) route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct CallLabels {
    pub(super) provider: &'static str,
    pub(super) operation: &'static str,
    pub(super) status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct CallTimeLabels {
    pub(super) provider: &'static str,
    pub(super) operation: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct ErrorLabels {
    pub(super) provider: &'static str,
    pub(super) operation: &'static str,
    pub(super) class: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct DecisionLabels {
    pub(super) outcome: &'static str,
    pub(super) reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct OutcomeLabels {
    pub(super) outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct KindLabels {
    pub(super) kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct KindName {
    pub(super) kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct StateLabels {
    pub(super) state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct ResultLabels {
    pub(super) result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct ReasonLabels {
    pub(super) reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct TaskLabels {
    pub(super) task: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct PoolLabels {
    pub(super) state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct BuildLabels {
    pub(super) version: &'static str,
}

fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.005, 2.0, 14))
}

/// Received to decided: from a few milliseconds (synchronous) to the biometrics deadline.
fn decision_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.01, 2.5, 14))
}

pub(super) struct Metrics {
    pub(super) registry: Registry,
    pub(super) http_requests: Family<HttpLabels, Counter>,
    pub(super) http_duration: Family<RouteLabels, Histogram>,
    pub(super) provider_calls: Family<CallLabels, Counter>,
    pub(super) provider_errors: Family<ErrorLabels, Counter>,
    pub(super) provider_duration: Family<CallTimeLabels, Histogram>,
    pub(super) decisions: Family<DecisionLabels, Counter>,
    pub(super) decision_duration: Family<OutcomeLabels, Histogram>,
    pub(super) webhooks: Family<KindLabels, Counter>,
    pub(super) polls: Family<KindLabels, Counter>,
    pub(super) token_refreshes: Family<ResultLabels, Counter>,
    pub(super) step_failures: Family<KindName, Counter>,
    pub(super) step_gave_up: Family<KindName, Counter>,
    pub(super) lease_lost: Family<KindName, Counter>,
    pub(super) steps_failed: Family<KindName, Gauge>,
    pub(super) handed_over: Counter,
    pub(super) callbacks: Family<ResultLabels, Counter>,
    pub(super) reviews: Family<KindLabels, Counter>,
    pub(super) review_open: Gauge,
    pub(super) review_overdue: Gauge,
    pub(super) subjects_overdue: Gauge,
    pub(super) fraud_pending: Gauge,
    pub(super) fraud_oldest_age: Gauge,
    pub(super) pending: Family<StateLabels, Gauge>,
    pub(super) steps_due: Family<KindName, Gauge>,
    pub(super) steps_retrying: Family<KindName, Gauge>,
    pub(super) pool: Family<PoolLabels, Gauge>,
    pub(super) pool_max: Gauge,
    pub(super) pool_waiters: Gauge,
    pub(super) rejected: Family<ReasonLabels, Counter>,
    pub(super) connections_closed: Family<ReasonLabels, Counter>,
    pub(super) connections_open: Gauge,
    pub(super) restarts: Family<TaskLabels, Counter>,
    pub(super) audit_searches: Counter,
    pub(super) risk_rules: Family<CodeLabels, Counter>,
    pub(super) list_entries: Family<ListLabels, Gauge>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct CodeLabels {
    pub(super) reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct ListLabels {
    pub(super) key: &'static str,
}

pub(super) static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
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
