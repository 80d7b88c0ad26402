//! The members of a policy document that describe the risk-memory rules: read into rules with
//! every wrong field named, and written back from them.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{LinkedFraudRule, ListRule, MemoryRules, SharedIndicationsRule, VelocityRule};
use crate::domain::FieldError;
use crate::domain::LinkKey;
use crate::policy::Outcome;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ListRuleDocument {
    pub list: String,
    pub outcome: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VelocityRuleDocument {
    pub code: String,
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distinct: Option<String>,
    pub window: String,
    pub max: i64,
    pub outcome: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkedFraudDocument {
    pub keys: Vec<String>,
    pub window: String,
    pub outcome: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SharedIndicationsDocument {
    pub window: String,
    pub outcome: String,
}

const SHORTEST_WINDOW: Duration = Duration::from_secs(60);
const LONGEST_WINDOW: Duration = Duration::from_secs(400 * 24 * 3600);

/// Whether `name` can be a list's name: `[a-z0-9_]{1,64}`.
pub fn is_list_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

fn outcome(field: &str, text: &str, errors: &mut Vec<FieldError>) -> Outcome {
    match text {
        "rejected" => Outcome::Rejected,
        "review" => Outcome::Review,
        _ => {
            errors.push(FieldError::new(field, "must be rejected or review"));
            Outcome::Review
        }
    }
}

fn window(field: &str, text: &str, errors: &mut Vec<FieldError>) -> u64 {
    match humantime::parse_duration(text.trim()) {
        Ok(d) if (SHORTEST_WINDOW..=LONGEST_WINDOW).contains(&d) => d.as_secs(),
        _ => {
            errors.push(FieldError::new(
                field,
                "must be a duration from 1m to 400d, such as \"30d\"",
            ));
            0
        }
    }
}

fn key(field: &str, text: &str, errors: &mut Vec<FieldError>) -> Option<LinkKey> {
    let key = LinkKey::parse(text);
    if key.is_none() {
        errors.push(FieldError::new(
            field,
            "must be cpf, device_id, phone or email",
        ));
    }
    key
}

/// The rules the document's members describe, every wrong field named in `errors`.
pub fn parse(
    lists: &[ListRuleDocument],
    velocity: &[VelocityRuleDocument],
    linked_fraud: Option<&LinkedFraudDocument>,
    shared_indications: Option<&SharedIndicationsDocument>,
    errors: &mut Vec<FieldError>,
) -> MemoryRules {
    let mut rules = MemoryRules::default();
    for (i, doc) in lists.iter().enumerate() {
        if !is_list_name(&doc.list) {
            errors.push(FieldError::new(
                format!("lists[{i}].list"),
                "must be a list name: 1 to 64 of a-z, 0-9 and _",
            ));
        } else if rules.lists.iter().any(|r| r.list == doc.list) {
            errors.push(FieldError::new(
                format!("lists[{i}].list"),
                "names a list an earlier rule already judges",
            ));
        }
        rules.lists.push(ListRule {
            list: doc.list.clone(),
            outcome: outcome(&format!("lists[{i}].outcome"), &doc.outcome, errors),
        });
    }
    for (i, doc) in velocity.iter().enumerate() {
        let field = |name: &str| format!("velocity[{i}].{name}");
        let code_ok = doc.code.len() <= 64
            && doc.code.strip_prefix("velocity.").is_some_and(|rest| {
                !rest.is_empty()
                    && rest
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            });
        if !code_ok {
            errors.push(FieldError::new(
                field("code"),
                "must be velocity. followed by a-z, 0-9 and _ (64 characters at most)",
            ));
        } else if rules.velocity.iter().any(|r| r.code == doc.code) {
            errors.push(FieldError::new(
                field("code"),
                "is the code of an earlier rule",
            ));
        }
        let on = key(&field("key"), &doc.key, errors);
        let distinct = doc
            .distinct
            .as_deref()
            .and_then(|d| key(&field("distinct"), d, errors));
        if on.is_some() && distinct == on {
            errors.push(FieldError::new(
                field("distinct"),
                "must be another key than key",
            ));
        }
        let max = u32::try_from(doc.max)
            .ok()
            .filter(|m| *m >= 1)
            .unwrap_or_else(|| {
                errors.push(FieldError::new(field("max"), "must be at least 1"));
                1
            });
        rules.velocity.push(VelocityRule {
            code: doc.code.clone(),
            key: on.unwrap_or(LinkKey::Cpf),
            distinct,
            window_secs: window(&field("window"), &doc.window, errors),
            max,
            outcome: outcome(&field("outcome"), &doc.outcome, errors),
        });
    }
    if let Some(doc) = linked_fraud {
        let mut keys = Vec::new();
        for (i, text) in doc.keys.iter().enumerate() {
            let Some(k) = key(&format!("linked_fraud.keys[{i}]"), text, errors) else {
                continue;
            };
            if keys.contains(&k) {
                errors.push(FieldError::new(
                    format!("linked_fraud.keys[{i}]"),
                    "is already among the keys",
                ));
            }
            keys.push(k);
        }
        if doc.keys.is_empty() {
            errors.push(FieldError::new(
                "linked_fraud.keys",
                "must name at least one key",
            ));
        }
        keys.sort();
        keys.dedup();
        rules.linked_fraud = Some(LinkedFraudRule {
            keys,
            window_secs: window("linked_fraud.window", &doc.window, errors),
            outcome: outcome("linked_fraud.outcome", &doc.outcome, errors),
        });
    }
    if let Some(doc) = shared_indications {
        rules.shared_indications = Some(SharedIndicationsRule {
            window_secs: window("shared_indications.window", &doc.window, errors),
            outcome: outcome("shared_indications.outcome", &doc.outcome, errors),
        });
    }
    rules
}

fn duration_text(secs: u64) -> String {
    humantime::format_duration(Duration::from_secs(secs)).to_string()
}

/// The document's members that describe `rules`.
pub fn documents(rules: &MemoryRules) -> Documents {
    (
        rules
            .lists
            .iter()
            .map(|r| ListRuleDocument {
                list: r.list.clone(),
                outcome: r.outcome.as_str().to_owned(),
            })
            .collect(),
        rules
            .velocity
            .iter()
            .map(|r| VelocityRuleDocument {
                code: r.code.clone(),
                key: r.key.as_str().to_owned(),
                distinct: r.distinct.map(|d| d.as_str().to_owned()),
                window: duration_text(r.window_secs),
                max: i64::from(r.max),
                outcome: r.outcome.as_str().to_owned(),
            })
            .collect(),
        rules.linked_fraud.as_ref().map(|r| LinkedFraudDocument {
            keys: r.keys.iter().map(|k| k.as_str().to_owned()).collect(),
            window: duration_text(r.window_secs),
            outcome: r.outcome.as_str().to_owned(),
        }),
        rules
            .shared_indications
            .as_ref()
            .map(|r| SharedIndicationsDocument {
                window: duration_text(r.window_secs),
                outcome: r.outcome.as_str().to_owned(),
            }),
    )
}

/// The memory members of a document: lists, velocity, linked fraud, shared indications.
pub type Documents = (
    Vec<ListRuleDocument>,
    Vec<VelocityRuleDocument>,
    Option<LinkedFraudDocument>,
    Option<SharedIndicationsDocument>,
);
