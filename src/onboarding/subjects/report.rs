//! The access report: everything veredito holds about the person of a request, built from
//! what is stored now.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use super::erasure::erased_of;
use super::recipients::{data_of, recipient_of};
use super::{Erased, retention_date};
use crate::domain::cpf::Cpf;
use crate::onboarding::error::FlowError;
use crate::onboarding::services::Services;
use crate::store::StoreError;
use crate::store::onboardings::PersonData;
use crate::store::subjects::{self as store, RequestRow};

/// Everything veredito holds about the person of a request, from what is stored.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Report {
    pub request_id: Uuid,
    pub kind: String,
    /// Whole: the report is read with pii:read only.
    pub cpf: String,
    pub received_at: DateTime<Utc>,
    pub due_at: DateTime<Utc>,
    pub generated_at: DateTime<Utc>,
    /// The controller's retention period for personal data, in days after each decision.
    pub retention_days: u32,
    #[schema(inline)]
    pub onboardings: Vec<OnboardingReport>,
    /// The fraud indications about the person that are not confidential (confidential ones,
    /// under the anti-money-laundering rules, are never disclosed).
    #[schema(inline)]
    pub fraud_indications: Vec<IndicationReport>,
    /// Who received the person's data outside any one onboarding: the fraud-indication
    /// sharing system, for the indications it acknowledged.
    #[schema(inline)]
    pub shared_with: Vec<Recipient>,
}

/// A fraud indication about the person (Resolução Conjunta nº 6/2023).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct IndicationReport {
    pub id: Uuid,
    #[schema(required = true)]
    pub onboarding_id: Option<Uuid>,
    pub typology: String,
    pub description: String,
    /// pending, registered or withdrawn.
    pub status: String,
    pub identified_at: DateTime<Utc>,
    /// When the sharing system acknowledged it; null when it has not (yet).
    #[schema(required = true)]
    pub shared_at: Option<DateTime<Utc>>,
}

/// One onboarding of the person's, and everything it holds.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct OnboardingReport {
    pub id: Uuid,
    #[schema(required = true)]
    pub reference: Option<String>,
    /// processing or decided.
    #[schema(schema_with = status_schema)]
    pub status: &'static str,
    pub created_at: DateTime<Utc>,
    #[schema(required = true)]
    pub decided_at: Option<DateTime<Utc>>,
    #[schema(inline)]
    pub decisions: Vec<DecisionReport>,
    #[schema(inline)]
    pub data_held: Vec<Held>,
    pub data_erased: Vec<Erased>,
    #[schema(inline)]
    pub recipients: Vec<Recipient>,
    #[schema(inline)]
    pub review_cases: Vec<CaseReport>,
    #[schema(inline)]
    pub retention: Retention,
}

fn status_schema() -> utoipa::openapi::schema::Object {
    crate::domain::schema::one_of(&["processing", "decided"], None)
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DecisionReport {
    pub id: Uuid,
    pub decided_at: DateTime<Utc>,
    /// policy (automatic) or reviewer.
    #[schema(schema_with = decided_by_schema)]
    pub decided_by: String,
    #[schema(required = true)]
    pub reviewer: Option<String>,
    #[schema(required = true)]
    pub note: Option<String>,
    #[schema(schema_with = outcome_schema)]
    pub outcome: String,
    /// Each with its code and message, as stored with the decision.
    #[schema(value_type = Vec<crate::policy::Reason>)]
    pub reasons: Value,
    pub policy_version: String,
}

/// `decided_by` and `outcome` are text columns; these are the values the store writes.
fn decided_by_schema() -> utoipa::openapi::schema::Object {
    crate::domain::schema::one_of(&["policy", "reviewer"], None)
}

fn outcome_schema() -> utoipa::openapi::schema::Object {
    crate::domain::schema::one_of(&["approved", "rejected", "review", "retry"], None)
}

/// A category of personal data held now, and where.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Held {
    pub category: &'static str,
    pub stored_in: Vec<&'static str>,
    /// When retention erases it (null: until the onboarding is decided, then its retention).
    #[schema(required = true)]
    pub until: Option<DateTime<Utc>>,
}

/// Who received the person's data: what, why, and when first and last.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Recipient {
    pub recipient: &'static str,
    pub operations: Vec<String>,
    pub data: Vec<&'static str>,
    pub purpose: &'static str,
    pub legal_basis: &'static str,
    pub first_sent_at: DateTime<Utc>,
    pub last_sent_at: DateTime<Utc>,
}

