//! A decision as shown in a list, and explained whole: the rules it read, the evidence, the
//! timeline and the providers' calls.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::domain::Cpf;
use crate::domain::evidence::RiskSignals;
use crate::http::auth::{Caller, DECISIONS_READ, PII_READ};
use crate::http::error::ApiError;
use crate::http::state::AppState;
use crate::store::audit::{self, AuditRow};
use crate::store::{calls, events};

#[utoipa::path(
    get,
    path = "/v1/decisions/{id}",
    tag = "audit",
    operation_id = "explainDecision",
    params(
        ("id" = String, Path, description = "The decision id (a UUID)"),
    ),
    responses(
        (status = 200, description = "The decision explained", body = Explanation),
        crate::http::problems::NotFound,
        crate::http::problems::Refusals,
    ),
    security(("apiKey" = [])),
)]
pub(super) async fn show(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    caller.require(DECISIONS_READ)?;
    let id = Uuid::parse_str(&id).map_err(|_| ApiError::NotFound("decision"))?;
    let looked_at = json!({ "decision_id": id });
    audit::record_search(&st.db, &caller.name, "GET /v1/decisions/{id}", &looked_at).await?;
    let row = audit::get(&st.db, id)
        .await?
        .ok_or(ApiError::NotFound("decision"))?;
    let explanation = Explanation::load(&st, row, caller.has(PII_READ)).await?;
    Ok(axum::Json(explanation).into_response())
}

/// A decision as a search lists it, and as an explanation begins.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Decision)]
pub struct DecisionItem {
    pub id: Uuid,
    pub onboarding_id: Uuid,
    #[schema(required = true)]
    pub reference: Option<String>,
    /// Masked (***.444.777-**) unless the key has pii:read; null once erased by retention
    #[schema(required = true)]
    pub cpf: Option<String>,
    /// Only with pii:read; null once erased, by retention or at the person's request
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub name: Option<Option<String>>,
    pub outcome: String,
    #[schema(value_type = Vec<crate::policy::Reason>)]
    pub reasons: Value,
    pub policy_version: String,
    #[schema(value_type = Object)]
    pub thresholds: Value,
    /// Where unico's process stood when the policy looked: `state` (not_run, received,
    /// timed_out, capture_refused) with, once unico answered, its fields as in Biometrics; null
    /// when the evidence holds none
    #[schema(value_type = Option<Object>, required = true)]
    pub biometrics: Value,
    /// QI Tech's answer as stored, with the phone's risk flags the policy saw
    #[schema(value_type = Object)]
    pub device: Value,
    pub created_at: DateTime<Utc>,
    pub decided_at: DateTime<Utc>,
    #[schema(schema_with = decided_by)]
    pub decided_by: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String, required = false)]
    pub reviewer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String, required = false)]
    pub note: Option<String>,
}

/// `decided_by` is a text column; these are the two values the store writes.
fn decided_by() -> utoipa::openapi::schema::Object {
    crate::domain::schema::one_of(
        &["policy", "reviewer"],
        Some("policy, or reviewer (with the reviewer and the note)"),
    )
}

impl DecisionItem {
    pub(crate) fn new(st: &AppState, row: &AuditRow, pii: bool) -> Self {
        let person = match row.person(&st.cipher) {
            Ok(person) => person,
            Err(e) => {
                // One unreadable row (a retired key still in use) must not hide every other
                // decision from an auditor; it shows as erased and is logged for the operators.
                tracing::error!(decision_id = %row.id, error = %e, "personal data of a decision cannot be decrypted");
                None
            }
        };
        let cpf = person.as_ref().and_then(|p| Cpf::parse(&p.cpf).ok());
        DecisionItem {
            id: row.id,
            onboarding_id: row.onboarding_id,
            reference: row.reference.clone(),
            cpf: cpf.map(|c| if pii { c.punctuated() } else { c.masked() }),
            name: pii.then(|| person.and_then(|p| p.name)),
            outcome: row.outcome.clone(),
            reasons: row.reasons.clone(),
            policy_version: row.policy_version.clone(),
            thresholds: row.thresholds.clone(),
            biometrics: row
                .evidence
                .get("biometrics")
                .cloned()
                .unwrap_or(Value::Null),
            device: device_view(&row.evidence),
            created_at: row.created_at,
            decided_at: row.decided_at,
            decided_by: row.decided_by.clone(),
            reviewer: row.reviewer.clone(),
            note: row.note.clone(),
        }
    }
}

