//! What the decisions follow and keep: the policy, the keys that seal personal data, how long
//! data is kept, and the review deadlines.

use std::time::Duration;

use super::duration;
use secrecy::SecretString;
use serde::Deserialize;

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
