//! Indications the compliance team makes for fraud found later, reads, alters and withdraws,
//! each change with its line of history and its sharing event.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::{
    CpfShown, IndicationView, LONGEST_TEXT, Outcome, REGISTERED, UPDATED, WITHDRAWN, masked, share,
};
use crate::domain::fraud::Typology;
use crate::domain::{Cpf, FieldError};
use crate::onboarding::error::FlowError;
use crate::onboarding::services::Services;
use crate::store::fraud_indications::{self as store, Filter, IndicationRow, Refusal};
use crate::store::{StoreError, decisions, onboardings};

/// `POST /v1/fraud-indications`: fraud found later.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewIndication {
    /// The onboarding the fraud was found in; or `cpf` alone.
    #[serde(default)]
    pub onboarding_id: Option<String>,
    #[serde(default)]
    pub cpf: Option<String>,
    pub typology: String,
    pub description: String,
    /// When the fraud was identified (RFC 3339, not in the future); default now.
    #[serde(default)]
    pub identified_at: Option<DateTime<Utc>>,
    /// Confidential under the anti-money-laundering rules: kept, never shared.
    #[serde(default)]
    pub confidential: bool,
}

/// `PATCH /v1/fraud-indications/{id}`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Alteration {
    #[serde(default)]
    pub typology: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    pub reason: String,
}

/// `POST /v1/fraud-indications/{id}/withdrawal`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Withdrawal {
    pub reason: String,
}

fn text(field: &str, value: &str, errors: &mut Vec<FieldError>) -> String {
    let value = value.trim();
    if value.is_empty() || value.chars().count() > LONGEST_TEXT || value.contains('\0') {
        errors.push(FieldError::new(
            field,
            format!("must have 1 to {LONGEST_TEXT} characters"),
        ));
    }
    value.to_owned()
}

async fn view_of(
    flow: &Services,
    row: IndicationRow,
    whole: bool,
) -> Result<IndicationView, FlowError> {
    let history = store::history(&flow.db, row.id).await?;
    let shown = if whole {
        CpfShown::Whole
    } else {
        CpfShown::Masked
    };
    Ok(IndicationView::of(row, history, &flow.cipher, shown))
}

/// Makes an indication for fraud found later, by the key `by`.
pub async fn create(
    flow: &Services,
    input: NewIndication,
    by: &str,
    whole_cpf: bool,
) -> Result<Outcome<IndicationView>, FlowError> {
    let mut errors = Vec::new();
    let typology = Typology::parse(&input.typology);
    if typology.is_none() {
        errors.push(FieldError::new("typology", Typology::EXPECTED));
    }
    let description = text("description", &input.description, &mut errors);
    let now = Utc::now();
    let identified_at = input.identified_at.unwrap_or(now);
    if identified_at > now + chrono::Duration::minutes(5) {
        errors.push(FieldError::new(
            "identified_at",
            "must not be in the future",
        ));
    }
    let onboarding_id = match input.onboarding_id.as_deref() {
        None => None,
        Some(text) => match Uuid::parse_str(text) {
            Ok(id) => Some(id),
            Err(_) => {
                errors.push(FieldError::new(
                    "onboarding_id",
                    "must be an onboarding's id",
                ));
                None
            }
        },
    };
    let cpf = match input.cpf.as_deref() {
        None => None,
        Some(text) => match Cpf::parse(text) {
            Ok(cpf) => Some(cpf),
            Err(e) => {
                errors.push(FieldError::new("cpf", e.to_string()));
                None
            }
        },
    };
    if input.onboarding_id.is_none() && input.cpf.is_none() {
        errors.push(FieldError::new(
            "onboarding_id",
            "onboarding_id or cpf is required",
        ));
    }
    if !errors.is_empty() {
        return Ok(Outcome::Invalid(errors));
    }
    let mut tx = crate::store::begin(&flow.db).await?;
    // The onboarding's CPF, and its latest decision as the evidence.
    let (digits, evidence) = match onboarding_id {
        Some(id) => {
            let Some(onboarding) = onboardings::get(&mut *tx, id).await? else {
                return Ok(Outcome::Invalid(vec![FieldError::new(
                    "onboarding_id",
                    "names no onboarding",
                )]));
            };
            let Some(person) = onboarding.person(&flow.cipher)? else {
                return Ok(Outcome::Invalid(vec![FieldError::new(
                    "onboarding_id",
                    "names an onboarding whose personal data retention erased; send cpf",
                )]));
            };
            if cpf.as_ref().is_some_and(|c| c.digits() != person.cpf) {
                return Ok(Outcome::Invalid(vec![FieldError::new(
                    "cpf",
                    "is not the CPF of the onboarding named",
                )]));
            }
            let decision = decisions::for_onboarding(&mut *tx, id).await?;
            let evidence = match decision {
                Some(d) => json!({ "decision_id": d.id, "reasons": d.reason_codes }),
                None => json!({ "decision_id": null, "reasons": [] }),
            };
            (person.cpf, evidence)
        }
        None => (
            cpf.as_ref().map(Cpf::digits).unwrap_or_default(),
            json!({ "decision_id": null, "reasons": [] }),
        ),
    };
    let cnpj = flow.settings.institution.cnpj_digits();
    let Some(row) = store::insert(
        &mut tx,
        &flow.cipher,
        store::NewIndication {
            id: Uuid::new_v4(),
            onboarding_id,
            cpf: &digits,
            cpf_masked: &masked(&digits),
            typology: typology.map_or("other", Typology::as_str),
            description: &description,
            evidence,
            institution: cnpj.as_deref(),
            identified_at,
            confidential: input.confidential,
            created_by: by,
        },
    )
    .await?
    else {
        return Err(StoreError::Corrupt("an indication was not stored".into()).into());
    };
    if let Some(id) = onboarding_id {
        tx.event(
            id,
            "fraud_indication_made",
            json!({ "indication_id": row.id, "typology": row.typology, "by": by }),
        );
    }
    share(&mut tx, flow, &row, REGISTERED).await?;
    tx.commit().await?;
    Ok(Outcome::Done(view_of(flow, row, whole_cpf).await?))
}

