//! The risk team's lists: a list names the key its values are of; its entries are an
//! append-only record of every addition and removal (who, when, why), and a value is listed
//! while its latest record is an addition that has not expired. Values only as keyed hashes
//! and masks.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor};

#[derive(Debug, Clone)]
pub struct ListRow {
    pub name: String,
    pub key: String,
    pub note: Option<String>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    /// Live entries.
    pub entries: i64,
}

#[derive(Debug, Clone)]
pub struct EntryRow {
    pub id: i64,
    pub masked: String,
    pub action: String,
    pub reason: String,
    pub expires_at: Option<DateTime<Utc>>,
    pub by: String,
    pub at: DateTime<Utc>,
}

/// Calls the query macro `$query` (with its leading arguments, such as the row type) on the
/// statement `$before` `(live)` `$after`, where `live` is the live entries of each list (or of
/// the list named by `$1`), computed from the latest record per value.
macro_rules! over_live {
    ($($query:ident)::+!($($lead:tt)*) $before:literal, $after:literal $(, $arg:expr)* $(,)?) => {
        $($query)::+!(
            $($lead)*
            $before
                + "(SELECT DISTINCT ON (e.list_name, e.hash) e.list_name, e.hash, e.id, e.masked,
                           e.action, e.reason, e.expires_at, e.by, e.at
                      FROM list_entries e
                     WHERE ($1::text IS NULL OR e.list_name = $1)
                     ORDER BY e.list_name, e.hash, e.id DESC) live"
                + $after
            $(, $arg)*
        )
    };
}

/// Creates a list. False when one of that name exists.
pub async fn create(
    db: impl PgExecutor<'_>,
    name: &str,
    key: &str,
    note: Option<&str>,
    by: &str,
) -> Result<bool, sqlx::Error> {
    let created = sqlx::query!(
        "INSERT INTO lists (name, key, note, created_by) VALUES ($1, $2, $3, $4)
         ON CONFLICT (name) DO NOTHING",
        name,
        key,
        note,
        by,
    )
    .execute(db)
    .await?
    .rows_affected();
    Ok(created == 1)
}

/// Every list with its count of live entries.
pub async fn all(db: impl PgExecutor<'_>) -> Result<Vec<ListRow>, sqlx::Error> {
    over_live!(
        sqlx::query_as!(ListRow,)
        "SELECT l.name, l.key, l.note, l.created_by, l.created_at,
                (SELECT count(*) FROM ",
        " WHERE live.list_name = l.name AND live.action = 'added'
                    AND (live.expires_at IS NULL OR live.expires_at > now())) AS \"entries!\"
           FROM lists l ORDER BY l.name",
        None::<&str>,
    )
    .fetch_all(db)
    .await
}

/// The list's key, with the list locked until the transaction ends: additions and removals to
/// one list are made one after the other, each seeing what the one before it wrote.
pub async fn lock(tx: &mut PgConnection, name: &str) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar!("SELECT key FROM lists WHERE name = $1 FOR UPDATE", name)
        .fetch_optional(tx)
        .await
}

pub async fn key_of(db: impl PgExecutor<'_>, name: &str) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar!("SELECT key FROM lists WHERE name = $1", name)
        .fetch_optional(db)
        .await
}

/// A new entry, its value already hashed and masked.
pub struct NewEntry {
    pub hash: Vec<u8>,
    pub masked: String,
    pub reason: String,
    pub expires_at: Option<DateTime<Utc>>,
}

