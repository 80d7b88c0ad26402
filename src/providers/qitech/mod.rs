//! QI Tech CaaS: the device manager (account, person and device registration) and the
//! device_validation account event. CaaS authenticates with the bare API key in
//! `Authorization`, no scheme and no request signing.

mod wire;

use std::time::Duration;

use chrono::{DateTime, FixedOffset, SecondsFormat, Utc};
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use uuid::Uuid;

use crate::domain::evidence::DeviceRegistration;
use crate::providers::http::{Answer, Exchange, Failure, ProviderError, ProviderHttp};
use crate::providers::{CallContext, SharedSink, is_code, redact};

const PROVIDER: &str = "qitech";
/// Personal data QI Tech receives; kept out of the audit log of calls, even sealed.
const REDACTED: &[&str] = &["document_number", "name", "email", "phone", "account_data"];
/// The fields of QI Tech's answers the client reads: all the call log keeps of them in clear.
const PARSED: &[&str] = &["id", "status", "analysis_status", "reason", "code"];

#[derive(Clone)]
pub struct QitechConfig {
    /// e.g. `https://api.sandbox.caas.qitech.app` (no trailing slash needed).
    pub base_url: String,
    pub api_key: SecretString,
    pub timeout: Duration,
}

pub struct NewAccount<'a> {
    pub account_id: &'a str,
    pub registration_date: DateTime<Utc>,
}

pub struct NewPerson<'a> {
    pub account_id: &'a str,
    pub person_id: &'a str,
    /// The CPF punctuated, `111.444.777-35`.
    pub document_number: &'a str,
    pub name: &'a str,
    pub email: Option<&'a str>,
    /// Digits with country and area code, e.g. `5511974749090`.
    pub phone: Option<&'a str>,
    pub registration_date: DateTime<Utc>,
}

pub struct NewDevice<'a> {
    pub account_id: &'a str,
    pub person_id: &'a str,
    pub device_id: &'a str,
    pub session_id: &'a str,
    pub face_recognition_key: Option<&'a str>,
    /// The CPF punctuated; must match the person's.
    pub document_number: Option<&'a str>,
    pub registration_date: DateTime<Utc>,
}

pub struct ValidationEvent<'a> {
    /// Unique per validation; resending the same id is how a lost answer is recovered.
    pub event_id: Uuid,
    pub account_id: &'a str,
    pub person_id: &'a str,
    pub session_id: &'a str,
    pub face_recognition_key: Option<&'a str>,
    pub event_date: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationResult {
    pub analysis_status: String,
    pub reason: Option<String>,
}

/// Creating an account or a person: 409 is QI Tech saying it already has it, which is as good.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    New,
    AlreadyExisted,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Registered {
    Answered(DeviceRegistration),
    /// 409: the device is already registered (perhaps by an earlier attempt whose answer was
    /// lost); read it back instead of registering again.
    AlreadyRegistered,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sent {
    Answered(ValidationResult),
    /// 409: QI Tech already has an event with this id; read it back.
    AlreadySent,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QitechError {
    #[error("QI Tech refused the API key (HTTP {http_status})")]
    Unauthorized { http_status: u16 },
    #[error("QI Tech does not know this id")]
    NotFound,
    #[error("QI Tech refused the request (HTTP {http_status}): {detail}")]
    Refused { http_status: u16, detail: String },
    #[error("QI Tech rate limit reached")]
    RateLimited,
    #[error("QI Tech answered HTTP {http_status}")]
    Server { http_status: u16 },
    #[error("QI Tech did not answer within the timeout")]
    Timeout,
    #[error("could not reach QI Tech: {0}")]
    Transport(String),
    #[error("QI Tech's answer could not be read: {0}")]
    Decode(String),
    #[error("QI Tech client configuration: {0}")]
    Config(String),
}

impl QitechError {
    /// A later attempt may succeed: QI Tech's own failures, timeouts, the network, rate limits.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            QitechError::Server { .. }
                | QitechError::Timeout
                | QitechError::Transport(_)
                | QitechError::RateLimited
        )
    }

    /// A label safe to store and log: the kind of failure and the HTTP status, never QI Tech's
    /// text.
    pub fn code(&self) -> String {
        match self {
            QitechError::Unauthorized { http_status } => {
                format!("qitech.unauthorized.{http_status}")
            }
            QitechError::NotFound => "qitech.not_found".into(),
            QitechError::Refused { http_status, .. } => format!("qitech.refused.{http_status}"),
            QitechError::RateLimited => "qitech.rate_limited".into(),
            QitechError::Server { http_status } => format!("qitech.server.{http_status}"),
            QitechError::Timeout => "qitech.timeout".into(),
            QitechError::Transport(_) => "qitech.transport".into(),
            QitechError::Decode(_) => "qitech.decode".into(),
            QitechError::Config(_) => "qitech.config".into(),
        }
    }
}

