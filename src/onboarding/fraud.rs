//! Fraud indications (Resolução Conjunta nº 6/2023): made by the policy in the decision's own
//! transaction, by a reviewer's rejection that records fraud, or by the compliance team for
//! fraud found later; altered and withdrawn with a line of history each; shared with the
//! sharing system through the outbox unless confidential; counted for the monthly declaration.
//! Indications other institutions shared are imported here and judged by the policy.

use chrono::{DateTime, Datelike, FixedOffset, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::crypto::PiiCipher;
use crate::domain::fraud::Typology;
use crate::domain::{Cpf, FieldError};
use crate::onboarding::error::FlowError;
use crate::onboarding::services::Services;
use crate::policy::Verdict;
use crate::store::decisions::DecisionRow;
use crate::store::fraud_indications::{
    self as store, Filter, HistoryRow, IndicationRow, MonthFigures, Received, Refusal,
};
use crate::store::onboardings::OnboardingRow;
use crate::store::{StoreError, Tx, callbacks, decisions, onboardings};

pub const REGISTERED: &str = "fraud_indication.registered";
pub const UPDATED: &str = "fraud_indication.updated";
pub const WITHDRAWN: &str = "fraud_indication.withdrawn";

/// Who is recorded for what the sharing system acknowledged.
pub const SHARING_SYSTEM: &str = "fraud_sharing";
const LONGEST_TEXT: usize = 2000;
/// Received indications one call may carry.
pub const MAX_RECEIVED: usize = 10_000;

/// An indication as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct IndicationView {
    pub id: Uuid,
    pub onboarding_id: Option<Uuid>,
    /// Masked, unless the reader may see personal data; the sharing system gets it whole.
    pub cpf: Option<String>,
    pub typology: String,
    pub description: String,
    pub evidence: Value,
    pub activity: String,
    pub institution: Option<String>,
    pub identified_at: DateTime<Utc>,
    pub registered_at: Option<DateTime<Utc>>,
    pub status: String,
    pub confidential: bool,
    pub created_by: String,
    /// Pending more than 24 hours after it was identified.
    pub overdue: bool,
    pub history: Vec<HistoryRow>,
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

/// What a call on an indication came to.
pub enum Outcome<T> {
    Done(T),
    NotFound,
    Invalid(Vec<FieldError>),
    Refused(Refusal),
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

/// Brasília's offset: UTC-3 all year (no daylight saving time since 2019).
fn brasilia() -> FixedOffset {
    const BRT: FixedOffset = match FixedOffset::west_opt(3 * 3600) {
        Some(offset) => offset,
        None => panic!("UTC-3 is a valid offset"),
    };
    BRT
}

/// The bounds of a calendar month in Brasília, from `YYYY-MM`.
pub fn month_bounds(text: &str) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    let (year, month) = text.split_once('-')?;
    if year.len() != 4 || month.len() != 2 {
        return None;
    }
    let (year, month): (i32, u32) = (year.parse().ok()?, month.parse().ok()?);
    let start = brasilia()
        .with_ymd_and_hms(year, month, 1, 0, 0, 0)
        .single()?;
    let (next_year, next_month) = if month == 12 {
        (year + 1, 1)
    } else {
        (year, month + 1)
    };
    let end = brasilia()
        .with_ymd_and_hms(next_year, next_month, 1, 0, 0, 0)
        .single()?;
    Some((start.with_timezone(&Utc), end.with_timezone(&Utc)))
}

/// The month's figures for the declaration of conformity.
#[derive(Debug, Clone, Serialize)]
pub struct MonthReport {
    pub month: String,
    pub identified: i64,
    pub registered_within_24h: i64,
    pub registered_late: i64,
    pub pending: i64,
    pub withdrawn: i64,
    pub confidential: i64,
    pub late: Vec<Uuid>,
}

pub async fn report(flow: &Services, month: &str) -> Result<Option<MonthReport>, FlowError> {
    let Some((from, to)) = month_bounds(month) else {
        return Ok(None);
    };
    let MonthFigures {
        identified,
        registered_within_24h,
        registered_late,
        pending,
        withdrawn,
        confidential,
        late,
    } = store::month(&flow.db, from, to).await?;
    let start = from.with_timezone(&brasilia());
    Ok(Some(MonthReport {
        month: format!("{:04}-{:02}", start.year(), start.month()),
        identified,
        registered_within_24h,
        registered_late,
        pending,
        withdrawn,
        confidential,
        late,
    }))
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_month_is_brasilias_calendar_month() {
        let (from, to) = month_bounds("2026-11").unwrap();
        assert_eq!(from.to_rfc3339(), "2026-11-01T03:00:00+00:00");
        assert_eq!(to.to_rfc3339(), "2026-12-01T03:00:00+00:00");
        let (_, to) = month_bounds("2026-12").unwrap();
        assert_eq!(to.to_rfc3339(), "2027-01-01T03:00:00+00:00");
        for bad in ["2026-13", "2026-1", "26-11", "2026/11", "", "2026-00"] {
            assert!(month_bounds(bad).is_none(), "{bad}");
        }
    }
}
