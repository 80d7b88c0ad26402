//! Typed settings, loaded in layers and validated once at start.
//!
//! Layers, each overriding the one before: `config/default.toml`, `config/sandbox.toml` (only
//! when the sandbox is on), `config/{VEREDITO_ENV}.toml`, the `--config FILE` given on the
//! command line, `DATABASE_URL`, and `VEREDITO__SECTION__KEY` environment variables; API keys may
//! also come from `VEREDITO_API_KEYS` (a JSON list) or `VEREDITO_API_KEYS_FILE` (a JSON or TOML
//! file). Every error names the key it is about. With the sandbox off, any of the sandbox's
//! published values stops the start.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer};

pub mod oidc;

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
        use base64::Engine;
        let Some(secret) = &self.secret else {
            return if self.url.is_some() {
                Err(invalid(
                    "fraud_sharing.secret",
                    "is required when fraud_sharing.url is set",
                ))
            } else {
                Ok(None)
            };
        };
        let encoded = secret
            .expose_secret()
            .strip_prefix("whsec_")
            .ok_or_else(|| invalid("fraud_sharing.secret", "must start with whsec_"))?;
        let key = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map_err(|_| invalid("fraud_sharing.secret", "must be whsec_ followed by base64"))?;
        if key.len() < 16 {
            return Err(invalid(
                "fraud_sharing.secret",
                "the key must have at least 16 bytes",
            ));
        }
        Ok(Some(key))
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
    /// Calls to unico per second from this replica, all work together (unico's documented
    /// default is 10 per tenant): a burst waits its turn instead of being refused with 429.
    #[serde(default = "default_unico_rate")]
    pub requests_per_second: u32,
    /// Webhooks without the secret answered 401 per second by this replica, all sources together
    /// (a steady rate and a burst above it); past it they are answered 429 and leave nothing
    /// but a count. Deliveries with the secret are never counted against it.
    #[serde(default = "default_forged_webhooks_per_second")]
    pub forged_webhooks_per_second: u32,
    #[serde(default = "default_forged_webhooks_burst")]
    pub forged_webhooks_burst: u32,
}

fn default_unico_rate() -> u32 {
    10
}

fn default_forged_webhooks_per_second() -> u32 {
    5
}

fn default_forged_webhooks_burst() -> u32 {
    20
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
    /// Create lists, add and remove their entries.
    ListsWrite,
    /// Record the people's requests to know and to erase their data (the data-protection
    /// officer's); reading a request's report takes `pii:read` too.
    SubjectsWrite,
    /// Make, alter and withdraw fraud indications; import those other institutions shared.
    FraudWrite,
}

impl Scope {
    pub const ALL: [Scope; 8] = [
        Scope::OnboardingWrite,
        Scope::DecisionsRead,
        Scope::PiiRead,
        Scope::ReviewsWrite,
        Scope::PoliciesWrite,
        Scope::ListsWrite,
        Scope::SubjectsWrite,
        Scope::FraudWrite,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::OnboardingWrite => "onboarding:write",
            Scope::DecisionsRead => "decisions:read",
            Scope::PiiRead => "pii:read",
            Scope::ReviewsWrite => "reviews:write",
            Scope::PoliciesWrite => "policies:write",
            Scope::ListsWrite => "lists:write",
            Scope::SubjectsWrite => "subjects:write",
            Scope::FraudWrite => "fraud:write",
        }
    }

    pub fn parse(text: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|s| s.as_str() == text)
    }
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
    /// Environment variables read instead of the process's (tests of the layer order).
    pub environment: Option<HashMap<String, String>>,
}

/// The sandbox's published values, compiled in so that a production start can recognise them
/// even where the file is absent (the image does not carry it).
const SANDBOX_FILE: &str = include_str!("../config/sandbox.toml");
/// The public half of the sandbox's unico key pair. The private half stays out of the binary;
/// the public one is enough to recognise it.
const SANDBOX_UNICO_PUBLIC_KEY: &str =
    include_str!("../config/sandbox/unico-service-account.pub.pem");

