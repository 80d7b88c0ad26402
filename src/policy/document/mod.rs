//! A policy version as the risk team writes it: thresholds, what each phone risk signal and a
//! suspicious face lead to, and the deadlines. Parsed into a `Policy`, or refused naming the
//! field. Its tests, in `tests`, read the contract's example and name every refused field.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::domain::FieldError;
use crate::policy::fraud::{self, FraudIndicationsDocument};
use crate::policy::memory::{
    self, LinkedFraudDocument, ListRuleDocument, SharedIndicationsDocument, VelocityRuleDocument,
};
use crate::policy::{Outcome, Outcomes, Policy, Thresholds};

/// The document, as stored and as the API takes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyDocument {
    #[schema(pattern = "^[A-Za-z0-9._-]{1,64}$")]
    pub version: String,
    #[serde(default)]
    pub note: Option<String>,
    #[schema(minimum = -100, maximum = 100)]
    pub score_reject_max: i32,
    #[schema(minimum = -100, maximum = 100)]
    pub score_approve_min: i32,
    #[serde(default = "review")]
    #[schema(schema_with = fraudsters_suspicious_schema)]
    pub fraudsters_suspicious: String,
    /// Signal name to `rejected`, `review` or null (recorded, decides nothing). A signal left
    /// out decides nothing.
    #[serde(default)]
    #[schema(schema_with = risk_signals_schema)]
    pub risk_signals: BTreeMap<String, Option<String>>,
    #[schema(examples("10m"))]
    pub biometrics_deadline: String,
    #[schema(examples("30m"))]
    pub device_deadline: String,
    /// Block and watch lists: a value of the onboarding listed and not expired.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lists: Vec<ListRuleDocument>,
    /// More than `max` onboardings (or distinct values) sharing a value within a window.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub velocity: Vec<VelocityRuleDocument>,
    /// A value shared with an earlier onboarding rejected as fraud.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linked_fraud: Option<LinkedFraudDocument>,
    /// An indication of fraud another institution shared about the CPF, before unico.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared_indications: Option<SharedIndicationsDocument>,
    /// Which automatic rejections are registered as indications of fraud; left out, the
    /// contract's default (`fraudsters.match` and `identity.not_confirmed`, identity theft).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fraud_indications: Option<FraudIndicationsDocument>,
}

fn review() -> String {
    "review".into()
}

/// What a suspicious face leads to; `parse` refuses any other value.
fn fraudsters_suspicious_schema() -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(["review", "rejected"]))
        .build()
}

/// Each signal's outcome; `parse` refuses any other value.
fn risk_signals_schema() -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
    let outcome = ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .enum_values(Some([Some("rejected"), Some("review"), None]));
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .additional_properties(Some(outcome))
        .build()
}

/// The signals a version may give an outcome to.
pub const SIGNALS: [&str; 7] = [
    "is_emulated",
    "is_monkey_runner",
    "is_rooted_device",
    "is_mock_gps",
    "is_call_in_progress",
    "is_dev_mode_enabled",
    "is_usb_connected",
];

const LONGEST_DEADLINE: Duration = Duration::from_secs(7 * 24 * 3600);

impl PolicyDocument {
    /// The document that describes `policy`.
    pub fn of(policy: &Policy, note: Option<String>) -> PolicyDocument {
        let o = &policy.outcomes;
        let signals = [
            o.is_emulated,
            o.is_monkey_runner,
            o.is_rooted_device,
            o.is_mock_gps,
            o.is_call_in_progress,
            o.is_dev_mode_enabled,
            o.is_usb_connected,
        ];
        let (lists, velocity, linked_fraud, shared_indications) = memory::documents(&policy.memory);
        PolicyDocument {
            version: policy.version.clone(),
            note,
            score_reject_max: policy.thresholds.score_reject_max,
            score_approve_min: policy.thresholds.score_approve_min,
            fraudsters_suspicious: o.fraudsters_suspicious.as_str().to_owned(),
            risk_signals: SIGNALS
                .iter()
                .zip(signals)
                .map(|(name, outcome)| ((*name).to_owned(), outcome.map(|o| o.as_str().to_owned())))
                .collect(),
            biometrics_deadline: humantime::format_duration(Duration::from_secs(
                policy.thresholds.biometrics_deadline_secs,
            ))
            .to_string(),
            device_deadline: humantime::format_duration(Duration::from_secs(
                policy.thresholds.device_deadline_secs,
            ))
            .to_string(),
            lists,
            velocity,
            linked_fraud,
            shared_indications,
            fraud_indications: Some(fraud::document(&policy.fraud_indications)),
        }
    }

