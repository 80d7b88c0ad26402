//! Console sessions, by the SHA-256 of their id.

use std::time::Duration;

use sqlx::PgExecutor;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SessionRow {
    pub key_name: String,
    pub scopes: Vec<String>,
    pub csrf_token: String,
    /// The person's subject at the identity provider; `None` for a session opened with a key.
    pub subject: Option<String>,
    pub person_name: Option<String>,
}

/// The person a session opened through the identity provider belongs to.
pub struct Person<'a> {
    pub subject: &'a str,
    pub name: &'a str,
}

pub async fn create(
    db: impl PgExecutor<'_>,
    id_sha256: &[u8],
    key_name: &str,
    scopes: &[String],
    csrf_token: &str,
    lifetime: Duration,
    person: Option<Person<'_>>,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "INSERT INTO console_sessions
                (id_sha256, key_name, scopes, csrf_token, expires_at, subject, person_name)
         VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5), $6, $7)",
        id_sha256,
        key_name,
        scopes,
        csrf_token,
        lifetime.as_secs_f64(),
        person.as_ref().map(|p| p.subject),
        person.as_ref().map(|p| p.name),
    )
    .execute(db)
    .await?;
    Ok(())
}

/// The live session with this id hash.
pub async fn get(
    db: impl PgExecutor<'_>,
    id_sha256: &[u8],
) -> Result<Option<SessionRow>, sqlx::Error> {
    sqlx::query_as!(
        SessionRow,
        "SELECT key_name, scopes, csrf_token, subject, person_name FROM console_sessions
          WHERE id_sha256 = $1 AND expires_at > now()",
        id_sha256,
    )
    .fetch_optional(db)
    .await
}

/// Ends the session, and any that expired meanwhile.
pub async fn delete(db: impl PgExecutor<'_>, id_sha256: &[u8]) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "DELETE FROM console_sessions WHERE id_sha256 = $1 OR expires_at < now()",
        id_sha256,
    )
    .execute(db)
    .await?;
    Ok(())
}

/// A sign-in on its way through the identity provider, for `lifetime` at most.
pub async fn begin_sign_in(
    db: impl PgExecutor<'_>,
    id_sha256: &[u8],
    lifetime: Duration,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "INSERT INTO console_sign_ins (id_sha256, expires_at)
         VALUES ($1, now() + make_interval(secs => $2))",
        id_sha256,
        lifetime.as_secs_f64(),
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Takes the sign-in with this id hash: true once, while it is live; the expired ones go too.
pub async fn take_sign_in(db: impl PgExecutor<'_>, id_sha256: &[u8]) -> Result<bool, sqlx::Error> {
    let taken = sqlx::query_scalar!(
        r#"DELETE FROM console_sign_ins WHERE id_sha256 = $1 OR expires_at < now()
         RETURNING id_sha256 = $1 AND expires_at > now() AS "live!""#,
        id_sha256,
    )
    .fetch_all(db)
    .await?;
    Ok(taken.into_iter().any(|live| live))
}
