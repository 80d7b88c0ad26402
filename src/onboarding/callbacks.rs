//! Decision callbacks: each event is written with the state change it reports (an outbox row and
//! its step), then POSTed to `callbacks.url`, signed as Standard Webhooks, until a 2xx or
//! `callbacks.max_age`. Fraud indications' events go through the same outbox to
//! `fraud_sharing.url`, signed with `fraud_sharing.secret`; their first 2xx registers the
//! indication. The same `webhook-id` goes out on every attempt, so the receiver can
//! drop repeats; a callback never changes a verdict.
//!
//! The outbox keeps no personal data in the clear: a review event is stored without the
//! person's statement, which stays sealed in its case and is put back into the body at each
//! delivery, so retention's erasure of the case erases it everywhere. The answer to the person
//! of a case they opened is put into `review.resolved` the same way.

use std::time::Duration;

use base64::Engine;
use chrono::Utc;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::onboarding::applied::Applied;
use crate::onboarding::error::FlowError;
use crate::onboarding::services::Services;
use crate::onboarding::view;
use crate::store::Tx;
use crate::store::steps::{self, Step};
use crate::store::{callbacks, device_validations, reviews};

pub const ONBOARDING_DECIDED: &str = "onboarding.decided";
pub const VALIDATION_DECIDED: &str = "device_validation.decided";
pub const REVIEW_OPENED: &str = "review.opened";
pub const REVIEW_RESOLVED: &str = "review.resolved";

/// `v1,` and the base64 of HMAC-SHA256 over `{id}.{timestamp}.{body}`.
pub fn sign(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key);
    let mut context = ring::hmac::Context::with_key(&key);
    context.update(id.as_bytes());
    context.update(b".");
    context.update(timestamp.to_string().as_bytes());
    context.update(b".");
    context.update(body);
    let tag = context.sign();
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(tag.as_ref())
    )
}

/// Writes `onboarding.decided` with the onboarding as `GET /v1/onboardings/{id}` answers it in
/// this transaction: `decided` when the caller built that answer from the rows it wrote, else
/// read (after the rows the transaction keeps are sent). Nothing when callbacks are off.
pub async fn onboarding_decided(
    tx: &mut Tx,
    flow: &Services,
    onboarding_id: Uuid,
    decided: Option<&view::OnboardingView>,
) -> Result<(), FlowError> {
    if flow.callbacks.is_none() {
        return Ok(());
    }
    let data = match decided {
        Some(view) => serde_json::to_value(view),
        None => {
            tx.flush().await?;
            let version = &flow.policies.active().version;
            let Some(view) = view::load_in(tx, version, onboarding_id).await? else {
                return Ok(());
            };
            serde_json::to_value(view)
        }
    };
    let data = data.unwrap_or(Value::Null);
    callbacks::enqueue(tx, ONBOARDING_DECIDED, Some(onboarding_id), data).await?;
    Ok(())
}

/// Writes `device_validation.decided` with the validation as its GET answers it.
pub async fn validation_decided(
    tx: &mut Tx,
    flow: &Services,
    id: Uuid,
    as_seen: impl FnOnce(device_validations::ValidationRow) -> Value,
) -> Result<(), FlowError> {
    if flow.callbacks.is_none() {
        return Ok(());
    }
    let Some(row) = device_validations::get(&mut **tx, id).await? else {
        return Ok(());
    };
    callbacks::enqueue(tx, VALIDATION_DECIDED, None, as_seen(row)).await?;
    Ok(())
}

/// Writes a review event with the case as its GET answers it, but for the person's statement:
/// stored as null here whatever `case` holds, and filled in from the sealed case when the event
/// is delivered (`with_statement`).
pub async fn review_event(
    tx: &mut Tx,
    flow: &Services,
    kind: &'static str,
    onboarding_id: Uuid,
    mut case: Value,
) -> Result<(), FlowError> {
    if flow.callbacks.is_none() {
        return Ok(());
    }
    if let Some(data) = case.as_object_mut() {
        data.insert("statement".into(), Value::Null);
    }
    callbacks::enqueue(tx, kind, Some(onboarding_id), case).await?;
    Ok(())
}

/// A review event's body with the statement of its case unsealed into `data`, as the case's GET
/// shows it at this moment: null when the person wrote none or retention erased it. A statement
/// that cannot be unsealed (its key removed from `pii.keys`) is sent as null and logged, as the
/// GET does.
async fn with_statement(flow: &Services, mut body: Value) -> Result<Value, FlowError> {
    let case_id = body
        .pointer("/data/id")
        .and_then(Value::as_str)
        .and_then(|id| Uuid::parse_str(id).ok());
    let Some(case) = (match case_id {
        Some(id) => reviews::get(&flow.db, id).await?,
        None => None,
    }) else {
        return Ok(body);
    };
    let statement = case.statement(&flow.cipher).unwrap_or_else(|e| {
        tracing::warn!(error = %e, case_id = %case.id, "a statement could not be read");
        None
    });
    let resolved = body.get("type").and_then(Value::as_str) == Some(REVIEW_RESOLVED);
    let answer = if resolved && case.opened_by == "subject_request" {
        crate::onboarding::notes::answer(flow, case.id).await?
    } else {
        None
    };
    if let Some(data) = body.get_mut("data").and_then(Value::as_object_mut) {
        data.insert("statement".into(), json!(statement));
        if let Some(answer) = answer {
            data.insert("answer".into(), json!(answer));
        }
    }
    Ok(body)
}

