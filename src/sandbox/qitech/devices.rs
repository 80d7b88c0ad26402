//! A person's devices: registered, then read back as their scripted scenario goes on.

use std::sync::Arc;
use std::time::Instant;

use super::{
    Qitech, StoredDevice, authorised, body_object, dated, optional_text, problem,
    punctuated_document, text,
};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

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

pub(super) async fn create_device(
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

pub(super) async fn get_device(
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

pub(super) async fn list_devices(
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
