//! How a replica runs: its listener, its database pool, the API's limits and keys, the background
//! workers and telemetry.

use std::time::Duration;

use super::duration;
use secrecy::SecretString;
use serde::Deserialize;

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