    /// The policy this document describes, or every field that is wrong.
    pub fn parse(&self) -> Result<Policy, Vec<FieldError>> {
        let mut errors = Vec::new();
        let version = self.version.trim();
        if version.is_empty()
            || version.len() > 64
            || !version
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        {
            errors.push(FieldError::new(
                "version",
                "must be 1 to 64 letters, digits, '.', '-' or '_'",
            ));
        }
        if self
            .note
            .as_ref()
            .is_some_and(|n| n.chars().count() > 2000 || n.contains('\0'))
        {
            errors.push(FieldError::new("note", "must be at most 2000 characters"));
        }
        if self.score_reject_max >= self.score_approve_min {
            errors.push(FieldError::new(
                "score_approve_min",
                "must be above score_reject_max",
            ));
        }
        // unico's scores run from -100 to 100; 0 means a bad capture and is never a threshold.
        for (field, value) in [
            ("score_reject_max", self.score_reject_max),
            ("score_approve_min", self.score_approve_min),
        ] {
            if !(-100..=100).contains(&value) || value == 0 {
                errors.push(FieldError::new(
                    field,
                    "must be from -100 to 100, and not 0 (a capture error)",
                ));
            }
        }
        let suspicious = match self.fraudsters_suspicious.as_str() {
            "review" => Some(Outcome::Review),
            "rejected" => Some(Outcome::Rejected),
            _ => {
                errors.push(FieldError::new(
                    "fraudsters_suspicious",
                    "must be review or rejected",
                ));
                None
            }
        };
        let mut signals: [Option<Outcome>; 7] = [None; 7];
        for (name, outcome) in &self.risk_signals {
            let field = format!("risk_signals.{name}");
            let Some(at) = SIGNALS.iter().position(|s| s == name) else {
                errors.push(FieldError::new(
                    field,
                    "is not a risk signal a policy can decide on",
                ));
                continue;
            };
            signals[at] = match outcome.as_deref() {
                None => None,
                Some("rejected") => Some(Outcome::Rejected),
                Some("review") => Some(Outcome::Review),
                Some(_) => {
                    errors.push(FieldError::new(field, "must be rejected, review or null"));
                    None
                }
            };
        }
        let deadline = |field: &'static str, text: &str, errors: &mut Vec<FieldError>| {
            match humantime::parse_duration(text.trim()) {
                Ok(d) if d >= Duration::from_secs(1) && d <= LONGEST_DEADLINE => d.as_secs(),
                _ => {
                    errors.push(FieldError::new(
                        field,
                        "must be a duration from 1s to 7 days, such as \"10m\"",
                    ));
                    0
                }
            }
        };
        let biometrics = deadline(
            "biometrics_deadline",
            &self.biometrics_deadline,
            &mut errors,
        );
        let device = deadline("device_deadline", &self.device_deadline, &mut errors);
        let memory = memory::parse(
            &self.lists,
            &self.velocity,
            self.linked_fraud.as_ref(),
            self.shared_indications.as_ref(),
            &mut errors,
        );
        let fraud_indications = self
            .fraud_indications
            .as_ref()
            .map(|doc| fraud::parse(doc, &mut errors))
            .unwrap_or_default();
        let Some(fraudsters_suspicious) = suspicious.filter(|_| errors.is_empty()) else {
            return Err(errors);
        };
        let [
            is_emulated,
            is_monkey_runner,
            is_rooted_device,
            is_mock_gps,
            is_call_in_progress,
            is_dev_mode_enabled,
            is_usb_connected,
        ] = signals;
        Ok(Policy {
            version: version.to_owned(),
            thresholds: Thresholds {
                score_reject_max: self.score_reject_max,
                score_approve_min: self.score_approve_min,
                biometrics_deadline_secs: biometrics,
                device_deadline_secs: device,
            },
            outcomes: Outcomes {
                is_emulated,
                is_monkey_runner,
                is_rooted_device,
                is_mock_gps,
                is_call_in_progress,
                is_dev_mode_enabled,
                is_usb_connected,
                fraudsters_suspicious,
            },
            memory,
            fraud_indications,
        })
    }
}

#[cfg(test)]
mod tests;
