//! Typed settings, loaded in layers and validated once at start.
//!
//! Layers, each overriding the one before: `config/default.toml`, `config/sandbox.toml` (only
//! when the sandbox is on), `config/{VEREDITO_ENV}.toml`, the `--config FILE` given on the
//! command line, `DATABASE_URL`, and `VEREDITO__SECTION__KEY` environment variables; API keys may
//! also come from `VEREDITO_API_KEYS` (a JSON list) or `VEREDITO_API_KEYS_FILE` (a JSON or TOML
//! file). Every bad value is reported at once, each naming the key it is about. With the sandbox
//! off, any of the sandbox's published values stops the start.
//!
//! Here the settings' types; the layers in `load`, the checks of the values in `validate`, the
//! guard against the sandbox's published values in `published`.

#[cfg(test)]
mod fixtures;
mod load;
pub mod oidc;
mod providers;
mod published;
mod scope;
mod validate;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer};

pub use load::Sources;
pub use providers::{QitechSettings, UnicoSettings, ZroSettings};
pub use scope::Scope;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Load(#[from] config::ConfigError),
    /// Every bad value found, each naming its key.
    #[error("{}", mistakes_text(.0))]
    Invalid(Vec<Mistake>),
}

/// One bad value: the key it is about, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mistake {
    pub key: String,
    pub message: String,
}

impl fmt::Display for Mistake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "configuration key `{}`: {}", self.key, self.message)
    }
}

fn mistakes_text(mistakes: &[Mistake]) -> String {
    match mistakes {
        [one] => one.to_string(),
        all => {
            let lines: Vec<String> = all.iter().map(|m| format!("\n  {m}")).collect();
            format!("{} configuration mistakes:{}", all.len(), lines.concat())
        }
    }
}

fn mistake(key: impl Into<String>, message: impl Into<String>) -> Mistake {
    Mistake {
        key: key.into(),
        message: message.into(),
    }
}

fn invalid(key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid(vec![mistake(key, message)])
}

/// A Standard Webhooks secret: `whsec_` followed by the base64 of a key of at least 16 bytes.
fn whsec_key(key: &str, secret: &SecretString) -> Result<Vec<u8>, ConfigError> {
    use base64::Engine;
    let encoded = secret
        .expose_secret()
        .strip_prefix("whsec_")
        .ok_or_else(|| invalid(key, "must start with whsec_"))?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|_| invalid(key, "must be whsec_ followed by base64"))?;
    if bytes.len() < 16 {
        return Err(invalid(key, "the key must have at least 16 bytes"));
    }
    Ok(bytes)
}

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub unico: UnicoSettings,
    pub qitech: QitechSettings,
    pub zro: ZroSettings,
    #[serde(default)]
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
    #[serde(default)]
    pub institution: InstitutionSettings,
    #[serde(default)]
    pub fraud_sharing: FraudSharingSettings,
    #[serde(default)]
    pub console: oidc::ConsoleSettings,
}

/// The institution veredito decides for, as it registers fraud indications.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct InstitutionSettings {
    /// Its CNPJ, check digits verified; required when `fraud_sharing.url` is set.
    pub cnpj: Option<String>,
}

impl InstitutionSettings {
    /// The CNPJ's 14 digits, when one is configured.
    pub fn cnpj_digits(&self) -> Option<String> {
        self.cnpj
            .as_deref()
            .and_then(crate::domain::fraud::Cnpj::parse)
            .map(|c| c.digits().to_owned())
    }
}

/// The fraud-indication sharing system between institutions (Resolução Conjunta nº 6/2023).
/// Unset, indications are kept and not sent (they become overdue); with the sandbox on and no
/// URL, the sandbox's simulated sharing system receives them.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct FraudSharingSettings {
    pub url: Option<String>,
    /// `whsec_` followed by the base64 of the signing key.
    pub secret: Option<SecretString>,
}

impl FraudSharingSettings {
    /// The signing key: the base64-decoded part of the secret after `whsec_`; None without a
    /// secret.
    pub fn signing_key(&self) -> Result<Option<Vec<u8>>, ConfigError> {
        match (&self.secret, &self.url) {
            (Some(secret), _) => whsec_key("fraud_sharing.secret", secret).map(Some),
            (None, Some(_)) => Err(invalid(
                "fraud_sharing.secret",
                "is required when fraud_sharing.url is set",
            )),
            (None, None) => Ok(None),
        }
    }
}

