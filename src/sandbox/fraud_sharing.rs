//! The simulated fraud-indication sharing system between institutions: it takes the events
//! veredito sends (`POST /sandbox/fraud-sharing/events`), checks their Standard Webhooks
//! signature with its own reading of the scheme, and acknowledges them. What it accepted can be
//! read back (`GET /sandbox/fraud-sharing/events`), and it can be taken down for a while
//! (`POST /sandbox/fraud-sharing/outage {"seconds": n}`: 503 to every event until then), besides
//! the faults `sandbox.fault_rate` injects as for the other simulated providers.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use serde_json::{Value, json};
use uuid::Uuid;

use super::faults::{self, Faults};

/// Where veredito sends the events when the sandbox stands in for the sharing system.
pub const EVENTS: &str = "/sandbox/fraud-sharing/events";

#[derive(Clone)]
pub struct FraudSharingConfig {
    /// The signing key shared with veredito (the decoded part of `fraud_sharing.secret`).
    pub key: Vec<u8>,
    pub faults: Faults,
}

struct Sharing {
    key: Vec<u8>,
    accepted: Mutex<Vec<Value>>,
    down_until: Mutex<Option<Instant>>,
}

pub fn router(config: FraudSharingConfig) -> Router {
    let state = Arc::new(Sharing {
        key: config.key,
        accepted: Mutex::new(Vec::new()),
        down_until: Mutex::new(None),
    });
    let events = Router::new()
        .route(EVENTS, post(receive))
        .with_state(state.clone());
    faults::inject(events, config.faults).merge(
        Router::new()
            .route(EVENTS, get(accepted))
            .route("/sandbox/fraud-sharing/outage", post(outage))
            .with_state(state),
    )
}

fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Whether one of the `v1,` signatures is the HMAC-SHA256 of `{id}.{timestamp}.{body}`.
fn signed(key: &[u8], id: &str, timestamp: &str, signatures: &str, body: &[u8]) -> bool {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key);
    let mut message = Vec::with_capacity(id.len() + timestamp.len() + body.len() + 2);
    message.extend_from_slice(id.as_bytes());
    message.push(b'.');
    message.extend_from_slice(timestamp.as_bytes());
    message.push(b'.');
    message.extend_from_slice(body);
    signatures.split(' ').any(|candidate| {
        candidate
            .strip_prefix("v1,")
            .and_then(|b64| base64::engine::general_purpose::STANDARD.decode(b64).ok())
            .is_some_and(|tag| ring::hmac::verify(&key, &message, &tag).is_ok())
    })
}

fn problem(status: StatusCode, detail: &str) -> Response {
    (status, Json(json!({ "error": detail }))).into_response()
}

async fn receive(State(sharing): State<Arc<Sharing>>, headers: HeaderMap, body: Bytes) -> Response {
    let down = sharing
        .down_until
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .is_some_and(|until| Instant::now() < until);
    if down {
        let mut response = problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "the sharing system is down",
        );
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
        return response;
    }
    let (Some(id), Some(timestamp), Some(signature)) = (
        header_text(&headers, "webhook-id"),
        header_text(&headers, "webhook-timestamp"),
        header_text(&headers, "webhook-signature"),
    ) else {
        return problem(
            StatusCode::UNAUTHORIZED,
            "webhook-id, webhook-timestamp and webhook-signature are required",
        );
    };
    let fresh = timestamp
        .parse::<i64>()
        .is_ok_and(|t| (chrono::Utc::now().timestamp() - t).abs() <= 300);
    if !fresh || !signed(&sharing.key, id, timestamp, signature, &body) {
        return problem(StatusCode::UNAUTHORIZED, "the signature does not verify");
    }
    let Ok(event) = serde_json::from_slice::<Value>(&body) else {
        return problem(StatusCode::BAD_REQUEST, "the body is not JSON");
    };
    let kind = event["type"].as_str().unwrap_or_default();
    if !kind.starts_with("fraud_indication.") || !event["data"]["cpf"].is_string() {
        return problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            "not a fraud indication event with its CPF",
        );
    }
    let protocol = Uuid::new_v4();
    sharing
        .accepted
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(json!({
            "protocol": protocol,
            "webhook_id": id,
            "webhook_timestamp": timestamp,
            "webhook_signature": signature,
            "body": String::from_utf8_lossy(&body),
        }));
    (StatusCode::OK, Json(json!({ "protocol": protocol }))).into_response()
}

/// Every event accepted, in order, with its headers and body exactly as received.
async fn accepted(State(sharing): State<Arc<Sharing>>) -> Response {
    let items = sharing
        .accepted
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    Json(json!({ "items": items })).into_response()
}

async fn outage(State(sharing): State<Arc<Sharing>>, body: Bytes) -> Response {
    let seconds = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v["seconds"].as_u64())
        .unwrap_or(30)
        .min(3600);
    *sharing
        .down_until
        .lock()
        .unwrap_or_else(PoisonError::into_inner) =
        Some(Instant::now() + Duration::from_secs(seconds));
    Json(json!({ "down_for_seconds": seconds })).into_response()
}
