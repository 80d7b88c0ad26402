//! Typed settings, loaded in layers and validated once at start.
//!
//! Layers, each overriding the one before: `config/default.toml`, `config/sandbox.toml` (only
//! when the sandbox is on), `config/{VEREDITO_ENV}.toml`, the `--config FILE` given on the
//! command line, `DATABASE_URL`, and `VEREDITO__SECTION__KEY` environment variables; API keys may
//! also come from `VEREDITO_API_KEYS` (a JSON list) or `VEREDITO_API_KEYS_FILE` (a JSON or TOML
//! file). Every bad value is reported at once, each naming the key it is about. With the sandbox
//! off, any of the sandbox's published values stops the start.
//!
//! Here the settings as a whole and how a bad value is told; the sections' types in `server`
//! (how a replica runs), `decisions` (the policy, personal data, retention, review),
//! `outbound` (callbacks, fraud sharing), `providers`, `sandbox` and `oidc`; the layers in
//! `load`, the checks of the values in `validate`, the guard against the sandbox's published
//! values in `published`.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use secrecy::SecretString;
use serde::{Deserialize, Deserializer};

mod decisions;
#[cfg(test)]
mod fixtures;
mod load;
pub mod oidc;
mod outbound;
mod providers;
mod published;
mod sandbox;
mod scope;
mod server;
mod validate;

pub use decisions::{
    PiiKeySettings, PiiSettings, PolicySettings, RetentionSettings, ReviewSettings,
};
pub use outbound::{CallbackSettings, FraudSharingSettings, InstitutionSettings};
pub use sandbox::SandboxSettings;
pub use server::{
    ApiKeySettings, ApiSettings, DatabaseSettings, JobsSettings, LogFormat, ServerSettings,
    TelemetrySettings,
};

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
