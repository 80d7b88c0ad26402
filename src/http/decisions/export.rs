//! The export: every decision a search finds, streamed as NDJSON or CSV.

use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::search::SearchParams;
use super::view::DecisionItem;
use crate::http::auth::{Caller, DECISIONS_READ, PII_READ};
use crate::http::error::ApiError;
use crate::http::page::pairs;
use crate::http::state::AppState;
use crate::store::audit::{self, AuditRow, Cursor, DecisionFilter};

/// Rows fetched per round trip while exporting: memory stays bounded by one batch.
const EXPORT_BATCH: i64 = 500;

#[utoipa::path(
    get,
    path = "/v1/decisions/export",
    tag = "audit",
    operation_id = "exportDecisions",
    params(
        super::search::DecisionFilters,
        ("format" = Option<String>, Query, description = "ndjson (default) or csv"),
    ),
    responses(
        (status = 200, description = "Every matching decision, streamed", content((String = "application/x-ndjson"), (String = "text/csv"))),
        crate::http::problems::QueryRefusals,
        crate::http::problems::Refusals,
    ),
    security(("apiKey" = [])),
)]
pub(super) async fn export(
    State(st): State<AppState>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    caller.require(DECISIONS_READ)?;
    let params = SearchParams::parse(
        &st,
        &caller,
        pairs(query.as_deref())?,
        &["format"],
        Vec::new(),
    )?;
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
