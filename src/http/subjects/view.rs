//! A person's request as the API and the printable report show it.

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::domain::cpf::Cpf;
use crate::http::state::AppState;
use crate::onboarding::subjects::{Erased, ErasureAnswer, Kept, Kind, Waiting};
use crate::store::subjects::RequestRow;

/// A person's request (LGPD Art. 18) as the officer reads it. An erasure also carries erased,
/// kept and waiting.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = SubjectRequest)]
pub struct RequestView {
    id: Uuid,
    #[schema(schema_with = kind_schema)]
    kind: String,
    /// Masked without pii:read; null when it cannot be opened.
    #[schema(required = true)]
    cpf: Option<String>,
    /// open until answered: by the first read of its report, or at once for an erasure.
    #[schema(schema_with = status_schema)]
    pub(crate) status: &'static str,
    received_at: DateTime<Utc>,
    /// received_at + 15 days (Art. 19 II)
    due_at: DateTime<Utc>,
    overdue: bool,
    #[schema(required = true)]
    answered_at: Option<DateTime<Utc>>,
    #[schema(required = true)]
    answered_by: Option<String>,
    #[schema(required = true)]
    note: Option<String>,
    created_by: String,
    created_at: DateTime<Utc>,
    /// An erasure's: what it erased, where and when.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Vec<Erased>, required = false)]
    erased: Option<Vec<Erased>>,
    /// An erasure's: what is kept, and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Vec<Kept>, required = false, inline)]
    kept: Option<Vec<Kept>>,
    /// An erasure's: the onboardings erased once they are decided.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Vec<Waiting>, required = false, inline)]
    waiting: Option<Vec<Waiting>>,
}

fn kind_schema() -> utoipa::openapi::schema::Object {
    crate::domain::schema::one_of(&[Kind::Access.as_str(), Kind::Erasure.as_str()], None)
}

fn status_schema() -> utoipa::openapi::schema::Object {
    crate::domain::schema::one_of(&["open", "answered"], None)
}

impl RequestView {
    pub(super) fn of(
        st: &AppState,
        row: RequestRow,
        pii: bool,
        erasure: Option<ErasureAnswer>,
    ) -> Self {
        let cpf = row
            .cpf(&st.cipher)
            .map_err(|e| tracing::error!(request_id = %row.id, error = %e, "a request's CPF cannot be opened"))
            .ok()
            .and_then(|digits| Cpf::parse(&digits).ok())
            .map(|c| if pii { c.punctuated() } else { c.masked() });
        let (erased, kept, waiting) = match erasure {
            Some(ErasureAnswer {
                erased,
                kept,
                waiting,
            }) => (Some(erased), Some(kept), Some(waiting)),
            None => (None, None, None),
        };
        RequestView {
            id: row.id,
            kind: row.kind,
            cpf,
            status: if row.answered_at.is_some() {
                "answered"
            } else {
                "open"
            },
            overdue: row.answered_at.is_none() && row.due_at < Utc::now(),
            received_at: row.received_at,
            due_at: row.due_at,
            answered_at: row.answered_at,
            answered_by: row.answered_by,
            note: row.note,
            created_by: row.created_by,
            created_at: row.created_at,
            erased,
            kept,
            waiting,
        }
    }
}
