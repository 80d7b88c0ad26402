//! The risk team's lists: values checked against the list's key, kept as keyed hashes and
//! masks, every addition and removal recorded with who, when and why.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::{FieldError, LinkKey};
use crate::onboarding::error::FlowError;
use crate::onboarding::services::Services;
use crate::policy::memory::is_list_name;
use crate::store::StoreError;
use crate::store::lists::{self, EntryRow, ListRow, NewEntry};

/// Values one call may add at most.
pub const MAX_ENTRIES: usize = 10_000;
const LONGEST_REASON: usize = 2000;

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewList {
    /// 1 to 64 of a-z, 0-9 and _.
    pub name: String,
    /// cpf, device_id, phone or email.
    pub key: String,
    #[serde(default)]
    pub note: Option<String>,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EntryInput {
    /// The value, as the key takes it (a CPF with or without punctuation, a phone in any
    /// usual writing, ...); kept only as a keyed hash and a mask.
    pub value: String,
    pub reason: String,
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewEntries {
    /// 1 to 10,000 entries.
    pub entries: Vec<EntryInput>,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Removal {
    pub value: String,
    pub reason: String,
}

/// A list, with its count of live entries.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = List)]
pub struct ListView {
    pub name: String,
    #[schema(value_type = LinkKey)]
    pub key: String,
    #[schema(required = true)]
    pub note: Option<String>,
    /// Live entries
    pub entries: i64,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
}

impl From<ListRow> for ListView {
    fn from(row: ListRow) -> Self {
        ListView {
            name: row.name,
            key: row.key,
            note: row.note,
            entries: row.entries,
            created_by: row.created_by,
            created_at: row.created_at,
        }
    }
}

/// A live entry as shown: the value masked.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = ListEntry)]
pub struct EntryView {
    pub id: i64,
    /// Masked
    pub value: String,
    pub reason: String,
    /// Null: no expiry
    #[schema(required = true)]
    pub expires_at: Option<DateTime<Utc>>,
    pub added_by: String,
    pub added_at: DateTime<Utc>,
}

impl From<EntryRow> for EntryView {
    fn from(row: EntryRow) -> Self {
        EntryView {
            id: row.id,
            value: row.masked,
            reason: row.reason,
            expires_at: row.expires_at,
            added_by: row.by,
            added_at: row.at,
        }
    }
}

/// One record of a value's history.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = ListEntryRecord)]
pub struct HistoryView {
    pub id: i64,
    #[schema(schema_with = action_schema)]
    pub action: String,
    /// Masked
    pub value: String,
    pub reason: String,
    #[schema(required = true)]
    pub expires_at: Option<DateTime<Utc>>,
    pub by: String,
    pub at: DateTime<Utc>,
}

/// `action` is a text column; these are the two values the store writes.
fn action_schema() -> utoipa::openapi::schema::Object {
    crate::domain::schema::one_of(&["added", "removed"], None)
}

impl From<EntryRow> for HistoryView {
    fn from(row: EntryRow) -> Self {
        HistoryView {
            id: row.id,
            action: row.action,
            value: row.masked,
            reason: row.reason,
            expires_at: row.expires_at,
            by: row.by,
            at: row.at,
        }
    }
}

pub enum Outcome<T> {
    Done(T),
    NotFound,
    Invalid(Vec<FieldError>),
    Exists,
}

fn note_error(field: &str, text: &str) -> Option<FieldError> {
    (text.chars().count() > LONGEST_REASON || text.contains('\0'))
        .then(|| FieldError::new(field, "must be at most 2000 characters"))
}

fn reason_error(field: String, text: &str) -> Option<FieldError> {
    if text.trim().is_empty() {
        Some(FieldError::new(field, "must say why"))
    } else {
        note_error(&field, text)
    }
}

pub async fn create(
    flow: &Services,
    new: NewList,
    by: &str,
) -> Result<Outcome<ListView>, FlowError> {
    let mut errors = Vec::new();
    if !is_list_name(&new.name) {
        errors.push(FieldError::new("name", "must be 1 to 64 of a-z, 0-9 and _"));
    }
    if LinkKey::parse(&new.key).is_none() {
        errors.push(FieldError::new(
            "key",
            "must be cpf, device_id, phone or email",
        ));
    }
    if let Some(e) = new.note.as_deref().and_then(|n| note_error("note", n)) {
        errors.push(e);
    }
    if !errors.is_empty() {
        return Ok(Outcome::Invalid(errors));
    }
    if !lists::create(&flow.db, &new.name, &new.key, new.note.as_deref(), by).await? {
        return Ok(Outcome::Exists);
    }
    tracing::info!(list = %new.name, key = %new.key, by, "list created");
    let row = lists::all(&flow.db)
        .await?
        .into_iter()
        .find(|l| l.name == new.name)
        .ok_or_else(|| StoreError::Corrupt("a list just created is gone".into()))?;
    Ok(Outcome::Done(row.into()))
}

pub async fn all(flow: &Services) -> Result<Vec<ListView>, FlowError> {
    Ok(lists::all(&flow.db)
        .await?
        .into_iter()
        .map(ListView::from)
        .collect())
}

/// What an addition did: values added, and values given that were listed already.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = ListEntriesAdded)]
pub struct Added {
    pub added: u64,
    pub already_listed: u64,
}

/// Adds the entries in one statement, or none of them: a value the list's key refuses, a
/// missing reason or an expiry already past is a 422 naming `entries[i].<field>`.
pub async fn add(
    flow: &Services,
    name: &str,
    new: NewEntries,
    by: &str,
) -> Result<Outcome<Added>, FlowError> {
    if new.entries.is_empty() || new.entries.len() > MAX_ENTRIES {
        return Ok(Outcome::Invalid(vec![FieldError::new(
            "entries",
            "must hold 1 to 10,000 entries",
        )]));
    }
    let mut tx = crate::store::begin(&flow.db).await?;
    let Some(key) = lists::lock(&mut tx, name).await? else {
        return Ok(Outcome::NotFound);
    };
    let key = LinkKey::parse(&key)
        .ok_or_else(|| StoreError::Corrupt(format!("list {name} has an unknown key")))?;
    let now = Utc::now();
    let mut errors = Vec::new();
    let mut entries = Vec::with_capacity(new.entries.len());
    for (i, entry) in new.entries.into_iter().enumerate() {
        match key.normalise(&entry.value) {
            Ok(value) => entries.push(NewEntry {
                hash: flow.cipher.link_hash(&value),
                masked: key.mask(&value),
                reason: entry.reason.clone(),
                expires_at: entry.expires_at,
            }),
            Err(message) => errors.push(FieldError::new(format!("entries[{i}].value"), message)),
        }
        if let Some(e) = reason_error(format!("entries[{i}].reason"), &entry.reason) {
            errors.push(e);
        }
        if entry.expires_at.is_some_and(|at| at <= now) {
            errors.push(FieldError::new(
                format!("entries[{i}].expires_at"),
                "must be in the future, or null for no expiry",
            ));
        }
    }
    if !errors.is_empty() {
        errors.truncate(100);
        return Ok(Outcome::Invalid(errors));
    }
    let added = lists::add(&mut tx, name, &entries, by).await?;
    tx.commit().await?;
    let added = Added {
        added,
        already_listed: entries.len() as u64 - added,
    };
    tracing::info!(
        list = name,
        added = added.added,
        already_listed = added.already_listed,
        by,
        "list entries added"
    );
    Ok(Outcome::Done(added))
}

pub async fn remove(
    flow: &Services,
    name: &str,
    removal: Removal,
    by: &str,
) -> Result<Outcome<()>, FlowError> {
    let mut tx = crate::store::begin(&flow.db).await?;
    let Some(key) = lists::lock(&mut tx, name).await? else {
        return Ok(Outcome::NotFound);
    };
    let key = LinkKey::parse(&key)
        .ok_or_else(|| StoreError::Corrupt(format!("list {name} has an unknown key")))?;
    let mut errors = Vec::new();
    let value = match key.normalise(&removal.value) {
        Ok(value) => Some(value),
        Err(message) => {
            errors.push(FieldError::new("value", message));
            None
        }
    };
    if let Some(e) = reason_error("reason".into(), &removal.reason) {
        errors.push(e);
    }
    let Some(value) = value.filter(|_| errors.is_empty()) else {
        return Ok(Outcome::Invalid(errors));
    };
    let hash = flow.cipher.link_hash(&value);
    if !lists::remove(&mut tx, name, &hash, &removal.reason, by).await? {
        return Ok(Outcome::NotFound);
    }
    tx.commit().await?;
    tracing::info!(list = name, by, "list entry removed");
    Ok(Outcome::Done(()))
}

/// One value of a list: whether it is listed now, its live entry, and its history, oldest
/// first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = ListEntryLookup)]
pub struct Lookup {
    pub listed: bool,
    /// Null when the value is not listed now
    #[schema(required = true)]
    pub entry: Option<EntryView>,
    pub history: Vec<HistoryView>,
}

/// One value of a list: whether it is listed now, its live entry, and every addition and
/// removal of it, oldest first. Also answers the masked value and the value's keyed hash for
/// the access record.
pub async fn lookup(
    flow: &Services,
    name: &str,
    value: &str,
) -> Result<Outcome<(Lookup, String, Vec<u8>)>, FlowError> {
    let Some(key) = lists::key_of(&flow.db, name).await? else {
        return Ok(Outcome::NotFound);
    };
    let key = LinkKey::parse(&key)
        .ok_or_else(|| StoreError::Corrupt(format!("list {name} has an unknown key")))?;
    let value = match key.normalise(value) {
        Ok(value) => value,
        Err(message) => return Ok(Outcome::Invalid(vec![FieldError::new("value", message)])),
    };
    let hash = flow.cipher.link_hash(&value);
    let history = lists::history(&flow.db, name, &hash).await?;
    let now = Utc::now();
    let entry = history
        .last()
        .filter(|e| e.action == "added" && e.expires_at.is_none_or(|at| at > now))
        .cloned()
        .map(EntryView::from);
    Ok(Outcome::Done((
        Lookup {
            listed: entry.is_some(),
            entry,
            history: history.into_iter().map(HistoryView::from).collect(),
        },
        key.mask(&value),
        hash,
    )))
}

/// A page of a list's live entries, newest first; the cursor is the last entry's id.
pub async fn live(
    flow: &Services,
    name: &str,
    before: Option<i64>,
    limit: i64,
) -> Result<Outcome<(Vec<EntryView>, Option<i64>)>, FlowError> {
    if lists::key_of(&flow.db, name).await?.is_none() {
        return Ok(Outcome::NotFound);
    }
    let rows = lists::live(&flow.db, name, before, limit + 1).await?;
    let more = rows.len() as i64 > limit;
    let items: Vec<EntryView> = rows
        .into_iter()
        .take(limit as usize)
        .map(EntryView::from)
        .collect();
    let next = if more {
        items.last().map(|e| e.id)
    } else {
        None
    };
    Ok(Outcome::Done((items, next)))
}
