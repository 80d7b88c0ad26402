//! The settings of the three providers veredito calls: unico, QI Tech and Zro.

use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;

use super::duration;

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
