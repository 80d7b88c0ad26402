//! Zro Bank's Pix-as-a-Service: the Open Finance device enrollment risk signal.
//!
//! The access token from `/auth/signin` is cached and reused until Zro refuses it; Zro documents
//! no lifetime, so a 401 is the signal to sign in again (once per call).

use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::Mutex;
use uuid::Uuid;

use crate::domain::evidence::RiskSignals;
use crate::providers::http::{
    Answer as SharedAnswer, Exchange, Failure, ProviderError, ProviderHttp,
};
use crate::providers::{CallContext, SharedSink, redact};

const PROVIDER: &str = "zro";
/// The fields of Zro's answers the client reads: all the call log keeps of them in clear.
const PARSED: &[&str] = &["id", "code", "expires_in"];
/// Secrets and the phone's position never go to the audit log of calls.
const REDACTED: &[&str] = &[
    "api_key",
    "access_token",
    "device_latitude",
    "device_longitude",
];

#[derive(Clone)]
pub struct ZroConfig {
    /// e.g. `https://paas-hml.zrobank.xyz/api` (no trailing slash needed).
    pub base_url: String,
    pub api_id: String,
    pub api_key: SecretString,
    pub timeout: Duration,
}

/// One risk signal to send. `transaction_uuid` identifies the signal for Zro's replay
/// protection and stays the same on every attempt; each attempt gets its own nonce.
pub struct RiskSignal<'a> {
    pub enrollment_id: &'a str,
    pub transaction_uuid: Uuid,
    pub device_id: &'a str,
    pub signals: &'a RiskSignals,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ZroError {
    #[error("Zro refused the credentials (HTTP {http_status})")]
    Auth { http_status: u16 },
    #[error("Zro refused the risk signal (HTTP {http_status}): {code} {message}")]
    Invalid {
        http_status: u16,
        code: String,
        message: String,
    },
    #[error("Zro rate limit reached")]
    RateLimited,
    #[error("Zro answered HTTP {http_status}")]
    Server { http_status: u16 },
    #[error("Zro did not answer within the timeout")]
    Timeout,
    #[error("could not reach Zro: {0}")]
    Transport(String),
    #[error("Zro's answer could not be read: {0}")]
    Decode(String),
    #[error("Zro client configuration: {0}")]
    Config(String),
    /// `.` and `..` cannot travel as a path segment: a URL drops them as dot segments, which
    /// would send the signal, and the bearer token with it, to another path.
    #[error("the enrollment id cannot be sent as a path segment")]
    EnrollmentId,
}

impl ZroError {
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            ZroError::RateLimited
                | ZroError::Server { .. }
                | ZroError::Timeout
                | ZroError::Transport(_)
        )
    }

    /// A label safe to store and log: the kind of failure with Zro's code or HTTP status.
    pub fn code(&self) -> String {
        match self {
            ZroError::Auth { http_status } => format!("zro.auth.{http_status}"),
            ZroError::Invalid {
                http_status, code, ..
            } => format!("zro.invalid.{http_status}.{}", super::safe_code(code)),
            ZroError::RateLimited => "zro.rate_limited".into(),
            ZroError::Server { http_status } => format!("zro.server.{http_status}"),
            ZroError::Timeout => "zro.timeout".into(),
            ZroError::Transport(_) => "zro.transport".into(),
            ZroError::Decode(_) => "zro.decode".into(),
            ZroError::Config(_) => "zro.config".into(),
            ZroError::EnrollmentId => "zro.enrollment_id".into(),
        }
    }

    /// The HTTP status Zro answered, when it answered.
    pub fn http_status(&self) -> Option<u16> {
        match self {
            ZroError::Auth { http_status }
            | ZroError::Invalid { http_status, .. }
            | ZroError::Server { http_status } => Some(*http_status),
            ZroError::RateLimited => Some(429),
            _ => None,
        }
    }
}

#[derive(Serialize)]
struct SignalBody<'a> {
    device_id: &'a str,
    #[serde(flatten)]
    signals: &'a RiskSignals,
}

#[derive(Deserialize)]
struct SigninAnswer {
    access_token: String,
}

#[derive(Clone)]
pub struct ZroClient {
    http: ProviderHttp,
    base_url: reqwest::Url,
    api_id: String,
    api_key: SecretString,
    /// Held across a sign-in, so concurrent calls share one new token instead of each signing in.
    token: Arc<Mutex<Option<SecretString>>>,
}

struct Answer {
    status: StatusCode,
    body: Value,
}

