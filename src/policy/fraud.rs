//! Which automatic rejections are indications of fraud (Resolução Conjunta nº 6/2023), and of
//! which typology: the policy document's `fraud_indications` member.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Outcome, Verdict};
use crate::domain::FieldError;
use crate::domain::fraud::Typology;

/// The reasons whose rejection makes an indication, each with its typology.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FraudIndicationRules {
    /// In the order they were written: the first that rejected gives the typology.
    pub reasons: Vec<(String, Typology)>,
}

impl Default for FraudIndicationRules {
    /// The contract's default: a face on unico's fraudster list, or a face that is not the CPF
    /// holder's.
    fn default() -> Self {
        FraudIndicationRules {
            reasons: vec![
                ("fraudsters.match".into(), Typology::IdentityTheft),
                ("identity.not_confirmed".into(), Typology::IdentityTheft),
            ],
        }
    }
}

/// What an automatic decision identified: the typology and the codes that make it fraud.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identified {
    pub typology: Typology,
    /// The decision's reasons that are in the member, decisive first.
    pub reasons: Vec<String>,
    /// The decisive one's message.
    pub message: String,
}

impl FraudIndicationRules {
    /// The indication a `rejected` verdict makes, when one of the member's reasons fired and
    /// rejected; none for any other verdict.
    pub fn identify(&self, verdict: &Verdict) -> Option<Identified> {
        if verdict.outcome != Outcome::Rejected {
            return None;
        }
        let rejected = |code: &str| {
            verdict
                .evaluations
                .iter()
                .any(|e| e.code == code && e.fired && e.outcome == Outcome::Rejected)
                || verdict.evaluations.iter().all(|e| e.code != code)
        };
        let mut found: Vec<(&str, Typology, &str)> = Vec::new();
        for reason in &verdict.reasons {
            if let Some((code, typology)) =
                self.reasons.iter().find(|(code, _)| *code == reason.code)
                && rejected(code)
            {
                found.push((code, *typology, &reason.message));
            }
        }
        let (_, typology, message) = *found.first()?;
        Some(Identified {
            typology,
            reasons: found.iter().map(|(c, ..)| (*c).to_owned()).collect(),
            message: message.to_owned(),
        })
    }
}

/// The member as written in a policy document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FraudIndicationsDocument {
    pub reasons: Vec<String>,
    #[serde(default)]
    pub typology: BTreeMap<String, String>,
}

/// Whether a rejection for `code` can be an indication this institution makes: a reason of the
/// table or of a risk-memory rule, but not another institution's indication received back.
fn is_known_reason(code: &str) -> bool {
    super::reason_codes().contains(&code)
        || code == "links.fraud"
        || code
            .strip_prefix("list.")
            .is_some_and(super::memory::is_list_name)
        || code
            .strip_prefix("velocity.")
            .is_some_and(|rest| !rest.is_empty())
}

pub fn parse(doc: &FraudIndicationsDocument, errors: &mut Vec<FieldError>) -> FraudIndicationRules {
    let mut reasons = Vec::new();
    for (i, code) in doc.reasons.iter().enumerate() {
        let field = format!("fraud_indications.reasons[{i}]");
        if code == super::memory::SHARED_FRAUD_INDICATION {
            errors.push(FieldError::new(
                field,
                "is another institution's indication: it is not registered again as this one's",
            ));
            continue;
        }
        if !is_known_reason(code) {
            errors.push(FieldError::new(field, "is not a reason code a rule gives"));
            continue;
        }
        if reasons.iter().any(|(c, _)| c == code) {
            errors.push(FieldError::new(field, "is already among the reasons"));
            continue;
        }
        let typology = match doc.typology.get(code) {
            None => {
                errors.push(FieldError::new(
                    format!("fraud_indications.typology.{code}"),
                    "is required for each reason",
                ));
                continue;
            }
            Some(text) => match Typology::parse(text) {
                Some(t) => t,
                None => {
                    errors.push(FieldError::new(
                        format!("fraud_indications.typology.{code}"),
                        Typology::EXPECTED,
                    ));
                    continue;
                }
            },
        };
        reasons.push((code.clone(), typology));
    }
    for code in doc.typology.keys() {
        if !doc.reasons.contains(code) {
            errors.push(FieldError::new(
                format!("fraud_indications.typology.{code}"),
                "names a reason that is not among fraud_indications.reasons",
            ));
        }
    }
    FraudIndicationRules { reasons }
}

