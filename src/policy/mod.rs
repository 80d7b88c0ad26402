//! The decision policy of contract.md as pure functions: evidence in, outcome and reasons out.
//! Nothing here does I/O, so any stored decision can be replayed and the rules tested as a table.

use serde::{Deserialize, Serialize};

use crate::domain::evidence::{Evidence, RiskSignals};

/// Outcomes from least to most severe: the derived order is the severity order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Approved,
    Review,
    Retry,
    Rejected,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Approved => "approved",
            Outcome::Review => "review",
            Outcome::Retry => "retry",
            Outcome::Rejected => "rejected",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "approved" => Some(Outcome::Approved),
            "review" => Some(Outcome::Review),
            "retry" => Some(Outcome::Retry),
            "rejected" => Some(Outcome::Rejected),
            _ => None,
        }
    }
}

/// The numbers a decision was made with; stored with every decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Thresholds {
    pub score_reject_max: i32,
    pub score_approve_min: i32,
    pub biometrics_deadline_secs: u64,
    pub device_deadline_secs: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    pub version: String,
    pub thresholds: Thresholds,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reason {
    pub code: String,
    pub message: String,
}

/// One rule as evaluated: what it looked at and whether it fired.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleEvaluation {
    pub code: String,
    pub outcome: Outcome,
    pub fired: bool,
    pub inputs: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub outcome: Outcome,
    /// Every rule that fired, the decisive one first.
    pub reasons: Vec<Reason>,
    /// Every rule evaluated, in policy-table order.
    pub evaluations: Vec<RuleEvaluation>,
    pub policy_version: String,
    pub thresholds: Thresholds,
}
