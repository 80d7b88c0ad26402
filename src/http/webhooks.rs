//! `POST /v1/webhooks/unico`: a wake-up only. The notification says a process may have finished;
//! the result itself is always read back with GetProcess by the poller.

use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use secrecy::ExposeSecret;
use serde_json::Value;
use subtle::ConstantTimeEq;

use crate::http::error::ApiError;
use crate::http::state::AppState;
use crate::onboarding::biometrics::{self, Notified};
use crate::store::webhooks;

/// unico's notifications are a few hundred bytes; nothing near this is legitimate.
const WEBHOOK_BODY_LIMIT: usize = 16 * 1024;

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/webhooks/unico", post(receive))
}

#[utoipa::path(
    post,
    path = "/v1/webhooks/unico",
    tag = "unico",
    operation_id = "receiveUnicoWebhook",
    request_body(content = Object, content_type = "application/json", description = "unico's process notification: processId, state and flow, or event, eventDate and data.id"),
    responses(
        (status = 204, description = "Recorded (also for a process veredito does not know)"),
        (status = 400, description = "The request is malformed", body = ref("#/components/schemas/Problem"), content_type = "application/problem+json"),
        (status = 401, description = "No valid API key", body = ref("#/components/schemas/Problem"), content_type = "application/problem+json"),
        (status = 413, description = "The body is over 2 MiB", body = ref("#/components/schemas/Problem"), content_type = "application/problem+json"),
        (status = 429, description = "Too many deliveries without the secret (unico.forged_webhooks_per_second); see Retry-After", body = ref("#/components/schemas/Problem"), content_type = "application/problem+json", headers(("Retry-After" = u64, description = "Seconds to wait before trying again"))),
    ),
    security(("unicoWebhook" = [])),
)]
async fn receive(
    State(st): State<AppState>,
    headers: HeaderMap,
    request: Request,
) -> Result<StatusCode, ApiError> {
    // The secret first: a forged delivery costs a counter and its minute's count, never its
    // body; past unico.forged_webhooks_per_second only the counter, and a 429. Deliveries with
    // the secret never meet that limit, so a flood of forged ones cannot keep unico's out.
    if !authentic(&st, &headers) {
        crate::metrics::webhook("forged");
        if let Err(not_until) = st.forged_webhooks.check() {
            crate::metrics::rejected("rate_limited");
            let wait = not_until.wait_time_from(governor::clock::Clock::now(
                &governor::clock::DefaultClock::default(),
            ));
            return Err(ApiError::WebhookRateLimited {
                retry_after_secs: wait.as_secs().max(1),
            });
        }
        webhooks::count_forged(&st.db).await?;
        return Err(ApiError::Unauthorized);
    }
    // Only now is the body read, and only up to the route's small limit.
    let body = axum::body::to_bytes(request.into_body(), WEBHOOK_BODY_LIMIT)
        .await
        .map_err(|_| ApiError::PayloadTooLarge)?;
    let payload: Option<Value> = serde_json::from_slice(&body).ok();
    // The contract answers 400 to whatever is not a recognisable notification.
    let read = match &payload {
        Some(p) => match crate::http::json::nul_at(p, "") {
            Some(_) => Err("a field holds a NUL character"),
            None => Notification::read(p),
        },
        None => Err("the body is not JSON"),
    };
    let notification = match read {
        Ok(notification) => notification,
        Err(problem) => {
            // Recorded as received from unico, without the body nobody can act on.
            crate::metrics::webhook("malformed");
            webhooks::insert(
                &st.db,
                webhooks::NewWebhook {
                    authenticated: true,
                    process_id: None,
                    state: None,
                    payload: None,
                    known_process: false,
                },
            )
            .await?;
            return Err(ApiError::BadRequest(format!(
                "not a unico process notification: {problem}"
            )));
        }
    };
    let notified = biometrics::webhook_arrived(
        &st.flow,
        &notification.process_id,
        notification.state.as_deref(),
        Some(payload),
    )
    .await?;
    let known = !matches!(notified, Notified::Unknown);
    match notified {
        Notified::Open(Some((step, carried))) => {
            crate::onboarding::steps::spawn(&st.flow, vec![step], Some(carried));
        }
        Notified::Unknown => look_again(&st, notification.process_id.clone(), notification.state),
        Notified::Open(None) | Notified::Final => {}
    }
    crate::metrics::webhook(if known { "accepted" } else { "unknown_process" });
    tracing::info!(process_id = %notification.process_id, known, "unico webhook received");
    Ok(StatusCode::NO_CONTENT)
}