pub fn document(rules: &FraudIndicationRules) -> FraudIndicationsDocument {
    FraudIndicationsDocument {
        reasons: rules.reasons.iter().map(|(c, _)| c.clone()).collect(),
        typology: rules
            .reasons
            .iter()
            .map(|(c, t)| (c.clone(), t.as_str().to_owned()))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{Reason, RuleEvaluation, Thresholds};

    fn verdict(outcome: Outcome, fired: &[(&str, Outcome)]) -> Verdict {
        Verdict {
            outcome,
            reasons: fired
                .iter()
                .map(|(code, _)| Reason {
                    code: (*code).into(),
                    message: format!("{code} fired"),
                })
                .collect(),
            evaluations: fired
                .iter()
                .map(|(code, outcome)| RuleEvaluation {
                    code: (*code).into(),
                    outcome: *outcome,
                    fired: true,
                    inputs: serde_json::Value::Null,
                })
                .collect(),
            policy_version: "t".into(),
            thresholds: Thresholds {
                score_reject_max: -40,
                score_approve_min: 50,
                biometrics_deadline_secs: 600,
                device_deadline_secs: 1800,
            },
        }
    }

    #[test]
    fn which_verdicts_are_indications_under_the_default() {
        use Outcome::*;
        let rules = FraudIndicationRules::default();
        let cases: [(&str, Verdict, Option<&str>); 5] = [
            (
                "a fraudster face",
                verdict(
                    Rejected,
                    &[
                        ("fraudsters.match", Rejected),
                        ("identity.confirmed", Approved),
                    ],
                ),
                Some("fraudsters.match"),
            ),
            (
                "not the CPF holder",
                verdict(Rejected, &[("identity.not_confirmed", Rejected)]),
                Some("identity.not_confirmed"),
            ),
            (
                "not live",
                verdict(Rejected, &[("liveness.not_live", Rejected)]),
                None,
            ),
            (
                "an approval",
                verdict(Approved, &[("identity.confirmed", Approved)]),
                None,
            ),
            (
                "rejected on the device, a fraud reason only under review",
                verdict(
                    Rejected,
                    &[("device.emulated", Rejected), ("fraudsters.match", Review)],
                ),
                None,
            ),
        ];
        for (case, verdict, expected) in cases {
            let identified = rules.identify(&verdict);
            assert_eq!(
                identified.as_ref().map(|i| i.reasons[0].as_str()),
                expected,
                "{case}"
            );
            if let Some(i) = identified {
                assert_eq!(i.typology, Typology::IdentityTheft, "{case}");
            }
        }
    }

    #[test]
    fn the_member_is_validated_by_field() {
        let doc = |reasons: &[&str], typology: &[(&str, &str)]| FraudIndicationsDocument {
            reasons: reasons.iter().map(|r| (*r).to_owned()).collect(),
            typology: typology
                .iter()
                .map(|(r, t)| ((*r).to_owned(), (*t).to_owned()))
                .collect(),
        };
        let cases = [
            (
                "unknown reason",
                doc(&["fraud.maybe"], &[]),
                "fraud_indications.reasons[0]",
            ),
            (
                "a received indication",
                doc(
                    &["shared.fraud_indication"],
                    &[("shared.fraud_indication", "other")],
                ),
                "fraud_indications.reasons[0]",
            ),
            (
                "no typology",
                doc(&["links.fraud"], &[]),
                "fraud_indications.typology.links.fraud",
            ),
            (
                "unknown typology",
                doc(&["list.blocked"], &[("list.blocked", "laranja")]),
                "fraud_indications.typology.list.blocked",
            ),
            (
                "a typology for no reason",
                doc(&[], &[("fraudsters.match", "other")]),
                "fraud_indications.typology.fraudsters.match",
            ),
        ];
        for (case, doc, field) in cases {
            let mut errors = Vec::new();
            parse(&doc, &mut errors);
            assert_eq!(
                errors.iter().map(|e| e.field.as_str()).collect::<Vec<_>>(),
                [field],
                "{case}"
            );
        }
        let mut errors = Vec::new();
        let rules = parse(&document(&FraudIndicationRules::default()), &mut errors);
        assert!(errors.is_empty());
        assert_eq!(rules, FraudIndicationRules::default());
        // Turned off: no reason makes an indication.
        let off = parse(&doc(&[], &[]), &mut errors);
        assert!(
            off.identify(&verdict(
                Outcome::Rejected,
                &[("fraudsters.match", Outcome::Rejected)]
            ))
            .is_none()
        );
    }
}
