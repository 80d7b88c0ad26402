//! Searching decisions: the query parser (every filter checked, every mistake named at once)
//! and the log of searches.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};

use super::view::DecisionItem;
use crate::domain::Cpf;
use crate::http::auth::{Caller, DECISIONS_READ, PII_READ};
use crate::http::error::{ApiError, FieldError};
use crate::http::page::{Keyset, ListQuery, finish};
use crate::http::state::AppState;
use crate::policy::Outcome;
use crate::store::audit::{self, Cursor, DecisionFilter, SearchRecord};

pub const DEFAULT_LIMIT: i64 = 50;
pub const MAX_LIMIT: i64 = 500;

#[utoipa::path(
    get,
    path = "/v1/audit-searches",
    tag = "audit",
    operation_id = "listAuditSearches",
    params(
        ListQuery<i64, MAX_LIMIT, DEFAULT_LIMIT>,
    ),
    responses(
        (status = 200, description = "Recorded searches, explanations and exports, newest first", body = AuditSearchPage),
        crate::http::problems::QueryRefusals,
        crate::http::problems::Refusals,
    ),
    security(("apiKey" = [])),
)]
pub(super) async fn searches(
    State(st): State<AppState>,
    caller: Caller,
    query: ListQuery<i64, MAX_LIMIT, DEFAULT_LIMIT>,
) -> Result<Response, ApiError> {
    caller.require(DECISIONS_READ)?;
    let page = query.only_page()?;
    let mut items = audit::searches(&st.db, page.cursor, page.fetch()).await?;
    let next_cursor = page.cut(&mut items, |i| i.id);
    Ok(Json(AuditSearchPage { items, next_cursor }).into_response())
}

/// A page of the audit-search log, newest first: the list's `{"items": [...], "next_cursor":
/// ...}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AuditSearchPage {
    #[schema(inline)]
    items: Vec<SearchRecord>,
    /// Where the next page starts; null on the last page
    #[schema(required = true)]
    next_cursor: Option<String>,
}

#[utoipa::path(
    get,
    path = "/v1/decisions",
    tag = "audit",
    operation_id = "searchDecisions",
    params(
        DecisionFilters,
        ListQuery<Keyset, MAX_LIMIT, DEFAULT_LIMIT>,
    ),
    responses(
        (status = 200, description = "A page of decisions, newest first", body = DecisionPage),
        crate::http::problems::QueryRefusals,
        crate::http::problems::Refusals,
    ),
    security(("apiKey" = [])),
)]
pub(super) async fn list(
    State(st): State<AppState>,
    caller: Caller,
    query: ListQuery<Keyset, MAX_LIMIT, DEFAULT_LIMIT>,
) -> Result<Response, ApiError> {
    caller.require(DECISIONS_READ)?;
    let ListQuery { page, rest, errors } = query;
    let mut params = SearchParams::parse(&st, &caller, rest, &[], errors)?;
    if page.limit_given {
        params.logged["limit"] = json!(page.limit.to_string());
    }
    let cursor = page.cursor.map(|k| Cursor {
        decided_at: k.at,
        id: k.id,
    });
    // The log row and the search run side by side on two connections: the answer leaves only
    // once both are done, so no search goes unlogged, and the log's commit adds no wait.
    let (_, mut rows) = tokio::try_join!(
        async {
            audit::record_search(&st.db, &caller.name, "GET /v1/decisions", &params.logged)
                .await
                .map_err(ApiError::from)
        },
        async {
            audit::search(&st.reads, &params.filter, cursor, page.fetch())
                .await
                .map_err(ApiError::from)
        },
    )?;
    let next_cursor = page.cut(&mut rows, |row| {
        let c = row.cursor();
        Keyset {
            at: c.decided_at,
            id: c.id,
        }
    });
    let pii = caller.has(PII_READ);
    let items = rows
        .iter()
        .map(|row| DecisionItem::new(&st, row, pii))
        .collect();
    Ok(Json(DecisionPage { items, next_cursor }).into_response())
}

/// A page of decisions: the list's `{"items": [...], "next_cursor": ...}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DecisionPage {
    items: Vec<DecisionItem>,
    /// Where the next page starts; null on the last page
    #[schema(required = true)]
    next_cursor: Option<String>,
}

// ---- search parameters -------------------------------------------------------------------------

/// The filters of a search and of an export, as the OpenAPI document describes them. Only the
/// document reads this type: the handlers read the query string with [`SearchParams::parse`],
/// which accepts exactly these names (`FILTERS`) and names every wrong value at once.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub(super) struct DecisionFilters {
    /// approved, rejected, review or retry
    outcome: Option<String>,
    /// A reason code, e.g. biometrics.score_high
    reason: Option<String>,
    /// Needs pii:read: 11 digits, punctuated or not
    cpf: Option<String>,
    reference: Option<String>,
    policy_version: Option<String>,
    created_from: Option<DateTime<Utc>>,
    created_to: Option<DateTime<Utc>>,
    decided_from: Option<DateTime<Utc>>,
    decided_to: Option<DateTime<Utc>>,
}

pub(super) struct SearchParams {
    pub(super) filter: DecisionFilter,
    pub(super) format: Option<String>,
    /// The filters as the audit-search log keeps them: a CPF only masked and as its keyed hash.
    pub(super) logged: Value,
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
    ///
    /// `page_errors` are the list's mistakes in `limit` and `cursor`, named after the filters'.
    pub(super) fn parse(
        st: &AppState,
        caller: &Caller,
        pairs: Vec<(String, String)>,
        extra: &[&str],
        page_errors: Vec<FieldError>,
    ) -> Result<Self, ApiError> {
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
        errors.extend(page_errors);
        params.format = seen.remove("format");
        let mut logged: serde_json::Map<String, Value> = seen
            .into_iter()
            .filter(|(name, _)| name != "cpf")
            .map(|(name, value)| (name, Value::String(value)))
            .collect();
        if let Some(cpf) = logged_cpf {
            logged.insert("cpf".into(), cpf);
        }
        params.logged = Value::Object(logged);
        finish(errors)?;
        Ok(params)
    }
}
