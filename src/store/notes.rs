//! Notes on review cases: the reviewers' running thread and, for a case the person opened, the
//! answer to the person. Appended, never changed; the text sealed with the note's id as context.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use crate::crypto::PiiCipher;
use crate::store::StoreError;

/// What a note is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoteKind {
    /// Between reviewers; never leaves veredito.
    Internal,
    /// The answer to the person who asked for the review (LGPD Art. 20), sent with
    /// `review.resolved`.
    Answer,
}

impl NoteKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NoteKind::Internal => "internal",
            NoteKind::Answer => "answer",
        }
    }
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct NoteRow {
    pub id: Uuid,
    pub case_id: Uuid,
    pub kind: String,
    pub author: String,
    pub key_id: Option<String>,
    pub ciphertext: Option<Vec<u8>>,
    pub created_at: DateTime<Utc>,
}

impl NoteRow {
    /// The note's text, or None once erased with the onboarding's personal data.
    pub fn text(&self, cipher: &PiiCipher) -> Result<Option<String>, StoreError> {
        let (Some(key_id), Some(sealed)) = (&self.key_id, &self.ciphertext) else {
            return Ok(None);
        };
        let plain = cipher.decrypt(key_id, sealed, self.id.as_bytes())?;
        String::from_utf8(plain)
            .map(Some)
            .map_err(|_| StoreError::Corrupt("a sealed note is not text".into()))
    }
}

/// Appends a note to `case_id`, sealed.
pub async fn add(
    tx: &mut PgConnection,
    cipher: &PiiCipher,
    case_id: Uuid,
    kind: NoteKind,
    author: &str,
    text: &str,
) -> Result<NoteRow, StoreError> {
    let id = Uuid::new_v4();
    let (key_id, ciphertext) = cipher.encrypt(text.as_bytes(), id.as_bytes())?;
    let row = sqlx::query_as!(
        NoteRow,
        "INSERT INTO review_notes (id, case_id, kind, author, key_id, ciphertext)
         VALUES ($1, $2, $3, $4, $5, $6)
         RETURNING id, case_id, kind, author, key_id, ciphertext, created_at",
        id,
        case_id,
        kind.as_str(),
        author,
        key_id,
        ciphertext,
    )
    .fetch_one(&mut *tx)
    .await?;
    Ok(row)
}

/// The notes of `case_id`, oldest first.
pub async fn of_case(db: impl PgExecutor<'_>, case_id: Uuid) -> Result<Vec<NoteRow>, sqlx::Error> {
    sqlx::query_as!(
        NoteRow,
        "SELECT id, case_id, kind, author, key_id, ciphertext, created_at
           FROM review_notes WHERE case_id = $1 ORDER BY created_at, id",
        case_id,
    )
    .fetch_all(db)
    .await
}

/// The answer to the person of `case_id`, if one was written.
pub async fn answer_of(
    db: impl PgExecutor<'_>,
    case_id: Uuid,
) -> Result<Option<NoteRow>, sqlx::Error> {
    sqlx::query_as!(
        NoteRow,
        "SELECT id, case_id, kind, author, key_id, ciphertext, created_at
           FROM review_notes WHERE case_id = $1 AND kind = 'answer'",
        case_id,
    )
    .fetch_optional(db)
    .await
}
