//! The by-Client processes API: CreateProcess and GetProcess as unico spells them, and the
//! webhook unico sends once a process ends.

use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Map, Value, json};
use subtle::ConstantTimeEq;

use super::Unico;
use crate::sandbox::scenarios::{self, Outcome};

fn business_error(status: StatusCode, code: &str, description: &str) -> Response {
    let body = json!({ "error": { "code": code, "description": description } });
    (status, axum::Json(body)).into_response()
}

struct Refusal(StatusCode, &'static str, &'static str);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        business_error(self.0, self.1, self.2)
    }
}

fn header_text(headers: &HeaderMap, name: impl header::AsHeaderName) -> Option<&str> {
    headers
        .get(name)
        .map(|v| v.to_str().unwrap_or_default().trim())
        .filter(|v| !v.is_empty())
}

impl Unico {
    fn authorize(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        let authorization = header_text(headers, header::AUTHORIZATION).ok_or(Refusal(
            StatusCode::BAD_REQUEST,
            "20001",
            "Authorization header missing",
        ))?;
        let api_key = header_text(headers, "apikey").ok_or(Refusal(
            StatusCode::BAD_REQUEST,
            "20002",
            "APIKEY header missing",
        ))?;
        if !bool::from(api_key.as_bytes().ct_eq(self.config.api_key.as_bytes())) {
            return Err(Refusal(StatusCode::FORBIDDEN, "10201", "invalid APIKEY"));
        }
        let invalid = Refusal(StatusCode::FORBIDDEN, "10501", "invalid access token");
        let token = match authorization.split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
            _ => return Err(invalid),
        };
        let tokens = self.tokens.lock().unwrap_or_else(PoisonError::into_inner);
        match tokens.get(token) {
            None => Err(invalid),
            Some(expires) if *expires <= Instant::now() => Err(Refusal(
                StatusCode::FORBIDDEN,
                "10502",
                "access token expired",
            )),
            Some(_) => Ok(()),
        }
    }
}

/// CreateProcess's checks on the body, in unico's order; answers `subject.code` and
/// `subject.name`.
fn validate_create(body: &[u8]) -> Result<(String, String), Refusal> {
    let bad_body = || Refusal(StatusCode::BAD_REQUEST, "20003", "invalid request body");
    let refuse = |code, description| Refusal(StatusCode::BAD_REQUEST, code, description);
    let body: Value = serde_json::from_slice(body).map_err(|_| bad_body())?;
    let body = body.as_object().ok_or_else(bad_body)?;
    let present = |object: &Map<String, Value>, key: &str| {
        object
            .get(key)
            .filter(|v| !v.is_null() && v.as_str() != Some(""))
            .cloned()
    };

    let subject = present(body, "subject").ok_or(refuse("20004", "subject is required"))?;
    let subject = subject.as_object().ok_or_else(bad_body)?;
    let code = present(subject, "code").ok_or(refuse("20005", "subject.code is required"))?;
    let name = present(subject, "name").ok_or(refuse("20006", "subject.name is required"))?;
    if name.as_str().is_none_or(|n| n.trim().is_empty()) {
        return Err(refuse("20006", "subject.name is required"));
    }
    let code = code
        .as_str()
        .filter(|c| scenarios::valid_cpf(c))
        .ok_or(refuse("20507", "subject.code is not a valid CPF"))?;
    if let Some(gender) = present(subject, "gender") {
        if !matches!(gender.as_str(), Some("M" | "F")) {
            return Err(refuse("20508", "subject.gender must be M or F"));
        }
    }
    if let Some(birth) = present(subject, "birthDate") {
        let valid = birth.as_str().is_some_and(|b| {
            b.len() == 10 && chrono::NaiveDate::parse_from_str(b, "%Y-%m-%d").is_ok()
        });
        if !valid {
            return Err(refuse("20019", "subject.birthDate must be YYYY-MM-DD"));
        }
    }
    let image = present(body, "imageBase64").ok_or(refuse("20009", "imageBase64 is required"))?;
    if !image.is_string() {
        return Err(bad_body());
    }
    let name = name.as_str().unwrap_or_default().trim().to_owned();
    Ok((code.to_owned(), name))
}

