//! An erasure request's work: what it erases at once, what it keeps sealed and why, and the
//! onboardings it erases once they are decided.

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::retention_date;
use crate::crypto::PiiCipher;
use crate::onboarding::error::FlowError;
use crate::onboarding::services::Services;
use crate::store::StoreError;
use crate::store::onboardings::PersonData;
use crate::store::subjects::{self as store, ErasureRow, Found, RequestRow};

/// The answer to an erasure request: what was erased where and when, what is kept and why, and
/// the onboardings that will be erased once decided.
#[derive(Debug, Clone, Serialize)]
pub struct ErasureAnswer {
    pub erased: Vec<Erased>,
    pub kept: Vec<Kept>,
    pub waiting: Vec<Waiting>,
}

/// One category erased from one onboarding.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = SubjectErasure)]
pub struct Erased {
    pub onboarding_id: Uuid,
    pub category: String,
    /// The columns it was stored in.
    pub erased_from: Vec<String>,
    pub erased_at: DateTime<Utc>,
    /// The subject request that erased it; null when retention did.
    #[schema(required = true)]
    pub request_id: Option<Uuid>,
}

/// Something kept after an erasure, and why.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Kept {
    pub item: &'static str,
    #[schema(value_type = Vec<String>)]
    pub stored_in: &'static [&'static str],
    pub reason: &'static str,
    /// When retention erases it (null: the record is kept, with no personal data left in it).
    #[schema(required = true)]
    pub until: Option<DateTime<Utc>>,
}

/// An onboarding the erasure covers that is not decided yet.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Waiting {
    pub onboarding_id: Uuid,
    pub state: String,
    pub erased_when: &'static str,
}

/// What an erasure request did and keeps, from what is stored.
pub async fn erasure_answer(
    flow: &Services,
    request: &RequestRow,
) -> Result<ErasureAnswer, FlowError> {
    let held = store::onboardings_of(&flow.db, &request.cpf_hash).await?;
    let ids: Vec<Uuid> = held.iter().map(|o| o.id).collect();
    let erased = store::erasures_of(&flow.db, &ids)
        .await?
        .iter()
        .filter(|e| e.request_id == request.id)
        .flat_map(erased_of)
        .collect();
    let until = held
        .iter()
        .filter_map(|o| o.decided_at)
        .max()
        .map(|at| retention_date(flow, at));
    let waiting = store::waiting_of(&flow.db, request.id)
        .await?
        .into_iter()
        .map(|(onboarding_id, state)| Waiting {
            onboarding_id,
            state,
            erased_when: "decided (by the policy, or by a reviewer when a case is open)",
        })
        .collect();
    Ok(ErasureAnswer {
        erased,
        kept: kept(until),
        waiting,
    })
}

