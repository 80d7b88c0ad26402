//! The running thread of notes on a review case, and the answer to the person of a case they
//! opened (LGPD Art. 20).

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::onboarding::error::FlowError;
use crate::onboarding::services::Services;
use crate::store::notes::{self as store, NoteKind, NoteRow};
use crate::store::reviews;

/// The longest note or answer, as the resolution's note.
pub const TEXT_MAX: usize = 2000;

/// A note as reviewers read it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = ReviewNote)]
pub struct NoteView {
    pub id: Uuid,
    /// internal, or answer (to the person).
    pub kind: String,
    pub author: String,
    /// Null once erased with the onboarding's personal data, and for callers without
    /// reviews:write or pii:read.
    pub text: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl NoteView {
    fn of(row: NoteRow, flow: &Services) -> NoteView {
        let text = row.text(&flow.cipher).unwrap_or_else(|e| {
            tracing::warn!(error = %e, note_id = %row.id, "a note could not be read");
            None
        });
        NoteView {
            id: row.id,
            kind: row.kind,
            author: row.author,
            text,
            created_at: row.created_at,
        }
    }
}

/// Why a note was not added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoteRefusal {
    NotFound,
    /// A resolved case is a record: its thread is closed.
    Resolved,
    /// Empty, too long, or holding a NUL.
    Text,
}

/// The text a note may hold, trimmed; None when it is empty, over `TEXT_MAX` or holds a NUL.
pub fn valid_text(text: &str) -> Option<&str> {
    let text = text.trim();
    (!text.is_empty() && text.chars().count() <= TEXT_MAX && !text.contains('\0')).then_some(text)
}

/// Appends `author`'s internal note to the case's thread.
pub async fn add(
    flow: &Services,
    case_id: Uuid,
    author: &str,
    text: &str,
) -> Result<Result<NoteView, NoteRefusal>, FlowError> {
    let Some(text) = valid_text(text) else {
        return Ok(Err(NoteRefusal::Text));
    };
    let mut tx = crate::store::begin(&flow.db).await?;
    let Some(case) = reviews::get(&mut *tx, case_id).await? else {
        return Ok(Err(NoteRefusal::NotFound));
    };
    if case.status == "resolved" {
        return Ok(Err(NoteRefusal::Resolved));
    }
    let row = store::add(
        &mut tx,
        &flow.cipher,
        case_id,
        NoteKind::Internal,
        author,
        text,
    )
    .await?;
    tx.event(
        case.onboarding_id,
        "review_note_added",
        serde_json::json!({ "case_id": case_id, "note_id": row.id, "author": author }),
    );
    tx.commit().await?;
    Ok(Ok(NoteView::of(row, flow)))
}

/// The case's notes, oldest first, the answer to the person among them (`kind`).
pub async fn thread(flow: &Services, case_id: Uuid) -> Result<Vec<NoteView>, FlowError> {
    Ok(store::of_case(&flow.db, case_id)
        .await?
        .into_iter()
        .map(|row| NoteView::of(row, flow))
        .collect())
}

/// The answer to the person of `case_id`, unsealed; None when none was written or it is erased.
pub async fn answer(flow: &Services, case_id: Uuid) -> Result<Option<String>, FlowError> {
    Ok(match store::answer_of(&flow.db, case_id).await? {
        Some(row) => NoteView::of(row, flow).text,
        None => None,
    })
}
