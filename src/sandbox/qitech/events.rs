//! The device_validation account event: received, then read back with its scripted result.

use std::sync::Arc;
use std::time::Instant;

use super::{Qitech, StoredEvent, authorised, body_object, dated, optional_text, problem, text};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

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

pub(super) async fn create_event(
    State(q): State<Arc<Qitech>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
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

pub(super) async fn get_event(
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
