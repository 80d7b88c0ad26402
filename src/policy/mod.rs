//! The decision policy of contract.md as pure functions: evidence in, outcome and reasons out.
//! Nothing here does I/O, so any stored decision can be replayed and the rules tested as a table.

pub mod document;
pub mod fraud;
pub mod memory;
mod rules;
#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};

use crate::domain::evidence::{
    BiometricEvidence, DeviceEvidence, Evidence, MemoryEvidence, RiskSignals,
};
use memory::{Judged, MemoryRules};
use rules::{Rule, Trace};

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
    #[serde(default)]
    pub outcomes: Outcomes,
    /// Lists, velocity and linked fraud, judged when the onboarding is received.
    #[serde(default)]
    pub memory: MemoryRules,
    /// Which automatic rejections are indications of fraud.
    #[serde(default)]
    pub fraud_indications: fraud::FraudIndicationRules,
}

/// What a version decides where the table lets it choose: the outcome of each phone risk
/// signal (None: recorded, decides nothing) and of a face flagged as suspicious. Nothing here
/// can approve: the choices are `rejected` and `review`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcomes {
    pub is_emulated: Option<Outcome>,
    pub is_monkey_runner: Option<Outcome>,
    pub is_rooted_device: Option<Outcome>,
    pub is_mock_gps: Option<Outcome>,
    pub is_call_in_progress: Option<Outcome>,
    pub is_dev_mode_enabled: Option<Outcome>,
    pub is_usb_connected: Option<Outcome>,
    pub fraudsters_suspicious: Outcome,
}

impl Default for Outcomes {
    /// The policy the service was first written with.
    fn default() -> Self {
        Outcomes {
            is_emulated: Some(Outcome::Rejected),
            is_monkey_runner: Some(Outcome::Rejected),
            is_rooted_device: Some(Outcome::Review),
            is_mock_gps: Some(Outcome::Review),
            is_call_in_progress: Some(Outcome::Review),
            is_dev_mode_enabled: None,
            is_usb_connected: None,
            fraudsters_suspicious: Outcome::Review,
        }
    }
}

impl Outcomes {
    fn signal(&self, rule: Rule) -> Option<Outcome> {
        match rule {
            Rule::DeviceEmulated => self.is_emulated,
            Rule::DeviceAutomation => self.is_monkey_runner,
            Rule::DeviceRooted => self.is_rooted_device,
            Rule::DeviceMockLocation => self.is_mock_gps,
            Rule::DeviceCallInProgress => self.is_call_in_progress,
            Rule::DeviceDevMode => self.is_dev_mode_enabled,
            Rule::DeviceUsbConnected => self.is_usb_connected,
            _ => None,
        }
    }

