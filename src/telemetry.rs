//! Logs (JSON or human-readable) and traces.
//!
//! Every span is an OpenTelemetry span, exported over OTLP/HTTP when `telemetry.otlp_endpoint` is
//! set, so JSON log lines carry `trace_id` and `span_id` either way. A caller's W3C `traceparent`
//! becomes the parent of the request's span, steps run later continue the trace stored with them,
//! and every provider call sends its own `traceparent`.
//!
//! Nothing personal goes into a span or an event: CPFs print masked (`Cpf`'s Display/Debug),
//! names, selfies, tokens and keys are never recorded, and HTTP spans carry the route template.

use std::time::Duration;

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::Subscriber;
use tracing_opentelemetry::{OpenTelemetrySpanExt, OtelData};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::{LogFormat, TelemetrySettings};

/// Flushes and stops the trace export when dropped. Drop it outside the async runtime: the
/// exporter runs on a thread of its own.
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
    exporting: bool,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take() {
            if let Err(e) = provider.shutdown() {
                if self.exporting {
                    eprintln!("trace export did not shut down cleanly: {e}");
                }
            }
        }
    }
}

/// Installs the global subscriber. Call it before the tokio runtime starts.
pub fn init(settings: &TelemetrySettings) -> anyhow::Result<TelemetryGuard> {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=warn"));
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(settings.service_name.clone())
        .with_attribute(opentelemetry::KeyValue::new(
            "service.version",
            env!("CARGO_PKG_VERSION"),
        ))
        .build();
    let mut builder = SdkTracerProvider::builder().with_resource(resource);
    let endpoint = settings
        .otlp_endpoint
        .as_deref()
        .filter(|e| !e.trim().is_empty());
    if let Some(endpoint) = endpoint {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_endpoint(endpoint)
            .with_timeout(Duration::from_secs(5))
            .build()?;
        builder = builder.with_batch_exporter(exporter);
    }
    let provider = builder.build();
    let otel = tracing_opentelemetry::layer().with_tracer(provider.tracer("veredito"));
    let subscriber = tracing_subscriber::registry().with(filter).with(otel);
    match settings.log_format {
        LogFormat::Json => subscriber.with(json_layer()).try_init()?,
        LogFormat::Pretty => subscriber
            .with(tracing_subscriber::fmt::layer().compact().boxed())
            .try_init()?,
    }
    Ok(TelemetryGuard {
        provider: Some(provider),
        exporting: endpoint.is_some(),
    })
}

/// One JSON object a line, with the current span's fields and the trace and span ids.
fn json_layer<S>() -> json_subscriber::fmt::Layer<S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let mut layer = json_subscriber::fmt::layer()
        .with_current_span(true)
        .with_span_list(false);
    let inner = layer.inner_layer_mut();
    inner.add_dynamic_field("trace_id", |_, ctx| {
        let span = ctx.lookup_current()?;
        let extensions = span.extensions();
        let id = extensions.get::<OtelData>()?.trace_id()?;
        Some(id.to_string())
    });
    inner.add_dynamic_field("span_id", |_, ctx| {
        let span = ctx.lookup_current()?;
        let extensions = span.extensions();
        let id = extensions.get::<OtelData>()?.span_id()?;
        Some(id.to_string())
    });
    layer
}

struct Headers<'a>(&'a HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(HeaderName::as_str).collect()
    }
}

struct HeadersMut<'a>(&'a mut HeaderMap);

impl Injector for HeadersMut<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(key.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}

/// Makes the caller's `traceparent`, when it sent a valid one, the parent of `span`.
pub fn continue_from_headers(span: &tracing::Span, headers: &HeaderMap) {
    let parent = TraceContextPropagator::new().extract(&Headers(headers));
    let _ = span.set_parent(parent);
}

/// The `traceparent` of `span`, to store with work that runs later.
pub fn traceparent(span: &tracing::Span) -> Option<String> {
    let mut headers = HeaderMap::new();
    TraceContextPropagator::new().inject_context(&span.context(), &mut HeadersMut(&mut headers));
    headers
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// Makes a stored `traceparent` the parent of `span` (a step continuing its onboarding's trace).
pub fn continue_from(span: &tracing::Span, traceparent: Option<&str>) {
    let Some(value) = traceparent.and_then(|t| HeaderValue::from_str(t).ok()) else {
        return;
    };
    let mut headers = HeaderMap::new();
    headers.insert("traceparent", value);
    continue_from_headers(span, &headers);
}

/// Adds `span`'s `traceparent` to an outgoing request's headers.
pub fn inject(span: &tracing::Span, headers: &mut HeaderMap) {
    TraceContextPropagator::new().inject_context(&span.context(), &mut HeadersMut(headers));
}
