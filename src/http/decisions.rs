//! The audit endpoints: search, explain, export and replay stored decisions.
//!
//! Everything here reads; nothing writes a decision. Personal data leaves only masked unless
//! the key carries `pii:read`.

use std::collections::BTreeMap;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::domain::Cpf;
use crate::domain::evidence::RiskSignals;
use crate::http::auth::{Caller, DECISIONS_READ, PII_READ};
use crate::http::error::{ApiError, FieldError};
use crate::http::json::JsonBody;
use crate::http::state::AppState;
use crate::policy::{Outcome, Policy, Thresholds};
use crate::store::audit::{self, AuditRow, Cursor, DecisionFilter};
use crate::store::{calls, events};

pub const DEFAULT_LIMIT: i64 = 50;
pub const MAX_LIMIT: i64 = 500;
/// Rows fetched per round trip while exporting: memory stays bounded by one batch.
const EXPORT_BATCH: i64 = 500;
/// How many decisions a replay reads by default, and at most.
const REPLAY_DEFAULT_LIMIT: u32 = 10_000;
const REPLAY_MAX_LIMIT: u32 = 100_000;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/decisions", get(list))
        .route("/v1/decisions/export", get(export))
        .route("/v1/decisions/replay", post(replay))
        .route("/v1/decisions/{id}", get(show))
        .route("/v1/audit-searches", get(searches))
}

#[derive(Debug, Deserialize)]
struct SearchLogQuery {
    limit: Option<i64>,
    cursor: Option<String>,
}

#[utoipa::path(
    get,
    path = "/v1/audit-searches",
    tag = "audit",
    operation_id = "listAuditSearches",
    params(
        ("limit" = Option<i64>, Query, description = "1 to 500, default 50"),
        ("cursor" = Option<String>, Query, description = "next_cursor of the previous page"),
    ),
    responses(
        (status = 200, description = "Recorded searches, explanations and exports, newest first", body = ref("#/components/schemas/AuditSearchPage")),
        (status = 400, description = "The request is malformed", body = ref("#/components/schemas/Problem"), content_type = "application/problem+json"),
        (status = 422, description = "Invalid values, each named by its field", body = ref("#/components/schemas/Problem"), content_type = "application/problem+json"),
        crate::http::problems::Refusals,
    ),
    security(("apiKey" = [])),
)]
async fn searches(
    State(st): State<AppState>,
    caller: Caller,
    query: Result<axum::extract::Query<SearchLogQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    caller.require(DECISIONS_READ)?;
    let axum::extract::Query(query) =
        query.map_err(|_| ApiError::BadRequest("the query string is malformed".into()))?;
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::validation(
            "limit",
            format!("must be a whole number from 1 to {MAX_LIMIT}"),
        ));
    }
    let before = match query.cursor.as_deref() {
        None => None,
        Some(c) => Some(c.parse::<i64>().map_err(|_| {
            ApiError::validation("cursor", "is not a cursor this service handed out")
        })?),
    };
    let mut items = audit::searches(&st.db, before, limit + 1).await?;
    let next_cursor = if items.len() as i64 > limit {
        items.truncate(limit as usize);
        items.last().map(|i| i.id.to_string())
    } else {
        None
    };
    Ok(axum::Json(json!({ "items": items, "next_cursor": next_cursor })).into_response())
}

