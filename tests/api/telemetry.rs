//! Traces as an operator's collector receives them: `serve` run as its own process exports over
//! OTLP/HTTP to a receiver here that decodes the protobuf; one onboarding is one trace, from the
//! caller's `traceparent` through the steps run later to the provider calls, and the provider
//! fake sees the same trace id. The JSON logs carry the trace and span ids.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::*;
use crate::device_support::{Fake, QitechScript};
use axum::Router;
use axum::body::Bytes;
use axum::routing::post;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use prost::Message;
use serde_json::Value;

#[derive(Debug, Clone)]
struct Received {
    trace_id: String,
    parent_span_id: String,
    name: String,
    kind: i32,
    attributes: Vec<(String, String)>,
}

impl Received {
    fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// An OTLP/HTTP receiver: `POST /v1/traces` with a protobuf `ExportTraceServiceRequest`.
async fn start_receiver() -> (String, Arc<Mutex<Vec<Received>>>) {
    let spans = Arc::new(Mutex::new(Vec::new()));
    let kept = spans.clone();
    let app = Router::new().route(
        "/v1/traces",
        post(move |body: Bytes| {
            let kept = kept.clone();
            async move {
                let request = ExportTraceServiceRequest::decode(body).expect("an OTLP request");
                let mut kept = kept.lock().unwrap();
                for resource in request.resource_spans {
                    for scope in resource.scope_spans {
                        for span in scope.spans {
                            kept.push(Received {
                                trace_id: hex(&span.trace_id),
                                parent_span_id: hex(&span.parent_span_id),
                                name: span.name.clone(),
                                kind: span.kind,
                                attributes: span
                                    .attributes
                                    .iter()
                                    .map(|a| {
                                        let value = a
                                            .value
                                            .as_ref()
                                            .and_then(|v| v.value.as_ref())
                                            .map(|v| format!("{v:?}"))
                                            .unwrap_or_default();
                                        (a.key.clone(), value)
                                    })
                                    .collect(),
                            });
                        }
                    }
                }
                (
                    [("content-type", "application/x-protobuf")],
                    ExportTraceServiceResponse::default().encode_to_vec(),
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1/traces", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, spans)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn one_onboarding_is_one_trace_from_the_caller_to_the_providers() {
    let (otlp, spans) = start_receiver().await;
    let fake = Fake::start(QitechScript::default(), 0).await;
    let database = fresh_database().await;
    let port = free_port();
    let child = veredito_command()
        .arg("serve")
        .env("VEREDITO__SERVER__ADDR", format!("127.0.0.1:{port}"))
        .env("VEREDITO__DATABASE__URL", &database.url)
        .env("VEREDITO__TELEMETRY__LOG_FORMAT", "json")
        .env("VEREDITO__TELEMETRY__OTLP_ENDPOINT", &otlp)
        .env("VEREDITO__SANDBOX__PROCESSING_DELAY", "300ms")
        .env("VEREDITO__SANDBOX__DEVICE_PROVIDERS", "false")
        .env("VEREDITO__QITECH__BASE_URL", fake.qitech_url())
        .env("VEREDITO__ZRO__BASE_URL", fake.zro_url())
        .env("VEREDITO__UNICO__POLL_INITIAL", "200ms")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary starts");
    let base = format!("http://127.0.0.1:{port}");
    wait_ready(&base).await;

    // The caller's trace: an async unico scenario, so steps run after the request's first one.
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller_span = "00f067aa0ba902b7";
    let response = reqwest::Client::new()
        .post(format!("{base}/v1/onboardings"))
        .bearer_auth(ONBOARDING_KEY)
        .header("Idempotency-Key", key())
        .header("Prefer", "wait=10")
        .header("traceparent", format!("00-{trace_id}-{caller_span}-01"))
        .json(&onboarding_body("900.000.007-60"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let view: Value = response.json().await.unwrap();
    assert_eq!(view["outcome"], "approved", "{view}");

    // The provider fake received the same trace id with every call.
    let qitech: Vec<_> = fake
        .seen()
        .await
        .into_iter()
        .filter(|s| s.path.starts_with("/qitech"))
        .collect();
    assert!(!qitech.is_empty(), "QI Tech was called");
    for seen in &qitech {
        let header = seen
            .headers
            .get("traceparent")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("{} {} without traceparent", seen.method, seen.path));
        assert!(
            header.starts_with(&format!("00-{trace_id}-")),
            "{} {}: {header}",
            seen.method,
            seen.path
        );
    }

    // The spans arrive (the batch goes out within about 5 s).
    let ours = |spans: &[Received]| -> Vec<Received> {
        spans
            .iter()
            .filter(|s| s.trace_id == trace_id)
            .cloned()
            .collect()
    };
    let mut arrived = Vec::new();
    for _ in 0..150 {
        arrived = ours(&spans.lock().unwrap());
        let names: Vec<&str> = arrived.iter().map(|s| s.name.as_str()).collect();
        if names.contains(&"POST qitech.register_device")
            && names.iter().any(|n| n.starts_with("step read_process"))
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let server = arrived
        .iter()
        .find(|s| s.name == "POST /v1/onboardings")
        .unwrap_or_else(|| panic!("no server span among {arrived:#?}"));
    assert_eq!(server.kind, SpanKind::Server as i32);
    assert_eq!(
        server.parent_span_id, caller_span,
        "the caller's span is the parent"
    );
    assert_eq!(
        server.attribute("http.route"),
        Some("StringValue(\"/v1/onboardings\")")
    );
    assert_eq!(
        server.attribute("http.response.status_code"),
        Some("IntValue(200)")
    );
    let clients: Vec<&Received> = arrived
        .iter()
        .filter(|s| s.kind == SpanKind::Client as i32)
        .collect();
    for expected in [
        "POST unico.create_process",
        "GET unico.get_process",
        "POST qitech.register_device",
    ] {
        assert!(
            clients.iter().any(|s| s.name == expected),
            "no client span `{expected}` in {:?}",
            clients.iter().map(|s| &s.name).collect::<Vec<_>>()
        );
    }
    assert!(
        clients
            .iter()
            .all(|s| s.attribute("server.address").is_some()
                && s.attribute("http.request.method").is_some()),
        "client spans carry the HTTP attributes: {clients:#?}"
    );
    assert!(
        arrived
            .iter()
            .any(|s| s.name.starts_with("step read_process")),
        "the step run after unico's webhook continues the trace"
    );
    // Nothing from this onboarding went to another trace.
    let all = spans.lock().unwrap().clone();
    assert!(
        all.iter()
            .filter(|s| s.name.starts_with("POST unico") || s.name.starts_with("POST qitech"))
            .all(|s| s.trace_id == trace_id),
        "provider calls outside the onboarding's trace"
    );

    let output = terminate(child).await;
    assert!(output.status.success(), "{:?}", output.status);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!stderr.contains("did not shut down cleanly"), "{stderr}");
    let traced: Vec<Value> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["trace_id"] == trace_id)
        .collect();
    assert!(
        traced.iter().any(|l| l["fields"]["message"] == "decided"),
        "the decision's log line carries the trace id"
    );
    assert!(
        traced
            .iter()
            .all(|l| l["span_id"].as_str().is_some_and(|s| s.len() == 16)),
        "and a span id"
    );
}
