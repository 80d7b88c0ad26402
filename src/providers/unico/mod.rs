//! unico "by Client" API: service-account token exchange, CreateProcess and GetProcess.
//!
//! SKELETON: the public API below is fixed; the bodies are being written.

use std::time::Duration;

use secrecy::SecretString;

use crate::domain::evidence::BiometricResult;
use crate::providers::{CallContext, SharedSink};

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
    Auth { http_status: Option<u16>, description: String },
    /// A documented business error, `{"error": {"code", "description"}}`.
    #[error("unico rejected the request: {code} {description} (HTTP {http_status})")]
    Business { http_status: u16, code: String, description: String },
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
    pub fn is_transient(&self) -> bool {
        matches!(self, UnicoError::RateLimited { .. } | UnicoError::Server { .. } | UnicoError::Timeout | UnicoError::Transport(_))
    }

    /// The selfie itself was refused (bad, expired or reused capture): ask the user for a new one.
    pub fn is_capture_problem(&self) -> bool {
        matches!(self, UnicoError::Business { code, .. }
            if matches!(code.as_str(), "20009" | "20505" | "20506" | "20807" | "20900" | "10506" | "10507" | "10508"))
    }
}

#[derive(Clone)]
pub struct UnicoClient {
    _todo: (),
}

impl UnicoClient {
    pub fn new(_config: UnicoConfig, _sink: SharedSink) -> Result<Self, UnicoError> {
        unimplemented!()
    }

    pub async fn create_process(&self, _request: &CreateProcess, _ctx: CallContext) -> Result<BiometricResult, UnicoError> {
        unimplemented!()
    }

    pub async fn get_process(&self, _process_id: &str, _ctx: CallContext) -> Result<BiometricResult, UnicoError> {
        unimplemented!()
    }
}