impl ZroClient {
    pub fn new(config: ZroConfig, sink: SharedSink) -> Result<Self, ZroError> {
        let client = crate::providers::http::client(config.timeout).map_err(ZroError::Config)?;
        let base_url = reqwest::Url::parse(config.base_url.trim())
            .map_err(|e| ZroError::Config(format!("base_url: {e}")))?;
        if base_url.cannot_be_a_base() || !matches!(base_url.scheme(), "http" | "https") {
            return Err(ZroError::Config("base_url must be an http(s) URL".into()));
        }
        Ok(ZroClient {
            http: ProviderHttp::new(client, sink, |answer| redact(answer, REDACTED), PARSED),
            base_url,
            api_id: config.api_id,
            api_key: config.api_key,
            token: Arc::new(Mutex::new(None)),
        })
    }

    /// Sends the risk signal. Answers the HTTP status of Zro's acceptance.
    pub async fn send_risk_signal(
        &self,
        signal: &RiskSignal<'_>,
        ctx: CallContext,
    ) -> Result<u16, ZroError> {
        let token = self.token(ctx, None).await?;
        match self.post_signal(signal, &token, ctx).await {
            Err(ZroError::Auth { .. }) => {
                // The cached token may have expired: sign in again, once.
                let fresh = self.token(ctx, Some(&token)).await?;
                self.post_signal(signal, &fresh, ctx).await
            }
            other => other,
        }
    }

    async fn post_signal(
        &self,
        signal: &RiskSignal<'_>,
        token: &SecretString,
        ctx: CallContext,
    ) -> Result<u16, ZroError> {
        let body = serde_json::to_value(SignalBody {
            device_id: signal.device_id,
            signals: signal.signals,
        })
        .map_err(|e| ZroError::Decode(e.to_string()))?;
        if matches!(signal.enrollment_id, "." | "..") {
            return Err(ZroError::EnrollmentId);
        }
        let url = self.endpoint(&[
            "open-finance",
            "enrollments",
            signal.enrollment_id,
            "device",
            "risk-signal",
        ]);
        let path = url.path().to_owned();
        let request = self
            .http
            .client
            .post(url)
            .bearer_auth(token.expose_secret())
            .header("x-transaction-uuid", signal.transaction_uuid.to_string())
            .header("nonce", Uuid::new_v4().to_string())
            .header("x-include-replay-protection-schema", "nonce")
            .json(&body);
        let answer = self
            .send("risk_signal", path, request, Some(body), ctx)
            .await?;
        match answer.status.as_u16() {
            status @ 200..=299 => Ok(status),
            401 | 403 => Err(ZroError::Auth {
                http_status: answer.status.as_u16(),
            }),
            429 => Err(ZroError::RateLimited),
            status @ 500..=599 => Err(ZroError::Server {
                http_status: status,
            }),
            status => Err(ZroError::Invalid {
                http_status: status,
                code: field(&answer.body, "code"),
                message: field(&answer.body, "message"),
            }),
        }
    }

    /// The cached token, or a new one when there is none or the cached one is `stale`.
    async fn token(
        &self,
        ctx: CallContext,
        stale: Option<&SecretString>,
    ) -> Result<SecretString, ZroError> {
        let mut cached = self.token.lock().await;
        if let Some(token) = cached.as_ref() {
            let is_stale = stale.is_some_and(|s| s.expose_secret() == token.expose_secret());
            if !is_stale {
                return Ok(token.clone());
            }
        }
        *cached = None;
        let body = json!({ "api_id": self.api_id, "api_key": self.api_key.expose_secret() });
        let url = self.endpoint(&["auth", "signin"]);
        let path = url.path().to_owned();
        let request = self.http.client.post(url).json(&body);
        let answer = self.send("signin", path, request, Some(body), ctx).await?;
        match answer.status.as_u16() {
            200..=299 => {}
            status @ (400 | 401 | 403 | 422) => {
                return Err(ZroError::Auth {
                    http_status: status,
                });
            }
            429 => return Err(ZroError::RateLimited),
            status => {
                return Err(ZroError::Server {
                    http_status: status,
                });
            }
        }
        let signin: SigninAnswer =
            serde_json::from_value(answer.body).map_err(|e| ZroError::Decode(e.to_string()))?;
        let token = SecretString::from(signin.access_token);
        *cached = Some(token.clone());
        Ok(token)
    }

