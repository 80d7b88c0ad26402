//! The indications a rejection makes: by the policy in the decision's transaction, or by a
//! reviewer's rejection that records fraud in the resolution's transaction.

use chrono::Utc;
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::{LONGEST_TEXT, REGISTERED, masked, share};
use crate::domain::FieldError;
use crate::domain::fraud::Typology;
use crate::onboarding::error::FlowError;
use crate::onboarding::services::Services;
use crate::policy::Verdict;
use crate::store::decisions::DecisionRow;
use crate::store::fraud_indications::{self as store};
use crate::store::onboardings::OnboardingRow;
use crate::store::{StoreError, Tx, onboardings};

/// The indication the policy makes when it rejects an onboarding for a reason of its
/// `fraud_indications` member: in the decision's own transaction, identified when decided.
pub async fn from_policy(
    tx: &mut Tx,
    flow: &Services,
    onboarding: &OnboardingRow,
    verdict: &Verdict,
    decision: &DecisionRow,
) -> Result<(), FlowError> {
    let policy = flow.policies.active();
    let Some(identified) = policy.fraud_indications.identify(verdict) else {
        return Ok(());
    };
    let Some(person) = onboarding.person(&flow.cipher)? else {
        tracing::warn!("a fraud rejection without personal data: no indication made");
        return Ok(());
    };
    let cnpj = flow.settings.institution.cnpj_digits();
    let made = store::insert(
        tx,
        &flow.cipher,
        store::NewIndication {
            id: Uuid::new_v4(),
            onboarding_id: Some(onboarding.id),
            cpf: &person.cpf,
            cpf_masked: &masked(&person.cpf),
            typology: identified.typology.as_str(),
            description: &format!(
                "Account opening rejected by the automatic decision: {}",
                identified.message
            ),
            evidence: json!({ "decision_id": decision.id, "reasons": decision.reason_codes }),
            institution: cnpj.as_deref(),
            identified_at: decision.decided_at,
            confidential: false,
            created_by: "policy",
        },
    )
    .await?;
    if let Some(row) = made {
        tx.event(
            onboarding.id,
            "fraud_indication_made",
            json!({ "indication_id": row.id, "typology": row.typology, "by": "policy" }),
        );
        tracing::info!(indication_id = %row.id, "fraud indication made by the policy");
        share(tx, flow, &row, REGISTERED).await?;
    }
    Ok(())
}

/// What a reviewer records with a rejection.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewerFraud {
    /// identity_theft, synthetic_identity, mule_account, document_fraud, account_takeover or other.
    pub typology: String,
    pub description: String,
}

impl ReviewerFraud {
    /// The typology and description, or what is wrong with them (fields under `fraud.`).
    pub fn parse(&self) -> Result<(Typology, String), Vec<FieldError>> {
        let mut errors = Vec::new();
        let typology = Typology::parse(&self.typology);
        if typology.is_none() {
            errors.push(FieldError::new("fraud.typology", Typology::EXPECTED));
        }
        let description = self.description.trim();
        if description.is_empty()
            || description.chars().count() > LONGEST_TEXT
            || description.contains('\0')
        {
            errors.push(FieldError::new(
                "fraud.description",
                format!("must have 1 to {LONGEST_TEXT} characters"),
            ));
        }
        match typology {
            Some(t) if errors.is_empty() => Ok((t, description.to_owned())),
            _ => Err(errors),
        }
    }
}

/// The indication a reviewer's rejection records, in the resolution's transaction; its evidence
/// is the reviewer's decision.
pub async fn from_reviewer(
    tx: &mut Tx,
    flow: &Services,
    onboarding_id: Uuid,
    decision_id: Uuid,
    reviewer: &str,
    typology: Typology,
    description: &str,
) -> Result<(), FlowError> {
    let Some(onboarding) = onboardings::get(&mut **tx, onboarding_id).await? else {
        return Err(StoreError::Corrupt("a case names no onboarding".into()).into());
    };
    let Some(person) = onboarding.person(&flow.cipher)? else {
        tracing::warn!("a reviewer's fraud without personal data: no indication made");
        return Ok(());
    };
    let cnpj = flow.settings.institution.cnpj_digits();
    let made = store::insert(
        tx,
        &flow.cipher,
        store::NewIndication {
            id: Uuid::new_v4(),
            onboarding_id: Some(onboarding_id),
            cpf: &person.cpf,
            cpf_masked: &masked(&person.cpf),
            typology: typology.as_str(),
            description,
            evidence: json!({ "decision_id": decision_id, "reasons": ["review.rejected"] }),
            institution: cnpj.as_deref(),
            identified_at: Utc::now(),
            confidential: false,
            created_by: reviewer,
        },
    )
    .await?;
    if let Some(row) = made {
        tx.event(
            onboarding_id,
            "fraud_indication_made",
            json!({ "indication_id": row.id, "typology": row.typology, "by": reviewer }),
        );
        share(tx, flow, &row, REGISTERED).await?;
    }
    Ok(())
}