/// Whether `pem` holds the sandbox's unico private key, in whatever encoding: PKCS#8 or PKCS#1,
/// LF or CRLF, any line width. The key is read by the parser the unico client signs with
/// (jsonwebtoken's), made to sign a fixed message, and the signature checked against the
/// published public key: only the same key material passes, however its text is written. A
/// text that parser cannot read is no key the service could use either.
fn is_sandbox_unico_key(pem: &str) -> bool {
    use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, crypto};
    const PROBE: &[u8] = b"veredito: is this the sandbox's published unico key?";
    let Ok(key) = EncodingKey::from_rsa_pem(pem.trim().as_bytes()) else {
        return false;
    };
    let Ok(signature) = crypto::sign(PROBE, &key, Algorithm::RS256) else {
        return false;
    };
    DecodingKey::from_rsa_pem(SANDBOX_UNICO_PUBLIC_KEY.as_bytes())
        .and_then(|published| crypto::verify(&signature, PROBE, &published, Algorithm::RS256))
        .unwrap_or(false)
}

impl Sources {
    fn variables(&self) -> HashMap<String, String> {
        if self.ignore_env {
            HashMap::new()
        } else if let Some(environment) = &self.environment {
            environment.clone()
        } else {
            std::env::vars().collect()
        }
    }

    fn builder(
        &self,
        dir: &Path,
        env: &HashMap<String, String>,
        with_sandbox: bool,
    ) -> Result<config::ConfigBuilder<config::builder::DefaultState>, ConfigError> {
        let mut builder = config::Config::builder()
            .add_source(config::File::from(dir.join("default.toml")).required(true));
        if with_sandbox {
            builder =
                builder.add_source(config::File::from(dir.join("sandbox.toml")).required(true));
        }
        if let Some(name) = env.get("VEREDITO_ENV") {
            builder = builder
                .add_source(config::File::from(dir.join(format!("{name}.toml"))).required(true));
        }
        if let Some(file) = &self.file {
            builder = builder.add_source(config::File::from(file.as_path()).required(true));
        }
        if let Some(url) = env.get("DATABASE_URL") {
            builder = builder.add_source(DatabaseUrl(url.clone()));
        }
        let prefixed: HashMap<String, String> = env
            .iter()
            .filter(|(k, _)| k.starts_with("VEREDITO__"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        builder = builder.add_source(
            config::Environment::with_prefix("VEREDITO")
                .prefix_separator("__")
                .separator("__")
                .try_parsing(true)
                .source(Some(prefixed)),
        );
        for (key, value) in &self.overrides {
            builder = builder.set_override(key.as_str(), value.as_str())?;
        }
        Ok(builder)
    }
}

/// `DATABASE_URL`, the conventional variable, as a layer of its own: below the
/// `VEREDITO__DATABASE__URL` variable, above every file.
#[derive(Debug, Clone)]
struct DatabaseUrl(String);

impl config::Source for DatabaseUrl {
    fn clone_into_box(&self) -> Box<dyn config::Source + Send + Sync> {
        Box::new(self.clone())
    }

    fn collect(&self) -> Result<config::Map<String, config::Value>, config::ConfigError> {
        let origin = Some("DATABASE_URL".to_owned());
        let mut database = config::Map::new();
        database.insert(
            "url".to_owned(),
            config::Value::new(origin.as_ref(), self.0.clone()),
        );
        let mut root = config::Map::new();
        root.insert(
            "database".to_owned(),
            config::Value::new(origin.as_ref(), config::ValueKind::Table(database)),
        );
        Ok(root)
    }
}

/// API keys given by the environment: `VEREDITO_API_KEYS` (a JSON list) or
/// `VEREDITO_API_KEYS_FILE` (a JSON list, or a TOML file of `[[keys]]` tables).
fn api_keys_from(
    env: &HashMap<String, String>,
) -> Result<Option<Vec<ApiKeySettings>>, ConfigError> {
    #[derive(Deserialize)]
    struct KeysFile {
        keys: Vec<ApiKeySettings>,
    }
    if let Some(list) = env.get("VEREDITO_API_KEYS") {
        return serde_json::from_str(list)
            .map(Some)
            .map_err(|e| invalid("VEREDITO_API_KEYS", format!("not a JSON list of keys: {e}")));
    }
    let Some(path) = env.get("VEREDITO_API_KEYS_FILE") else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| invalid("VEREDITO_API_KEYS_FILE", format!("cannot read {path}: {e}")))?;
    let keys = if path.ends_with(".toml") {
        config::Config::builder()
            .add_source(config::File::from_str(&text, config::FileFormat::Toml))
            .build()
            .and_then(|c| c.try_deserialize::<KeysFile>())
            .map(|f| f.keys)
            .map_err(|e| invalid("VEREDITO_API_KEYS_FILE", format!("{path}: {e}")))?
    } else {
        serde_json::from_str(&text)
            .map_err(|e| invalid("VEREDITO_API_KEYS_FILE", format!("{path}: {e}")))?
    };
    Ok(Some(keys))
}

impl Settings {
    pub fn load(sources: &Sources) -> Result<Self, ConfigError> {
        let env = sources.variables();
        let dir = sources
            .config_dir
            .clone()
            .or_else(|| env.get("VEREDITO_CONFIG_DIR").map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from("config"));
        // The sandbox file joins the layers only when the layers without it turn the sandbox on.
        let first = sources.builder(&dir, &env, false)?.build()?;
        let config = if first.get_bool("sandbox.enabled").unwrap_or(false) {
            sources.builder(&dir, &env, true)?.build()?
        } else {
            first
        };
        let mut settings: Settings = config.try_deserialize()?;
        if let Some(keys) = api_keys_from(&env)? {
            settings.api.keys = keys;
        }
        settings.validate()?;
        if !settings.sandbox.enabled {
            settings.refuse_published_values()?;
        }
        Ok(settings)
    }

