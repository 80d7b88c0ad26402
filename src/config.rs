//! Typed settings, loaded in layers and validated once at start.
//!
//! Layers, each overriding the one before: `config/default.toml`, `config/{VEREDITO_ENV}.toml`,
//! the `--config FILE` given on the command line, `DATABASE_URL`, and `VEREDITO__SECTION__KEY`
//! environment variables. Every error names the key it is about.

use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Load(#[from] config::ConfigError),
    #[error("configuration key `{key}`: {message}")]
    Invalid { key: &'static str, message: String },
}

fn invalid(key: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key,
        message: message.into(),
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub unico: UnicoSettings,
    pub qitech: QitechSettings,
    pub zro: ZroSettings,
    pub api: ApiSettings,
    pub policy: PolicySettings,
    pub pii: PiiSettings,
    pub retention: RetentionSettings,
    pub sandbox: SandboxSettings,
    pub telemetry: TelemetrySettings,
    #[serde(default)]
    pub jobs: JobsSettings,
    #[serde(default)]
    pub review: ReviewSettings,
    #[serde(default)]
    pub callbacks: CallbackSettings,
}

/// Human review.
#[derive(Debug, Clone, Deserialize)]
pub struct ReviewSettings {
    /// How long a case may stay unresolved before it is overdue.
    #[serde(deserialize_with = "duration")]
    pub sla: Duration,
}

impl Default for ReviewSettings {
    fn default() -> Self {
        ReviewSettings {
            sla: Duration::from_secs(24 * 3600),
        }
    }
}

/// Decision callbacks to the onboarding backend (Standard Webhooks signatures).
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct CallbackSettings {
    /// Where events are POSTed; unset, no event is written.
    pub url: Option<String>,
    /// `whsec_` followed by the base64 of the signing key.
    pub secret: Option<SecretString>,
    #[serde(deserialize_with = "duration")]
    pub max_age: Duration,
    #[serde(deserialize_with = "duration")]
    pub retry_initial: Duration,
    #[serde(deserialize_with = "duration")]
    pub retry_max: Duration,
    #[serde(deserialize_with = "duration")]
    pub timeout: Duration,
}

impl Default for CallbackSettings {
    fn default() -> Self {
        CallbackSettings {
            url: None,
            secret: None,
            max_age: Duration::from_secs(24 * 3600),
            retry_initial: Duration::from_secs(5),
            retry_max: Duration::from_secs(600),
            timeout: Duration::from_secs(10),
        }
    }
}

impl CallbackSettings {
    /// The signing key: the base64-decoded part of the secret after `whsec_`.
    pub fn signing_key(&self) -> Result<Option<Vec<u8>>, ConfigError> {
        use base64::Engine;
        if self.url.is_none() {
            return Ok(None);
        }
        let secret = self
            .secret
            .as_ref()
            .ok_or_else(|| invalid("callbacks.secret", "is required when callbacks.url is set"))?;
        let encoded = secret
            .expose_secret()
            .strip_prefix("whsec_")
            .ok_or_else(|| invalid("callbacks.secret", "must start with whsec_"))?;
        let key = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map_err(|_| invalid("callbacks.secret", "must be whsec_ followed by base64"))?;
        if key.len() < 16 {
            return Err(invalid(
                "callbacks.secret",
                "the key must have at least 16 bytes",
            ));
        }
        Ok(Some(key))
    }
}

/// Background workers. Every replica runs them by default; turning them off makes an API-only
/// replica (it still listens for decisions, so its waiting requests are answered).
#[derive(Debug, Clone, Deserialize)]
pub struct JobsSettings {
    pub enabled: bool,
}

impl Default for JobsSettings {
    fn default() -> Self {
        JobsSettings { enabled: true }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct ServerSettings {
    pub addr: String,
    #[serde(deserialize_with = "duration")]
    pub shutdown_grace: Duration,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DatabaseSettings {
    pub url: SecretString,
    pub max_connections: u32,
    #[serde(default)]
    pub create_if_missing: bool,
    #[serde(default)]
    pub migrate_on_start: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct UnicoSettings {
    pub base_url: String,
    pub identity_url: String,
    pub api_key: SecretString,
    pub service_account: String,
    pub private_key_pem: Option<SecretString>,
    pub private_key_path: Option<PathBuf>,
    pub webhook_header: String,
    pub webhook_secret: SecretString,
    #[serde(deserialize_with = "duration")]
    pub timeout: Duration,
    #[serde(deserialize_with = "duration")]
    pub poll_initial: Duration,
    #[serde(deserialize_with = "duration")]
    pub poll_max: Duration,
}

#[derive(Debug, Clone, Deserialize)]
pub struct QitechSettings {
    pub base_url: String,
    pub api_key: SecretString,
    #[serde(deserialize_with = "duration")]
    pub timeout: Duration,
    /// Read-backs of pending analyses and retries of failed calls: first after poll_initial,
    /// doubling up to poll_max.
    #[serde(default = "default_qitech_poll_initial", deserialize_with = "duration")]
    pub poll_initial: Duration,
    #[serde(default = "default_qitech_poll_max", deserialize_with = "duration")]
    pub poll_max: Duration,
}

fn default_qitech_poll_initial() -> Duration {
    Duration::from_secs(2)
}

fn default_qitech_poll_max() -> Duration {
    Duration::from_secs(60)
}

#[derive(Debug, Clone, Deserialize)]
pub struct ZroSettings {
    pub base_url: String,
    pub api_id: String,
    pub api_key: SecretString,
    #[serde(deserialize_with = "duration")]
    pub timeout: Duration,
    /// Retries of a failed risk signal: first after retry_initial, doubling, at most
    /// max_attempts attempts in all before it is reported as failed.
    #[serde(default = "default_zro_retry_initial", deserialize_with = "duration")]
    pub retry_initial: Duration,
    #[serde(default = "default_zro_max_attempts")]
    pub max_attempts: u32,
}

fn default_zro_retry_initial() -> Duration {
    Duration::from_secs(2)
}

fn default_zro_max_attempts() -> u32 {
    8
}

#[derive(Debug, Clone, Deserialize)]
pub struct ApiSettings {
    #[serde(default)]
    pub keys: Vec<ApiKeySettings>,
}

/// What an API key may do. The configuration names them; the HTTP layer checks them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Start onboardings and device validations, read their state.
    OnboardingWrite,
    /// Search and explain decisions.
    DecisionsRead,
    /// See personal data unmasked.
    PiiRead,
    /// Claim, release and resolve review cases (the key's name is the reviewer recorded).
    ReviewsWrite,
    /// Draft, shadow and publish policy versions.
    PoliciesWrite,
}

impl Scope {
    pub const ALL: [Scope; 5] = [
        Scope::OnboardingWrite,
        Scope::DecisionsRead,
        Scope::PiiRead,
        Scope::ReviewsWrite,
        Scope::PoliciesWrite,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::OnboardingWrite => "onboarding:write",
            Scope::DecisionsRead => "decisions:read",
            Scope::PiiRead => "pii:read",
            Scope::ReviewsWrite => "reviews:write",
            Scope::PoliciesWrite => "policies:write",
        }
    }

    pub fn parse(text: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct ApiKeySettings {
    pub name: String,
    pub key_sha256: String,
    pub scopes: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PolicySettings {
    pub version: String,
    pub score_reject_max: i32,
    pub score_approve_min: i32,
    #[serde(deserialize_with = "duration")]
    pub default_wait: Duration,
    #[serde(deserialize_with = "duration")]
    pub biometrics_deadline: Duration,
    #[serde(deserialize_with = "duration")]
    pub device_deadline: Duration,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PiiSettings {
    pub active_key_id: String,
    pub hash_key: SecretString,
    pub keys: Vec<PiiKeySettings>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PiiKeySettings {
    pub id: String,
    pub key: SecretString,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RetentionSettings {
    pub pii_days: u32,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SandboxSettings {
    pub enabled: bool,
    /// The public half of the sandbox service-account key, to verify unico assertions.
    pub unico_public_key_path: PathBuf,
    #[serde(deserialize_with = "duration")]
    pub processing_delay: Duration,
    #[serde(deserialize_with = "duration")]
    pub webhook_delay: Duration,
    /// How long a simulated QI Tech analysis stays pending (device registration and device
    /// validation test ids that resolve later).
    #[serde(
        default = "default_sandbox_qitech_delay",
        deserialize_with = "duration"
    )]
    pub qitech_pending_delay: Duration,
    /// Whether the sandbox also stands in for QI Tech and Zro. Off, only unico is simulated and
    /// the device clients call the configured `qitech.base_url` and `zro.base_url`.
    #[serde(default = "default_true")]
    pub device_providers: bool,
    /// Whether the sandbox stands in for unico. Off, the unico client calls the configured
    /// `unico.base_url` and `unico.identity_url` (tests point them at a fake).
    #[serde(default = "default_true")]
    pub unico_provider: bool,
}

fn default_true() -> bool {
    true
}

fn default_sandbox_qitech_delay() -> Duration {
    Duration::from_secs(1)
}

#[derive(Debug, Clone, Deserialize)]
pub struct TelemetrySettings {
    pub log_format: LogFormat,
    pub otlp_endpoint: Option<String>,
    #[serde(default = "default_service_name")]
    pub service_name: String,
}

fn default_service_name() -> String {
    "veredito".to_owned()
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Json,
    Pretty,
}

/// Where the layers come from. `Default` reads `./config` and the process environment.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// Folder holding `default.toml`; `VEREDITO_CONFIG_DIR` or `./config` when unset.
    pub config_dir: Option<PathBuf>,
    /// The `--config FILE` of the command line.
    pub file: Option<PathBuf>,
    /// Highest-priority overrides as `section.key` pairs (used by tests).
    pub overrides: Vec<(String, String)>,
    /// Skip the process environment (tests set everything explicitly).
    pub ignore_env: bool,
}

impl Settings {
    pub fn load(sources: &Sources) -> Result<Self, ConfigError> {
        let dir = sources
            .config_dir
            .clone()
            .or_else(|| std::env::var_os("VEREDITO_CONFIG_DIR").map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from("config"));
        let mut builder = config::Config::builder()
            .add_source(config::File::from(dir.join("default.toml")).required(true));
        if !sources.ignore_env {
            if let Ok(env) = std::env::var("VEREDITO_ENV") {
                builder = builder
                    .add_source(config::File::from(dir.join(format!("{env}.toml"))).required(true));
            }
        }
        if let Some(file) = &sources.file {
            builder = builder.add_source(config::File::from(file.as_path()).required(true));
        }
        if !sources.ignore_env {
            if let Ok(url) = std::env::var("DATABASE_URL") {
                builder = builder.set_override("database.url", url)?;
            }
            builder = builder.add_source(
                config::Environment::with_prefix("VEREDITO")
                    .prefix_separator("__")
                    .separator("__")
                    .try_parsing(true),
            );
        }
        for (key, value) in &sources.overrides {
            builder = builder.set_override(key.as_str(), value.as_str())?;
        }
        let settings: Settings = builder.build()?.try_deserialize()?;
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if let Some(url) = &self.callbacks.url {
            match reqwest::Url::parse(url) {
                Ok(u) if matches!(u.scheme(), "http" | "https") => {}
                _ => return Err(invalid("callbacks.url", "must be an http(s) URL")),
            }
        }
        self.callbacks.signing_key()?;
        if self.callbacks.retry_initial.is_zero()
            || self.callbacks.retry_max < self.callbacks.retry_initial
        {
            return Err(invalid(
                "callbacks.retry_max",
                "must be at least callbacks.retry_initial, which must be above zero",
            ));
        }
        if self.review.sla.is_zero() {
            return Err(invalid("review.sla", "must be above zero"));
        }
        if self.server.addr.parse::<std::net::SocketAddr>().is_err() {
            return Err(invalid(
                "server.addr",
                "must be an address such as 127.0.0.1:8080",
            ));
        }
        if !self.database.url.expose_secret().starts_with("postgres") {
            return Err(invalid("database.url", "must be a postgres:// URL"));
        }
        if self.database.max_connections == 0 {
            return Err(invalid("database.max_connections", "must be at least 1"));
        }
        for (key, url) in [
            ("unico.base_url", &self.unico.base_url),
            ("unico.identity_url", &self.unico.identity_url),
            ("qitech.base_url", &self.qitech.base_url),
            ("zro.base_url", &self.zro.base_url),
        ] {
            if reqwest::Url::parse(url).is_err() {
                return Err(invalid(key, format!("`{url}` is not a URL")));
            }
        }
        if self.unico.private_key_pem.is_none() && self.unico.private_key_path.is_none() {
            return Err(invalid(
                "unico.private_key_pem",
                "set it or unico.private_key_path",
            ));
        }
        if self.unico.webhook_header.trim().is_empty()
            || axum::http::HeaderName::from_bytes(self.unico.webhook_header.as_bytes()).is_err()
        {
            return Err(invalid(
                "unico.webhook_header",
                "must be a valid HTTP header name",
            ));
        }
        if self.unico.webhook_secret.expose_secret().len() < 8 {
            return Err(invalid(
                "unico.webhook_secret",
                "must be at least 8 characters",
            ));
        }
        if self.unico.poll_initial.is_zero() || self.unico.poll_max < self.unico.poll_initial {
            return Err(invalid(
                "unico.poll_max",
                "must be at least unico.poll_initial, which must be above zero",
            ));
        }
        for key in &self.api.keys {
            if key.key_sha256.len() != 64
                || !key
                    .key_sha256
                    .bytes()
                    .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
            {
                return Err(invalid(
                    "api.keys",
                    format!(
                        "key `{}`: key_sha256 must be 64 lowercase hex digits",
                        key.name
                    ),
                ));
            }
            if let Some(scope) = key.scopes.iter().find(|s| Scope::parse(s).is_none()) {
                return Err(invalid(
                    "api.keys",
                    format!("key `{}`: unknown scope `{scope}`", key.name),
                ));
            }
        }
        if self.qitech.poll_initial.is_zero() || self.qitech.poll_max < self.qitech.poll_initial {
            return Err(invalid(
                "qitech.poll_max",
                "must be at least qitech.poll_initial, which must be above zero",
            ));
        }
        if self.zro.retry_initial.is_zero() || self.zro.max_attempts == 0 {
            return Err(invalid(
                "zro.max_attempts",
                "zro.max_attempts and zro.retry_initial must be above zero",
            ));
        }
        if self.policy.version.trim().is_empty() {
            return Err(invalid("policy.version", "must not be empty"));
        }
        if self.policy.score_reject_max >= self.policy.score_approve_min {
            return Err(invalid(
                "policy.score_reject_max",
                "must be below policy.score_approve_min",
            ));
        }
        if self.policy.default_wait > Duration::from_secs(60) {
            return Err(invalid("policy.default_wait", "must be at most 60s"));
        }
        if self.policy.biometrics_deadline.is_zero() {
            return Err(invalid("policy.biometrics_deadline", "must be above zero"));
        }
        if self.policy.device_deadline.is_zero() {
            return Err(invalid("policy.device_deadline", "must be above zero"));
        }
        if !self.pii.keys.iter().any(|k| k.id == self.pii.active_key_id) {
            return Err(invalid("pii.active_key_id", "must name one of pii.keys"));
        }
        if self.retention.pii_days == 0 {
            return Err(invalid("retention.pii_days", "must be at least 1"));
        }
        Ok(())
    }

    /// The unico private key, from `private_key_pem` or read from `private_key_path`.
    pub fn unico_private_key(&self) -> Result<SecretString, ConfigError> {
        if let Some(pem) = &self.unico.private_key_pem {
            return Ok(pem.clone());
        }
        let path = self
            .unico
            .private_key_path
            .as_deref()
            .unwrap_or(Path::new(""));
        std::fs::read_to_string(path)
            .map(SecretString::from)
            .map_err(|e| {
                invalid(
                    "unico.private_key_path",
                    format!("cannot read {}: {e}", path.display()),
                )
            })
    }
}

/// Durations are written as strings: "200ms", "20s", "10m".
fn duration<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(deserializer)?;
    humantime::parse_duration(text.trim()).map_err(|e| {
        serde::de::Error::custom(format!("`{text}` is not a duration such as \"20s\": {e}"))
    })
}