/// A human review of the onboarding.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CaseReport {
    pub id: Uuid,
    /// policy, or subject_request (the person asked for a human review, LGPD Art. 20).
    pub opened_by: String,
    pub opened_at: DateTime<Utc>,
    pub status: String,
    /// The person's own words; null when none were given or they were erased.
    #[schema(required = true)]
    pub statement: Option<String>,
    #[schema(required = true)]
    pub resolved_at: Option<DateTime<Utc>>,
    #[schema(required = true)]
    pub resolution_outcome: Option<String>,
    #[schema(required = true)]
    pub resolution_note: Option<String>,
    #[schema(required = true)]
    pub resolution_reviewer: Option<String>,
}

/// When the onboarding's data is erased, and what stays.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Retention {
    /// When the personal data left (the sealed CPF, the link keys, the device identifiers, the
    /// review statements) is erased: `retention_days` after the decision; null while processing.
    #[schema(required = true)]
    pub personal_data_until: Option<DateTime<Utc>>,
    /// When what providers said and the request bodies are erased from the call log.
    #[schema(required = true)]
    pub provider_text_until: Option<DateTime<Utc>>,
    /// When retention already erased this onboarding's personal data.
    #[schema(required = true)]
    pub erased_by_retention_at: Option<DateTime<Utc>>,
    pub decisions: &'static str,
}