/// Human review.
#[derive(Debug, Clone, Deserialize)]
pub struct ReviewSettings {
    /// How long a case may stay unresolved before it is overdue.
    #[serde(deserialize_with = "duration")]
    pub sla: Duration,
    /// The same for a case the person opened (LGPD Art. 20), whose answer goes to the person.
    #[serde(default = "subject_request_sla", deserialize_with = "duration")]
    pub subject_request_sla: Duration,
}

fn subject_request_sla() -> Duration {
    Duration::from_secs(15 * 24 * 3600)
}

impl Default for ReviewSettings {
    fn default() -> Self {
        ReviewSettings {
            sla: Duration::from_secs(24 * 3600),
            subject_request_sla: subject_request_sla(),
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
        if self.url.is_none() {
            return Ok(None);
        }
        let secret = self
            .secret
            .as_ref()
            .ok_or_else(|| invalid("callbacks.secret", "is required when callbacks.url is set"))?;
        whsec_key("callbacks.secret", secret).map(Some)
    }
}

/// Background workers. Every replica runs them by default; turning them off makes an API-only
/// replica (it still listens for decisions, so its waiting requests are answered).
#[derive(Debug, Clone, Deserialize)]
pub struct JobsSettings {
    pub enabled: bool,
    /// A step that fails on veredito's own side (not a provider's) runs again after this long,
    /// doubling per failure up to `step_retry_max`...
    #[serde(default = "default_step_retry_initial", deserialize_with = "duration")]
    pub step_retry_initial: Duration,
    #[serde(default = "default_step_retry_max", deserialize_with = "duration")]
    pub step_retry_max: Duration,
    /// ...and ends `failed` at this many failures in a row, until an operator retries it.
    #[serde(default = "default_step_max_failures")]
    pub step_max_failures: i32,
}

impl Default for JobsSettings {
    fn default() -> Self {
        JobsSettings {
            enabled: true,
            step_retry_initial: default_step_retry_initial(),
            step_retry_max: default_step_retry_max(),
            step_max_failures: default_step_max_failures(),
        }
    }
}

fn default_step_retry_initial() -> Duration {
    Duration::from_secs(1)
}

fn default_step_retry_max() -> Duration {
    Duration::from_secs(300)
}

fn default_step_max_failures() -> i32 {
    10
}

#[derive(Debug, Clone, Deserialize)]
pub struct ServerSettings {
    pub addr: String,
    #[serde(deserialize_with = "duration")]
    pub shutdown_grace: Duration,
    /// Open connections at most; past it a new connection is answered 503 and closed.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Requests in progress at most (waiting ones included); past it 503 with Retry-After.
    /// Health and metrics are never refused.
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight: usize,
    /// A client must send a request's headers within this time, or the connection is closed.
    #[serde(default = "default_header_timeout", deserialize_with = "duration")]
    pub header_timeout: Duration,
    /// A request's body must arrive within this time (408 otherwise).
    #[serde(default = "default_body_timeout", deserialize_with = "duration")]
    pub body_timeout: Duration,
    /// A connection with no request in progress is closed after this long (HTTP/2 PINGs do not
    /// count as requests). Before its first request a connection gets `header_timeout`. When
    /// every connection slot is taken, idle connections are closed at once, longest idle first.
    #[serde(default = "default_idle_timeout", deserialize_with = "duration")]
    pub idle_timeout: Duration,
}

fn default_idle_timeout() -> Duration {
    Duration::from_secs(60)
}

fn default_max_connections() -> usize {
    4096
}

fn default_max_in_flight() -> usize {
    4096
}

fn default_header_timeout() -> Duration {
    Duration::from_secs(10)
}

fn default_body_timeout() -> Duration {
    Duration::from_secs(30)
}

#[derive(Debug, Clone, Deserialize)]
pub struct DatabaseSettings {
    pub url: SecretString,
    pub max_connections: u32,
    /// A read replica for the audit's heavy reads (searches, exports, replays); the primary
    /// when unset.
    #[serde(default)]
    pub read_url: Option<SecretString>,
    #[serde(default)]
    pub create_if_missing: bool,
    #[serde(default)]
    pub migrate_on_start: bool,
    /// How long a request waits for a free connection before it is answered 503.
    #[serde(default = "default_acquire_timeout", deserialize_with = "duration")]
    pub acquire_timeout: Duration,
}

fn default_acquire_timeout() -> Duration {
    Duration::from_secs(5)
}

#[derive(Debug, Clone, Deserialize)]
pub struct ApiSettings {
    #[serde(default)]
    pub keys: Vec<ApiKeySettings>,
    /// Requests per second each key may make (a key's own `rate_per_second` overrides it).
    #[serde(default = "default_rate_per_second")]
    pub rate_per_second: u32,
    /// How many requests a key may make at once above its rate.
    #[serde(default = "default_rate_burst")]
    pub rate_burst: u32,
    /// Policy replays (API and console) this replica runs at once; past it they are answered
    /// 503 with Retry-After.
    #[serde(default = "default_max_replays")]
    pub max_replays: usize,
}

impl Default for ApiSettings {
    fn default() -> Self {
        ApiSettings {
            keys: Vec::new(),
            rate_per_second: default_rate_per_second(),
            rate_burst: default_rate_burst(),
            max_replays: default_max_replays(),
        }
    }
}

fn default_max_replays() -> usize {
    2
}

fn default_rate_per_second() -> u32 {
    200
}

fn default_rate_burst() -> u32 {
    400
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeySettings {
    pub name: String,
    pub key_sha256: String,
    pub scopes: Vec<String>,
    /// This key's own rate, over `api.rate_per_second`.
    #[serde(default)]
    pub rate_per_second: Option<u32>,
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
    /// The first version's risk-memory rules, in the document's shape: TOML arrays and tables,
    /// or JSON text (how an environment variable carries them; `"[]"` or `"null"` for none).
    #[serde(default, deserialize_with = "toml_or_json")]
    pub lists: Vec<crate::policy::memory::ListRuleDocument>,
    #[serde(default, deserialize_with = "toml_or_json")]
    pub velocity: Vec<crate::policy::memory::VelocityRuleDocument>,
    #[serde(default, deserialize_with = "toml_or_json")]
    pub linked_fraud: Option<crate::policy::memory::LinkedFraudDocument>,
    /// Indications other institutions shared, judged before unico (`"null"` for none).
    #[serde(default, deserialize_with = "toml_or_json")]
    pub shared_indications: Option<crate::policy::memory::SharedIndicationsDocument>,
}

/// A value written out in the configuration, or given as JSON text.
fn toml_or_json<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        Text(String),
        Value(serde_json::Value),
    }
    match Either::deserialize(deserializer)? {
        Either::Text(text) => serde_json::from_str(&text).map_err(serde::de::Error::custom),
        Either::Value(value) => serde_json::from_value(value).map_err(serde::de::Error::custom),
    }
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
    /// unico's webhook deliveries are deleted this many days after they arrived.
    #[serde(default = "default_webhook_days")]
    pub webhook_days: u32,
}

