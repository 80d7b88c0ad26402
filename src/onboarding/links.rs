//! The onboardings linked to one by each of its values, as a reviewer or an auditor sees them:
//! CPFs masked, newest first, a bounded number per key with the count of all.

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::domain::{Cpf, LinkKey};
use crate::onboarding::error::FlowError;
use crate::onboarding::services::Services;
use crate::store::links;

/// Linked onboardings listed per key at most.
pub const PER_KEY: i64 = 50;

#[derive(Debug, Serialize)]
pub struct Links {
    pub items: Vec<KeyLinks>,
}

#[derive(Debug, Serialize)]
pub struct KeyLinks {
    pub key: LinkKey,
    pub count: i64,
    pub onboardings: Vec<Linked>,
}

#[derive(Debug, Serialize)]
pub struct Linked {
    pub id: Uuid,
    pub reference: Option<String>,
    pub created_at: DateTime<Utc>,
    pub status: &'static str,
    pub outcome: Option<String>,
    pub decided_by: Option<String>,
    pub reasons: Vec<String>,
    /// Masked; null once retention erased it.
    pub cpf: Option<String>,
}

/// None when the onboarding does not exist.
pub async fn of(flow: &Services, id: Uuid, window_secs: i64) -> Result<Option<Links>, FlowError> {
    if crate::store::onboardings::state(&flow.db, id)
        .await?
        .is_none()
    {
        return Ok(None);
    }
    let rows = links::linked(&flow.db, id, window_secs, PER_KEY).await?;
    let mut items: Vec<KeyLinks> = links::keys_of(&flow.db, id)
        .await?
        .iter()
        .filter_map(|k| LinkKey::parse(k))
        .map(|key| KeyLinks {
            key,
            count: 0,
            onboardings: Vec::new(),
        })
        .collect();
    items.sort_by_key(|k| k.key);
    for row in rows {
        let Some(key) = LinkKey::parse(&row.key) else {
            continue;
        };
        let cpf = row
            .person(&flow.cipher)?
            .and_then(|p| Cpf::parse(&p.cpf).ok())
            .map(|cpf| cpf.masked());
        let linked = Linked {
            id: row.id,
            reference: row.reference,
            created_at: row.created_at,
            status: if row.state == "decided" {
                "decided"
            } else {
                "processing"
            },
            outcome: row.outcome,
            decided_by: row.decided_by,
            reasons: row.reason_codes.unwrap_or_default(),
            cpf,
        };
        if let Some(of_key) = items.iter_mut().find(|k| k.key == key) {
            of_key.count = row.count;
            of_key.onboardings.push(linked);
        }
    }
    Ok(Some(Links { items }))
}