/// The report of the request `request`, built from what is stored now.
pub async fn report(flow: &Services, request: &RequestRow) -> Result<Report, FlowError> {
    let db = &flow.db;
    let held = store::onboardings_of(db, &request.cpf_hash).await?;
    let ids: Vec<Uuid> = held.iter().map(|o| o.id).collect();
    let decisions = store::decisions_of(db, &ids).await?;
    let cases = store::cases_of(db, &ids).await?;
    let calls = store::calls_of(db, &ids).await?;
    let erasures = store::erasures_of(db, &ids).await?;
    let mut onboardings = Vec::with_capacity(held.len());
    for o in &held {
        let until = o.decided_at.map(|at| retention_date(flow, at));
        let person = match (&o.pii_key_id, &o.pii_ciphertext) {
            (Some(key_id), Some(sealed)) => {
                let plain = flow.cipher.decrypt(key_id, sealed, o.id.as_bytes())?;
                Some(
                    serde_json::from_slice::<PersonData>(&plain)
                        .map_err(|e| StoreError::Corrupt(format!("sealed personal data: {e}")))?,
                )
            }
            _ => None,
        };
        let own_cases: Vec<_> = cases.iter().filter(|c| c.onboarding_id == o.id).collect();
        let own_calls: Vec<_> = calls.iter().filter(|c| c.onboarding_id == o.id).collect();
        let own_decisions: Vec<_> = decisions
            .iter()
            .filter(|d| d.onboarding_id == o.id)
            .collect();

        let mut data_held = Vec::new();
        let mut hold = |category, stored_in: Vec<&'static str>| {
            data_held.push(Held {
                category,
                stored_in,
                until,
            })
        };
        if let Some(person) = &person {
            hold(
                "cpf",
                vec!["onboardings.pii_ciphertext", "onboardings.cpf_hash"],
            );
            for field in person.erasable_fields() {
                hold(field, vec!["onboardings.pii_ciphertext"]);
            }
        }
        if o.selfie_held {
            hold("selfie", vec!["onboardings.selfie_ciphertext"]);
        }
        let coordinates_in_decisions = own_decisions
            .iter()
            .any(|d| has_coordinates(d.evidence.get("risk_signals")));
        let coordinates_in_device = has_coordinates(o.device.get("risk_signals"));
        if coordinates_in_device || coordinates_in_decisions {
            let mut at = Vec::new();
            if coordinates_in_device {
                at.push("onboardings.device");
            }
            if coordinates_in_decisions {
                at.push("decisions.evidence");
            }
            hold("coordinates", at);
        }
        hold(
            "device_identifiers",
            vec![
                "onboardings.device",
                "onboardings.account_id",
                "onboardings.person_id",
            ],
        );
        if o.device
            .get("risk_signals")
            .is_some_and(|s| s.as_object().is_some_and(|m| !m.is_empty()))
        {
            hold(
                "device_signals",
                vec!["onboardings.device", "decisions.evidence"],
            );
        }
        if own_cases.iter().any(|c| c.statement_ciphertext.is_some()) {
            hold(
                "review_statements",
                vec!["review_cases.statement_ciphertext"],
            );
        }
        if own_calls.iter().any(|c| c.answers_held > 0) {
            hold("provider_answers", vec!["provider_calls.answer_ciphertext"]);
        }

        let mut data_erased: Vec<Erased> = erasures
            .iter()
            .filter(|e| e.onboarding_id == o.id)
            .flat_map(erased_of)
            .collect();
        if let Some(at) = o.pii_erased_at {
            for category in [
                "cpf",
                "name",
                "birth_date",
                "gender",
                "email",
                "phone",
                "coordinates",
                "review_statements",
            ] {
                data_erased.push(Erased {
                    onboarding_id: o.id,
                    category: category.to_owned(),
                    erased_from: vec!["retention".to_owned()],
                    erased_at: at,
                    request_id: None,
                });
            }
        }

        let mut recipients: Vec<Recipient> = Vec::new();
        for call in &own_calls {
            let Some((name, purpose, basis)) = recipient_of(&call.provider) else {
                continue;
            };
            let data = data_of(&call.provider, &call.operation);
            match recipients.iter_mut().find(|r| r.recipient == name) {
                Some(r) => {
                    r.operations.push(call.operation.clone());
                    for d in data {
                        if !r.data.contains(d) {
                            r.data.push(d);
                        }
                    }
                    r.first_sent_at = r.first_sent_at.min(call.first_at);
                    r.last_sent_at = r.last_sent_at.max(call.last_at);
                }
                None => recipients.push(Recipient {
                    recipient: name,
                    operations: vec![call.operation.clone()],
                    data: data.to_vec(),
                    purpose,
                    legal_basis: basis,
                    first_sent_at: call.first_at,
                    last_sent_at: call.last_at,
                }),
            }
        }

        let review_cases = own_cases
            .iter()
            .map(|c| {
                Ok(CaseReport {
                    id: c.id,
                    opened_by: c.opened_by.clone(),
                    opened_at: c.opened_at,
                    status: c.status.clone(),
                    statement: c.statement(&flow.cipher)?,
                    resolved_at: c.resolved_at,
                    resolution_outcome: c.resolution_outcome.clone(),
                    resolution_note: c.resolution_note.clone(),
                    resolution_reviewer: c.resolution_reviewer.clone(),
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;

        let last_call = own_calls.iter().map(|c| c.last_at).max();
        onboardings.push(OnboardingReport {
            id: o.id,
            reference: o.reference.clone(),
            status: if o.state == "decided" {
                "decided"
            } else {
                "processing"
            },
            created_at: o.created_at,
            decided_at: o.decided_at,
            decisions: own_decisions
                .iter()
                .map(|d| DecisionReport {
                    id: d.id,
                    decided_at: d.decided_at,
                    decided_by: d.decided_by.clone(),
                    reviewer: d.reviewer.clone(),
                    note: d.note.clone(),
                    outcome: d.outcome.clone(),
                    reasons: d.reasons.clone(),
                    policy_version: d.policy_version.clone(),
                })
                .collect(),
            data_held,
            data_erased,
            recipients,
            review_cases,
            retention: Retention {
                personal_data_until: until,
                provider_text_until: last_call.map(|at| retention_date(flow, at)),
                erased_by_retention_at: o.pii_erased_at,
                decisions: "kept as the record of automated decisions, without personal data \
                            once retention has erased it",
            },
        });
    }
    let indications = crate::store::fraud_indications::list(
        db,
        &crate::store::fraud_indications::Filter {
            cpf_hash: Some(request.cpf_hash.clone()),
            limit: 10_000,
            ..Default::default()
        },
    )
    .await?;
    let disclosed: Vec<_> = indications.iter().filter(|i| !i.confidential).collect();
    let shared: Vec<DateTime<Utc>> = disclosed.iter().filter_map(|i| i.registered_at).collect();
    let shared_with = match (shared.iter().min(), shared.iter().max()) {
        (Some(first), Some(last)) => vec![Recipient {
            recipient: "the fraud-indication sharing system",
            operations: vec!["fraud_indication.registered".to_owned()],
            data: vec!["cpf", "fraud_typology", "fraud_description"],
            purpose: "the registration of indications of fraud shared between financial \
                      institutions, within 24 hours (Resolução Conjunta nº 6/2023)",
            legal_basis: "LGPD Art. 7 II",
            first_sent_at: *first,
            last_sent_at: *last,
        }],
        _ => Vec::new(),
    };
    Ok(Report {
        request_id: request.id,
        kind: request.kind.clone(),
        cpf: Cpf::parse(&request.cpf(&flow.cipher)?)
            .map(|c| c.punctuated())
            .unwrap_or_default(),
        received_at: request.received_at,
        due_at: request.due_at,
        generated_at: Utc::now(),
        retention_days: flow.settings.retention.pii_days,
        onboardings,
        fraud_indications: disclosed
            .iter()
            .map(|i| IndicationReport {
                id: i.id,
                onboarding_id: i.onboarding_id,
                typology: i.typology.clone(),
                description: i.description.clone(),
                status: i.status.clone(),
                identified_at: i.identified_at,
                shared_at: i.registered_at,
            })
            .collect(),
        shared_with,
    })
}

fn has_coordinates(signals: Option<&Value>) -> bool {
    signals.is_some_and(|s| {
        !s.get("device_latitude").unwrap_or(&Value::Null).is_null()
            || !s.get("device_longitude").unwrap_or(&Value::Null).is_null()
    })
}
