//! What an operator reads: `/metrics` in the format it declares, with bounded labels and the
//! gauges, histograms and counters the dashboard and alerts are built on.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use crate::common::*;
use openmetrics_parser::{MetricsExposition, OpenMetricsType, OpenMetricsValue};

type Exposition = MetricsExposition<OpenMetricsType, OpenMetricsValue>;

async fn scrape(app: &TestApp) -> Exposition {
    let response = app.http.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    let text = response.text().await.unwrap();
    openmetrics_parser::openmetrics::parse_openmetrics(&text)
        .unwrap_or_else(|e| panic!("not OpenMetrics: {e:?}"))
}

/// The samples of `family` as (labels, value); histograms give their count.
fn samples(exposition: &Exposition, family: &str) -> Vec<(HashMap<String, String>, f64)> {
    let family = exposition
        .families
        .get(family)
        .unwrap_or_else(|| panic!("no family {family}"));
    family
        .iter_samples()
        .map(|sample| {
            let labels = sample
                .get_labelset()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let value = match &sample.value {
                OpenMetricsValue::Counter(c) => c.value.as_f64(),
                OpenMetricsValue::Gauge(g) | OpenMetricsValue::Unknown(g) => g.as_f64(),
                OpenMetricsValue::Histogram(h) => h.count.unwrap_or_default() as f64,
                other => panic!("unexpected value {other:?}"),
            };
            (labels, value)
        })
        .collect()
}

fn value(exposition: &Exposition, family: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples(exposition, family)
        .into_iter()
        .find(|(have, _)| {
            labels
                .iter()
                .all(|(k, v)| have.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|(_, v)| v)
}

fn kind(exposition: &Exposition, family: &str) -> OpenMetricsType {
    exposition.families[family].family_type
}

#[tokio::test]
async fn metrics_are_openmetrics_with_bounded_labels_and_the_backlog() {
    // Reads counters of the process's one metrics registry: alone in a process.
    if isolation::own_process(
        module_path!(),
        "metrics_are_openmetrics_with_bounded_labels_and_the_backlog",
        isolation::Server::Shared,
    )
    .await
    {
        return;
    }
    // No runners: the step after CreateProcess stays due, as it would when runners fall behind.
    let app = TestApp::builder()
        .config(&[("jobs.enabled", "false")])
        .spawn()
        .await;
    let approved = app
        .onboard(&key(), &onboarding_body("900.000.001-75"), Some(10))
        .await;
    assert_eq!(approved.status(), 200);
    // A process whose webhook is lost: a webhook would have the replica read it itself.
    let waiting = app
        .start_onboarding(&onboarding_body("900.000.025-42"))
        .await;
    // Methods nobody uses, each once: they must not make series of their own.
    for i in 0..40 {
        let method = reqwest::Method::from_bytes(format!("X{i}").as_bytes()).unwrap();
        app.http
            .request(method, app.url("/v1/onboardings"))
            .send()
            .await
            .unwrap();
    }
    app.http
        .post(app.url("/v1/webhooks/unico"))
        .header(WEBHOOK_HEADER, "forged")
        .json(&serde_json::json!({"processId": "p"}))
        .send()
        .await
        .unwrap();
    // The read step of the waiting onboarding comes due after unico.poll_initial.
    eventually(Duration::from_secs(10), "the read step comes due", || async {
        sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM steps WHERE kind = 'read_process' AND status = 'pending' AND run_at <= now())",
        )
        .fetch_one(&app.db)
        .await
        .unwrap()
    })
    .await;

    let m = scrape(&app).await;

    let methods: BTreeSet<String> = samples(&m, "veredito_http_requests")
        .into_iter()
        .filter_map(|(labels, _)| labels.get("method").cloned())
        .collect();
    let allowed: BTreeSet<String> = [
        "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "other",
    ]
    .map(str::to_owned)
    .into();
    assert!(methods.is_subset(&allowed), "{methods:?}");
    let unknown = value(
        &m,
        "veredito_http_requests",
        &[("method", "other"), ("route", "/v1/onboardings")],
    );
    assert!(unknown.unwrap_or_default() >= 40.0, "{unknown:?}");

    assert_eq!(kind(&m, "veredito_decisions"), OpenMetricsType::Counter);
    assert!(
        value(
            &m,
            "veredito_decisions",
            &[("outcome", "approved"), ("reason", "identity.confirmed")]
        )
        .is_some_and(|v| v >= 1.0),
        "decisions by outcome and decisive reason"
    );
    assert_eq!(
        kind(&m, "veredito_decision_duration_seconds"),
        OpenMetricsType::Histogram
    );
    assert!(
        value(
            &m,
            "veredito_decision_duration_seconds",
            &[("outcome", "approved")]
        )
        .is_some_and(|n| n >= 1.0)
    );
    assert!(
        value(&m, "veredito_unico_token_refreshes", &[("result", "ok")]).is_some_and(|v| v >= 1.0)
    );
    assert!(value(&m, "veredito_unico_webhooks", &[("kind", "forged")]).is_some_and(|v| v >= 1.0));
    assert!(
        value(
            &m,
            "veredito_provider_calls",
            &[("provider", "unico"), ("operation", "create_process")]
        )
        .is_some()
    );
    assert_eq!(
        kind(&m, "veredito_provider_errors"),
        OpenMetricsType::Counter
    );

    // The backlog, read from the database at the scrape.
    assert_eq!(
        kind(&m, "veredito_onboardings_pending"),
        OpenMetricsType::Gauge
    );
    assert_eq!(
        value(
            &m,
            "veredito_onboardings_pending",
            &[("state", "biometrics")]
        ),
        Some(1.0),
        "{waiting}"
    );
    assert_eq!(
        value(&m, "veredito_onboardings_pending", &[("state", "received")]),
        Some(0.0)
    );
    assert_eq!(
        value(&m, "veredito_steps_due", &[("kind", "read_process")]),
        Some(1.0)
    );
    assert_eq!(
        value(&m, "veredito_review_cases_unresolved", &[]),
        Some(0.0)
    );
    assert_eq!(value(&m, "veredito_review_cases_overdue", &[]), Some(0.0));
    assert_eq!(
        value(&m, "veredito_fraud_indications_pending", &[]),
        Some(0.0)
    );
    assert_eq!(
        value(
            &m,
            "veredito_fraud_indication_oldest_pending_age_seconds",
            &[]
        ),
        Some(0.0)
    );
    assert_eq!(
        kind(&m, "veredito_fraud_indications_pending"),
        OpenMetricsType::Gauge
    );

    // The pool and the build.
    assert_eq!(
        value(&m, "veredito_db_pool_max_connections", &[]),
        Some(10.0)
    );
    assert!(value(&m, "veredito_db_pool_connections", &[("state", "idle")]).is_some());
    assert!(value(&m, "veredito_db_pool_connections", &[("state", "in_use")]).is_some());
    assert_eq!(value(&m, "veredito_db_pool_waiters", &[]), Some(0.0));
    assert_eq!(
        value(
            &m,
            "veredito_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &m,
            "veredito_requests_rejected",
            &[("reason", "rate_limited")]
        ),
        Some(0.0)
    );
    app.stop().await;
}
