//! The institution and who hears from veredito: decision callbacks to the onboarding backend
//! and the fraud-indication sharing system, each signed with a Standard Webhooks secret.

use std::time::Duration;

use super::{ConfigError, duration, invalid};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

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