#[derive(Clone)]
pub struct QitechClient {
    http: ProviderHttp,
    base_url: String,
    api_key: SecretString,
}

/// Dates go out in Brasília time with the offset written, as QI Tech's examples show. Brazil
/// has kept UTC-3 all year since 2019.
pub fn qitech_date(at: DateTime<Utc>) -> String {
    let brasilia = FixedOffset::west_opt(3 * 3600).expect("a three-hour offset is valid");
    at.with_timezone(&brasilia)
        .to_rfc3339_opts(SecondsFormat::Millis, false)
}

/// `5511974749090` -> dial code 55, area 11, number 974749090. Numbers without a country code
/// (10 or 11 digits) are taken as Brazilian.
fn split_phone(digits: &str) -> Option<wire::PhoneBody> {
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (dial, rest) = match digits.len() {
        10 | 11 => ("55", digits),
        12 | 13 => digits.split_at(2),
        _ => return None,
    };
    let (area, number) = rest.split_at(2);
    Some(wire::PhoneBody {
        international_dial_code: dial.to_owned(),
        area_code: area.to_owned(),
        number: number.to_owned(),
    })
}

fn encode(segment: &str) -> String {
    // Ids come from callers; keep them inside one path segment whatever they contain.
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl QitechClient {
    pub fn new(config: QitechConfig, sink: SharedSink) -> Result<Self, QitechError> {
        let client = crate::providers::http::client(config.timeout).map_err(QitechError::Config)?;
        reqwest::Url::parse(&config.base_url)
            .map_err(|e| QitechError::Config(format!("base_url: {e}")))?;
        Ok(QitechClient {
            http: ProviderHttp::new(client, sink, |answer| redact(answer, REDACTED), PARSED),
            base_url: config.base_url.trim_end_matches('/').to_owned(),
            api_key: config.api_key,
        })
    }

    pub async fn create_account(
        &self,
        account: &NewAccount<'_>,
        ctx: CallContext,
    ) -> Result<Created, QitechError> {
        let body = wire::AccountBody {
            account_id: account.account_id,
            account_type: "natural_person",
            registration_date: qitech_date(account.registration_date),
            account_data: serde_json::Map::new(),
        };
        let (status, _) = self
            .call(
                "create_account",
                Method::POST,
                "/device_manager/account".into(),
                Some(json(&body)?),
                ctx,
            )
            .await?;
        Ok(if status == StatusCode::CONFLICT {
            Created::AlreadyExisted
        } else {
            Created::New
        })
    }

    pub async fn create_person(
        &self,
        person: &NewPerson<'_>,
        ctx: CallContext,
    ) -> Result<Created, QitechError> {
        let body = wire::PersonBody {
            person_id: person.person_id,
            document_number: person.document_number,
            registration_date: qitech_date(person.registration_date),
            person_data: wire::PersonDataBody {
                name: person.name,
                email: person.email,
                phone: person.phone.and_then(split_phone),
            },
        };
        let path = format!(
            "/device_manager/account/{}/person",
            encode(person.account_id)
        );
        let (status, _) = self
            .call("create_person", Method::POST, path, Some(json(&body)?), ctx)
            .await?;
        Ok(if status == StatusCode::CONFLICT {
            Created::AlreadyExisted
        } else {
            Created::New
        })
    }

    pub async fn register_device(
        &self,
        device: &NewDevice<'_>,
        ctx: CallContext,
    ) -> Result<Registered, QitechError> {
        let body = wire::DeviceBody {
            device_id: device.device_id,
            session_id: device.session_id,
            face_recognition_key: device.face_recognition_key,
            document_number: device.document_number,
            mfa_status: "approved",
            registration_date: qitech_date(device.registration_date),
        };
        let path = format!(
            "/device_manager/account/{}/person/{}/device",
            encode(device.account_id),
            encode(device.person_id)
        );
        let (status, answer) = self
            .call(
                "register_device",
                Method::POST,
                path,
                Some(json(&body)?),
                ctx,
            )
            .await?;
        if status == StatusCode::CONFLICT {
            return Ok(Registered::AlreadyRegistered);
        }
        device_registration(answer).map(Registered::Answered)
    }

    pub async fn get_device(
        &self,
        account_id: &str,
        person_id: &str,
        device_id: &str,
        ctx: CallContext,
    ) -> Result<DeviceRegistration, QitechError> {
        let path = format!(
            "/device_manager/account/{}/person/{}/device/{}",
            encode(account_id),
            encode(person_id),
            encode(device_id)
        );
        let (status, answer) = self
            .call("get_device", Method::GET, path, None, ctx)
            .await?;
        if status == StatusCode::CONFLICT {
            return Err(QitechError::Refused {
                http_status: 409,
                detail: "conflict on a read".into(),
            });
        }
        device_registration(answer)
    }

    pub async fn send_device_validation(
        &self,
        event: &ValidationEvent<'_>,
        ctx: CallContext,
    ) -> Result<Sent, QitechError> {
        let body = wire::ValidationBody {
            id: event.event_id.to_string(),
            account_id: event.account_id,
            person_id: event.person_id,
            session_id: event.session_id,
            face_recognition_key: event.face_recognition_key,
            event_date: qitech_date(event.event_date),
        };
        let path = "/account_event/event_type/device_validation/event".to_owned();
        let (status, answer) = self
            .call(
                "send_device_validation",
                Method::POST,
                path,
                Some(json(&body)?),
                ctx,
            )
            .await?;
        if status == StatusCode::CONFLICT {
            return Ok(Sent::AlreadySent);
        }
        validation_result(answer).map(Sent::Answered)
    }

    pub async fn get_device_validation(
        &self,
        event_id: Uuid,
        ctx: CallContext,
    ) -> Result<ValidationResult, QitechError> {
        let path = format!("/account_event/event_type/device_validation/event/{event_id}");
        let (status, answer) = self
            .call("get_device_validation", Method::GET, path, None, ctx)
            .await?;
        if status == StatusCode::CONFLICT {
            return Err(QitechError::Refused {
                http_status: 409,
                detail: "conflict on a read".into(),
            });
        }
        validation_result(answer)
    }

    /// Sends one request and records it. Answers the status (2xx or 409) and the JSON body
    /// (`Null` when there is none); every other status is an error.
    async fn call(
        &self,
        operation: &'static str,
        method: Method,
        path: String,
        body: Option<Value>,
        ctx: CallContext,
    ) -> Result<(StatusCode, Value), QitechError> {
        let mut request = self
            .http
            .client
            .request(method.clone(), format!("{}{path}", self.base_url))
            .header(reqwest::header::AUTHORIZATION, self.api_key.expose_secret())
            .header(reqwest::header::ACCEPT, "application/json");
        if let Some(body) = &body {
            request = request.json(body);
        }
        let exchange = Exchange {
            provider: PROVIDER,
            operation,
            method: if method == Method::GET { "GET" } else { "POST" },
            path,
            request: body.map(|b| redact(b, REDACTED)),
            context: ctx,
        };
        self.http
            .send(request, exchange, |answer: &Answer| {
                let body = answer.body.clone().unwrap_or(Value::Null);
                let status = StatusCode::from_u16(answer.status)
                    .map_err(|_| QitechError::Decode(format!("HTTP status {}", answer.status)))?;
                match answer.status {
                    200..=299 | 409 => Ok((status, body)),
                    401 | 403 => Err(QitechError::Unauthorized {
                        http_status: answer.status,
                    }),
                    404 => Err(QitechError::NotFound),
                    429 => Err(QitechError::RateLimited),
                    500..=599 => Err(QitechError::Server {
                        http_status: answer.status,
                    }),
                    other => Err(QitechError::Refused {
                        http_status: other,
                        detail: error_detail(&body),
                    }),
                }
            })
            .await
    }
}

impl ProviderError for QitechError {
    fn from_failure(failure: Failure) -> Self {
        match failure {
            Failure::Timeout => QitechError::Timeout,
            Failure::Transport(cause) => QitechError::Transport(cause),
            Failure::TooLarge => {
                QitechError::Decode("the answer is larger than veredito reads".into())
            }
        }
    }

    fn code(&self) -> String {
        QitechError::code(self)
    }
}

fn json(body: &impl serde::Serialize) -> Result<Value, QitechError> {
    serde_json::to_value(body).map_err(|e| QitechError::Decode(e.to_string()))
}

/// QI Tech error bodies vary and may gain fields: keep a short, PII-free hint.
fn error_detail(answer: &Value) -> String {
    ["title", "description", "message", "code"]
        .iter()
        .find_map(|k| answer.get(*k).and_then(Value::as_str))
        .map(|s| s.chars().take(200).collect())
        .unwrap_or_else(|| "no detail".to_owned())
}

fn device_registration(answer: Value) -> Result<DeviceRegistration, QitechError> {
    let answer: wire::DeviceAnswer =
        serde_json::from_value(answer).map_err(|e| QitechError::Decode(e.to_string()))?;
    // Both fields decide the outcome: without them there is nothing to map, and guessing could
    // only err towards approving.
    match (answer.status, answer.analysis_status) {
        (Some(status), Some(analysis_status)) => Ok(DeviceRegistration {
            status: status.to_ascii_lowercase(),
            analysis_status: analysis_status.to_ascii_lowercase(),
            // The reason is kept when it reads as a code; the description is QI Tech's free
            // text, which may echo what it was sent (names, documents), and is never kept.
            reason: answer.reason.filter(|r| is_code(r)),
            reason_description: None,
        }),
        _ => Err(QitechError::Decode(
            "the device answer lacks status or analysis_status".into(),
        )),
    }
}

fn validation_result(answer: Value) -> Result<ValidationResult, QitechError> {
    let answer: wire::ValidationAnswer =
        serde_json::from_value(answer).map_err(|e| QitechError::Decode(e.to_string()))?;
    let _ = answer.id;
    let analysis_status = answer
        .analysis_status
        .ok_or_else(|| QitechError::Decode("the event answer lacks analysis_status".into()))?;
    Ok(ValidationResult {
        analysis_status: analysis_status.to_ascii_lowercase(),
        // As for devices: a reason that is not a code is QI Tech's free text, never kept.
        reason: answer.reason.filter(|r| is_code(r)),
    })
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        /// Whatever QI Tech answers for a device, reading it is total, and what is kept is
        /// codes only: no free text a person could be named in.
        #[test]
        fn any_device_answer_keeps_codes_only(body in crate::testing::json()) {
            if let Ok(registration) = device_registration(body) {
                prop_assert!(registration.reason_description.is_none());
                if let Some(reason) = &registration.reason {
                    prop_assert!(is_code(reason), "{}", reason);
                }
                prop_assert_eq!(
                    &registration.status,
                    &registration.status.to_ascii_lowercase()
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_is_split_into_qitech_parts() {
        let p = split_phone("5511974749090").unwrap();
        assert_eq!(
            (
                p.international_dial_code.as_str(),
                p.area_code.as_str(),
                p.number.as_str()
            ),
            ("55", "11", "974749090")
        );
        let p = split_phone("11974749090").unwrap();
        assert_eq!(
            (
                p.international_dial_code.as_str(),
                p.area_code.as_str(),
                p.number.as_str()
            ),
            ("55", "11", "974749090")
        );
        assert!(split_phone("123").is_none());
    }

    #[test]
    fn dates_carry_the_brasilia_offset() {
        let at = DateTime::parse_from_rfc3339("2026-01-02T15:00:00.120Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(qitech_date(at), "2026-01-02T12:00:00.120-03:00");
    }
}