#[utoipa::path(
    get,
    path = "/v1/decisions",
    tag = "audit",
    operation_id = "searchDecisions",
    params(
        ("outcome" = Option<String>, Query, description = "approved, rejected, review or retry"),
        ("reason" = Option<String>, Query, description = "A reason code, e.g. biometrics.score_high"),
        ("cpf" = Option<String>, Query, description = "Needs pii:read: 11 digits, punctuated or not"),
        ("reference" = Option<String>, Query),
        ("policy_version" = Option<String>, Query),
        ("created_from" = Option<String>, Query, format = DateTime),
        ("created_to" = Option<String>, Query, format = DateTime),
        ("decided_from" = Option<String>, Query, format = DateTime),
        ("decided_to" = Option<String>, Query, format = DateTime),
        ("limit" = Option<i64>, Query, description = "1 to 500, default 50"),
        ("cursor" = Option<String>, Query, description = "next_cursor of the previous page"),
    ),
    responses(
        (status = 200, description = "A page of decisions, newest first", body = ref("#/components/schemas/DecisionPage")),
        (status = 400, description = "The request is malformed", body = ref("#/components/schemas/Problem"), content_type = "application/problem+json"),
        (status = 422, description = "Invalid values, each named by its field", body = ref("#/components/schemas/Problem"), content_type = "application/problem+json"),
        crate::http::problems::Refusals,
    ),
    security(("apiKey" = [])),
)]
async fn list(
    State(st): State<AppState>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    caller.require(DECISIONS_READ)?;
    let params = SearchParams::parse(&st, &caller, query.as_deref(), &["limit", "cursor"])?;
    // The log row and the search run side by side on two connections: the answer leaves only
    // once both are done, so no search goes unlogged, and the log's commit adds no wait.
    let (_, rows) = tokio::try_join!(
        async {
            audit::record_search(&st.db, &caller.name, "GET /v1/decisions", &params.logged)
                .await
                .map_err(ApiError::from)
        },
        async {
            audit::search(&st.reads, &params.filter, params.cursor, params.limit + 1)
                .await
                .map_err(ApiError::from)
        },
    )?;
    let has_more = rows.len() as i64 > params.limit;
    let page = &rows[..rows.len().min(params.limit as usize)];
    let pii = caller.has(PII_READ);
    let items: Vec<DecisionItem> = page
        .iter()
        .map(|row| DecisionItem::new(&st, row, pii))
        .collect();
    let next_cursor = if has_more {
        page.last().map(|row| encode_cursor(row.cursor()))
    } else {
        None
    };
    Ok(axum::Json(json!({ "items": items, "next_cursor": next_cursor })).into_response())
}

#[utoipa::path(
    get,
    path = "/v1/decisions/{id}",
    tag = "audit",
    operation_id = "explainDecision",
    params(
        ("id" = String, Path, description = "The decision id (a UUID)"),
    ),
    responses(
        (status = 200, description = "The decision explained", body = ref("#/components/schemas/Explanation")),
        (status = 404, description = "Not found", body = ref("#/components/schemas/Problem"), content_type = "application/problem+json"),
        crate::http::problems::Refusals,
    ),
    security(("apiKey" = [])),
)]
async fn show(
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

#[utoipa::path(
    get,
    path = "/v1/decisions/export",
    tag = "audit",
    operation_id = "exportDecisions",
    params(
        ("outcome" = Option<String>, Query, description = "approved, rejected, review or retry"),
        ("reason" = Option<String>, Query, description = "A reason code, e.g. biometrics.score_high"),
        ("cpf" = Option<String>, Query, description = "Needs pii:read: 11 digits, punctuated or not"),
        ("reference" = Option<String>, Query),
        ("policy_version" = Option<String>, Query),
        ("created_from" = Option<String>, Query, format = DateTime),
        ("created_to" = Option<String>, Query, format = DateTime),
        ("decided_from" = Option<String>, Query, format = DateTime),
        ("decided_to" = Option<String>, Query, format = DateTime),
        ("format" = Option<String>, Query, description = "ndjson (default) or csv"),
    ),
    responses(
        (status = 200, description = "Every matching decision, streamed", content((String = "application/x-ndjson"), (String = "text/csv"))),
        (status = 400, description = "The request is malformed", body = ref("#/components/schemas/Problem"), content_type = "application/problem+json"),
        (status = 422, description = "Invalid values, each named by its field", body = ref("#/components/schemas/Problem"), content_type = "application/problem+json"),
        crate::http::problems::Refusals,
    ),
    security(("apiKey" = [])),
)]
async fn export(
    State(st): State<AppState>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    caller.require(DECISIONS_READ)?;
    let params = SearchParams::parse(&st, &caller, query.as_deref(), &["format"])?;
    audit::record_search(
        &st.db,
        &caller.name,
        "GET /v1/decisions/export",
        &params.logged,
    )
    .await?;
    let format = match params.format.as_deref() {
        None | Some("ndjson") => ExportFormat::Ndjson,
        Some("csv") => ExportFormat::Csv,
        Some(_) => return Err(ApiError::validation("format", "must be csv or ndjson")),
    };
    Ok(export_response(
        st,
        params.filter,
        format,
        caller.has(PII_READ),
    ))
}

/// The decisions `filter` finds, streamed as a download in `format`; the caller has recorded
/// the export.
pub(crate) fn export_response(
    st: AppState,
    filter: DecisionFilter,
    format: ExportFormat,
    pii: bool,
) -> Response {
    let stream = export_stream(st, filter, format, pii);
    let mut response = Body::from_stream(stream).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static(format.disposition()),
    );
    response
}

