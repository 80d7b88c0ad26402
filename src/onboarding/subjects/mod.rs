//! The person's rights (LGPD Art. 18 and 19), as the data-protection officer exercises them for
//! the person: an access request answered by a report of everything held, built from what is
//! stored, and an erasure request that removes at once what no legal basis keeps, and keeps,
//! sealed, what the record of automated decisions and fraud prevention needs. An onboarding
//! still being decided (by the flow or by a reviewer) keeps what its decision needs until it is
//! decided; the transaction that decides it erases it.
//!
//! This file receives a request of either kind; `erasure` erases and answers, `report` builds
//! the access report, `recipients` says what each provider receives and why.

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use crate::domain::cpf::Cpf;
use crate::onboarding::error::FlowError;
use crate::onboarding::services::Services;
use crate::store::StoreError;
use crate::store::subjects::{self as store, RequestRow};

mod erasure;
mod recipients;
mod report;

use erasure::erase_one;
pub use erasure::{Erased, ErasureAnswer, Kept, Waiting, erase_when_decided, erasure_answer};
pub use report::{
    CaseReport, DecisionReport, Held, IndicationReport, OnboardingReport, Recipient, Report,
    Retention, report,
};

/// The two kinds of request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Access,
    Erasure,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Access => "access",
            Kind::Erasure => "erasure",
        }
    }
}

/// A request as the officer sends it, already validated.
pub struct NewRequest<'a> {
    pub cpf: &'a Cpf,
    pub kind: Kind,
    pub received_at: DateTime<Utc>,
    pub note: Option<&'a str>,
    /// The key's name.
    pub by: &'a str,
}

/// What a stored request led to.
pub struct Received {
    pub request: RequestRow,
    /// For an erasure: what it did at once, and what waits for a decision.
    pub erasure: Option<ErasureAnswer>,
}

/// Stores the request. An erasure also erases, in the same transaction, every onboarding of
/// the CPF that is settled, marks the others to be erased when decided, and is answered at once.
pub async fn receive(flow: &Services, new: NewRequest<'_>) -> Result<Received, FlowError> {
    let id = Uuid::new_v4();
    let mut tx = crate::store::begin(&flow.db).await?;
    let cpf = new.cpf.digits();
    let request = store::insert(
        &mut tx,
        &flow.cipher,
        store::NewRequest {
            id,
            kind: new.kind.as_str(),
            cpf: &cpf,
            note: new.note,
            received_at: new.received_at,
            created_by: new.by,
        },
    )
    .await?;
    if new.kind == Kind::Access {
        tx.commit().await?;
        return Ok(Received {
            request,
            erasure: None,
        });
    }
    let found = store::lock_onboardings_of(&mut tx, &request.cpf_hash).await?;
    for onboarding in &found {
        store::cover(&mut *tx, id, onboarding.id, &onboarding.state).await?;
        if onboarding.settled() {
            erase_one(&mut tx, &flow.cipher, id, onboarding).await?;
        }
    }
    store::answer(&mut *tx, id, new.by, "erasure").await?;
    tx.commit().await?;
    let request = store::get(&flow.db, id)
        .await?
        .ok_or_else(|| StoreError::Corrupt("a request just stored is missing".into()))?;
    let answer = erasure_answer(flow, &request).await?;
    Ok(Received {
        request,
        erasure: Some(answer),
    })
}

/// When retention erases the personal data of an onboarding decided at `decided_at`.
pub fn retention_date(flow: &Services, decided_at: DateTime<Utc>) -> DateTime<Utc> {
    decided_at + Duration::days(i64::from(flow.settings.retention.pii_days))
}

/// Records the report's read as the request's answer (the first read only).
pub async fn answered_by_report(
    flow: &Services,
    request_id: Uuid,
    by: &str,
) -> Result<(), FlowError> {
    Ok(store::answer(&flow.db, request_id, by, "report").await?)
}
