//! QI Tech CaaS simulated: the device manager (account, person, device) and the
//! device_validation account event. Test ids pick QI Tech's answers; see `DEVICE_IDS` and
//! `VALIDATION_ACCOUNTS`.

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
use axum::routing::{get, post};
use serde_json::{Map, Value, json};

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

async fn create_account(State(q): State<Arc<Qitech>>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(r) = authorised(&q, &headers) {
        return r;
    }
    let run = || -> Result<Response, Response> {
        let body = body_object(&body)?;
        let account_id = text(&body, "account_id")?;
        let account_type = text(&body, "account_type")?;
        if account_type != "natural_person" && account_type != "legal_person" {
            return Err(problem(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "account_type must be natural_person or legal_person",
            ));
        }
        dated(&body, "registration_date")?;
        if !matches!(body.get("account_data"), None | Some(Value::Object(_))) {
            return Err(problem(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "account_data must be an object",
            ));
        }
        if !q.books().accounts.insert(account_id.to_owned()) {
            return Err(problem(
                StatusCode::CONFLICT,
                "conflict",
                "account_id already registered",
            ));
        }
        Ok((StatusCode::CREATED, axum::Json(Value::Object(body.clone()))).into_response())
    };
    run().unwrap_or_else(|r| r)
}

async fn get_account(
    State(q): State<Arc<Qitech>>,
    headers: HeaderMap,
    Path(account_id): Path<String>,
) -> Response {
    if let Err(r) = authorised(&q, &headers) {
        return r;
    }
    if q.books().accounts.contains(&account_id) {
        axum::Json(json!({ "account_id": account_id })).into_response()
    } else {
        problem(StatusCode::NOT_FOUND, "not_found", "unknown account")
    }
}

async fn create_person(
    State(q): State<Arc<Qitech>>,
    headers: HeaderMap,
    Path(account_id): Path<String>,
    body: Bytes,
) -> Response {
    if let Err(r) = authorised(&q, &headers) {
        return r;
    }
    let run = || -> Result<Response, Response> {
        let body = body_object(&body)?;
        let person_id = text(&body, "person_id")?;
        dated(&body, "registration_date")?;
        let document = optional_text(&body, "document_number")?;
        if document.is_some_and(|d| !punctuated_document(d)) {
            return Err(problem(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "document_number must be a punctuated CPF or CNPJ",
            ));
        }
        if let Some(data) = body.get("person_data") {
            let Value::Object(data) = data else {
                return Err(problem(
                    StatusCode::BAD_REQUEST,
                    "bad_request",
                    "person_data must be an object",
                ));
            };
            optional_text(data, "name")?;
            optional_text(data, "email")?;
            match data.get("phone") {
                None | Some(Value::Null) => {}
                Some(Value::Object(phone)) => {
                    for part in ["number", "international_dial_code", "area_code"] {
                        if !matches!(phone.get(part), Some(Value::String(_))) {
                            return Err(problem(
                                StatusCode::BAD_REQUEST,
                                "bad_request",
                                format!("person_data.phone.{part} must be a string"),
                            ));
                        }
                    }
                }
                Some(_) => {
                    return Err(problem(
                        StatusCode::BAD_REQUEST,
                        "bad_request",
                        "person_data.phone must be an object",
                    ));
                }
            }
        }
        let mut books = q.books();
        if !books.accounts.contains(&account_id) {
            return Err(problem(
                StatusCode::NOT_FOUND,
                "not_found",
                "unknown account",
            ));
        }
        let key = (account_id.clone(), person_id.to_owned());
        if books.persons.contains_key(&key) {
            return Err(problem(
                StatusCode::CONFLICT,
                "conflict",
                "person_id already registered",
            ));
        }
        books.persons.insert(key, document.map(str::to_owned));
        Ok((StatusCode::CREATED, axum::Json(Value::Object(body.clone()))).into_response())
    };
    run().unwrap_or_else(|r| r)
}

async fn get_person(
    State(q): State<Arc<Qitech>>,
    headers: HeaderMap,
    Path((account_id, person_id)): Path<(String, String)>,
) -> Response {
    if let Err(r) = authorised(&q, &headers) {
        return r;
    }
    if q.books()
        .persons
        .contains_key(&(account_id, person_id.clone()))
    {
        axum::Json(json!({ "person_id": person_id })).into_response()
    } else {
        problem(StatusCode::NOT_FOUND, "not_found", "unknown person")
    }
}