#[utoipa::path(
    post,
    path = "/v1/decisions/replay",
    tag = "audit",
    operation_id = "replayDecisions",
    request_body(content = crate::http::decisions::ReplayRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "What the candidate would have changed; nothing is written", body = ref("#/components/schemas/ReplayResult")),
        (status = 400, description = "The request is malformed", body = ref("#/components/schemas/Problem"), content_type = "application/problem+json"),
        (status = 413, description = "The body is over 2 MiB", body = ref("#/components/schemas/Problem"), content_type = "application/problem+json"),
        (status = 415, description = "The body is not application/json", body = ref("#/components/schemas/Problem"), content_type = "application/problem+json"),
        (status = 422, description = "Invalid values, each named by its field", body = ref("#/components/schemas/Problem"), content_type = "application/problem+json"),
        crate::http::problems::Refusals,
    ),
    security(("apiKey" = [])),
)]
async fn replay(
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

// ---- search parameters -------------------------------------------------------------------------

struct SearchParams {
    filter: DecisionFilter,
    cursor: Option<Cursor>,
    limit: i64,
    format: Option<String>,
    /// The filters as the audit-search log keeps them: a CPF only masked and as its keyed hash.
    logged: Value,
}

const FILTERS: &[&str] = &[
    "outcome",
    "reason",
    "cpf",
    "reference",
    "policy_version",
    "created_from",
    "created_to",
    "decided_from",
    "decided_to",
];

impl SearchParams {
    /// Reads the query string, collecting every invalid value at once. Unknown parameters are
    /// refused too: a misspelt filter silently ignored would answer far more than was asked.
    ///
    /// Searching by CPF needs `pii:read`: with the digits a masked CPF shows, a key without it
    /// could otherwise find the rest by trying the few hundred candidates.
    fn parse(
        st: &AppState,
        caller: &Caller,
        query: Option<&str>,
        extra: &[&str],
    ) -> Result<Self, ApiError> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query.unwrap_or(""))
            .map_err(|_| ApiError::BadRequest("the query string is malformed".into()))?;
        if pairs.iter().any(|(name, _)| name == "cpf") {
            caller.require(PII_READ)?;
        }
        let mut errors = Vec::new();
        let mut seen = BTreeMap::new();
        for (name, value) in pairs {
            if !FILTERS.contains(&name.as_str()) && !extra.contains(&name.as_str()) {
                errors.push(FieldError::new(name, "unknown parameter"));
            } else if seen.insert(name.clone(), value).is_some() {
                errors.push(FieldError::new(name, "given more than once"));
            }
        }
        let mut params = SearchParams {
            filter: DecisionFilter::default(),
            cursor: None,
            limit: DEFAULT_LIMIT,
            format: None,
            logged: json!({}),
        };
        let time = |name: &str, errors: &mut Vec<FieldError>| -> Option<DateTime<Utc>> {
            let value = seen.get(name)?;
            match DateTime::parse_from_rfc3339(value) {
                Ok(t) => Some(t.with_timezone(&Utc)),
                Err(_) => {
                    errors.push(FieldError::new(
                        name,
                        "must be an RFC 3339 time such as 2026-01-31T12:00:00Z",
                    ));
                    None
                }
            }
        };
        let f = &mut params.filter;
        f.created_from = time("created_from", &mut errors);
        f.created_to = time("created_to", &mut errors);
        f.decided_from = time("decided_from", &mut errors);
        f.decided_to = time("decided_to", &mut errors);
        for (from, to, field) in [
            (f.created_from, f.created_to, "created_to"),
            (f.decided_from, f.decided_to, "decided_to"),
        ] {
            if let (Some(from), Some(to)) = (from, to) {
                if from > to {
                    errors.push(FieldError::new(
                        field,
                        "must not be before the start of the range",
                    ));
                }
            }
        }
        if let Some(outcome) = seen.get("outcome") {
            match Outcome::parse(outcome) {
                Some(o) => f.outcome = Some(o.as_str().to_owned()),
                None => errors.push(FieldError::new(
                    "outcome",
                    "must be approved, review, retry or rejected",
                )),
            }
        }
        if let Some(reason) = seen.get("reason") {
            if crate::policy::reason_codes().contains(&reason.as_str()) {
                f.reason = Some(reason.clone());
            } else {
                errors.push(FieldError::new(
                    "reason",
                    "is not a reason code of the policy",
                ));
            }
        }
        let mut logged_cpf = None;
        if let Some(cpf) = seen.get("cpf") {
            match Cpf::parse(cpf) {
                Ok(cpf) => {
                    let hash = st.cipher.cpf_hash(&cpf.digits());
                    logged_cpf =
                        Some(json!({ "masked": cpf.masked(), "hmac": hex::encode(&hash) }));
                    f.cpf_hash = Some(hash);
                }
                Err(e) => errors.push(FieldError::new("cpf", e.to_string())),
            }
        }
        for (name, slot) in [
            ("reference", &mut f.reference),
            ("policy_version", &mut f.policy_version),
        ] {
            if let Some(value) = seen.get(name) {
                if value.is_empty() || value.len() > 255 {
                    errors.push(FieldError::new(name, "must have 1 to 255 characters"));
                } else {
                    *slot = Some(value.clone());
                }
            }
        }
        if let Some(limit) = seen.get("limit") {
            match limit.parse::<i64>() {
                Ok(n) if (1..=MAX_LIMIT).contains(&n) => params.limit = n,
                _ => errors.push(FieldError::new(
                    "limit",
                    format!("must be a whole number from 1 to {MAX_LIMIT}"),
                )),
            }
        }
        if let Some(cursor) = seen.get("cursor") {
            match decode_cursor(cursor) {
                Some(c) => params.cursor = Some(c),
                None => errors.push(FieldError::new(
                    "cursor",
                    "is not a cursor this service handed out",
                )),
            }
        }
        params.format = seen.remove("format");
        let mut logged: serde_json::Map<String, Value> = seen
            .into_iter()
            .filter(|(name, _)| name != "cpf" && name != "cursor")
            .map(|(name, value)| (name, Value::String(value)))
            .collect();
        if let Some(cpf) = logged_cpf {
            logged.insert("cpf".into(), cpf);
        }
        params.logged = Value::Object(logged);
        if errors.is_empty() {
            Ok(params)
        } else {
            Err(ApiError::Validation(errors))
        }
    }
}

