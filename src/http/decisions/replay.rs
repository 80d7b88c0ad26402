//! Replay: what a candidate policy would have decided over stored decisions; nothing is
//! written.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::http::auth::{Caller, DECISIONS_READ};
use crate::http::error::{ApiError, FieldError};
use crate::http::json::JsonBody;
use crate::http::state::AppState;
use crate::onboarding::replay::ReplayReport;
use crate::policy::{Policy, Thresholds};

/// How many decisions a replay reads by default, and at most.
const REPLAY_DEFAULT_LIMIT: u32 = 10_000;
const REPLAY_MAX_LIMIT: u32 = 100_000;

#[utoipa::path(
    post,
    path = "/v1/decisions/replay",
    tag = "audit",
    operation_id = "replayDecisions",
    request_body(content = ReplayRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "What the candidate would have changed; nothing is written", body = ReplayReport),
        crate::http::problems::BodyRefusals,
        crate::http::problems::Refusals,
    ),
    security(("apiKey" = [])),
)]
pub(super) async fn replay(
    State(st): State<AppState>,
    caller: Caller,
    // Taken as a Result so a caller without the scope hears 403, whatever the body.
    body: Result<JsonBody<ReplayRequest>, ApiError>,
) -> Result<Response, ApiError> {
    caller.require(DECISIONS_READ)?;
    let request = body?.value.validate()?;
    let active = st.policies.active();
    // The candidate is the active version with other score thresholds; each stored decision
    // keeps its own deadlines (whether one passed is already in its evidence).
    let report = crate::onboarding::replay::run(
        &st.flow,
        request.from,
        request.to,
        request.limit,
        &request.version,
        |stored| Policy {
            outcomes: active.outcomes,
            memory: active.memory.clone(),
            fraud_indications: active.fraud_indications.clone(),
            version: request.version.clone(),
            thresholds: Thresholds {
                score_reject_max: request.score_reject_max,
                score_approve_min: request.score_approve_min,
                ..stored.unwrap_or(active.thresholds)
            },
        },
    )
    .await?;
    Ok(axum::Json(report).into_response())
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ReplayRequest {
    decided_from: DateTime<Utc>,
    decided_to: DateTime<Utc>,
    policy: CandidatePolicy,
    limit: Option<u32>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct CandidatePolicy {
    version: Option<String>,
    score_reject_max: i32,
    score_approve_min: i32,
}

struct ValidReplay {
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    version: String,
    score_reject_max: i32,
    score_approve_min: i32,
    limit: u32,
}

impl ReplayRequest {
    fn validate(self) -> Result<ValidReplay, ApiError> {
        let mut errors = Vec::new();
        if self.decided_from > self.decided_to {
            errors.push(FieldError::new(
                "decided_to",
                "must not be before decided_from",
            ));
        }
        if self.policy.score_reject_max >= self.policy.score_approve_min {
            errors.push(FieldError::new(
                "policy.score_reject_max",
                "must be below policy.score_approve_min",
            ));
        }
        for (field, value) in [
            ("policy.score_reject_max", self.policy.score_reject_max),
            ("policy.score_approve_min", self.policy.score_approve_min),
        ] {
            if !(-100..=100).contains(&value) {
                errors.push(FieldError::new(
                    field,
                    "must be between -100 and 100, the range of unico's score",
                ));
            }
        }
        let limit = self.limit.unwrap_or(REPLAY_DEFAULT_LIMIT);
        if !(1..=REPLAY_MAX_LIMIT).contains(&limit) {
            errors.push(FieldError::new(
                "limit",
                format!("must be from 1 to {REPLAY_MAX_LIMIT}"),
            ));
        }
        if !errors.is_empty() {
            return Err(ApiError::Validation(errors));
        }
        Ok(ValidReplay {
            from: self.decided_from,
            to: self.decided_to,
            version: self.policy.version.unwrap_or_else(|| "replay".to_owned()),
            score_reject_max: self.policy.score_reject_max,
            score_approve_min: self.policy.score_approve_min,
            limit,
        })
    }
}