/// The device as QI Tech shows it at `now`, following its scripted scenario.
fn device_view(q: &Qitech, device: &StoredDevice) -> Value {
    let ripe = device.registered_at.elapsed() >= q.pending_delay;
    let (status, analysis, reason) = match device.device_id.as_str() {
        _ if device.reproved_mfa => ("not_registered", "automatically_reproved", "mfa_reproved"),
        "sandbox-device-reproved" => (
            "not_registered",
            "automatically_reproved",
            "device_fraud_suspected",
        ),
        "sandbox-device-pending" if !ripe => ("not_registered", "pending", "in_analysis"),
        "sandbox-device-pending-forever" => ("not_registered", "pending", "in_analysis"),
        "sandbox-device-not-registered" => (
            "not_registered",
            "automatically_approved",
            "device_scan_session_not_found",
        ),
        "sandbox-device-deactivated" => (
            "deactivated",
            "automatically_approved",
            "device_deactivated",
        ),
        _ => (
            "registered",
            "automatically_approved",
            "rule_decision_approved",
        ),
    };
    json!({
        "device_id": device.device_id,
        "session_id": device.session_id,
        "status": status,
        "analysis_status": analysis,
        "reason": reason,
        "reason_description": format!("sandbox: {reason}"),
    })
}

async fn create_device(
    State(q): State<Arc<Qitech>>,
    headers: HeaderMap,
    Path((account_id, person_id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    if let Err(r) = authorised(&q, &headers) {
        return r;
    }
    let run = || -> Result<Response, Response> {
        let body = body_object(&body)?;
        let device_id = text(&body, "device_id")?;
        let session_id = text(&body, "session_id")?;
        optional_text(&body, "face_recognition_key")?;
        let mfa = text(&body, "mfa_status")?;
        if mfa != "approved" && mfa != "reproved" {
            return Err(problem(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "mfa_status must be approved or reproved",
            ));
        }
        dated(&body, "registration_date")?;
        let document = optional_text(&body, "document_number")?;
        let mut books = q.books();
        let Some(registered_document) = books.persons.get(&(account_id.clone(), person_id.clone()))
        else {
            return Err(problem(
                StatusCode::NOT_FOUND,
                "not_found",
                "unknown account or person",
            ));
        };
        // QI Tech says the device's document must never differ from the person's. The sandbox
        // does not hold callers to it: test backends reuse one account and person for many CPFs.
        match (registered_document, document) {
            (None, None) => {
                return Err(problem(
                    StatusCode::BAD_REQUEST,
                    "bad_request",
                    "document_number is required when the person has none",
                ));
            }
            (_, Some(sent)) if !punctuated_document(sent) => {
                return Err(problem(
                    StatusCode::BAD_REQUEST,
                    "bad_request",
                    "document_number must be punctuated",
                ));
            }
            _ => {}
        }
        let key = (account_id.clone(), person_id.clone(), device_id.to_owned());
        if books.devices.contains_key(&key) {
            return Err(problem(
                StatusCode::CONFLICT,
                "conflict",
                "device_id already registered",
            ));
        }
        let first_failure = matches!(
            device_id,
            "sandbox-device-unavailable-once" | "sandbox-device-lost-answer"
        ) && books
            .failed_once
            .insert(format!("device:{account_id}:{person_id}:{device_id}"));
        if first_failure && device_id == "sandbox-device-unavailable-once" {
            return Err(problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "service_unavailable",
                "try again later",
            ));
        }
        let stored = StoredDevice {
            device_id: device_id.to_owned(),
            session_id: session_id.to_owned(),
            registered_at: Instant::now(),
            reproved_mfa: mfa == "reproved",
        };
        let view = device_view(&q, &stored);
        books.devices.insert(key, stored);
        if first_failure {
            // Registered, but the answer is lost on the way back.
            return Err(problem(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal_server_error",
                "unexpected error",
            ));
        }
        Ok((StatusCode::CREATED, axum::Json(view)).into_response())
    };
    run().unwrap_or_else(|r| r)
}

async fn get_device(
    State(q): State<Arc<Qitech>>,
    headers: HeaderMap,
    Path((account_id, person_id, device_id)): Path<(String, String, String)>,
) -> Response {
    if let Err(r) = authorised(&q, &headers) {
        return r;
    }
    let books = q.books();
    match books.devices.get(&(account_id, person_id, device_id)) {
        Some(device) => axum::Json(device_view(&q, device)).into_response(),
        None => problem(StatusCode::NOT_FOUND, "not_found", "unknown device"),
    }
}

async fn list_devices(
    State(q): State<Arc<Qitech>>,
    headers: HeaderMap,
    Path((account_id, person_id)): Path<(String, String)>,
) -> Response {
    if let Err(r) = authorised(&q, &headers) {
        return r;
    }
    let books = q.books();
    if !books
        .persons
        .contains_key(&(account_id.clone(), person_id.clone()))
    {
        return problem(
            StatusCode::NOT_FOUND,
            "not_found",
            "unknown account or person",
        );
    }
    let devices: Vec<Value> = books
        .devices
        .iter()
        .filter(|((a, p, _), _)| *a == account_id && *p == person_id)
        .map(|(_, d)| device_view(&q, d))
        .collect();
    axum::Json(json!({ "devices": devices })).into_response()
}

fn event_view(q: &Qitech, event_id: &str, event: &StoredEvent) -> Value {
    let ripe = event.received_at.elapsed() >= q.pending_delay;
    let (status, reason) = match event.account_id.as_str() {
        "sandbox-account-reproved" => ("automatically_reproved", "device_mismatch"),
        "sandbox-account-pending" if !ripe => ("pending", "in_analysis"),
        "sandbox-account-in-queue" if !ripe => ("in_queue", "in_queue"),
        "sandbox-account-manual-approved" if !ripe => ("in_manual_analysis", "manual_analysis"),
        "sandbox-account-manual-approved" => ("manually_approved", "analyst_approved"),
        "sandbox-account-manual-reproved" if !ripe => ("in_manual_analysis", "manual_analysis"),
        "sandbox-account-manual-reproved" => ("manually_reproved", "analyst_reproved"),
        "sandbox-account-challenge" => ("automatically_challenge", "challenge_required"),
        "sandbox-account-not-analysed" => ("not_analysed", "not_analysed"),
        "sandbox-account-unknown-status" => ("under_review", "undocumented"),
        _ => ("automatically_approved", "rule_decision_approved"),
    };
    json!({ "id": event_id, "analysis_status": status, "reason": reason })
}

async fn create_event(State(q): State<Arc<Qitech>>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(r) = authorised(&q, &headers) {
        return r;
    }
    let run = || -> Result<Response, Response> {
        let body = body_object(&body)?;
        let id = text(&body, "id")?;
        let account_id = text(&body, "account_id")?;
        text(&body, "person_id")?;
        text(&body, "session_id")?;
        optional_text(&body, "face_recognition_key")?;
        dated(&body, "event_date")?;
        let mut books = q.books();
        if books.events.contains_key(id) {
            return Err(problem(
                StatusCode::CONFLICT,
                "conflict",
                "an event with this id exists",
            ));
        }
        if account_id == "sandbox-account-unavailable-once"
            && books.failed_once.insert(format!("event:{id}"))
        {
            return Err(problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "service_unavailable",
                "try again later",
            ));
        }
        let event = StoredEvent {
            account_id: account_id.to_owned(),
            received_at: Instant::now(),
        };
        let view = event_view(&q, id, &event);
        books.events.insert(id.to_owned(), event);
        Ok((StatusCode::CREATED, axum::Json(view)).into_response())
    };
    run().unwrap_or_else(|r| r)
}

async fn get_event(
    State(q): State<Arc<Qitech>>,
    headers: HeaderMap,
    Path(event_id): Path<String>,
) -> Response {
    if let Err(r) = authorised(&q, &headers) {
        return r;
    }
    let books = q.books();
    match books.events.get(&event_id) {
        Some(event) => axum::Json(event_view(&q, &event_id, event)).into_response(),
        None => problem(StatusCode::NOT_FOUND, "not_found", "unknown event"),
    }
}
