//! Console sessions, by the SHA-256 of their id.

use std::time::Duration;

use sqlx::PgExecutor;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SessionRow {
    pub key_name: String,
    pub scopes: Vec<String>,
    pub csrf_token: String,
}

pub async fn create(
    db: impl PgExecutor<'_>,
    id_sha256: &[u8],
    key_name: &str,
    scopes: &[String],
    csrf_token: &str,
    lifetime: Duration,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO console_sessions (id_sha256, key_name, scopes, csrf_token, expires_at)
         VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5))",
    )
    .bind(id_sha256)
    .bind(key_name)
    .bind(scopes)
    .bind(csrf_token)
    .bind(lifetime.as_secs_f64())
    .execute(db)
    .await?;
    Ok(())
}

/// The live session with this id hash.
pub async fn get(
    db: impl PgExecutor<'_>,
    id_sha256: &[u8],
) -> Result<Option<SessionRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT key_name, scopes, csrf_token FROM console_sessions
          WHERE id_sha256 = $1 AND expires_at > now()",
    )
    .bind(id_sha256)
    .fetch_optional(db)
    .await
}

/// Ends the session, and any that expired meanwhile.
pub async fn delete(db: impl PgExecutor<'_>, id_sha256: &[u8]) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM console_sessions WHERE id_sha256 = $1 OR expires_at < now()")
        .bind(id_sha256)
        .execute(db)
        .await?;
    Ok(())
}