    /// The base URL with `segments` appended, each percent-encoded as one path segment (`/`,
    /// `?`, `#` and `%` included), so no value can reach another path or add a query.
    fn endpoint(&self, segments: &[&str]) -> reqwest::Url {
        let mut url = self.base_url.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            // Checked in `new`: an http(s) URL can always take a path.
            path.pop_if_empty().extend(segments);
        }
        url
    }

    async fn send(
        &self,
        operation: &'static str,
        path: String,
        request: reqwest::RequestBuilder,
        body: Option<Value>,
        ctx: CallContext,
    ) -> Result<Answer, ZroError> {
        let exchange = Exchange {
            provider: PROVIDER,
            operation,
            method: "POST",
            path,
            request: body.map(|b| redact(b, REDACTED)),
            context: ctx,
        };
        self.http
            .send(request, exchange, |answer: &SharedAnswer| {
                Ok(Answer {
                    status: StatusCode::from_u16(answer.status)
                        .map_err(|_| ZroError::Decode(format!("HTTP status {}", answer.status)))?,
                    body: answer.body.clone().unwrap_or(Value::Null),
                })
            })
            .await
    }
}

impl ProviderError for ZroError {
    fn from_failure(failure: Failure) -> Self {
        match failure {
            Failure::Timeout => ZroError::Timeout,
            Failure::Transport(cause) => ZroError::Transport(cause),
            Failure::TooLarge => {
                ZroError::Decode("the answer is larger than veredito reads".into())
            }
        }
    }

    fn code(&self) -> String {
        ZroError::code(self)
    }
}

fn field(body: &Value, name: &str) -> String {
    body.get(name)
        .map(|v| match v {
            Value::String(s) => s.chars().take(200).collect(),
            other => other.to_string(),
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex as StdMutex;

    use axum::Router;
    use axum::http::{HeaderMap, Uri};

    use super::*;
    use crate::providers::DiscardCalls;

    /// A fake Zro under `/api` that keeps the path (as sent, still percent-encoded) and the
    /// bearer token of every request.
    async fn fake() -> (String, Arc<StdMutex<Vec<(String, Option<String>)>>>) {
        let seen = Arc::new(StdMutex::new(Vec::new()));
        let log = seen.clone();
        let app = Router::new().fallback(move |uri: Uri, headers: HeaderMap| {
            let log = log.clone();
            async move {
                let bearer = headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                log.lock().unwrap().push((uri.path().to_owned(), bearer));
                if uri.path() == "/api/auth/signin" {
                    axum::Json(json!({ "access_token": "zro-token" }))
                } else {
                    axum::Json(json!({ "id": "accepted" }))
                }
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}/api", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (base, seen)
    }

    fn percent_decoded(segment: &str) -> String {
        let bytes = segment.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%' {
                out.push(u8::from_str_radix(&segment[i + 1..i + 3], 16).unwrap());
                i += 3;
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        String::from_utf8(out).unwrap()
    }

    #[tokio::test]
    async fn an_enrollment_id_stays_inside_its_path_segment() {
        let (base, seen) = fake().await;
        let client = ZroClient::new(
            ZroConfig {
                base_url: base,
                api_id: "id".into(),
                api_key: SecretString::from("key"),
                timeout: Duration::from_secs(5),
            },
            Arc::new(DiscardCalls),
        )
        .unwrap();
        let signals = RiskSignals::default();
        let send = |enrollment_id: &'static str| {
            let client = client.clone();
            let signals = signals.clone();
            async move {
                let signal = RiskSignal {
                    enrollment_id,
                    transaction_uuid: Uuid::new_v4(),
                    device_id: "dev-1",
                    signals: &signals,
                };
                client
                    .send_risk_signal(&signal, CallContext::default())
                    .await
            }
        };
        // Stored before the edge refused such ids, or sent by anything but the API: each goes
        // as one percent-encoded segment, which Zro decodes back to the id.
        for enrollment_id in ["enr-42", "a/../../auth/signin", "enr?x=1#y", "%2e%2e"] {
            assert_eq!(send(enrollment_id).await, Ok(200), "{enrollment_id}");
            let (path, bearer) = seen.lock().unwrap().last().cloned().unwrap();
            let segments: Vec<&str> = path.split('/').collect();
            assert_eq!(
                (segments.len(), &segments[..4], &segments[5..]),
                (
                    7,
                    &["", "api", "open-finance", "enrollments"][..],
                    &["device", "risk-signal"][..]
                ),
                "{enrollment_id}: {path}"
            );
            assert_eq!(percent_decoded(segments[4]), enrollment_id);
            assert_eq!(bearer.as_deref(), Some("Bearer zro-token"));
        }
        // A dot segment cannot be encoded: the URL would lose it and the token would go to
        // another path. Refused before any request.
        let before = seen.lock().unwrap().len();
        for enrollment_id in [".", ".."] {
            let refused = send(enrollment_id).await;
            assert_eq!(refused, Err(ZroError::EnrollmentId), "{enrollment_id}");
            assert!(!refused.unwrap_err().is_transient());
        }
        let after: Vec<_> = seen.lock().unwrap()[before..].to_vec();
        assert!(after.is_empty(), "{after:?}");
    }
}
