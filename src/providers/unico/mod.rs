//! unico "by Client" API: service-account token exchange, CreateProcess and GetProcess.
//!
//! One access token is shared by every call and renewed shortly before it expires (`auth`);
//! answers are read leniently (`wire`). Every HTTP exchange, the token's included, is reported to
//! the call sink with personal data, the selfie, the API key and tokens replaced.

mod auth;
mod wire;

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue, RETRY_AFTER};
use reqwest::{RequestBuilder, Url};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use crate::domain::evidence::BiometricResult;
use crate::providers::http::{Answer, Exchange, Failure, ProviderError, ProviderHttp as Http};
use crate::providers::{CallContext, SharedSink};

use auth::{AccessToken, TokenSource};

/// Everything the client needs; built from `[unico]` settings (or pointed at the sandbox).
#[derive(Clone)]
pub struct UnicoConfig {
    /// API host, e.g. `https://api.id.uat.unico.app` (no trailing slash needed).
    pub base_url: String,
    /// Token host, e.g. `https://identityhomolog.acesso.io`; also the assertion's `aud`.
    pub identity_url: String,
    pub api_key: SecretString,
    /// The full `iss`: `<account>@<tenant_id>.iam.acesso.io`.
    pub service_account: String,
    /// RSA private key, PEM (PKCS#8 or PKCS#1).
    pub private_key_pem: SecretString,
    pub timeout: Duration,
}

/// `subject` of CreateProcess. `code` is the CPF's 11 digits.
#[derive(Clone)]
pub struct Subject {
    pub code: String,
    pub name: String,
    pub gender: Option<String>,
    /// YYYY-MM-DD.
    pub birth_date: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
}

#[derive(Clone)]
pub struct CreateProcess {
    pub subject: Subject,
    /// The SDK's encrypted selfie JWT or a base64 image. Never logged, never recorded.
    pub image_base64: SecretString,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnicoError {
    /// The token exchange failed (bad key, bad claims, replayed assertion: `1.2.x`).
    #[error("unico authentication failed: {description}")]
    Auth {
        http_status: Option<u16>,
        description: String,
    },
    /// A documented business error, `{"error": {"code", "description"}}`.
    #[error("unico rejected the request: {code} {description} (HTTP {http_status})")]
    Business {
        http_status: u16,
        code: String,
        description: String,
    },
    #[error("unico rate limit reached")]
    RateLimited { retry_after: Option<Duration> },
    #[error("unico answered HTTP {http_status}")]
    Server { http_status: u16 },
    #[error("unico did not answer within the timeout")]
    Timeout,
    #[error("could not reach unico: {0}")]
    Transport(String),
    #[error("unico's answer could not be read: {0}")]
    Decode(String),
    #[error("unico client configuration: {0}")]
    Config(String),
}

impl UnicoError {
    /// A later attempt may succeed (rate limit, unico-side failure, timeout, network).
    /// The token endpoint counts too: down (no answer, 5xx) or rate limiting is transient.
    pub fn is_transient(&self) -> bool {
        match self {
            UnicoError::RateLimited { .. }
            | UnicoError::Server { .. }
            | UnicoError::Timeout
            | UnicoError::Transport(_) => true,
            UnicoError::Auth { http_status, .. } => {
                matches!(http_status, None | Some(429) | Some(500..=599))
            }
            _ => false,
        }
    }

    /// How long unico asked to be left alone (`Retry-After` of a 429).
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            UnicoError::RateLimited { retry_after } => *retry_after,
            _ => None,
        }
    }

    /// A label safe to store and log: the kind of failure with unico's code or HTTP status,
    /// never unico's text (which can echo the request).
    pub fn code(&self) -> String {
        let status = |s: &Option<u16>| s.map_or_else(|| "none".to_owned(), |s| s.to_string());
        match self {
            UnicoError::Auth { http_status, .. } => format!("unico.auth.{}", status(http_status)),
            UnicoError::Business {
                http_status, code, ..
            } => format!("unico.business.{http_status}.{}", super::safe_code(code)),
            UnicoError::RateLimited { .. } => "unico.rate_limited".into(),
            UnicoError::Server { http_status } => format!("unico.server.{http_status}"),
            UnicoError::Timeout => "unico.timeout".into(),
            UnicoError::Transport(_) => "unico.transport".into(),
            UnicoError::Decode(_) => "unico.decode".into(),
            UnicoError::Config(_) => "unico.config".into(),
        }
    }

    /// The selfie itself was refused (missing, unsupported, too large or small, bad base64, or an
    /// SDK capture that failed its check, expired or was reused): the code, when a new capture is
    /// what the user needs.
    pub fn capture_problem(&self) -> Option<&str> {
        match self {
            UnicoError::Business { code, .. }
                if matches!(
                    code.as_str(),
                    "20009" | "20505" | "20506" | "20807" | "20900" | "10506" | "10507" | "10508"
                ) =>
            {
                Some(code)
            }
            _ => None,
        }
    }
}

