//! The rules that judge an onboarding against what veredito already knows: block lists,
//! velocity (how many onboardings share a value) and links to onboardings rejected as fraud.
//! The store computes the figures (a list hit, a count, the linked onboardings) for the rules of
//! the versions in force; these functions only judge them, so replay and shadow judge stored
//! figures exactly as the live path did.
//!
//! This file holds the rules and their judgement; `document` the members of a policy document
//! that describe them.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::Outcome;
use crate::domain::LinkKey;
use crate::domain::evidence::MemoryEvidence;

mod document;

pub use document::{
    Documents, LinkedFraudDocument, ListRuleDocument, SharedIndicationsDocument,
    VelocityRuleDocument, documents, is_list_name, parse,
};

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