/// Adds the entries not already listed, in one statement (the list locked by `lock`); a value
/// given twice is added once. Answers how many were added.
pub async fn add(
    tx: &mut PgConnection,
    name: &str,
    entries: &[NewEntry],
    by: &str,
) -> Result<u64, sqlx::Error> {
    let hashes: Vec<&[u8]> = entries.iter().map(|e| e.hash.as_slice()).collect();
    let masked: Vec<&str> = entries.iter().map(|e| e.masked.as_str()).collect();
    let reasons: Vec<&str> = entries.iter().map(|e| e.reason.as_str()).collect();
    let expires: Vec<Option<DateTime<Utc>>> = entries.iter().map(|e| e.expires_at).collect();
    let added = sqlx::query!(
        "INSERT INTO list_entries (list_name, hash, masked, action, reason, expires_at, by)
         SELECT $1, n.hash, n.masked, 'added', n.reason, n.expires_at, $6
           FROM (SELECT DISTINCT ON (hash) hash, masked, reason, expires_at
                   FROM unnest($2::bytea[], $3::text[], $4::text[], $5::timestamptz[])
                        WITH ORDINALITY AS u(hash, masked, reason, expires_at, i)
                  ORDER BY hash, i) n
          WHERE NOT EXISTS (
                SELECT 1 FROM (SELECT e.action, e.expires_at FROM list_entries e
                                WHERE e.list_name = $1 AND e.hash = n.hash
                                ORDER BY e.id DESC LIMIT 1) latest
                 WHERE latest.action = 'added'
                   AND (latest.expires_at IS NULL OR latest.expires_at > now()))",
        name,
        &hashes as &[&[u8]],
        &masked as &[&str],
        &reasons as &[&str],
        &expires as &[Option<DateTime<Utc>>],
        by,
    )
    .execute(tx)
    .await?
    .rows_affected();
    Ok(added)
}

/// Records the removal of a listed value (the list locked by `lock`). False when it was not
/// listed.
pub async fn remove(
    tx: &mut PgConnection,
    name: &str,
    hash: &[u8],
    reason: &str,
    by: &str,
) -> Result<bool, sqlx::Error> {
    let removed = sqlx::query!(
        "INSERT INTO list_entries (list_name, hash, masked, action, reason, by)
         SELECT $1, $2, latest.masked, 'removed', $3, $4
           FROM (SELECT e.masked, e.action, e.expires_at FROM list_entries e
                  WHERE e.list_name = $1 AND e.hash = $2
                  ORDER BY e.id DESC LIMIT 1) latest
          WHERE latest.action = 'added' AND (latest.expires_at IS NULL OR latest.expires_at > now())",
        name,
        hash,
        reason,
        by,
    )
    .execute(tx)
    .await?
    .rows_affected();
    Ok(removed == 1)
}

/// Every record of one value in the list, oldest first.
pub async fn history(
    db: impl PgExecutor<'_>,
    name: &str,
    hash: &[u8],
) -> Result<Vec<EntryRow>, sqlx::Error> {
    sqlx::query_as!(
        EntryRow,
        "SELECT id, masked, action, reason, expires_at, by, at FROM list_entries
          WHERE list_name = $1 AND hash = $2 ORDER BY id",
        name,
        hash,
    )
    .fetch_all(db)
    .await
}

/// The live entries of a list, newest first, `limit` at most after the entry `before` (its id).
pub async fn live(
    db: impl PgExecutor<'_>,
    name: &str,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<EntryRow>, sqlx::Error> {
    over_live!(
        sqlx::query_as!(EntryRow,)
        "SELECT live.id, live.masked, live.action, live.reason, live.expires_at, live.by, live.at
           FROM ",
        " WHERE live.action = 'added' AND (live.expires_at IS NULL OR live.expires_at > now())
            AND ($2::bigint IS NULL OR live.id < $2)
          ORDER BY live.id DESC LIMIT $3",
        name,
        before,
        limit,
    )
    .fetch_all(db)
    .await
}

/// Live entries by list's key, for the metrics.
pub async fn sizes(db: impl PgExecutor<'_>) -> Result<Vec<(String, i64)>, sqlx::Error> {
    let sizes = over_live!(
        sqlx::query!()
        "SELECT l.key, count(live.id) FILTER (WHERE live.action = 'added'
                    AND (live.expires_at IS NULL OR live.expires_at > now())) AS \"live!\"
           FROM lists l LEFT JOIN ",
        " ON live.list_name = l.name
          GROUP BY l.key ORDER BY l.key",
        None::<&str>,
    )
    .fetch_all(db)
    .await?;
    Ok(sizes.into_iter().map(|s| (s.key, s.live)).collect())
}