/// The device evidence as stored (QI Tech's answer under `state`) plus the phone's risk flags
/// the policy saw.
fn device_view(evidence: &Value) -> Value {
    let signals: Option<RiskSignals> = evidence
        .get("risk_signals")
        .and_then(|v| serde_json::from_value(v.clone()).ok());
    let mut device = match evidence.get("device") {
        Some(Value::Object(map)) => map.clone(),
        _ => serde_json::Map::new(),
    };
    device.insert(
        "risk_flags".into(),
        json!(crate::policy::risk_flags(signals.as_ref())),
    );
    Value::Object(device)
}

/// One decision explained: the decision, every rule the policy evaluated with what it read, the
/// evidence as stored, the onboarding's timeline, the provider calls (in clear only the fields
/// veredito parsed and the failure's code; with pii:read also `provider_said`, the provider's own
/// words, opened from their sealed copy) and, when a version was in shadow, its verdict.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Explanation {
    #[serde(flatten)]
    decision: DecisionItem,
    /// Every rule of the policy table with what it read and whether it fired.
    #[schema(value_type = Vec<Object>)]
    evaluations: Value,
    /// What the policy read, as stored: unico's result as received, the risk signals, QI Tech.
    #[schema(value_type = Object)]
    evidence: Value,
    timeline: Vec<TimelineEntry>,
    #[schema(value_type = Vec<Object>)]
    provider_calls: Vec<calls::CallRow>,
    /// What the version in shadow said of this decision, when one was.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Object, required = false)]
    shadow: Option<crate::store::policies::ShadowRow>,
}

/// One event of the onboarding, with the time since the one before and since it was received.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct TimelineEntry {
    kind: String,
    at: DateTime<Utc>,
    detail: Value,
    since_previous_ms: i64,
    since_received_ms: i64,
}

impl Explanation {
    pub(crate) async fn load(st: &AppState, row: AuditRow, pii: bool) -> Result<Self, ApiError> {
        let evaluations = audit::evaluations(&st.db, row.id).await?;
        let events = events::list(&st.db, row.onboarding_id).await?;
        let mut provider_calls = calls::list_for_onboarding(&st.db, row.onboarding_id).await?;
        if pii {
            // What the providers said in their own words may name the person: opened only for
            // pii:read, on a read the caller's handler has already recorded.
            for call in &mut provider_calls {
                if let Err(e) = call.open_answer(&st.cipher) {
                    tracing::error!(decision_id = %row.id, error = %e, "a provider's sealed answer cannot be opened");
                }
            }
        }
        let shadow = crate::store::policies::shadow_of(&st.db, row.id).await?;
        let received = events
            .iter()
            .find(|e| e.kind == "received")
            .map_or(row.created_at, |e| e.at);
        let mut previous = received;
        let timeline = events
            .into_iter()
            .map(|e| {
                let entry = TimelineEntry {
                    since_previous_ms: (e.at - previous).num_milliseconds(),
                    since_received_ms: (e.at - received).num_milliseconds(),
                    kind: e.kind,
                    at: e.at,
                    detail: e.detail,
                };
                previous = e.at;
                entry
            })
            .collect();
        let mut evidence = row.evidence.clone();
        if !pii {
            // Even reduced to a region, where the phone was is personal data.
            if let Some(signals) = evidence
                .get_mut("risk_signals")
                .and_then(Value::as_object_mut)
            {
                signals.remove("device_latitude");
                signals.remove("device_longitude");
            }
        }
        Ok(Explanation {
            decision: DecisionItem::new(st, &row, pii),
            evaluations,
            evidence,
            timeline,
            provider_calls,
            shadow,
        })
    }
}
