//! The console's one-shot messages: kept with the session between an action and the page it
//! redirects to, removed when that page reads them.

use sqlx::PgExecutor;

/// Keeps `text` for the session's next page, in place of any message not yet shown.
pub async fn set(
    db: impl PgExecutor<'_>,
    session_sha256: &[u8],
    kind: &str,
    text: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "INSERT INTO console_flashes (session_id_sha256, kind, text) VALUES ($1, $2, $3)
         ON CONFLICT (session_id_sha256)
         DO UPDATE SET kind = excluded.kind, text = excluded.text, created_at = now()",
        session_sha256,
        kind,
        text,
    )
    .execute(db)
    .await?;
    Ok(())
}

/// The session's message, removed as it is read: (kind, text).
pub async fn take(
    db: impl PgExecutor<'_>,
    session_sha256: &[u8],
) -> Result<Option<(String, String)>, sqlx::Error> {
    let taken = sqlx::query!(
        "DELETE FROM console_flashes WHERE session_id_sha256 = $1 RETURNING kind, text",
        session_sha256,
    )
    .fetch_optional(db)
    .await?;
    Ok(taken.map(|flash| (flash.kind, flash.text)))
}