    /// With the sandbox off, none of its published credentials may open anything.
    fn refuse_published_values(&self) -> Result<(), ConfigError> {
        #[derive(Deserialize)]
        struct Published {
            unico: PublishedUnico,
            qitech: PublishedKey,
            zro: PublishedKey,
            api: ApiSettings,
            pii: PiiSettings,
            fraud_sharing: FraudSharingSettings,
        }
        #[derive(Deserialize)]
        struct PublishedUnico {
            api_key: String,
            webhook_secret: String,
        }
        #[derive(Deserialize)]
        struct PublishedKey {
            api_key: String,
        }
        let published: Published = config::Config::builder()
            .add_source(config::File::from_str(
                SANDBOX_FILE,
                config::FileFormat::Toml,
            ))
            .build()
            .and_then(|c| c.try_deserialize())
            .map_err(|e| invalid("sandbox", format!("the built-in sandbox file: {e}")))?;
        let refuse = |key: &'static str, what: String| {
            Err(invalid(
                key,
                format!(
                    "{what} is the sandbox's published value; with sandbox.enabled = false \
                     configure a value of your own"
                ),
            ))
        };
        let same = |a: &SecretString, b: &str| a.expose_secret().trim() == b.trim();
        if same(&self.unico.api_key, &published.unico.api_key) {
            return refuse("unico.api_key", "the key".into());
        }
        if same(&self.unico.webhook_secret, &published.unico.webhook_secret) {
            return refuse("unico.webhook_secret", "the secret".into());
        }
        if let Some(pem) = &self.unico.private_key_pem {
            if is_sandbox_unico_key(pem.expose_secret()) {
                return refuse("unico.private_key_pem", "the key".into());
            }
        } else if let Some(path) = &self.unico.private_key_path {
            if std::fs::read_to_string(path).is_ok_and(|pem| is_sandbox_unico_key(&pem)) {
                return refuse(
                    "unico.private_key_path",
                    format!("the key in {}", path.display()),
                );
            }
        }
        if same(&self.qitech.api_key, &published.qitech.api_key) {
            return refuse("qitech.api_key", "the key".into());
        }
        if same(&self.zro.api_key, &published.zro.api_key) {
            return refuse("zro.api_key", "the key".into());
        }
        for key in &self.api.keys {
            if published
                .api
                .keys
                .iter()
                .any(|p| p.key_sha256.eq_ignore_ascii_case(&key.key_sha256))
            {
                return refuse("api.keys", format!("the key `{}`", key.name));
            }
        }
        if let (Some(own), Some(published)) =
            (&self.fraud_sharing.secret, &published.fraud_sharing.secret)
            && same(own, published.expose_secret())
        {
            return refuse("fraud_sharing.secret", "the secret".into());
        }
        if same(&self.pii.hash_key, published.pii.hash_key.expose_secret()) {
            return refuse("pii.hash_key", "the key".into());
        }
        for key in &self.pii.keys {
            if published
                .pii
                .keys
                .iter()
                .any(|p| same(&key.key, p.key.expose_secret()))
            {
                return refuse("pii.keys", format!("the key `{}`", key.id));
            }
        }
        Ok(())
    }

