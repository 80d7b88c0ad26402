//! The rules that judge an onboarding against what veredito already knows: block lists,
//! velocity (how many onboardings share a value) and links to onboardings rejected as fraud.
//! The store computes the figures (a list hit, a count, the linked onboardings) for the rules of
//! the versions in force; these functions only judge them, so replay and shadow judge stored
//! figures exactly as the live path did.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::Outcome;
use crate::domain::FieldError;
use crate::domain::LinkKey;
use crate::domain::evidence::MemoryEvidence;

/// A version's risk-memory rules. A version without them has none.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryRules {
    pub lists: Vec<ListRule>,
    pub velocity: Vec<VelocityRule>,
    pub linked_fraud: Option<LinkedFraudRule>,
    /// Indications of fraud other institutions shared about the applicant's CPF.
    #[serde(default)]
    pub shared_indications: Option<SharedIndicationsRule>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListRule {
    pub list: String,
    pub outcome: Outcome,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VelocityRule {
    pub code: String,
    pub key: LinkKey,
    pub distinct: Option<LinkKey>,
    pub window_secs: u64,
    pub max: u32,
    pub outcome: Outcome,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkedFraudRule {
    pub keys: Vec<LinkKey>,
    pub window_secs: u64,
    pub outcome: Outcome,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SharedIndicationsRule {
    /// How far back an indication's `identified_at` may lie.
    pub window_secs: u64,
    pub outcome: Outcome,
}

/// The decisive reasons of an earlier onboarding's latest decision that make it fraud for
/// `linked_fraud` (besides a `list.*` reason of a rejection).
pub const FRAUD_REASONS: [&str; 2] = ["fraudsters.match", "identity.not_confirmed"];

/// Whether a reason code is one of the rules judged on what veredito remembers (`list.*`,
/// `velocity.*`, `links.fraud`, `shared.fraud_indication`).
pub fn is_memory_code(code: &str) -> bool {
    code.starts_with("list.")
        || code.starts_with("velocity.")
        || code == "links.fraud"
        || code == SHARED_FRAUD_INDICATION
}

/// What the store is asked to compute for one or more versions' rules.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Questions {
    pub lists: Vec<String>,
    /// (key, distinct, window in seconds)
    pub velocity: Vec<(LinkKey, Option<LinkKey>, u64)>,
    /// (keys, window in seconds)
    pub linked: Vec<(Vec<LinkKey>, u64)>,
    /// Windows (in seconds) of received indications on the CPF.
    pub shared: Vec<u64>,
}

impl Questions {
    pub fn is_empty(&self) -> bool {
        self.lists.is_empty()
            && self.velocity.is_empty()
            && self.linked.is_empty()
            && self.shared.is_empty()
    }
}

impl MemoryRules {
    pub fn is_empty(&self) -> bool {
        self.lists.is_empty()
            && self.velocity.is_empty()
            && self.linked_fraud.is_none()
            && self.shared_indications.is_none()
    }

    /// Adds what these rules need to `questions`, once each.
    pub fn ask(&self, questions: &mut Questions) {
        for rule in &self.lists {
            if !questions.lists.contains(&rule.list) {
                questions.lists.push(rule.list.clone());
            }
        }
        for rule in &self.velocity {
            let q = (rule.key, rule.distinct, rule.window_secs);
            if !questions.velocity.contains(&q) {
                questions.velocity.push(q);
            }
        }
        if let Some(rule) = &self.linked_fraud {
            let q = (rule.keys.clone(), rule.window_secs);
            if !questions.linked.contains(&q) {
                questions.linked.push(q);
            }
        }
        if let Some(rule) = &self.shared_indications
            && !questions.shared.contains(&rule.window_secs)
        {
            questions.shared.push(rule.window_secs);
        }
    }

    pub fn questions(&self) -> Questions {
        let mut questions = Questions::default();
        self.ask(&mut questions);
        questions
    }
}

/// One memory rule as judged: its reason code, message, outcome, whether it fired and what it
/// saw.
pub(super) struct Judged {
    pub code: String,
    pub message: String,
    pub outcome: Outcome,
    pub fired: bool,
    pub inputs: Value,
}

const NOT_LOOKED_UP: &str = "not looked up when the onboarding was received";

/// Judges every rule of `rules` on the figures, in the order: lists, velocity, linked fraud.
pub(super) fn judge(rules: &MemoryRules, figures: Option<&MemoryEvidence>) -> Vec<Judged> {
    let mut out = Vec::new();
    for rule in &rules.lists {
        let figure = figures.and_then(|f| f.lists.iter().find(|l| l.list == rule.list));
        let (fired, inputs) = match figure {
            None => (
                false,
                json!({ "list": rule.list, "skipped": NOT_LOOKED_UP }),
            ),
            Some(figure) => (
                figure.hit.is_some(),
                json!({ "list": rule.list, "key": figure.key, "hit": figure.hit }),
            ),
        };
        out.push(Judged {
            code: format!("list.{}", rule.list),
            message: format!("A value of the onboarding is on the list {}.", rule.list),
            outcome: rule.outcome,
            fired,
            inputs,
        });
    }
    for rule in &rules.velocity {
        let figure = figures.and_then(|f| {
            f.velocity.iter().find(|v| {
                v.key == rule.key
                    && v.distinct == rule.distinct
                    && v.window_secs == rule.window_secs
            })
        });
        let window = humantime::format_duration(Duration::from_secs(rule.window_secs)).to_string();
        let (fired, inputs) = match figure {
            None => (false, json!({ "skipped": NOT_LOOKED_UP })),
            Some(figure) => (
                figure.count.is_some_and(|n| n > u64::from(rule.max)),
                json!({
                    "key": rule.key, "distinct": rule.distinct, "window": window,
                    "count": figure.count, "max": rule.max,
                }),
            ),
        };
        let message = match rule.distinct {
            Some(distinct) => format!(
                "More than {} distinct {distinct} values share this {} within {window}.",
                rule.max, rule.key
            ),
            None => format!(
                "More than {} onboardings share this {} within {window}.",
                rule.max, rule.key
            ),
        };
        out.push(Judged {
            code: rule.code.clone(),
            message,
            outcome: rule.outcome,
            fired,
            inputs,
        });
    }
    if let Some(rule) = &rules.linked_fraud {
        let figure = figures.and_then(|f| {
            f.linked
                .iter()
                .find(|l| l.keys == rule.keys && l.window_secs == rule.window_secs)
        });
        let (fired, inputs) = match figure {
            None => (false, json!({ "skipped": NOT_LOOKED_UP })),
            Some(figure) => (
                !figure.onboardings.is_empty(),
                json!({
                    "keys": rule.keys,
                    "window": humantime::format_duration(Duration::from_secs(rule.window_secs)).to_string(),
                    "linked": figure.onboardings,
                }),
            ),
        };
        out.push(Judged {
            code: "links.fraud".into(),
            message: "The onboarding shares a value with an earlier one rejected as fraud.".into(),
            outcome: rule.outcome,
            fired,
            inputs,
        });
    }
    if let Some(rule) = &rules.shared_indications {
        let figure =
            figures.and_then(|f| f.shared.iter().find(|s| s.window_secs == rule.window_secs));
        let (fired, inputs) = match figure {
            None => (false, json!({ "skipped": NOT_LOOKED_UP })),
            Some(figure) => (
                !figure.indications.is_empty(),
                json!({
                    "window": humantime::format_duration(Duration::from_secs(rule.window_secs)).to_string(),
                    "indications": figure.indications,
                }),
            ),
        };
        out.push(Judged {
            code: SHARED_FRAUD_INDICATION.into(),
            message: "Another institution shared an indication of fraud about this CPF.".into(),
            outcome: rule.outcome,
            fired,
            inputs,
        });
    }
    out
}

/// The reason a live indication shared by another institution gives.
pub const SHARED_FRAUD_INDICATION: &str = "shared.fraud_indication";

// ---- the document's members ---------------------------------------------------------------

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
