//! QI Tech CaaS: the device manager (account, person and device registration) and the
//! device_validation account event. CaaS authenticates with the bare API key in
//! `Authorization`, no scheme and no request signing.
//!
//! This file holds the client and its calls; `error` what a call can come to, `format` how
//! values are written for QI Tech, `answers` how its answers are read.

use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use uuid::Uuid;

use crate::domain::evidence::DeviceRegistration;
use crate::providers::http::{Answer, Exchange, ProviderHttp};
use crate::providers::{CallContext, SharedSink, redact};

mod answers;
mod error;
mod format;
mod wire;

use answers::{device_registration, validation_result};
pub use error::QitechError;
use error::error_detail;
pub use format::qitech_date;
use format::{encode, split_phone};

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

#[derive(Clone)]
pub struct QitechClient {
    http: ProviderHttp,
    base_url: String,
    api_key: SecretString,
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

fn json(body: &impl serde::Serialize) -> Result<Value, QitechError> {
    serde_json::to_value(body).map_err(|e| QitechError::Decode(e.to_string()))
}