/// The cursor is the last row's sort key, so a page never depends on rows before it: inserts
/// while paging neither shift nor repeat anything. It is opaque to clients by contract only.
fn encode_cursor(cursor: Cursor) -> String {
    URL_SAFE_NO_PAD.encode(format!(
        "{}/{}",
        cursor.decided_at.timestamp_micros(),
        cursor.id
    ))
}

fn decode_cursor(text: &str) -> Option<Cursor> {
    let raw = String::from_utf8(URL_SAFE_NO_PAD.decode(text).ok()?).ok()?;
    let (micros, id) = raw.split_once('/')?;
    Some(Cursor {
        decided_at: DateTime::from_timestamp_micros(micros.parse().ok()?)?,
        id: Uuid::parse_str(id).ok()?,
    })
}

// ---- the decision as shown ---------------------------------------------------------------------

#[derive(Debug, Serialize)]
pub struct DecisionItem {
    pub id: Uuid,
    pub onboarding_id: Uuid,
    pub reference: Option<String>,
    /// Masked without `pii:read`; null once retention erased it.
    pub cpf: Option<String>,
    /// Present only for `pii:read` (null once erased, by retention or at the person's request).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<Option<String>>,
    pub outcome: String,
    pub reasons: Value,
    pub policy_version: String,
    pub thresholds: Value,
    pub biometrics: Value,
    pub device: Value,
    pub created_at: DateTime<Utc>,
    pub decided_at: DateTime<Utc>,
    /// policy, or reviewer (with the reviewer and the note).
    pub decided_by: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reviewer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
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

#[derive(Debug, Serialize)]
pub(crate) struct Explanation {
    #[serde(flatten)]
    decision: DecisionItem,
    /// Every rule of the policy table with what it read and whether it fired.
    evaluations: Value,
    /// What the policy read, as stored: unico's result as received, the risk signals, QI Tech.
    evidence: Value,
    timeline: Vec<TimelineEntry>,
    provider_calls: Vec<calls::CallRow>,
    /// What the version in shadow said of this decision, when one was.
    #[serde(skip_serializing_if = "Option::is_none")]
    shadow: Option<crate::store::policies::ShadowRow>,
}

#[derive(Debug, Serialize)]
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

// ---- export ------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ExportFormat {
    Csv,
    Ndjson,
}

impl ExportFormat {
    fn content_type(self) -> &'static str {
        match self {
            ExportFormat::Csv => "text/csv; charset=utf-8",
            ExportFormat::Ndjson => "application/x-ndjson",
        }
    }

    fn disposition(self) -> &'static str {
        match self {
            ExportFormat::Csv => "attachment; filename=\"decisions.csv\"",
            ExportFormat::Ndjson => "attachment; filename=\"decisions.ndjson\"",
        }
    }
}

struct ExportState {
    st: AppState,
    filter: DecisionFilter,
    after: Option<Cursor>,
    started: bool,
    done: bool,
}

