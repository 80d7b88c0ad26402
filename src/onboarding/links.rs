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

/// For each of the onboarding's values, the other onboardings sharing it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = OnboardingLinks)]
pub struct Links {
    #[schema(inline)]
    pub items: Vec<KeyLinks>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct KeyLinks {
    pub key: LinkKey,
    /// Every onboarding sharing the value within the window; `onboardings` lists 50 at most
    pub count: i64,
    #[schema(inline)]
    pub onboardings: Vec<Linked>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Linked {
    pub id: Uuid,
    #[schema(required = true)]
    pub reference: Option<String>,
    pub created_at: DateTime<Utc>,
    #[schema(schema_with = status_schema)]
    pub status: &'static str,
    /// The latest decision's outcome; null while processing
    #[schema(schema_with = outcome_schema, required = true)]
    pub outcome: Option<String>,
    /// policy or reviewer; null while processing
    #[schema(required = true)]
    pub decided_by: Option<String>,
    /// The latest decision's reason codes
    pub reasons: Vec<String>,
    /// Masked; null once retention erased it
    #[schema(required = true)]
    pub cpf: Option<String>,
}

fn status_schema() -> utoipa::openapi::schema::Object {
    crate::domain::schema::one_of(&["processing", "decided"], None)
}

/// `outcome` is a text column; these are the values the store writes.
fn outcome_schema() -> utoipa::openapi::schema::Object {
    crate::domain::schema::one_of_or_null(&["approved", "rejected", "review", "retry"], None)
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