/// A process as unico spells it on the wire.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ProcessBody<'a> {
    id: &'a str,
    status: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    unico_id: Option<ResultField>,
    #[serde(skip_serializing_if = "Option::is_none")]
    liveness: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    identity_fraudsters: Option<ResultField>,
    #[serde(skip_serializing_if = "Option::is_none")]
    score: Option<i32>,
}

#[derive(Serialize)]
struct ResultField {
    result: &'static str,
}

fn process_response(id: &str, outcome: Outcome) -> Response {
    let body = ProcessBody {
        id,
        status: outcome.status,
        unico_id: outcome.unico_id.map(|result| ResultField { result }),
        liveness: outcome.liveness,
        identity_fraudsters: outcome
            .identity_fraudsters
            .map(|result| ResultField { result }),
        score: outcome.score,
    };
    axum::Json(body).into_response()
}

pub(super) async fn create_process(
    State(unico): State<Arc<Unico>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(refusal) = unico.authorize(&headers) {
        return refusal.into_response();
    }
    let (code, name) = match validate_create(&body) {
        Ok(subject) => subject,
        Err(refusal) => return refusal.into_response(),
    };
    let scenario = scenarios::for_code(&code).unwrap_or(unico.config.unlisted);
    let outcome = match scenario.at_create() {
        Ok(outcome) => outcome,
        Err(refused) => {
            // unico documents no echo, but a provider's wording may quote what it was sent:
            // this refusal names the person and the CPF in both forms, as a hostile case.
            let description = format!(
                "unsupported image for {name}, CPF {} ({code})",
                scenario.cpf
            );
            return business_error(StatusCode::BAD_REQUEST, refused, &description);
        }
    };
    let Some(id) = unico.new_process_id(scenario, unix_millis()) else {
        return business_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "50000",
            "could not create the process",
        );
    };
    let id = id.to_string();
    if scenario.sends_webhook() {
        unico.schedule_webhook(id.clone());
    }
    process_response(&id, outcome)
}

pub(super) async fn get_process(
    State(unico): State<Arc<Unico>>,
    headers: HeaderMap,
    Path(process_id): Path<String>,
) -> Response {
    if let Err(refusal) = unico.authorize(&headers) {
        return refusal.into_response();
    }
    let not_found = || business_error(StatusCode::NOT_FOUND, "404", "process not found");
    let Some((scenario, created_ms)) = unico.read_process_id(&process_id) else {
        return not_found();
    };
    let elapsed = Duration::from_millis(unix_millis().saturating_sub(created_ms));
    match scenario.outcome_after(elapsed, unico.config.processing_delay) {
        Some(outcome) => process_response(&process_id, outcome),
        None => not_found(),
    }
}

fn unix_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl Unico {
    /// unico calls back once processing ends; one attempt is enough for a sandbox, since the
    /// service polls anyway.
    fn schedule_webhook(&self, process_id: String) {
        let Some(client) = self.http.clone() else {
            return;
        };
        if self.config.webhook_url.is_empty() {
            tracing::debug!("sandbox: no webhook URL, process {process_id} finishes silently");
            return;
        }
        let url = self.config.webhook_url.clone();
        let header_name = self.config.webhook_header.clone();
        let secret = self.config.webhook_secret.clone();
        let wait = self.config.processing_delay + self.config.webhook_delay;
        // Injected faults: the notification also comes early (before the process is done, often
        // before CreateProcess has answered), or comes twice.
        let (early, twice) = match (self.config.faults.strikes(), fastrand::bool()) {
            (false, _) => (false, false),
            (true, true) => (true, false),
            (true, false) => (false, true),
        };
        tokio::spawn(async move {
            let send = || {
                client
                    .post(&url)
                    .header(header_name.as_str(), secret.as_str())
                    .json(&json!({
                        "processId": process_id,
                        "state": "PROCESS_STATE_FINISHED",
                        "flow": "id",
                    }))
                    .send()
            };
            if early {
                let _ = send().await;
            }
            tokio::time::sleep(wait).await;
            let sent = send().await;
            if twice {
                let _ = send().await;
            }
            match sent {
                Ok(response) if response.status().is_success() => {
                    tracing::debug!(%process_id, "sandbox: webhook delivered");
                }
                Ok(response) => {
                    tracing::warn!(%process_id, status = %response.status(), "sandbox: webhook refused");
                }
                Err(error) => {
                    tracing::warn!(%process_id, %error, "sandbox: webhook not delivered");
                }
            }
        });
    }
}
