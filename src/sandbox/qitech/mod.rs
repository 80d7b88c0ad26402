//! QI Tech CaaS simulated: the device manager (account, person, device) and the
//! device_validation account event. Test ids pick QI Tech's answers; see `DEVICE_IDS` and
//! `VALIDATION_ACCOUNTS`.
//!
//! This file holds the books, the routes and how a request is read; `people` serves accounts and
//! persons, `devices` devices, `events` the device_validation event.

// Helpers here fail with the HTTP answer itself; its size does not matter at sandbox rates.
#![allow(clippy::result_large_err)]

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Map, Value, json};

mod devices;
mod events;
mod people;

use devices::{create_device, get_device, list_devices};
use events::{create_event, get_event};
use people::{create_account, create_person, get_account, get_person};

/// Device ids with a scripted registration. Any other id is registered and approved.
pub const DEVICE_IDS: &[(&str, &str)] = &[
    (
        "sandbox-device-reproved",
        "not_registered, automatically_reproved",
    ),
    (
        "sandbox-device-pending",
        "pending at first, registered and automatically_approved after sandbox.qitech_pending_delay",
    ),
    ("sandbox-device-pending-forever", "pending on every read"),
    (
        "sandbox-device-not-registered",
        "not_registered, automatically_approved",
    ),
    (
        "sandbox-device-deactivated",
        "deactivated, automatically_approved",
    ),
    (
        "sandbox-device-unavailable-once",
        "the first POST answers 503 and registers nothing; then as any id",
    ),
    (
        "sandbox-device-lost-answer",
        "the first POST registers the device but answers 500; a second POST gets 409",
    ),
];

/// Account ids with a scripted device validation. Any other account is automatically_approved.
pub const VALIDATION_ACCOUNTS: &[(&str, &str)] = &[
    ("sandbox-account-reproved", "automatically_reproved"),
    (
        "sandbox-account-pending",
        "pending, then automatically_approved",
    ),
    (
        "sandbox-account-in-queue",
        "in_queue, then automatically_approved",
    ),
    (
        "sandbox-account-manual-approved",
        "in_manual_analysis, then manually_approved",
    ),
    (
        "sandbox-account-manual-reproved",
        "in_manual_analysis, then manually_reproved",
    ),
    (
        "sandbox-account-challenge",
        "automatically_challenge, never final",
    ),
    ("sandbox-account-not-analysed", "not_analysed, never final"),
    (
        "sandbox-account-unknown-status",
        "an undocumented status (under_review), never final",
    ),
    (
        "sandbox-account-unavailable-once",
        "the first POST of an event answers 503; then automatically_approved",
    ),
];

struct StoredDevice {
    device_id: String,
    session_id: String,
    registered_at: Instant,
    reproved_mfa: bool,
}

struct StoredEvent {
    account_id: String,
    received_at: Instant,
}

#[derive(Default)]
struct Books {
    accounts: HashSet<String>,
    /// (account, person) -> document_number as registered.
    persons: HashMap<(String, String), Option<String>>,
    devices: HashMap<(String, String, String), StoredDevice>,
    events: HashMap<String, StoredEvent>,
    /// Ids whose one scripted failure has been served.
    failed_once: HashSet<String>,
}

pub(super) struct Qitech {
    api_key: String,
    pending_delay: Duration,
    books: Mutex<Books>,
}

impl Qitech {
    pub(super) fn new(api_key: String, pending_delay: Duration) -> Self {
        Qitech {
            api_key,
            pending_delay,
            books: Mutex::new(Books::default()),
        }
    }

    fn books(&self) -> std::sync::MutexGuard<'_, Books> {
        self.books.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

pub(super) fn router(qitech: Arc<Qitech>) -> Router {
    let dm = "/sandbox/qitech/device_manager/account";
    Router::new()
        .route(dm, post(create_account))
        .route(&format!("{dm}/{{account_id}}"), get(get_account))
        .route(&format!("{dm}/{{account_id}}/person"), post(create_person))
        .route(
            &format!("{dm}/{{account_id}}/person/{{person_id}}"),
            get(get_person),
        )
        .route(
            &format!("{dm}/{{account_id}}/person/{{person_id}}/device"),
            post(create_device),
        )
        .route(
            &format!("{dm}/{{account_id}}/person/{{person_id}}/devices"),
            get(list_devices),
        )
        .route(
            &format!("{dm}/{{account_id}}/person/{{person_id}}/device/{{device_id}}"),
            get(get_device),
        )
        .route(
            "/sandbox/qitech/account_event/event_type/device_validation/event",
            post(create_event),
        )
        .route(
            "/sandbox/qitech/account_event/event_type/device_validation/event/{event_id}",
            get(get_event),
        )
        // The read-back path as one page prints it, without the module prefix.
        .route(
            "/sandbox/qitech/event_type/device_validation/event/{event_id}",
            get(get_event),
        )
        .with_state(qitech)
}

fn problem(status: StatusCode, title: &str, description: impl Into<String>) -> Response {
    (
        status,
        axum::Json(json!({ "title": title, "description": description.into() })),
    )
        .into_response()
}

/// CaaS takes the bare API key in `Authorization`; a scheme in front of it is not the key.
fn authorised(qitech: &Qitech, headers: &HeaderMap) -> Result<(), Response> {
    match headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        Some(key) if key == qitech.api_key => Ok(()),
        Some(_) => Err(problem(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "invalid API key",
        )),
        None => Err(problem(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing Authorization header",
        )),
    }
}

fn body_object(body: &Bytes) -> Result<Map<String, Value>, Response> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(problem(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "the body must be a JSON object",
        )),
        Err(_) => Err(problem(
            StatusCode::NOT_ACCEPTABLE,
            "not_acceptable",
            "the body is not JSON",
        )),
    }
}

fn text<'a>(body: &'a Map<String, Value>, field: &str) -> Result<&'a str, Response> {
    match body.get(field) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s),
        Some(_) => Err(problem(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("{field} must be a non-empty string"),
        )),
        None => Err(problem(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("{field} is required"),
        )),
    }
}

fn optional_text<'a>(
    body: &'a Map<String, Value>,
    field: &str,
) -> Result<Option<&'a str>, Response> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(problem(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("{field} must be a string"),
        )),
    }
}

/// Dates must carry their time zone: `2019-12-11T11:37:15.12-03:00`.
fn dated(body: &Map<String, Value>, field: &str) -> Result<(), Response> {
    let value = text(body, field)?;
    chrono::DateTime::parse_from_rfc3339(value)
        .map(|_| ())
        .map_err(|_| {
            problem(
                StatusCode::BAD_REQUEST,
                "bad_request",
                format!("{field} must be a date and time with its time zone"),
            )
        })
}

/// `111.111.111-11` or `11.111.111/0001-11`: the document as people write it.
fn punctuated_document(value: &str) -> bool {
    let shape = |pattern: &str| {
        value.len() == pattern.len()
            && value.bytes().zip(pattern.bytes()).all(|(v, p)| {
                if p == b'9' {
                    v.is_ascii_digit()
                } else {
                    v == p
                }
            })
    };
    shape("999.999.999-99") || shape("99.999.999/9999-99")
}
