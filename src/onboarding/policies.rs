//! Policy versions in force: the configured policy seeds the first active version; drafts,
//! shadow and publication under four eyes; every replica reloads on NOTIFY.

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::domain::FieldError;
use crate::onboarding::error::FlowError;
use crate::onboarding::services::Services;
use crate::policy::Policy;
use crate::policy::document::PolicyDocument;
use crate::store::StoreError;
use crate::store::policies::{self, VersionRow};

/// Stores the configured policy as the first active version when there is none, then loads the
/// versions in force.
pub async fn seed_and_load(flow: &Services, configured: &Policy) -> Result<(), FlowError> {
    let mut conn = flow.db.acquire().await?;
    let document = PolicyDocument::of(configured, Some("from the configuration".into()));
    policies::seed(&mut conn, &document).await?;
    drop(conn);
    load(flow).await
}

/// Reads the active and the shadow version and puts them in force on this replica.
pub async fn load(flow: &Services) -> Result<(), FlowError> {
    let (active, shadow) = policies::in_force(&flow.db).await?;
    let Some(active) = active else {
        return Err(StoreError::Corrupt("no active policy version".into()).into());
    };
    let active = parse(&active)?;
    let shadow = shadow.as_ref().map(parse).transpose()?;
    tracing::info!(active = %active.version, shadow = ?shadow.as_ref().map(|p| &p.version), "policy versions in force");
    flow.policies.set(active, shadow);
    Ok(())
}

fn parse(row: &VersionRow) -> Result<Policy, FlowError> {
    row.document()?.parse().map_err(|errors| {
        StoreError::Corrupt(format!(
            "stored policy {} is invalid: {errors:?}",
            row.version
        ))
        .into()
    })
}

pub enum Drafted {
    Stored(VersionRow),
    Invalid(Vec<FieldError>),
    Exists,
}

pub async fn draft(
    flow: &Services,
    document: PolicyDocument,
    by: &str,
) -> Result<Drafted, FlowError> {
    let policy = match document.parse() {
        Ok(policy) => policy,
        Err(errors) => return Ok(Drafted::Invalid(errors)),
    };
    // A rule naming a list that does not exist would judge nothing: most likely a typo.
    let lists: Vec<String> = crate::store::lists::all(&flow.db)
        .await?
        .into_iter()
        .map(|l| l.name)
        .collect();
    let unknown: Vec<FieldError> = policy
        .memory
        .lists
        .iter()
        .enumerate()
        .filter(|(_, rule)| !lists.contains(&rule.list))
        .map(|(i, _)| {
            FieldError::new(
                format!("lists[{i}].list"),
                "names no list; create it through POST /v1/lists first",
            )
        })
        .collect();
    if !unknown.is_empty() {
        return Ok(Drafted::Invalid(unknown));
    }
    // Stored as parsed, so what is read back is what was validated.
    let mut document = PolicyDocument::of(&policy, document.note.clone());
    document.version = policy.version.clone();
    if !policies::insert_draft(&flow.db, &document, by).await? {
        return Ok(Drafted::Exists);
    }
    let row = policies::get(&flow.db, &policy.version)
        .await?
        .ok_or_else(|| StoreError::Corrupt("a draft just stored is gone".into()))?;
    Ok(Drafted::Stored(row))
}

pub enum Changed {
    Done(VersionRow),
    NotFound,
    /// Not in a state that allows it (publishing a retired version, shadowing the active one).
    NotAllowed(String),
    /// Four eyes: the key that created a version may not publish it.
    SameKey,
}

pub async fn shadow(flow: &Services, version: &str) -> Result<Changed, FlowError> {
    let mut tx = crate::store::begin(&flow.db).await?;
    let Some(row) = policies::get(&mut *tx, version).await? else {
        return Ok(Changed::NotFound);
    };
    if !policies::shadow(&mut tx, version).await? {
        return Ok(Changed::NotAllowed(format!(
            "a {} version cannot go into shadow",
            row.status
        )));
    }
    tx.commit().await?;
    load(flow).await?;
    finish(flow, version).await
}

pub async fn publish(flow: &Services, version: &str, by: &str) -> Result<Changed, FlowError> {
    let mut tx = crate::store::begin(&flow.db).await?;
    let Some(row) = policies::get(&mut *tx, version).await? else {
        return Ok(Changed::NotFound);
    };
    if row.created_by == by {
        return Ok(Changed::SameKey);
    }
    if !matches!(row.status.as_str(), "draft" | "shadow") {
        return Ok(Changed::NotAllowed(format!(
            "a {} version cannot be published",
            row.status
        )));
    }
    policies::publish(&mut tx, version, by).await?;
    tx.commit().await?;
    load(flow).await?;
    tracing::info!(version, by, "policy version published");
    finish(flow, version).await
}

async fn finish(flow: &Services, version: &str) -> Result<Changed, FlowError> {
    Ok(match policies::get(&flow.db, version).await? {
        Some(row) => Changed::Done(row),
        None => Changed::NotFound,
    })
}

/// The version in shadow's verdicts compared with the live ones over [from, to].
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ShadowReport {
    pub version: String,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// Live decisions the version in shadow judged too.
    pub evaluated: i64,
    /// Of those, the ones where both gave the same outcome.
    pub agreed: i64,
    /// How many decisions each pair of outcomes (live, shadow) counts.
    #[schema(inline)]
    pub pairs: Vec<Pair>,
    /// Decisions where the two disagreed, up to 100.
    #[schema(inline)]
    pub examples: Vec<Example>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Pair {
    pub live: String,
    pub shadow: String,
    pub count: i64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Example {
    pub decision_id: Uuid,
    pub live: String,
    pub shadow: String,
    /// The reason codes the version in shadow gave.
    pub reasons: Vec<String>,
}

pub async fn shadow_report(
    flow: &Services,
    version: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<ShadowReport, FlowError> {
    let pairs = policies::shadow_pairs(&flow.db, version, from, to).await?;
    let examples = policies::shadow_disagreements(&flow.db, version, from, to, 100).await?;
    let evaluated = pairs.iter().map(|(_, _, n)| n).sum();
    let agreed = pairs
        .iter()
        .filter(|(live, shadow, _)| live == shadow)
        .map(|(_, _, n)| n)
        .sum();
    Ok(ShadowReport {
        version: version.to_owned(),
        from,
        to,
        evaluated,
        agreed,
        pairs: pairs
            .into_iter()
            .map(|(live, shadow, count)| Pair {
                live,
                shadow,
                count,
            })
            .collect(),
        examples: examples
            .into_iter()
            .map(|row| Example {
                decision_id: row.decision_id,
                live: row.live_outcome,
                shadow: row.outcome,
                reasons: row.reason_codes,
            })
            .collect(),
    })
}