fn default_webhook_days() -> u32 {
    30
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
    /// Soak runs only: the share of calls to the simulated providers that fail (500, 503, 429
    /// with Retry-After, or a stall of `fault_stall`), and of webhooks sent early or twice.
    #[serde(default)]
    pub fault_rate: f64,
    #[serde(default = "default_fault_stall", deserialize_with = "duration")]
    pub fault_stall: Duration,
    /// Where the simulated unico posts its notifications; unset, to this process's own
    /// `/v1/webhooks/unico`. Set when the sandbox runs as a process of its own, apart from the
    /// service it stands in for (the benchmark measures the service alone so).
    #[serde(default)]
    pub webhook_url: Option<String>,
    /// Whether the sandbox stands in for the fraud-indication sharing system when
    /// `fraud_sharing.url` is unset.
    #[serde(default = "default_true")]
    pub fraud_sharing: bool,
    /// The scenario (by its number in the README's table) that a valid CPF outside the table
    /// plays: 1, approved at once, unless set. The benchmark sets 8 (approved later, announced
    /// by webhook), so that each of its asynchronous onboardings can be a new person.
    #[serde(default = "default_unlisted_cpf_scenario")]
    pub unlisted_cpf_scenario: u8,
}

fn default_unlisted_cpf_scenario() -> u8 {
    1
}

fn default_fault_stall() -> Duration {
    Duration::from_secs(15)
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

impl Settings {
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