#[derive(Clone)]
pub struct UnicoClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: Http,
    tokens: TokenSource,
    api_key: HeaderValue,
    processes_url: Url,
}

/// Codes unico answers (with HTTP 403) for an access token it no longer accepts.
const TOKEN_REFUSED: [&str; 2] = ["10501", "10502"];

impl UnicoClient {
    pub fn new(config: UnicoConfig, sink: SharedSink) -> Result<Self, UnicoError> {
        if config.timeout.is_zero() {
            return Err(UnicoError::Config(
                "the unico timeout must be above zero".into(),
            ));
        }
        let mut api_key =
            HeaderValue::from_str(config.api_key.expose_secret().trim()).map_err(|_| {
                UnicoError::Config("the unico API key is not a valid header value".into())
            })?;
        if api_key.is_empty() {
            return Err(UnicoError::Config("the unico API key is empty".into()));
        }
        api_key.set_sensitive(true);

        let tokens = TokenSource::new(
            &config.private_key_pem,
            config.service_account.trim().to_owned(),
            &config.identity_url,
        )?;
        let processes_url = endpoint(&config.base_url, &["processes", "v1"])?;
        // unico documents no redirects, and APIKEY is not a header reqwest knows to drop on a
        // cross-host one: a 3xx is reported instead of followed.
        let client = crate::providers::http::client(config.timeout).map_err(UnicoError::Config)?;

        Ok(UnicoClient {
            inner: Arc::new(Inner {
                http: Http::new(client, sink, wire::for_record, wire::PARSED),
                tokens,
                api_key,
                processes_url,
            }),
        })
    }

    /// Paces every call of this client (the token exchange included) to `per_second`, shared by
    /// all the work of the replica: a burst waits its turn instead of meeting unico's 429. A
    /// new process (CreateProcess) waits behind the calls that finish one already paid for.
    pub fn paced(mut self, per_second: u32) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.http = inner.http.clone().paced(per_second, &["create_process"]);
        }
        self
    }

    #[tracing::instrument(skip_all, fields(process_id = tracing::field::Empty))]
    pub async fn create_process(
        &self,
        request: &CreateProcess,
        ctx: CallContext,
    ) -> Result<BiometricResult, UnicoError> {
        let inner = &self.inner;
        let body = serde_json::to_vec(&wire::CreateProcessBody::new(
            request,
            request.image_base64.expose_secret(),
        ))
        .map(bytes::Bytes::from)
        .map_err(|e| UnicoError::Decode(format!("could not encode the CreateProcess body: {e}")))?;
        let recorded = wire::CreateProcessBody::for_record(request);

        let result = self
            .authorized(ctx, || {
                let builder = inner
                    .http
                    .client
                    .post(inner.processes_url.clone())
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(body.clone());
                let exchange = Exchange {
                    provider: "unico",
                    operation: "create_process",
                    method: "POST",
                    path: inner.processes_url.path().to_owned(),
                    request: Some(recorded.clone()),
                    context: ctx,
                };
                (builder, exchange)
            })
            .await?;
        tracing::Span::current().record("process_id", result.process_id.as_str());
        tracing::debug!(status = result.status, "unico process created");
        Ok(result)
    }

    #[tracing::instrument(skip_all, fields(process_id = %process_id))]
    pub async fn get_process(
        &self,
        process_id: &str,
        ctx: CallContext,
    ) -> Result<BiometricResult, UnicoError> {
        let inner = &self.inner;
        let process_id = process_id.trim();
        // The URL builder drops "." and ".." segments, which would turn this into another call.
        if matches!(process_id, "" | "." | "..") {
            return Err(UnicoError::Config(format!(
                "{process_id:?} is not a process id"
            )));
        }
        let mut url = inner.processes_url.clone();
        // The id goes in as one path segment, percent-encoded, so a hostile id (from a webhook)
        // cannot reach another path.
        url.path_segments_mut()
            .map_err(|_| UnicoError::Config("the unico base URL cannot take a path".into()))?
            .push(process_id);

        let result = self
            .authorized(ctx, || {
                let exchange = Exchange {
                    provider: "unico",
                    operation: "get_process",
                    method: "GET",
                    path: url.path().to_owned(),
                    request: None,
                    context: ctx,
                };
                (inner.http.client.get(url.clone()), exchange)
            })
            .await?;
        if result.process_id != process_id {
            tracing::debug!(answered_id = %result.process_id, "unico answered another process id");
        }
        tracing::debug!(status = result.status, "unico process read");
        Ok(result)
    }

    /// Sends a process request with the shared token and the API key. A token unico says is
    /// invalid or expired (it may have been revoked, or clocks disagree) is dropped and the call
    /// made once more with a new one; a second refusal is returned as it is.
    async fn authorized(
        &self,
        ctx: CallContext,
        make: impl Fn() -> (RequestBuilder, Exchange),
    ) -> Result<BiometricResult, UnicoError> {
        let inner = &self.inner;
        let mut retried = false;
        loop {
            let token = inner.tokens.token(&inner.http, ctx).await?;
            let (builder, exchange) = make();
            let builder = builder
                .header(AUTHORIZATION, bearer(&token)?)
                .header("APIKEY", inner.api_key.clone());
            match inner
                .http
                .send(builder, exchange, |a: &Answer| {
                    process_outcome(a.status, &a.headers, a.body.as_ref())
                })
                .await
            {
                Err(UnicoError::Business {
                    http_status: 403,
                    code,
                    ..
                }) if !retried && TOKEN_REFUSED.contains(&code.as_str()) => {
                    tracing::debug!(code = %super::safe_code(&code), "unico refused the access token; renewing it");
                    inner.tokens.invalidate(&token).await;
                    retried = true;
                }
                other => return other,
            }
        }
    }
}

