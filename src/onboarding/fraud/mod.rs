//! Fraud indications (Resolução Conjunta nº 6/2023): made by the policy in the decision's own
//! transaction, by a reviewer's rejection that records fraud, or by the compliance team for
//! fraud found later; altered and withdrawn with a line of history each; shared with the
//! sharing system through the outbox unless confidential; counted for the monthly declaration.
//! Indications other institutions shared are imported here and judged by the policy.
//!
//! This file holds what every path shares: the view, the sharing event and its acknowledgement.
//! `made` holds the indications a rejection makes, `compliance` those the compliance team
//! makes, alters and withdraws, `report` the monthly declaration, `received` the import.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::crypto::PiiCipher;
use crate::domain::{Cpf, FieldError};
use crate::onboarding::error::FlowError;
use crate::onboarding::services::Services;
use crate::store::fraud_indications::{self as store, HistoryRow, IndicationRow, Refusal};
use crate::store::{Tx, callbacks};

mod compliance;
mod made;
mod received;
mod report;

pub use compliance::{
    Alteration, NewIndication, Withdrawal, alter, cpf_hash, create, get, list, withdraw,
};
pub use made::{ReviewerFraud, from_policy, from_reviewer};
pub use received::{ReceivedBatch, ReceivedItem, import};
pub use report::{MonthReport, month_bounds, report};

pub const REGISTERED: &str = "fraud_indication.registered";
pub const UPDATED: &str = "fraud_indication.updated";
pub const WITHDRAWN: &str = "fraud_indication.withdrawn";

/// Who is recorded for what the sharing system acknowledged.
pub const SHARING_SYSTEM: &str = "fraud_sharing";
const LONGEST_TEXT: usize = 2000;
/// Received indications one call may carry.
pub const MAX_RECEIVED: usize = 10_000;

/// An indication as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = FraudIndication)]
pub struct IndicationView {
    pub id: Uuid,
    #[schema(required = true)]
    pub onboarding_id: Option<Uuid>,
    /// Masked (***.444.777-**) unless the key has pii:read
    // The sharing system's copy leaves it out until the delivery puts it back, whole.
    #[schema(required = true)]
    pub cpf: Option<String>,
    #[schema(value_type = crate::domain::fraud::Typology, inline)]
    pub typology: String,
    pub description: String,
    #[schema(schema_with = evidence_schema)]
    pub evidence: Value,
    pub activity: String,
    /// institution.cnpj, 14 digits
    #[schema(required = true)]
    pub institution: Option<String>,
    pub identified_at: DateTime<Utc>,
    /// When the sharing system first answered 2xx
    #[schema(required = true)]
    pub registered_at: Option<DateTime<Utc>>,
    #[schema(schema_with = status_schema)]
    pub status: String,
    pub confidential: bool,
    /// policy, or the name of the key that made it
    pub created_by: String,
    /// Pending more than 24 hours after identified_at (never for a confidential one)
    pub overdue: bool,
    pub history: Vec<HistoryRow>,
}

/// What every writer puts in `evidence`.
fn evidence_schema() -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, SchemaType, Type};
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .description(Some(
            "The decision the indication rests on and that decision's reason codes; \
             decision_id is null when there is none",
        ))
        .property(
            "decision_id",
            ObjectBuilder::new()
                .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid))),
        )
        .property(
            "reasons",
            utoipa::openapi::schema::ArrayBuilder::new()
                .items(ObjectBuilder::new().schema_type(Type::String)),
        )
        .build()
}

/// The statuses the table allows.
fn status_schema() -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(["pending", "registered", "withdrawn"]))
        .build()
}

/// How the CPF is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CpfShown {
    Masked,
    Whole,
    /// Left out (the outbox's copy: the delivery puts it back).
    Absent,
}

impl IndicationView {
    pub fn of(
        row: IndicationRow,
        history: Vec<HistoryRow>,
        cipher: &PiiCipher,
        cpf: CpfShown,
    ) -> IndicationView {
        let cpf = match cpf {
            CpfShown::Masked => Some(row.cpf_masked.clone()),
            CpfShown::Absent => None,
            CpfShown::Whole => match row.cpf(cipher) {
                Ok(digits) => Some(digits),
                Err(e) => {
                    tracing::warn!(error = %e, indication_id = %row.id, "an indication's CPF could not be read");
                    Some(row.cpf_masked.clone())
                }
            },
        };
        IndicationView {
            id: row.id,
            onboarding_id: row.onboarding_id,
            cpf,
            typology: row.typology,
            description: row.description,
            evidence: row.evidence,
            activity: row.activity,
            institution: row.institution,
            identified_at: row.identified_at,
            registered_at: row.registered_at,
            status: row.status,
            confidential: row.confidential,
            created_by: row.created_by,
            overdue: row.overdue,
            history,
        }
    }
}

/// Writes the sharing event of `row` as it stands, in the caller's transaction: nothing when it
/// is confidential or no sharing system is configured.
async fn share(
    tx: &mut Tx,
    flow: &Services,
    row: &IndicationRow,
    kind: &str,
) -> Result<(), FlowError> {
    if row.confidential || flow.fraud_sharing.is_none() {
        return Ok(());
    }
    let history = store::history(&mut **tx, row.id).await?;
    let view = IndicationView::of(row.clone(), history, &flow.cipher, CpfShown::Absent);
    let data = serde_json::to_value(view).unwrap_or(Value::Null);
    callbacks::enqueue_sharing(tx, kind, row.id, row.onboarding_id, data).await?;
    Ok(())
}

/// A sharing event's body with the indication's CPF unsealed into `data.cpf`, whole, as the
/// sharing system must receive it.
pub async fn with_cpf(
    flow: &Services,
    indication_id: Uuid,
    mut body: Value,
) -> Result<Value, FlowError> {
    let Some(row) = store::get(&flow.db, indication_id).await? else {
        return Ok(body);
    };
    let cpf = row.cpf(&flow.cipher)?;
    if let Some(data) = body.get_mut("data").and_then(Value::as_object_mut) {
        data.insert("cpf".into(), json!(cpf));
    }
    Ok(body)
}

/// The sharing system acknowledged an event of the indication.
pub async fn acknowledged(tx: &mut Tx, indication_id: Uuid) -> Result<(), FlowError> {
    store::registered(tx, indication_id, SHARING_SYSTEM).await?;
    Ok(())
}

fn masked(digits: &str) -> String {
    Cpf::parse(digits).map_or_else(|_| "***.***.***-**".to_owned(), |c| c.masked())
}

/// What a call on an indication came to.
pub enum Outcome<T> {
    Done(T),
    NotFound,
    Invalid(Vec<FieldError>),
    Refused(Refusal),
}