/// How long after a webhook for a process veredito does not know it looks for that process
/// again: unico may notify before the CreateProcess transaction that stores the process has
/// committed (seen in the benchmark with unico answering in 20 ms), and the read should then
/// not wait for the first poll.
const LOOK_AGAIN_AFTER: [Duration; 3] = [
    Duration::from_millis(200),
    Duration::from_secs(1),
    Duration::from_secs(5),
];

/// Webhooks for unknown processes looked at again at once, at most: a flood of notifications
/// for processes that are not veredito's (another system on the same unico account) costs no
/// more than this many small reads at a time; past it they are only recorded.
static LOOKING_AGAIN: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(256);

/// Looks for `process_id` again after each of `LOOK_AGAIN_AFTER`, and wakes its read when it
/// appears open. Kept in memory only, and given up when the service begins to stop: the
/// process's polls find its result either way.
fn look_again(st: &AppState, process_id: String, state: Option<String>) {
    let Ok(permit) = LOOKING_AGAIN.try_acquire() else {
        return;
    };
    let flow = st.flow.clone();
    let stopping = st.stopping.clone();
    tokio::spawn(async move {
        let _permit = permit;
        for wait in LOOK_AGAIN_AFTER {
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = stopping.cancelled() => return,
            }
            let found =
                biometrics::webhook_arrived(&flow, &process_id, state.as_deref(), None).await;
            match found {
                Ok(Notified::Unknown) => continue,
                Ok(Notified::Open(Some((step, carried)))) => {
                    tracing::info!(%process_id, "an early unico webhook found its process");
                    crate::onboarding::steps::spawn(&flow, vec![step], Some(carried));
                }
                Ok(Notified::Open(None) | Notified::Final) => {}
                Err(error) => {
                    tracing::warn!(%process_id, %error, "could not look again for a webhook's process; its polls will read it");
                }
            }
            return;
        }
    });
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

/// unico's process ids are UUIDs; anything far longer, or with other characters, is not one.
const MAX_PROCESS_ID: usize = 64;
const MAX_STATE: usize = 64;

impl Notification {
    fn read(payload: &Value) -> Result<Self, &'static str> {
        let notification =
            Self::find(payload).ok_or("not a unico process notification: no process id")?;
        if notification.process_id.len() > MAX_PROCESS_ID
            || !notification
                .process_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err("the process id must be at most 64 letters, digits, - or _");
        }
        Ok(Notification {
            state: notification
                .state
                .map(|s| s.chars().take(MAX_STATE).collect()),
            ..notification
        })
    }

    fn find(payload: &Value) -> Option<Self> {
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
mod properties {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        /// Whatever a webhook carries, what is acted on is a short id of safe characters.
        #[test]
        fn any_notification_yields_a_safe_id_or_nothing(body in crate::testing::json()) {
            if let Ok(notification) = Notification::read(&body) {
                prop_assert!(!notification.process_id.is_empty());
                prop_assert!(notification.process_id.len() <= MAX_PROCESS_ID);
                prop_assert!(notification
                    .process_id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
                prop_assert!(notification.state.as_ref().is_none_or(|s| s.chars().count() <= MAX_STATE));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
            let n = Notification::read(&payload).unwrap_or_else(|e| panic!("{payload}: {e}"));
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
            assert!(Notification::read(&payload).is_err(), "{payload}");
        }
    }

    #[test]
    fn refuses_process_ids_no_process_has() {
        let long = "a".repeat(1_000_000);
        for id in [long.as_str(), "../x", "p 1", "p\u{0}"] {
            assert!(
                Notification::read(&json!({ "processId": id })).is_err(),
                "{}",
                &id[..id.len().min(8)]
            );
        }
        let uuid = "0195e5b4-6d61-7c3e-9c1b-1f2d3e4f5a6b";
        assert!(Notification::read(&json!({ "processId": uuid })).is_ok());
    }
}