    fn validate(&self) -> Result<(), ConfigError> {
        self.console.validate()?;
        if let Some(url) = &self.callbacks.url {
            match reqwest::Url::parse(url) {
                Ok(u) if matches!(u.scheme(), "http" | "https") => {}
                _ => return Err(invalid("callbacks.url", "must be an http(s) URL")),
            }
        }
        self.callbacks.signing_key()?;
        if let Some(url) = &self.fraud_sharing.url {
            match reqwest::Url::parse(url) {
                Ok(u) if matches!(u.scheme(), "http" | "https") => {}
                _ => return Err(invalid("fraud_sharing.url", "must be an http(s) URL")),
            }
        }
        self.fraud_sharing.signing_key()?;
        match &self.institution.cnpj {
            Some(cnpj) if crate::domain::fraud::Cnpj::parse(cnpj).is_none() => {
                return Err(invalid(
                    "institution.cnpj",
                    "must be a CNPJ of 14 digits with valid check digits",
                ));
            }
            None if self.fraud_sharing.url.is_some() => {
                return Err(invalid(
                    "institution.cnpj",
                    "is required when fraud_sharing.url is set: it names the institution \
                     registering the indications",
                ));
            }
            _ => {}
        }
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
        if self.review.subject_request_sla.is_zero() {
            return Err(invalid("review.subject_request_sla", "must be above zero"));
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
        if self.jobs.step_max_failures < 1 || self.jobs.step_retry_initial.is_zero() {
            return Err(invalid(
                "jobs.step_max_failures",
                "jobs.step_max_failures must be at least 1 and jobs.step_retry_initial above zero",
            ));
        }
        if self.server.max_connections == 0 || self.server.max_in_flight == 0 {
            return Err(invalid(
                "server.max_connections",
                "server.max_connections and server.max_in_flight must be at least 1",
            ));
        }
        if self.server.header_timeout.is_zero()
            || self.server.body_timeout.is_zero()
            || self.server.idle_timeout.is_zero()
        {
            return Err(invalid(
                "server.header_timeout",
                "server.header_timeout, server.body_timeout and server.idle_timeout must be above zero",
            ));
        }
        if self.api.rate_per_second == 0 || self.api.rate_burst == 0 {
            return Err(invalid(
                "api.rate_per_second",
                "api.rate_per_second and api.rate_burst must be at least 1",
            ));
        }
        if self.unico.requests_per_second == 0 {
            return Err(invalid("unico.requests_per_second", "must be at least 1"));
        }
        if self.unico.forged_webhooks_per_second == 0 || self.unico.forged_webhooks_burst == 0 {
            return Err(invalid(
                "unico.forged_webhooks_per_second",
                "unico.forged_webhooks_per_second and unico.forged_webhooks_burst must be at least 1",
            ));
        }
        if self.api.max_replays == 0 {
            return Err(invalid("api.max_replays", "must be at least 1"));
        }
        if !(0.0..=1.0).contains(&self.sandbox.fault_rate) {
            return Err(invalid("sandbox.fault_rate", "must be from 0 to 1"));
        }
        if self.retention.webhook_days == 0 {
            return Err(invalid("retention.webhook_days", "must be at least 1"));
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
        let mut memory_errors = Vec::new();
        crate::policy::memory::parse(
            &self.policy.lists,
            &self.policy.velocity,
            self.policy.linked_fraud.as_ref(),
            self.policy.shared_indications.as_ref(),
            &mut memory_errors,
        );
        if let Some(error) = memory_errors.first() {
            return Err(invalid(
                "policy",
                format!("{} {}", error.field, error.message),
            ));
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

#[cfg(test)]
mod tests {
    use super::*;

    const ROOT: &str = env!("CARGO_MANIFEST_DIR");

    fn load(env: &[(&str, &str)], file: Option<PathBuf>) -> Result<Settings, ConfigError> {
        Settings::load(&Sources {
            config_dir: Some(Path::new(ROOT).join("config")),
            file,
            overrides: Vec::new(),
            ignore_env: false,
            environment: Some(
                env.iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
            ),
        })
    }

    /// A production file: every credential its own, none of the sandbox's.
    fn production_file(replace: Option<(&str, &str)>) -> tempfile_path::TempToml {
        let mut text = String::from(
            r#"
[unico]
api_key = "prod-unico-key"
service_account = "veredito@tenant.iam.acesso.io"
private_key_pem = "-----BEGIN PRIVATE KEY-----\nprod\n-----END PRIVATE KEY-----"
webhook_secret = "prod-webhook-secret-123"
[qitech]
api_key = "prod-qitech-key"
[zro]
api_id = "prod-zro-id"
api_key = "prod-zro-key"
[[api.keys]]
name = "backend"
key_sha256 = "0000000000000000000000000000000000000000000000000000000000000001"
scopes = ["onboarding:write"]
[pii]
active_key_id = "k1"
hash_key = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
[[pii.keys]]
id = "k1"
key = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE="
"#,
        );
        if let Some((from, to)) = replace {
            assert!(text.contains(from), "{from}");
            text = text.replace(from, to);
        }
        tempfile_path::TempToml::new(&text)
    }

    /// A uniquely named TOML file removed when dropped.
    mod tempfile_path {
        pub struct TempToml(pub std::path::PathBuf);
        impl TempToml {
            pub fn new(text: &str) -> TempToml {
                let path =
                    std::env::temp_dir().join(format!("veredito-{}.toml", uuid::Uuid::new_v4()));
                std::fs::write(&path, text).unwrap();
                TempToml(path)
            }
        }
        impl Drop for TempToml {
            fn drop(&mut self) {
                let _ = std::fs::remove_file(&self.0);
            }
        }
    }

    #[test]
    fn the_sandbox_key_is_recognised_by_its_key_material() {
        let pem = std::fs::read_to_string(
            Path::new(ROOT).join("config/sandbox/unico-service-account.pem"),
        )
        .unwrap();
        assert!(is_sandbox_unico_key(&pem));
        assert!(!is_sandbox_unico_key("-----BEGIN PRIVATE KEY-----"));
    }

    #[test]
    fn production_refuses_the_sandbox_key_in_any_encoding() {
        let pkcs8 = std::fs::read_to_string(
            Path::new(ROOT).join("config/sandbox/unico-service-account.pem"),
        )
        .unwrap();
        // The same key as `openssl rsa -traditional` writes it.
        let pkcs1 = std::fs::read_to_string(
            Path::new(ROOT).join("src/providers/unico/testdata/sandbox_service_account_pkcs1.pem"),
        )
        .unwrap();
        assert!(pkcs1.starts_with("-----BEGIN RSA PRIVATE KEY-----"));
        let crlf = |pem: &str| pem.replace('\n', "\r\n");
        // Base64 wrapped at 76 columns instead of 64.
        let rewrapped = |pem: &str| {
            let body: String = pem
                .lines()
                .filter(|l| !l.starts_with("-----"))
                .collect::<Vec<_>>()
                .concat();
            let lines: Vec<String> = body
                .as_bytes()
                .chunks(76)
                .map(|c| String::from_utf8(c.to_vec()).unwrap())
                .collect();
            let first = pem.lines().next().unwrap();
            let last = pem.lines().last().unwrap();
            format!("{first}\n{}\n{last}\n", lines.join("\n"))
        };
        let variants = [
            ("PKCS#8 with CRLF", crlf(&pkcs8)),
            ("PKCS#1", pkcs1.clone()),
            ("PKCS#1 with CRLF", crlf(&pkcs1)),
            ("PKCS#8 wrapped at 76", rewrapped(&pkcs8)),
        ];
        let file = production_file(None);
        for (what, pem) in &variants {
            // Given inline, by the environment.
            let error = load(
                &[("VEREDITO__UNICO__PRIVATE_KEY_PEM", pem.as_str())],
                Some(file.0.clone()),
            )
            .err()
            .unwrap_or_else(|| panic!("{what}: the published key was accepted"))
            .to_string();
            assert!(
                error.contains("unico.private_key_pem") && error.contains("published"),
                "{what}: {error}"
            );
            // In a mounted file.
            let mounted =
                std::env::temp_dir().join(format!("veredito-{}.pem", uuid::Uuid::new_v4()));
            std::fs::write(&mounted, pem).unwrap();
            let path = mounted.to_string_lossy().into_owned();
            let with_path = production_file(Some((
                "private_key_pem = \"-----BEGIN PRIVATE KEY-----\\nprod\\n-----END PRIVATE KEY-----\"",
                &format!("private_key_path = {path:?}"),
            )));
            let refused = load(&[], Some(with_path.0.clone()));
            std::fs::remove_file(&mounted).ok();
            let error = refused
                .err()
                .unwrap_or_else(|| panic!("{what}: the published key was accepted from a file"))
                .to_string();
            assert!(
                error.contains("unico.private_key_path") && error.contains("published"),
                "{what}: {error}"
            );
        }
        // Another key, in either encoding, is not the published one.
        for other in [
            include_str!("providers/unico/testdata/private_key.pem"),
            include_str!("providers/unico/testdata/private_key_pkcs1.pem"),
        ] {
            load(
                &[("VEREDITO__UNICO__PRIVATE_KEY_PEM", &crlf(other))],
                Some(file.0.clone()),
            )
            .unwrap();
        }
    }

    #[test]
    fn layers_apply_in_the_documented_order() {
        let file = tempfile_path::TempToml::new("[database]\nurl = \"postgres://file/db\"\n");
        let sandbox = ("VEREDITO_ENV", "sandbox");
        let url = |s: Settings| s.database.url.expose_secret().to_owned();
        assert_eq!(
            url(load(&[sandbox], None).unwrap()),
            "postgres://postgres@127.0.0.1:5432/veredito"
        );
        assert_eq!(
            url(load(&[sandbox], Some(file.0.clone())).unwrap()),
            "postgres://file/db"
        );
        let with_database_url = [sandbox, ("DATABASE_URL", "postgres://conventional/db")];
        assert_eq!(
            url(load(&with_database_url, Some(file.0.clone())).unwrap()),
            "postgres://conventional/db"
        );
        let both = [
            sandbox,
            ("DATABASE_URL", "postgres://conventional/db"),
            ("VEREDITO__DATABASE__URL", "postgres://prefixed/db"),
        ];
        assert_eq!(
            url(load(&both, Some(file.0.clone())).unwrap()),
            "postgres://prefixed/db"
        );
    }

    #[test]
    fn the_sandbox_file_is_read_only_when_the_sandbox_is_on() {
        let on = load(&[("VEREDITO__SANDBOX__ENABLED", "true")], None).unwrap();
        assert!(on.sandbox.enabled);
        assert_eq!(on.api.keys.len(), 10);
        // Off and nothing else configured: the start names what is missing.
        let off = load(&[], None).unwrap_err().to_string();
        assert!(off.contains("missing configuration field"), "{off}");
        let production = production_file(None);
        let settings = load(&[], Some(production.0.clone())).unwrap();
        assert!(!settings.sandbox.enabled);
        assert_eq!(settings.api.keys.len(), 1);
    }

    #[test]
    fn a_sharing_system_needs_the_institutions_valid_cnpj() {
        let secret = (
            "VEREDITO__FRAUD_SHARING__SECRET",
            "whsec_cHJvZC1zaGFyaW5nLXNlY3JldC0xMjM=",
        );
        let url = (
            "VEREDITO__FRAUD_SHARING__URL",
            "https://sharing.example/indications",
        );
        let file = production_file(None);
        let error = |env: &[(&str, &str)]| {
            load(env, Some(file.0.clone()))
                .map(|_| String::new())
                .unwrap_or_else(|e| e.to_string())
        };
        for (case, env, expected) in [
            ("no CNPJ", vec![url, secret], "institution.cnpj"),
            (
                "wrong check digits",
                vec![
                    url,
                    secret,
                    ("VEREDITO__INSTITUTION__CNPJ", "11.222.333/0001-82"),
                ],
                "institution.cnpj",
            ),
            (
                "no secret",
                vec![url, ("VEREDITO__INSTITUTION__CNPJ", "11.222.333/0001-81")],
                "fraud_sharing.secret",
            ),
            (
                "the sandbox's secret",
                vec![
                    url,
                    ("VEREDITO__INSTITUTION__CNPJ", "11.222.333/0001-81"),
                    (
                        "VEREDITO__FRAUD_SHARING__SECRET",
                        "whsec_dmVyZWRpdG8tc2FuZGJveC1mcmF1ZC1zaGFyaW5nISE=",
                    ),
                ],
                "fraud_sharing.secret",
            ),
            (
                "all set",
                vec![
                    url,
                    secret,
                    ("VEREDITO__INSTITUTION__CNPJ", "11.222.333/0001-81"),
                ],
                "",
            ),
            ("no sharing system, no CNPJ", vec![], ""),
        ] {
            let got = error(&env);
            if expected.is_empty() {
                assert_eq!(got, "", "{case}");
            } else {
                assert!(got.contains(expected), "{case}: {got}");
            }
        }
    }

    #[test]
    fn production_refuses_every_published_sandbox_value() {
        let published = [
            (
                (
                    "api_key = \"prod-unico-key\"",
                    "api_key = \"sandbox-api-key\"",
                ),
                "unico.api_key",
            ),
            (
                (
                    "webhook_secret = \"prod-webhook-secret-123\"",
                    "webhook_secret = \"sandbox-webhook-secret\"",
                ),
                "unico.webhook_secret",
            ),
            (
                (
                    "private_key_pem = \"-----BEGIN PRIVATE KEY-----\\nprod\\n-----END PRIVATE KEY-----\"",
                    "private_key_path = \"config/sandbox/unico-service-account.pem\"",
                ),
                "unico.private_key_path",
            ),
            (
                (
                    "api_key = \"prod-qitech-key\"",
                    "api_key = \"sandbox-qitech-key\"",
                ),
                "qitech.api_key",
            ),
            (
                (
                    "api_key = \"prod-zro-key\"",
                    "api_key = \"sandbox-zro-key\"",
                ),
                "zro.api_key",
            ),
            (
                (
                    "0000000000000000000000000000000000000000000000000000000000000001",
                    "35f4c8d173c967849eeff700e1a33e42328ccce4c89e0c4c53e34c9c7f14f9e1",
                ),
                "api.keys",
            ),
            (
                (
                    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
                    "W4wusdwNWgkz296xz0C5lG1zoJAbT/o97AKxatRUrzI=",
                ),
                "pii.hash_key",
            ),
            (
                (
                    "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=",
                    "BRiCy4R4zdcy33daNragGMYBNF9FCr07ZNORKTW8sik=",
                ),
                "pii.keys",
            ),
        ];
        for ((from, to), key) in published {
            let file = production_file(Some((from, to)));
            let error = load(&[], Some(file.0.clone())).unwrap_err().to_string();
            assert!(
                error.contains(key) && error.contains("published"),
                "{key}: {error}"
            );
        }
        // The published API keys given by the environment are refused as well.
        let file = production_file(None);
        let list = r#"[{"name":"x","key_sha256":"e1ea1a0a27b6c9d40c46b42f1d54c1cc7a32c628f27cfd3732e943e1177d230b","scopes":["onboarding:write"]}]"#;
        let error = load(&[("VEREDITO_API_KEYS", list)], Some(file.0.clone()))
            .unwrap_err()
            .to_string();
        assert!(error.contains("api.keys"), "{error}");
    }

    #[test]
    fn api_keys_come_from_the_environment() {
        let file = production_file(None);
        let list = r#"[{"name":"from-env","key_sha256":"00000000000000000000000000000000000000000000000000000000000000aa","scopes":["decisions:read"]}]"#;
        let settings = load(&[("VEREDITO_API_KEYS", list)], Some(file.0.clone())).unwrap();
        assert_eq!(settings.api.keys.len(), 1);
        assert_eq!(settings.api.keys[0].name, "from-env");
        let keys = tempfile_path::TempToml::new(
            "[[keys]]\nname = \"from-file\"\nkey_sha256 = \"00000000000000000000000000000000000000000000000000000000000000bb\"\nscopes = [\"pii:read\"]\n",
        );
        let path = keys.0.to_string_lossy().into_owned();
        let settings = load(&[("VEREDITO_API_KEYS_FILE", &path)], Some(file.0.clone())).unwrap();
        assert_eq!(settings.api.keys[0].name, "from-file");
        let error = load(&[("VEREDITO_API_KEYS", "[{")], Some(file.0.clone()))
            .unwrap_err()
            .to_string();
        assert!(error.contains("VEREDITO_API_KEYS"), "{error}");
    }
}
