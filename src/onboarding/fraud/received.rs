//! Indications other institutions shared, imported in one statement for the policy to judge.

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::{MAX_RECEIVED, Outcome};
use crate::domain::fraud::Typology;
use crate::domain::{Cpf, FieldError};
use crate::onboarding::error::FlowError;
use crate::onboarding::services::Services;
use crate::store::fraud_indications::{self as store, Received};

/// One indication another institution shared, as the import takes it.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReceivedItem {
    pub source: String,
    pub external_id: String,
    pub cpf: String,
    pub typology: String,
    pub identified_at: DateTime<Utc>,
    #[serde(default)]
    pub withdrawn: bool,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReceivedBatch {
    /// 1 to 10,000 items.
    pub items: Vec<ReceivedItem>,
}

/// Imports received indications in one statement; a bad item refuses the whole call.
pub async fn import(
    flow: &Services,
    batch: ReceivedBatch,
    by: &str,
) -> Result<Outcome<store::Imported>, FlowError> {
    let mut errors = Vec::new();
    if batch.items.is_empty() || batch.items.len() > MAX_RECEIVED {
        errors.push(FieldError::new("items", "must hold 1 to 10,000 items"));
    }
    let id_ok = |v: &str| !v.trim().is_empty() && v.chars().count() <= 255 && !v.contains('\0');
    let mut items = Vec::with_capacity(batch.items.len());
    for (i, item) in batch.items.iter().enumerate() {
        if !id_ok(&item.source) {
            errors.push(FieldError::new(
                format!("items[{i}].source"),
                "must have 1 to 255 characters",
            ));
        }
        if !id_ok(&item.external_id) {
            errors.push(FieldError::new(
                format!("items[{i}].external_id"),
                "must have 1 to 255 characters",
            ));
        }
        let cpf = Cpf::parse(&item.cpf);
        if let Err(e) = &cpf {
            errors.push(FieldError::new(format!("items[{i}].cpf"), e.to_string()));
        }
        let typology = Typology::parse(&item.typology);
        if typology.is_none() {
            errors.push(FieldError::new(
                format!("items[{i}].typology"),
                Typology::EXPECTED,
            ));
        }
        if errors.len() > 100 {
            break;
        }
        if let (Ok(cpf), Some(typology)) = (cpf, typology) {
            items.push(Received {
                source: item.source.trim().to_owned(),
                external_id: item.external_id.trim().to_owned(),
                cpf_hash: flow.cipher.cpf_hash(&cpf.digits()),
                typology: typology.as_str().to_owned(),
                identified_at: item.identified_at,
                withdrawn: item.withdrawn,
            });
        }
    }
    if !errors.is_empty() {
        return Ok(Outcome::Invalid(errors));
    }
    let mut tx = crate::store::begin(&flow.db).await?;
    let imported = store::import(&mut tx, &items, by).await?;
    tx.commit().await?;
    tracing::info!(
        received = imported.received,
        already = imported.already_received,
        withdrawn = imported.withdrawn,
        "received fraud indications imported"
    );
    Ok(Outcome::Done(imported))
}