/// Walks the search batch by batch with the same keyset as the listing, so memory holds one
/// batch and the database no long-running cursor; a decision made during the export is newer
/// than the first row and is not part of it.
fn export_stream(
    st: AppState,
    filter: DecisionFilter,
    format: ExportFormat,
    pii: bool,
) -> impl futures_util::Stream<Item = Result<Bytes, sqlx::Error>> {
    let state = ExportState {
        st,
        filter,
        after: None,
        started: false,
        done: false,
    };
    futures_util::stream::try_unfold(state, move |mut s| async move {
        if s.done {
            return Ok(None);
        }
        let rows = match audit::search(&s.st.reads, &s.filter, s.after, EXPORT_BATCH).await {
            Ok(rows) => rows,
            Err(e) => {
                // The status line is gone by now; cutting the body short is the only signal left.
                tracing::warn!(error = %e, "export stopped by a database error");
                return Err(e);
            }
        };
        s.done = (rows.len() as i64) < EXPORT_BATCH;
        s.after = rows.last().map(AuditRow::cursor).or(s.after);
        let mut out = Vec::with_capacity(rows.len() * 512);
        if !s.started && format == ExportFormat::Csv {
            write_csv_row(&mut out, csv_header(pii).iter().map(|h| h.to_string()));
        }
        s.started = true;
        for row in &rows {
            let item = DecisionItem::new(&s.st, row, pii);
            match format {
                ExportFormat::Ndjson => {
                    serde_json::to_writer(&mut out, &item)
                        .map_err(|e| sqlx::Error::Protocol(e.to_string()))?;
                    out.push(b'\n');
                }
                ExportFormat::Csv => write_csv_row(&mut out, csv_fields(&item, row, pii)),
            }
        }
        Ok(Some((Bytes::from(out), s)))
    })
}

fn csv_header(pii: bool) -> Vec<&'static str> {
    let mut header = vec!["id", "onboarding_id", "reference", "cpf"];
    if pii {
        header.push("name");
    }
    header.extend([
        "outcome",
        "reason_codes",
        "policy_version",
        "score_reject_max",
        "score_approve_min",
        "biometrics_state",
        "biometrics_status",
        "unico_id",
        "liveness",
        "identity_fraudsters",
        "score",
        "device_state",
        "device_status",
        "device_analysis_status",
        "risk_flags",
        "created_at",
        "decided_at",
    ]);
    header
}

fn csv_fields(item: &DecisionItem, row: &AuditRow, pii: bool) -> Vec<String> {
    let text = |v: Option<&Value>| match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    };
    let bio = |name: &str| text(item.biometrics.get(name));
    let dev = |name: &str| text(item.device.get(name));
    let flags = item
        .device
        .get("risk_flags")
        .and_then(Value::as_array)
        .map_or_else(String::new, |flags| {
            flags
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join("|")
        });
    let mut fields = vec![
        item.id.to_string(),
        item.onboarding_id.to_string(),
        defuse_formula(item.reference.as_deref().unwrap_or("")),
        item.cpf.clone().unwrap_or_default(),
    ];
    if pii {
        fields.push(defuse_formula(
            item.name.clone().flatten().as_deref().unwrap_or(""),
        ));
    }
    fields.extend([
        item.outcome.clone(),
        row.reason_codes.join("|"),
        item.policy_version.clone(),
        text(item.thresholds.get("score_reject_max")),
        text(item.thresholds.get("score_approve_min")),
        bio("state"),
        bio("status"),
        bio("unico_id"),
        bio("liveness"),
        bio("identity_fraudsters"),
        bio("score"),
        dev("state"),
        dev("status"),
        dev("analysis_status"),
        flags,
        item.created_at
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        item.decided_at
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
    ]);
    fields
}

/// A cell that starts like a formula is run by spreadsheet programs when opened; a leading
/// apostrophe keeps free text (a client's reference, a name) inert.
fn defuse_formula(value: &str) -> String {
    if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{value}")
    } else {
        value.to_owned()
    }
}

/// RFC 4180: fields with a comma, quote or line break are quoted, quotes doubled; CRLF ends rows.
fn write_csv_row(out: &mut Vec<u8>, fields: impl IntoIterator<Item = String>) {
    for (i, field) in fields.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        if field.contains([',', '"', '\n', '\r']) {
            out.push(b'"');
            out.extend_from_slice(field.replace('"', "\"\"").as_bytes());
            out.push(b'"');
        } else {
            out.extend_from_slice(field.as_bytes());
        }
    }
    out.extend_from_slice(b"\r\n");
}

// ---- replay ------------------------------------------------------------------------------------

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct ReplayRequest {
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