    /// The outcome of `rule` under this version.
    fn of(&self, rule: Rule) -> Outcome {
        match rule {
            Rule::FraudstersSuspicious => self.fraudsters_suspicious,
            rule => self.signal(rule).unwrap_or_else(|| rule.outcome()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
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

impl Policy {
    /// Decides on everything known about an onboarding. Every row of the table is reported, so
    /// the stored trace shows why a rule did not fire as well as why one did.
    pub fn evaluate(&self, evidence: &Evidence) -> Verdict {
        let memory = memory::judge(&self.memory, evidence.memory.as_ref());
        self.verdict(rules::evaluate(evidence, self), memory, "not evaluated")
    }

    /// The check made before unico is called: a rejecting device flag, or a list, velocity or
    /// linked-fraud rule that rejects, ends the onboarding there, so no biometric process is
    /// spent on an emulator, a bot or a known fraud.
    pub fn screen(
        &self,
        signals: Option<&RiskSignals>,
        figures: Option<&MemoryEvidence>,
    ) -> Option<Verdict> {
        let mut trace = Trace::new();
        rules::signal_rules(&mut trace, signals, &self.outcomes);
        let judged = memory::judge(&self.memory, figures);
        let device = rules::SIGNAL_RULES
            .iter()
            .any(|(rule, _, _)| trace.fired(*rule) && self.outcomes.of(*rule) == Outcome::Rejected);
        let known = judged
            .iter()
            .any(|j| j.fired && j.outcome == Outcome::Rejected);
        let unreached = if device {
            "decided on the device before unico was called"
        } else {
            "decided on what veredito already knew, before unico was called"
        };
        (device || known).then(|| self.verdict(trace, judged, unreached))
    }

    /// Judges the evidence a live decision had, under this version (replay and shadow). Where
    /// this version would approve but the live path never reached the device stage, the
    /// verdict is `approved` with `device.not_checked` added; where the live path stopped
    /// before unico on a risk signal and this version would not, it is `review` with
    /// `biometrics.not_run`: nobody knows what unico would have said.
    pub fn judge(&self, evidence: &Evidence, live: Option<Outcome>) -> Verdict {
        if matches!(evidence.biometrics, BiometricEvidence::NotRun) {
            if let Some(screened) =
                self.screen(evidence.risk_signals.as_ref(), evidence.memory.as_ref())
            {
                return screened;
            }
            let evaluated = self.evaluate(evidence);
            return Verdict {
                outcome: Outcome::Review,
                reasons: vec![Reason {
                    code: "biometrics.not_run".into(),
                    message:
                        "This version would have gone on to unico, which the live path never asked."
                            .into(),
                }],
                ..evaluated
            };
        }
        let mut verdict = self.evaluate(evidence);
        let device_not_run = matches!(evidence.device, DeviceEvidence::NotRun);
        if verdict.outcome == Outcome::Approved && device_not_run && live != Some(Outcome::Approved)
        {
            verdict.reasons.push(Reason {
                code: "device.not_checked".into(),
                message: "Would go on to the QI Tech registration.".into(),
            });
        }
        verdict
    }

    /// A reviewer's resolution as a verdict. An approval that needed the device registered
    /// first stands on QI Tech's answer: the device rows of the table decide it then, exactly
    /// as they would an automatic approval. The reviewer's reason is always among the reasons.
    pub fn reviewer_verdict(&self, outcome: Outcome, device: Option<&DeviceEvidence>) -> Verdict {
        let reviewer = Reason {
            code: format!("review.{}", outcome.as_str()),
            message: match outcome {
                Outcome::Approved => "A reviewer approved the onboarding.",
                Outcome::Rejected => "A reviewer rejected the onboarding.",
                Outcome::Retry => "A reviewer asked for a new capture.",
                Outcome::Review => "A reviewer left the onboarding in review.",
            }
            .to_owned(),
        };
        match (outcome, device) {
            (Outcome::Approved, Some(device)) => {
                let mut trace = Trace::new();
                rules::registration_rules(&mut trace, device);
                let mut verdict = self.verdict(trace, Vec::new(), "decided by a reviewer");
                let at = usize::from(verdict.outcome != Outcome::Approved);
                verdict
                    .reasons
                    .insert(at.min(verdict.reasons.len()), reviewer);
                verdict
            }
            _ => Verdict {
                outcome,
                reasons: vec![reviewer],
                evaluations: Vec::new(),
                policy_version: self.version.clone(),
                thresholds: self.thresholds,
            },
        }
    }

    /// The rows of the table in order, the memory rules right after the risk signals (both are
    /// judged before unico), and the outcome of the most severe that fired.
    fn verdict(&self, trace: Trace, memory: Vec<Judged>, unreached: &str) -> Verdict {
        let mut rows: Vec<Judged> = trace
            .into_rows(unreached)
            .map(|(rule, fired, inputs)| Judged {
                code: rule.code().to_owned(),
                message: rule.message().to_owned(),
                outcome: self.outcomes.of(rule),
                fired,
                inputs,
            })
            .collect();
        let at = rules::SIGNAL_RULES.len().min(rows.len());
        rows.splice(at..at, memory);
        let mut fired: Vec<(Outcome, Reason)> = rows
            .iter()
            .filter(|row| row.fired)
            .map(|row| {
                let reason = Reason {
                    code: row.code.clone(),
                    message: row.message.clone(),
                };
                (row.outcome, reason)
            })
            .collect();
        // Stable sort: within one severity the table order is kept, so the decisive rule leads.
        fired.sort_by_key(|(outcome, _)| std::cmp::Reverse(*outcome));
        Verdict {
            // An empty set of reasons cannot happen (evaluate falls back to a review rule), but if
            // it ever did, approving on no evidence would be the worst possible answer.
            outcome: fired
                .first()
                .map_or(Outcome::Review, |(outcome, _)| *outcome),
            reasons: fired.into_iter().map(|(_, reason)| reason).collect(),
            evaluations: rows
                .into_iter()
                .map(|row| RuleEvaluation {
                    code: row.code,
                    outcome: row.outcome,
                    fired: row.fired,
                    inputs: row.inputs,
                })
                .collect(),
            policy_version: self.version.clone(),
            thresholds: self.thresholds,
        }
    }
}

/// The phone's risk flags that are set, in table order, as shown to API clients.
pub fn risk_flags(signals: Option<&RiskSignals>) -> Vec<&'static str> {
    let Some(signals) = signals else {
        return Vec::new();
    };
    rules::SIGNAL_RULES
        .iter()
        .filter(|&&(rule, _, _)| rules::signal(signals, rule) == Some(true))
        .map(|&(_, flag, _)| flag)
        .collect()
}

/// Every reason code the policy can give, in table order.
pub fn reason_codes() -> &'static [&'static str] {
    &rules::CODES
}
