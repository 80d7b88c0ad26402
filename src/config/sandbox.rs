//! The sandbox's settings: the simulated providers veredito serves itself, their delays and
//! their injected faults.

use std::path::PathBuf;
use std::time::Duration;

use super::duration;
use serde::Deserialize;

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
