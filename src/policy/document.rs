//! A policy version as the risk team writes it: thresholds, what each phone risk signal and a
//! suspicious face lead to, and the deadlines. Parsed into a `Policy`, or refused naming the
//! field.

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
mod tests {
    use super::*;
    use serde_json::json;

    fn document(change: impl FnOnce(&mut serde_json::Value)) -> Result<Policy, Vec<String>> {
        let mut doc = json!({"version": "2026-12-01.1", "note": "why",
            "score_reject_max": -40, "score_approve_min": 50, "fraudsters_suspicious": "review",
            "risk_signals": {"is_emulated": "rejected", "is_monkey_runner": "rejected",
                             "is_rooted_device": "review", "is_mock_gps": "review",
                             "is_call_in_progress": "review", "is_dev_mode_enabled": null,
                             "is_usb_connected": null},
            "biometrics_deadline": "10m", "device_deadline": "30m"});
        change(&mut doc);
        let doc: PolicyDocument = serde_json::from_value(doc).map_err(|e| vec![e.to_string()])?;
        doc.parse()
            .map_err(|errors| errors.into_iter().map(|e| e.field).collect())
    }

    #[test]
    fn the_contract_example_is_the_default_policy() {
        let policy = document(|_| {}).unwrap();
        assert_eq!(policy.outcomes, Outcomes::default());
        assert_eq!(policy.thresholds.biometrics_deadline_secs, 600);
        assert_eq!(policy.thresholds.device_deadline_secs, 1800);
        // And back: a policy's document parses to the same policy.
        let again = PolicyDocument::of(&policy, None).parse().unwrap();
        assert_eq!(again, policy);
    }

    #[test]
    fn invalid_documents_name_their_field() {
        type Change = Box<dyn FnOnce(&mut serde_json::Value)>;
        let cases: Vec<(&str, Change, &str)> = vec![
            (
                "thresholds crossed",
                Box::new(|d| d["score_approve_min"] = json!(-50)),
                "score_approve_min",
            ),
            (
                "threshold at zero",
                Box::new(|d| d["score_reject_max"] = json!(0)),
                "score_reject_max",
            ),
            (
                "threshold out of range",
                Box::new(|d| d["score_approve_min"] = json!(101)),
                "score_approve_min",
            ),
            (
                "a signal cannot approve",
                Box::new(|d| d["risk_signals"]["is_rooted_device"] = json!("approved")),
                "risk_signals.is_rooted_device",
            ),
            (
                "unknown signal",
                Box::new(|d| d["risk_signals"]["is_charging"] = json!("review")),
                "risk_signals.is_charging",
            ),
            (
                "suspicious approves",
                Box::new(|d| d["fraudsters_suspicious"] = json!("approved")),
                "fraudsters_suspicious",
            ),
            (
                "bad deadline",
                Box::new(|d| d["device_deadline"] = json!("soon")),
                "device_deadline",
            ),
            (
                "zero deadline",
                Box::new(|d| d["biometrics_deadline"] = json!("0s")),
                "biometrics_deadline",
            ),
            (
                "bad version",
                Box::new(|d| d["version"] = json!("a b")),
                "version",
            ),
        ];
        for (case, change, field) in cases {
            assert_eq!(document(change).unwrap_err(), [field], "{case}");
        }
    }

    #[test]
    fn a_signal_left_out_decides_nothing() {
        let policy = document(|d| {
            d["risk_signals"] = json!({"is_emulated": "rejected"});
        })
        .unwrap();
        assert_eq!(policy.outcomes.is_rooted_device, None);
        assert_eq!(policy.outcomes.is_emulated, Some(Outcome::Rejected));
    }

    fn with_memory(d: &mut serde_json::Value) {
        d["lists"] = json!([{"list": "blocked_devices", "outcome": "rejected"},
                            {"list": "watched_emails", "outcome": "review"}]);
        d["velocity"] = json!([
            {"code": "velocity.device_cpfs", "key": "device_id", "distinct": "cpf", "window": "30d", "max": 3, "outcome": "review"},
            {"code": "velocity.cpf_attempts", "key": "cpf", "window": "24h", "max": 5, "outcome": "review"}]);
        d["linked_fraud"] =
            json!({"keys": ["device_id", "phone", "email"], "window": "180d", "outcome": "review"});
    }

    #[test]
    fn the_contract_memory_rules_parse_and_round_trip() {
        let policy = document(with_memory).unwrap();
        assert_eq!(policy.memory.lists.len(), 2);
        assert_eq!(policy.memory.velocity[0].window_secs, 30 * 24 * 3600);
        assert_eq!(policy.memory.velocity[1].distinct, None);
        assert_eq!(
            policy.memory.linked_fraud.as_ref().unwrap().window_secs,
            180 * 24 * 3600
        );
        let again = PolicyDocument::of(&policy, None).parse().unwrap();
        assert_eq!(again, policy);
        // A version without the members has none of the rules.
        assert!(document(|_| {}).unwrap().memory.is_empty());
    }

    #[test]
    fn invalid_memory_rules_name_their_field() {
        type Change = Box<dyn FnOnce(&mut serde_json::Value)>;
        let cases: Vec<(&str, Change, &str)> = vec![
            (
                "window under a minute",
                Box::new(|d| d["velocity"][0]["window"] = json!("30s")),
                "velocity[0].window",
            ),
            (
                "window over 400 days",
                Box::new(|d| d["velocity"][1]["window"] = json!("401d")),
                "velocity[1].window",
            ),
            (
                "max zero",
                Box::new(|d| d["velocity"][1]["max"] = json!(0)),
                "velocity[1].max",
            ),
            (
                "code without its prefix",
                Box::new(|d| d["velocity"][0]["code"] = json!("device_cpfs")),
                "velocity[0].code",
            ),
            (
                "codes repeated",
                Box::new(|d| d["velocity"][1]["code"] = json!("velocity.device_cpfs")),
                "velocity[1].code",
            ),
            (
                "unknown key",
                Box::new(|d| d["velocity"][0]["key"] = json!("ip")),
                "velocity[0].key",
            ),
            (
                "distinct same as key",
                Box::new(|d| d["velocity"][0]["distinct"] = json!("device_id")),
                "velocity[0].distinct",
            ),
            (
                "a list cannot approve",
                Box::new(|d| d["lists"][0]["outcome"] = json!("approved")),
                "lists[0].outcome",
            ),
            (
                "list name",
                Box::new(|d| d["lists"][1]["list"] = json!("Watched")),
                "lists[1].list",
            ),
            (
                "list twice",
                Box::new(|d| d["lists"][1]["list"] = json!("blocked_devices")),
                "lists[1].list",
            ),
            (
                "no linked keys",
                Box::new(|d| d["linked_fraud"]["keys"] = json!([])),
                "linked_fraud.keys",
            ),
            (
                "unknown linked key",
                Box::new(|d| d["linked_fraud"]["keys"][0] = json!("ip")),
                "linked_fraud.keys[0]",
            ),
            (
                "linked retry",
                Box::new(|d| d["linked_fraud"]["outcome"] = json!("retry")),
                "linked_fraud.outcome",
            ),
        ];
        for (case, change, field) in cases {
            let result = document(|d| {
                with_memory(d);
                change(d);
            });
            assert_eq!(result.unwrap_err(), [field], "{case}");
        }
    }
}