fn bearer(token: &AccessToken) -> Result<HeaderValue, UnicoError> {
    let mut value = HeaderValue::from_str(&format!("Bearer {}", token.value.expose_secret()))
        .map_err(|_| UnicoError::Decode("the access token cannot be sent in a header".into()))?;
    value.set_sensitive(true);
    Ok(value)
}

/// `base` with `segments` appended; a trailing slash on `base` does not double the separator.
fn endpoint(base: &str, segments: &[&str]) -> Result<Url, UnicoError> {
    let mut url = Url::parse(base.trim())
        .map_err(|e| UnicoError::Config(format!("invalid unico URL {base:?}: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(UnicoError::Config(format!(
            "the unico URL {base:?} is not http(s)"
        )));
    }
    url.path_segments_mut()
        .map_err(|_| UnicoError::Config(format!("the unico URL {base:?} cannot take a path")))?
        .pop_if_empty()
        .extend(segments);
    Ok(url)
}

/// Seconds, or an HTTP date; anything else is ignored rather than guessed at.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let wait = at.signed_duration_since(chrono::Utc::now());
    Some(wait.to_std().unwrap_or(Duration::ZERO))
}

/// Turns an answer of the processes API into a result or a typed error.
fn process_outcome(
    status: u16,
    headers: &HeaderMap,
    body: Option<&Value>,
) -> Result<BiometricResult, UnicoError> {
    match status {
        200..=299 => {
            let body =
                body.ok_or_else(|| UnicoError::Decode("the process answer is not JSON".into()))?;
            wire::parse_process(body)
        }
        429 => Err(UnicoError::RateLimited {
            retry_after: retry_after(headers),
        }),
        500..=599 => Err(UnicoError::Server {
            http_status: status,
        }),
        400..=499 => Err(match body.and_then(wire::parse_business_error) {
            Some(e) => UnicoError::Business {
                http_status: status,
                code: e.code,
                description: e.description,
            },
            None => UnicoError::Business {
                http_status: status,
                code: String::new(),
                description: format!("HTTP {status} without a unico error body"),
            },
        }),
        _ => Err(UnicoError::Decode(format!(
            "unexpected HTTP status {status}"
        ))),
    }
}

impl ProviderError for UnicoError {
    fn from_failure(failure: Failure) -> Self {
        match failure {
            Failure::Timeout => UnicoError::Timeout,
            Failure::Transport(cause) => UnicoError::Transport(cause),
            Failure::TooLarge => {
                UnicoError::Decode("the answer is larger than veredito reads".into())
            }
        }
    }

    fn code(&self) -> String {
        UnicoError::code(self)
    }
}

#[cfg(test)]
mod tests;
