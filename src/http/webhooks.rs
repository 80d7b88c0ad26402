//! `POST /v1/webhooks/unico`: a wake-up only. The notification says a process may have finished;
//! the result itself is always read back with GetProcess by the poller.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use subtle::ConstantTimeEq;

use crate::domain::transitions::StepKind;
use crate::http::error::ApiError;
use crate::http::state::AppState;
use crate::store::{events, processes, steps, webhooks};

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/webhooks/unico", post(receive))
}

async fn receive(
    State(st): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let payload: Option<Value> = serde_json::from_slice(&body).ok();
    if !authentic(&st, &headers) {
        crate::metrics::webhook("unauthenticated");
        // Kept for forensics, but never acted on.
        webhooks::insert(
            &st.db,
            webhooks::NewWebhook {
                authenticated: false,
                process_id: None,
                state: None,
                payload,
                known_process: false,
            },
        )
        .await?;
        return Err(ApiError::Unauthorized);
    }
    let Some(notification) = payload.as_ref().and_then(Notification::read) else {
        crate::metrics::webhook("unrecognised");
        webhooks::insert(
            &st.db,
            webhooks::NewWebhook {
                authenticated: true,
                process_id: None,
                state: None,
                payload,
                known_process: false,
            },
        )
        .await?;
        return Err(ApiError::BadRequest(
            "not a unico process notification: no process id".into(),
        ));
    };
    let mut tx = st.db.begin().await?;
    let open = processes::open_onboarding(&mut *tx, &notification.process_id).await?;
    let known = open.is_some() || processes::exists(&mut *tx, &notification.process_id).await?;
    webhooks::insert(
        &mut *tx,
        webhooks::NewWebhook {
            authenticated: true,
            process_id: Some(&notification.process_id),
            state: notification.state.as_deref(),
            payload,
            known_process: known,
        },
    )
    .await?;
    if let Some(onboarding_id) = open {
        events::record(
            &mut *tx,
            onboarding_id,
            "webhook_received",
            json!({ "process_id": notification.process_id, "state": notification.state }),
        )
        .await?;
        steps::make_due(&mut tx, onboarding_id, StepKind::ReadProcess).await?;
    }
    tx.commit().await?;
    crate::metrics::webhook(if known { "known" } else { "unknown" });
    tracing::info!(process_id = %notification.process_id, known, "unico webhook received");
    Ok(StatusCode::NO_CONTENT)
}

/// Compares the configured header's value in constant time, so its bytes cannot be guessed
/// one at a time.
fn authentic(st: &AppState, headers: &HeaderMap) -> bool {
    let expected = st.settings.unico.webhook_secret.expose_secret().as_bytes();
    headers
        .get(st.settings.unico.webhook_header.as_str())
        .is_some_and(|value| bool::from(value.as_bytes().ct_eq(expected)))
}

/// The documented shapes: `{"processId", "state", "flow"}` from unico's pages, and
/// `{"event", "eventDate", "data": {"id", "status"}}` from a partner's; key spellings vary.
#[derive(Debug, PartialEq)]
struct Notification {
    process_id: String,
    state: Option<String>,
}

impl Notification {
    fn read(payload: &Value) -> Option<Self> {
        const ID_KEYS: &[&str] = &["processId", "process_id", "ProcessId", "id", "Id"];
        let text = |v: &Value| match v {
            Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        };
        let find =
            |object: &Value, keys: &[&str]| keys.iter().find_map(|k| object.get(*k).and_then(text));
        let data = payload.get("data").or_else(|| payload.get("Data"));
        let process_id = find(payload, ID_KEYS).or_else(|| data.and_then(|d| find(d, ID_KEYS)))?;
        let state = find(payload, &["state", "State", "event", "Event"])
            .or_else(|| data.and_then(|d| find(d, &["status", "Status", "state"])));
        Some(Notification { process_id, state })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_documented_shape() {
        let cases = [
            (
                json!({"processId": "p1", "state": "PROCESS_STATE_FINISHED", "flow": "id"}),
                "p1",
                Some("PROCESS_STATE_FINISHED"),
            ),
            (
                json!({"eventDate": "2026-01-01T00:00:00Z", "event": "update_process", "data": {"id": "p2", "status": 3}}),
                "p2",
                Some("update_process"),
            ),
            (json!({"ProcessId": "p3"}), "p3", None),
            (json!({"process_id": "p4", "state": "x"}), "p4", Some("x")),
            (
                json!({"data": {"processId": "p5", "status": 3}}),
                "p5",
                Some("3"),
            ),
        ];
        for (payload, id, state) in cases {
            let n = Notification::read(&payload).unwrap_or_else(|| panic!("{payload}"));
            assert_eq!(n.process_id, id);
            assert_eq!(n.state.as_deref(), state);
        }
    }

    #[test]
    fn refuses_bodies_without_a_process_id() {
        for payload in [
            json!({}),
            json!({"state": "x"}),
            json!({"processId": ""}),
            json!([1]),
            json!({"data": {}}),
        ] {
            assert_eq!(Notification::read(&payload), None, "{payload}");
        }
    }
}
