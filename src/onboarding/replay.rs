//! Replay: stored automatic decisions judged again under another policy, oldest first, nothing
//! written. What each decision would have been, and how many would change.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::domain::evidence::Evidence;
use crate::onboarding::error::FlowError;
use crate::onboarding::services::Services;
use crate::policy::{Outcome, Policy, Thresholds};
use crate::store::audit::{self, Cursor};

const BATCH: i64 = 1000;

/// Changes listed in full; past this they are only counted.
const MAX_CHANGES: usize = 1000;

/// What a policy would have decided over stored automatic decisions; nothing is written.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = ReplayResult)]
pub struct ReplayReport {
    /// The version replayed (a candidate's own label for `POST /v1/decisions/replay`).
    pub policy_version: String,
    pub evaluated: u64,
    /// Decisions whose outcome would differ under the candidate policy.
    pub changed: u64,
    /// Same outcome, but a different set of reasons (e.g. score.uncertain behind a review).
    pub reasons_changed: u64,
    /// Stored evidence that could not be read back (an older evidence shape); not evaluated.
    pub unreadable: u64,
    /// False when `limit` stopped the replay before the end of the range.
    pub complete: bool,
    /// The changed decisions counted by `stored->replayed` outcome, e.g. `review->approved`.
    pub by_transition: BTreeMap<String, u64>,
    /// The changed decisions, oldest first, up to 1000.
    #[schema(inline)]
    pub changes: Vec<ReplayChange>,
    /// True when more decisions changed than `changes` lists.
    pub changes_truncated: bool,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReplayChange {
    pub decision_id: Uuid,
    pub onboarding_id: Uuid,
    pub decided_at: DateTime<Utc>,
    pub stored_outcome: String,
    pub replayed_outcome: &'static str,
    /// The stored decision's reason codes.
    pub stored_reasons: Vec<String>,
    /// The reason codes the replayed policy gives.
    pub replayed_reasons: Vec<String>,
}

/// Gives `evidence` the risk-memory figures `policy`'s rules need. Those the live path took
/// serve when they answer every rule; otherwise they are taken again from the store as they
/// stood then (when the live path took its own, or at the decision for one made before risk
/// memory existed): onboardings stored up to this one, entries live then, never what came later.
async fn recall(
    flow: &Services,
    policy: &Policy,
    onboarding_id: Uuid,
    decided_at: DateTime<Utc>,
    evidence: &mut Evidence,
) -> Result<(), FlowError> {
    let questions = policy.memory.questions();
    if questions.is_empty() {
        return Ok(());
    }
    if evidence.memory.as_ref().is_some_and(|figures| {
        figures.answers(
            &questions.lists,
            &questions.velocity,
            &questions.linked,
            &questions.shared,
        )
    }) {
        return Ok(());
    }
    let as_of = evidence.memory.as_ref().map_or(decided_at, |m| m.as_of);
    let figures =
        crate::store::links::figures_as_of(&flow.reads, onboarding_id, as_of, &questions).await?;
    evidence.memory = Some(figures);
    Ok(())
}

/// Judges the automatic decisions of [from, to] under `policy_for(stored thresholds)`, up to
/// `limit` of them. At most `api.max_replays` run at once on a replica, whoever asks (the API's
/// replays, a version's, the console's policies page); past it `FlowError::ReplaysBusy`.
pub async fn run(
    flow: &Services,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    limit: u32,
    label: &str,
    policy_for: impl Fn(Option<Thresholds>) -> Policy,
) -> Result<ReplayReport, FlowError> {
    let _turn = flow
        .replays
        .clone()
        .try_acquire_owned()
        .map_err(|_| FlowError::ReplaysBusy)?;
    let mut report = ReplayReport {
        policy_version: label.to_owned(),
        evaluated: 0,
        changed: 0,
        reasons_changed: 0,
        unreadable: 0,
        complete: true,
        by_transition: BTreeMap::new(),
        changes: Vec::new(),
        changes_truncated: false,
    };
    let mut after = None;
    let mut read: u32 = 0;
    loop {
        let batch = i64::from((limit - read).min(BATCH as u32) + 1);
        let rows = audit::replay_page(&flow.reads, from, to, after, batch).await?;
        let fetched = rows.len();
        for row in rows {
            if read == limit {
                report.complete = false;
                break;
            }
            read += 1;
            after = Some(Cursor {
                decided_at: row.decided_at,
                id: row.id,
            });
            let Ok(mut evidence) = serde_json::from_value::<Evidence>(row.evidence) else {
                report.unreadable += 1;
                continue;
            };
            let stored: Option<Thresholds> = serde_json::from_value(row.thresholds).ok();
            let live = Outcome::parse(&row.outcome);
            let policy = policy_for(stored);
            recall(
                flow,
                &policy,
                row.onboarding_id,
                row.decided_at,
                &mut evidence,
            )
            .await?;
            let verdict = policy.judge(&evidence, live);
            report.evaluated += 1;
            let replayed: Vec<String> = verdict.reasons.iter().map(|r| r.code.clone()).collect();
            if verdict.outcome.as_str() != row.outcome {
                report.changed += 1;
                *report
                    .by_transition
                    .entry(format!("{}->{}", row.outcome, verdict.outcome.as_str()))
                    .or_default() += 1;
                if report.changes.len() < MAX_CHANGES {
                    report.changes.push(ReplayChange {
                        decision_id: row.id,
                        onboarding_id: row.onboarding_id,
                        decided_at: row.decided_at,
                        stored_outcome: row.outcome,
                        replayed_outcome: verdict.outcome.as_str(),
                        stored_reasons: row.reason_codes,
                        replayed_reasons: replayed,
                    });
                } else {
                    report.changes_truncated = true;
                }
            } else if replayed != row.reason_codes {
                report.reasons_changed += 1;
            }
        }
        // One row more than needed is always asked for: it tells whether the limit cut the range.
        if (fetched as i64) < batch || !report.complete {
            break;
        }
    }
    Ok(report)
}