pub(super) fn erased_of(row: &ErasureRow) -> Vec<Erased> {
    row.erased
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|item| Erased {
                    onboarding_id: row.onboarding_id,
                    category: item["category"].as_str().unwrap_or_default().to_owned(),
                    erased_from: item["erased_from"]
                        .as_array()
                        .map(|w| {
                            w.iter()
                                .filter_map(|v| v.as_str().map(str::to_owned))
                                .collect()
                        })
                        .unwrap_or_default(),
                    erased_at: row.erased_at,
                    request_id: Some(row.request_id),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// What an erasure keeps and why: the record of automated decisions (LGPD Art. 20, kept under
/// Art. 16 I) and of fraud prevention (Art. 11 II g; Lei 9.613/1998 Art. 10).
fn kept(until: Option<DateTime<Utc>>) -> Vec<Kept> {
    vec![
        Kept {
            item: "decisions",
            stored_in: &["decisions", "onboarding_events", "review_cases"],
            reason: "the record of each automated decision and of each reviewer's decision, with \
                     its reasons, evidence and policy version, which the person may contest and \
                     auditors must be able to explain (LGPD Art. 20; Art. 16 I)",
            until: None,
        },
        Kept {
            item: "cpf",
            stored_in: &["onboardings.pii_ciphertext"],
            reason: "sealed, it says whose decisions these are: fraud prevention and the record \
                     of account-opening checks (LGPD Art. 11 II g; Art. 16 I; Lei 9.613/1998 \
                     Art. 10)",
            until,
        },
        Kept {
            item: "link_keys",
            stored_in: &["onboardings.cpf_hash"],
            reason: "the CPF's keyed hash finds this record again (a later request, a fraud \
                     check) without unsealing anything (LGPD Art. 11 II g; Art. 16 I)",
            until,
        },
        Kept {
            item: "device_identifiers",
            stored_in: &[
                "onboardings.device",
                "onboardings.account_id",
                "onboardings.person_id",
            ],
            reason: "the device registered with QI Tech and the client's account ids, for the \
                     prevention of fraud in the account's later use (LGPD Art. 7 IX; Art. 11 II g)",
            until,
        },
        Kept {
            item: "device_signals",
            stored_in: &["onboardings.device", "decisions.evidence"],
            reason: "the phone's risk signals (without its location) the policy read: part of \
                     the evidence of the decision (LGPD Art. 20; Art. 16 I)",
            until: None,
        },
        Kept {
            item: "provider_call_log",
            stored_in: &["provider_calls"],
            reason: "which provider was asked what and when, with the codes veredito parsed: \
                     the evidence the decision rests on (LGPD Art. 16 I)",
            until: None,
        },
    ]
}

/// Erases one settled onboarding for `request_id`: its sealed personal data is re-sealed with
/// the CPF alone, and the owner's function removes the rest.
pub(super) async fn erase_one(
    tx: &mut crate::store::Tx,
    cipher: &PiiCipher,
    request_id: Uuid,
    onboarding: &Found,
) -> Result<Option<ErasureRow>, FlowError> {
    let (sealed, fields) = match (&onboarding.pii_key_id, &onboarding.pii_ciphertext) {
        (Some(key_id), Some(ciphertext)) => {
            let plain = cipher.decrypt(key_id, ciphertext, onboarding.id.as_bytes())?;
            let person: PersonData = serde_json::from_slice(&plain)
                .map_err(|e| StoreError::Corrupt(format!("sealed personal data: {e}")))?;
            let left = serde_json::to_vec(&person.cpf_only())
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            (
                Some(cipher.encrypt(&left, onboarding.id.as_bytes())?),
                person.erasable_fields(),
            )
        }
        _ => (None, Vec::new()),
    };
    Ok(store::erase(&mut **tx, request_id, onboarding.id, sealed, &fields).await?)
}

/// Called by the transaction that decides an onboarding (the policy's decision, or a
/// reviewer's): erases it for every erasure request that found it still undecided, once
/// nothing of the flow needs its data again.
pub async fn erase_when_decided(
    tx: &mut crate::store::Tx,
    flow: &Services,
    onboarding_id: Uuid,
) -> Result<(), FlowError> {
    let pending = store::pending_erasures(&mut **tx, onboarding_id).await?;
    if pending.is_empty() {
        return Ok(());
    }
    let Some(found) = store::found(tx, onboarding_id).await? else {
        return Ok(());
    };
    if !found.settled() {
        return Ok(());
    }
    // What the transaction keeps until its commit (the decision's timeline entry, the calls
    // that led to it) is written first: the timeline then reads decided, then erased, and those
    // calls are erased with the rest.
    tx.flush().await?;
    for request_id in pending {
        // The first erases; any other request finds nothing left and records so.
        let found = store::found(tx, onboarding_id)
            .await?
            .unwrap_or(found.clone());
        erase_one(tx, &flow.cipher, request_id, &found).await?;
        tracing::info!(%onboarding_id, %request_id, "erased at the person's request once decided");
    }
    Ok(())
}
