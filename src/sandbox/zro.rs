//! Zro's Pix-as-a-Service simulated: `/auth/signin` and the Open Finance device enrollment risk
//! signal, with the replay protection its headers select.

// Helpers here fail with the HTTP answer itself; its size does not matter at sandbox rates.
#![allow(clippy::result_large_err)]

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Map, Value, json};
use uuid::Uuid;

/// Enrollment ids with a scripted answer. Any other enrollment accepts the signal.
pub const ENROLLMENT_IDS: &[(&str, &str)] = &[
    (
        "sandbox-enrollment-unavailable-once",
        "the first signal of each x-transaction-uuid answers 503",
    ),
    ("sandbox-enrollment-invalid", "always 422"),
];

/// Zro blocks a repeated request for two hours.
const REPLAY_WINDOW: Duration = Duration::from_secs(2 * 3600);

#[derive(Default)]
struct Books {
    tokens: HashSet<String>,
    seen: HashMap<String, Instant>,
    failed_once: HashSet<String>,
}

pub(super) struct Zro {
    api_id: String,
    api_key: String,
    books: Mutex<Books>,
}

impl Zro {
    pub(super) fn new(api_id: String, api_key: String) -> Self {
        Zro {
            api_id,
            api_key,
            books: Mutex::new(Books::default()),
        }
    }

    fn books(&self) -> std::sync::MutexGuard<'_, Books> {
        self.books.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

pub(super) fn router(zro: Arc<Zro>) -> Router {
    Router::new()
        .route("/sandbox/zro/auth/signin", post(signin))
        .route(
            "/sandbox/zro/open-finance/enrollments/{enrollment_id}/device/risk-signal",
            post(risk_signal),
        )
        .with_state(zro)
}

fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    (
        status,
        axum::Json(json!({ "code": code, "message": message.into() })),
    )
        .into_response()
}

async fn signin(State(zro): State<Arc<Zro>>, body: Bytes) -> Response {
    let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(&body) else {
        return error(
            StatusCode::BAD_REQUEST,
            "INVALID_PARAMS",
            "body must be a JSON object",
        );
    };
    let field = |name: &str| body.get(name).and_then(Value::as_str).unwrap_or_default();
    if field("api_id") != zro.api_id || field("api_key") != zro.api_key {
        return error(
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED",
            "invalid credentials",
        );
    }
    let token = format!("zro-sandbox-{}", Uuid::new_v4().simple());
    zro.books().tokens.insert(token.clone());
    axum::Json(json!({ "access_token": token })).into_response()
}

fn v4(headers: &HeaderMap, name: &str) -> Result<Option<Uuid>, Response> {
    let Some(value) = headers.get(name) else {
        return Ok(None);
    };
    match value.to_str().ok().and_then(|v| Uuid::parse_str(v).ok()) {
        Some(uuid) if uuid.get_version_num() == 4 => Ok(Some(uuid)),
        _ => Err(error(
            StatusCode::BAD_REQUEST,
            "INVALID_PARAMS",
            format!("{name} must be a UUID v4"),
        )),
    }
}

fn check_body(body: &Map<String, Value>) -> Result<(), Response> {
    let invalid = |m: String| Err(error(StatusCode::UNPROCESSABLE_ENTITY, "INVALID_PARAMS", m));
    for name in [
        "device_id",
        "os_version",
        "user_time_zone_offset",
        "language",
    ] {
        if !matches!(body.get(name), Some(Value::String(s)) if !s.is_empty()) {
            return invalid(format!("{name} is required and must be a string"));
        }
    }
    for name in ["screen_width", "screen_height"] {
        if !body.get(name).is_some_and(Value::is_u64) {
            return invalid(format!("{name} is required and must be a positive integer"));
        }
    }
    for (name, value) in body {
        let ok = match name.as_str() {
            "is_rooted_device"
            | "is_call_in_progress"
            | "is_dev_mode_enabled"
            | "is_mock_gps"
            | "is_emulated"
            | "is_monkey_runner"
            | "is_charging"
            | "is_usb_connected" => value.is_boolean(),
            "elapsed_time_since_boot" => value.is_u64(),
            "screen_brightness" | "device_latitude" | "device_longitude" => value.is_number(),
            "device_geolocation_type" => {
                matches!(value.as_str(), Some("COARSE" | "FINE" | "INFERRED"))
            }
            _ => true,
        };
        if !ok {
            return invalid(format!("{name} has the wrong type"));
        }
    }
    Ok(())
}

async fn risk_signal(
    State(zro): State<Arc<Zro>>,
    headers: HeaderMap,
    Path(enrollment_id): Path<String>,
    body: Bytes,
) -> Response {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    if !zro.books().tokens.contains(token) {
        return error(
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED",
            "invalid or missing access token",
        );
    }
    let transaction = match v4(&headers, "x-transaction-uuid") {
        Ok(Some(t)) => t,
        Ok(None) => {
            return error(
                StatusCode::BAD_REQUEST,
                "INVALID_PARAMS",
                "x-transaction-uuid is required",
            );
        }
        Err(r) => return r,
    };
    let nonce = match v4(&headers, "nonce") {
        Ok(Some(n)) => n,
        Ok(None) => {
            return error(
                StatusCode::BAD_REQUEST,
                "INVALID_PARAMS",
                "nonce is required",
            );
        }
        Err(r) => return r,
    };
    let schema = headers
        .get("x-include-replay-protection-schema")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mut parts: Vec<&str> = schema.split('&').filter(|p| !p.is_empty()).collect();
    parts.sort_unstable();
    if parts
        .iter()
        .any(|p| *p != "nonce" && *p != "x-transaction-uuid")
    {
        return error(
            StatusCode::BAD_REQUEST,
            "INVALID_PARAMS",
            "unknown x-include-replay-protection-schema",
        );
    }
    let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(&body) else {
        return error(
            StatusCode::BAD_REQUEST,
            "INVALID_PARAMS",
            "body must be a JSON object",
        );
    };
    if let Err(r) = check_body(&fields) {
        return r;
    }
    if enrollment_id == "sandbox-enrollment-invalid" {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "ENROLLMENT_INVALID",
            "the enrollment cannot take risk signals",
        );
    }
    // The request's identity for replay protection: its content plus the headers the schema names.
    let mut key = format!("{token}|{enrollment_id}|{}", String::from_utf8_lossy(&body));
    for part in &parts {
        match *part {
            "nonce" => key.push_str(&format!("|n:{nonce}")),
            _ => key.push_str(&format!("|t:{transaction}")),
        }
    }
    let mut books = zro.books();
    let now = Instant::now();
    books
        .seen
        .retain(|_, at| now.duration_since(*at) < REPLAY_WINDOW);
    if books.seen.insert(key, now).is_some() {
        return error(
            StatusCode::CONFLICT,
            "REPLAY_DETECTED",
            "this request was already received",
        );
    }
    if enrollment_id == "sandbox-enrollment-unavailable-once"
        && books.failed_once.insert(transaction.to_string())
    {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "SERVICE_UNAVAILABLE",
            "try again later",
        );
    }
    axum::Json(json!({ "id": Uuid::new_v4(), "enrollment_id": enrollment_id, "transaction_uuid": transaction })).into_response()
}