/// One delivery attempt.
#[tracing::instrument(skip_all, fields(callback_id = %id, attempt = step.attempts))]
pub async fn deliver(flow: &Services, step: &Step, id: Uuid) -> Result<Applied, FlowError> {
    let Some(row) = callbacks::get(&flow.db, id).await? else {
        steps::complete(&flow.db, step).await?;
        return Ok(Applied::default());
    };
    let sharing = row.target == callbacks::TO_FRAUD_SHARING;
    let endpoint = if sharing {
        flow.fraud_sharing.as_ref()
    } else {
        flow.callbacks.as_ref()
    };
    let Some(target) = endpoint.filter(|_| row.status == "pending") else {
        // Delivered already, failed, or its target turned off since: nothing to send.
        steps::complete(&flow.db, step).await?;
        return Ok(Applied::default());
    };
    let settings = &flow.settings.callbacks;
    if sharing && callbacks::earlier_pending(&flow.db, &row).await? {
        // The sharing system hears an indication's events in order: this one waits.
        let mut tx = crate::store::begin(&flow.db).await?;
        steps::reschedule(
            &mut tx,
            step,
            settings.retry_initial,
            Some("callback.waiting"),
        )
        .await?;
        tx.commit().await?;
        return Ok(Applied::default());
    }
    let body = match (row.kind.as_str(), row.fraud_indication_id) {
        (REVIEW_OPENED | REVIEW_RESOLVED, _) => with_statement(flow, row.body).await?,
        (_, Some(indication)) => {
            crate::onboarding::fraud::with_cpf(flow, indication, row.body).await?
        }
        _ => row.body,
    };
    let body = serde_json::to_vec(&body).unwrap_or_default();
    let timestamp = Utc::now().timestamp();
    let webhook_id = row.id.to_string();
    let answer = target
        .client
        .post(&target.url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header("webhook-id", &webhook_id)
        .header("webhook-timestamp", timestamp.to_string())
        .header(
            "webhook-signature",
            sign(&target.key, &webhook_id, timestamp, &body),
        )
        .body(body)
        .send()
        .await;
    let (http_status, retry_after, error) = match &answer {
        Ok(response) if response.status().is_success() => {
            (Some(response.status().as_u16()), None, None)
        }
        Ok(response) => (
            Some(response.status().as_u16()),
            retry_after(response.headers()),
            Some(format!("callback.http.{}", response.status().as_u16())),
        ),
        Err(e) if e.is_timeout() => (None, None, Some("callback.timeout".to_owned())),
        Err(_) => (None, None, Some("callback.transport".to_owned())),
    };
    let mut tx = crate::store::begin(&flow.db).await?;
    match error {
        None => {
            callbacks::attempted(&mut *tx, id, step.attempts, "delivered", http_status, None)
                .await?;
            if let Some(indication) = row.fraud_indication_id {
                crate::onboarding::fraud::acknowledged(&mut tx, indication).await?;
            }
            tx.step_done(step);
            crate::metrics::callback("delivered");
        }
        Some(code) => {
            let age = (Utc::now() - row.created_at).to_std().unwrap_or_default();
            let left = settings.max_age.saturating_sub(age);
            let wait = steps::retry_in(
                steps::backoff(settings.retry_initial, settings.retry_max, step.attempts),
                retry_after,
                None,
            );
            if wait >= left {
                tracing::warn!(error = %code, attempts = step.attempts, "callback given up after callbacks.max_age");
                callbacks::attempted(
                    &mut *tx,
                    id,
                    step.attempts,
                    "failed",
                    http_status,
                    Some(&code),
                )
                .await?;
                tx.step_done(step);
                crate::metrics::callback("failed");
            } else {
                tracing::info!(error = %code, attempts = step.attempts, retry_in_ms = wait.as_millis() as u64, "callback not taken; retrying");
                callbacks::attempted(
                    &mut *tx,
                    id,
                    step.attempts,
                    "pending",
                    http_status,
                    Some(&code),
                )
                .await?;
                steps::reschedule(&mut tx, step, wait, Some(&code)).await?;
                crate::metrics::callback("retry");
            }
        }
    }
    tx.commit().await?;
    Ok(Applied::default())
}

fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_the_standard_webhooks_example() {
        // The scheme's published example: secret whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw,
        // id msg_p5jXN8AQM9LWM0D4loKWxJek, timestamp 1614265330, body {"test": 2432232314}.
        let key = base64::engine::general_purpose::STANDARD
            .decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
            .unwrap();
        assert_eq!(
            sign(
                &key,
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1614265330,
                br#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }
}