pub async fn get(
    flow: &Services,
    id: Uuid,
    whole_cpf: bool,
) -> Result<Option<IndicationView>, FlowError> {
    match store::get(&flow.db, id).await? {
        Some(row) => Ok(Some(view_of(flow, row, whole_cpf).await?)),
        None => Ok(None),
    }
}

/// A page of indications as the filter asks.
pub async fn list(
    flow: &Services,
    filter: &Filter,
    whole_cpf: bool,
) -> Result<Vec<IndicationView>, FlowError> {
    let rows = store::list(&flow.db, filter).await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        out.push(view_of(flow, row, whole_cpf).await?);
    }
    Ok(out)
}

/// The keyed hash a CPF filter searches.
pub fn cpf_hash(flow: &Services, cpf: &Cpf) -> Vec<u8> {
    flow.cipher.cpf_hash(&cpf.digits())
}

pub async fn alter(
    flow: &Services,
    id: Uuid,
    input: Alteration,
    by: &str,
    whole_cpf: bool,
) -> Result<Outcome<IndicationView>, FlowError> {
    let mut errors = Vec::new();
    let typology = match input.typology.as_deref() {
        None => None,
        Some(t) => {
            let parsed = Typology::parse(t);
            if parsed.is_none() {
                errors.push(FieldError::new("typology", Typology::EXPECTED));
            }
            parsed
        }
    };
    let description = input
        .description
        .as_deref()
        .map(|d| text("description", d, &mut errors));
    let reason = text("reason", &input.reason, &mut errors);
    if typology.is_none() && description.is_none() && errors.is_empty() {
        errors.push(FieldError::new(
            "typology",
            "typology or description is required",
        ));
    }
    if !errors.is_empty() {
        return Ok(Outcome::Invalid(errors));
    }
    let mut tx = crate::store::begin(&flow.db).await?;
    let row = match store::alter(
        &mut tx,
        id,
        typology.map(Typology::as_str),
        description.as_deref(),
        by,
        &reason,
    )
    .await?
    {
        Ok(row) => row,
        Err(Refusal::NotFound) => return Ok(Outcome::NotFound),
        Err(refusal) => return Ok(Outcome::Refused(refusal)),
    };
    share(&mut tx, flow, &row, UPDATED).await?;
    tx.commit().await?;
    Ok(Outcome::Done(view_of(flow, row, whole_cpf).await?))
}

pub async fn withdraw(
    flow: &Services,
    id: Uuid,
    input: Withdrawal,
    by: &str,
    whole_cpf: bool,
) -> Result<Outcome<IndicationView>, FlowError> {
    let mut errors = Vec::new();
    let reason = text("reason", &input.reason, &mut errors);
    if !errors.is_empty() {
        return Ok(Outcome::Invalid(errors));
    }
    let mut tx = crate::store::begin(&flow.db).await?;
    let row = match store::withdraw(&mut tx, id, by, &reason).await? {
        Ok(row) => row,
        Err(Refusal::NotFound) => return Ok(Outcome::NotFound),
        Err(refusal) => return Ok(Outcome::Refused(refusal)),
    };
    share(&mut tx, flow, &row, WITHDRAWN).await?;
    tx.commit().await?;
    Ok(Outcome::Done(view_of(flow, row, whole_cpf).await?))
}
