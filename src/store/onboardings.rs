//! Onboardings: the request as received (personal data sealed), and where it stands.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use crate::crypto::PiiCipher;
use crate::domain::LinkKey;
use crate::policy::memory::Questions;
use crate::store::StoreError;
use crate::store::figures::{FigureArgs, bind_figure_args};

/// The personal data of an onboarding, stored only as ciphertext. After a subject's erasure
/// (LGPD Art. 18 VI) only the CPF is left in it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PersonData {
    /// The CPF's 11 digits.
    pub cpf: String,
    /// None once the person had it erased.
    #[serde(default)]
    pub name: Option<String>,
    pub birth_date: Option<String>,
    pub gender: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
}

impl PersonData {
    /// The sealed fields the person may have erased (all but the CPF), by name, as present.
    pub fn erasable_fields(&self) -> Vec<&'static str> {
        [
            ("name", self.name.is_some()),
            ("birth_date", self.birth_date.is_some()),
            ("gender", self.gender.is_some()),
            ("email", self.email.is_some()),
            ("phone", self.phone.is_some()),
        ]
        .into_iter()
        .filter_map(|(field, held)| held.then_some(field))
        .collect()
    }

    /// What is left after the person's erasure: the CPF alone.
    pub fn cpf_only(&self) -> PersonData {
        PersonData {
            cpf: self.cpf.clone(),
            name: None,
            birth_date: None,
            gender: None,
            email: None,
            phone: None,
        }
    }
}

pub struct NewOnboarding<'a> {
    pub id: Uuid,
    pub client_name: &'a str,
    pub idempotency_key: &'a str,
    pub request_hash: &'a [u8],
    pub reference: Option<&'a str>,
    pub person: &'a PersonData,
    pub account_id: &'a str,
    pub person_id: &'a str,
    pub device: Value,
    pub open_finance: Option<Value>,
    /// The selfie, base64 as received; sealed until unico has it.
    pub selfie: &'a str,
    /// Its link values, normalised (`domain::link::values`); stored as keyed hashes.
    pub links: &'a [(crate::domain::LinkKey, String)],
    /// What the risk-memory rules in force ask of those values; the statement that stores the
    /// onboarding answers it (`memory`), after its locks. None: no such rule.
    pub questions: Option<&'a crate::policy::memory::Questions>,
}

pub use crate::store::idempotency::Inserted;

/// The selfie is sealed under the row id and this label, so its ciphertext cannot pass for the
/// person's data.
const SELFIE_CONTEXT: &[u8] = b"selfie";

fn selfie_context(id: Uuid) -> Vec<u8> {
    [id.as_bytes().as_slice(), SELFIE_CONTEXT].concat()
}

/// Stores a new onboarding, or finds the one stored under the same Idempotency-Key. A new one
/// is answered with its row as stored, which the first step may take instead of reading it, and
/// gets the first entry of its timeline (`received`) and its link keys in the same statement.
/// That statement first takes a transaction-scoped advisory lock on each link value, so the
/// onboardings sharing a value are stored one after the other, and each statement after this
/// one sees every onboarding stored before it under those values (`store::links`).
pub async fn insert(
    tx: &mut PgConnection,
    cipher: &PiiCipher,
    new: NewOnboarding<'_>,
) -> Result<(Inserted, Option<OnboardingRow>), StoreError> {
    let plaintext =
        serde_json::to_vec(new.person).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let (key_id, sealed) = cipher.encrypt(&plaintext, new.id.as_bytes())?;
    let (selfie_key_id, selfie_sealed) =
        cipher.encrypt(new.selfie.as_bytes(), &selfie_context(new.id))?;
    let links = LinkRows::of(cipher, new.links);
    let nothing_asked = Questions::default();
    let asked = new.questions.unwrap_or(&nothing_asked);
    let questions = FigureArgs::of(asked);
    // Worked out only when a rule asks for figures (otherwise the statement takes none).
    let alone = new.questions.and_then(|asked| {
        let present: Vec<LinkKey> = new.links.iter().map(|(key, _)| *key).collect();
        crate::store::figures::alone(asked, &present)
    });
    // Built at run time, not checked at build time: its risk-memory arguments are bound by
    // `bind_figure_args!` and spliced in by `FigureArgs::call` (store/figures.rs), which
    // `sqlx::query_as!` cannot take.
    static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!(
            "WITH locked AS (
                 SELECT count(pg_advisory_xact_lock(k)) AS locks
                   FROM (SELECT k FROM unnest($15::bigint[]) AS k ORDER BY k) ordered
             ), stored AS (
                 INSERT INTO onboardings (id, client_name, idempotency_key, request_hash, reference, cpf_hash,
                                          pii_key_id, pii_ciphertext, account_id, person_id, device, open_finance,
                                          selfie_key_id, selfie_ciphertext, memory)
                 SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14,
                        CASE WHEN $18 THEN {FIGURES} END
                   FROM locked
                 ON CONFLICT (client_name, idempotency_key) DO NOTHING
                 RETURNING {COLUMNS}
             ), received AS (
                 INSERT INTO onboarding_events (onboarding_id, kind) SELECT id, 'received' FROM stored
             ), linked AS (
                 INSERT INTO onboarding_links (onboarding_id, key, hash, created_at)
                 SELECT stored.id, l.key, l.hash, stored.created_at
                   FROM stored, unnest($16::text[], $17::bytea[]) AS l(key, hash)
             )
             SELECT * FROM stored",
            FIGURES = FigureArgs::call("new_onboarding_figures", ["$1", "$16", "$17", "$28"], 19)
        )
    });
    let query = sqlx::query_as(SQL.as_str())
        .bind(new.id)
        .bind(new.client_name)
        .bind(new.idempotency_key)
        .bind(new.request_hash)
        .bind(new.reference)
        .bind(cipher.cpf_hash(&new.person.cpf))
        .bind(key_id)
        .bind(sealed)
        .bind(new.account_id)
        .bind(new.person_id)
        .bind(new.device)
        .bind(new.open_finance)
        .bind(selfie_key_id)
        .bind(selfie_sealed)
        .bind(&links.locks)
        .bind(&links.keys)
        .bind(&links.hashes)
        .bind(new.questions.is_some());
    let inserted: Option<OnboardingRow> = bind_figure_args!(query, questions)
        .bind(alone)
        .fetch_optional(&mut *tx)
        .await?;
    let resolved = crate::store::idempotency::resolve(
        tx,
        crate::store::idempotency::Keyed::Onboardings,
        inserted.as_ref().map(|row| row.id),
        new.client_name,
        new.idempotency_key,
        new.request_hash,
    )
    .await?;
    Ok((resolved, inserted))
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OnboardingRow {
    pub id: Uuid,
    pub client_name: String,
    pub reference: Option<String>,
    pub account_id: String,
    pub person_id: String,
    pub device: Value,
    pub open_finance: Option<Value>,
    pub state: String,
    pub pii_key_id: Option<String>,
    pub pii_ciphertext: Option<Vec<u8>>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub decided_at: Option<DateTime<Utc>>,
    /// The risk-memory figures taken when it was received (`store::links`).
    pub memory: Option<Value>,
}

impl OnboardingRow {
    /// The personal data, or None once retention erased it.
    pub fn person(&self, cipher: &PiiCipher) -> Result<Option<PersonData>, StoreError> {
        let (Some(key_id), Some(sealed)) = (&self.pii_key_id, &self.pii_ciphertext) else {
            return Ok(None);
        };
        let plain = cipher.decrypt(key_id, sealed, self.id.as_bytes())?;
        serde_json::from_slice(&plain)
            .map(Some)
            .map_err(|e| StoreError::Corrupt(e.to_string()))
    }

    /// The risk-memory figures taken when it was received; None when no rule asked for them
    /// (or, stored in a shape this build cannot read, none that can be judged).
    pub fn memory(&self) -> Option<crate::domain::evidence::MemoryEvidence> {
        self.memory
            .as_ref()
            .and_then(|v| serde_json::from_value(v.clone()).ok())
    }

    pub fn risk_signals(&self) -> Option<crate::domain::evidence::RiskSignals> {
        self.device
            .get("risk_signals")
            .and_then(|v| serde_json::from_value(v.clone()).ok())
    }
}

/// The columns of an `OnboardingRow`, for the statements built at run time (`insert` here, and
/// the joins that `columns_of` qualifies). The statements checked at build time name them in
/// `query_onboarding!`.
const COLUMNS: &str =
    "id, client_name, reference, account_id, person_id, device, open_finance, state,
                       pii_key_id, pii_ciphertext, last_error, created_at, decided_at, memory";

/// `sqlx::query!` with an `OnboardingRow`'s columns between `$before` and `$after`; its
/// records become `OnboardingRow`s by `onboarding_row!`.
macro_rules! query_onboarding {
    ($before:literal, $after:literal $(, $arg:expr)* $(,)?) => {
        sqlx::query!(
            $before
                + "id, client_name, reference, account_id, person_id, device, open_finance, state,
                   pii_key_id, pii_ciphertext, last_error, created_at, decided_at, memory"
                + $after
            $(, $arg)*
        )
    };
}

/// The `OnboardingRow` of a record that has its columns, by name (`query_onboarding!`, or a
/// join that names them); the record's other fields stay.
macro_rules! onboarding_row {
    ($r:ident) => {
        $crate::store::onboardings::OnboardingRow {
            id: $r.id,
            client_name: $r.client_name,
            reference: $r.reference,
            account_id: $r.account_id,
            person_id: $r.person_id,
            device: $r.device,
            open_finance: $r.open_finance,
            state: $r.state,
            pii_key_id: $r.pii_key_id,
            pii_ciphertext: $r.pii_ciphertext,
            last_error: $r.last_error,
            created_at: $r.created_at,
            decided_at: $r.decided_at,
            memory: $r.memory,
        }
    };
}
pub(crate) use onboarding_row;

/// The columns of an `OnboardingRow`, qualified by `alias`, for a statement that joins it.
pub fn columns_of(alias: &str) -> String {
    COLUMNS
        .split(',')
        .map(|c| format!("{alias}.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ")
}

pub async fn get(db: impl PgExecutor<'_>, id: Uuid) -> Result<Option<OnboardingRow>, sqlx::Error> {
    let row = query_onboarding!("SELECT ", " FROM onboardings WHERE id = $1", id)
        .fetch_optional(db)
        .await?;
    Ok(row.map(|r| onboarding_row!(r)))
}

/// The onboardings of `ids` that exist, in no particular order.
pub async fn many(
    db: impl PgExecutor<'_>,
    ids: &[Uuid],
) -> Result<Vec<OnboardingRow>, sqlx::Error> {
    let rows = query_onboarding!(
        "SELECT ",
        " FROM onboardings WHERE id = ANY($1)",
        ids as &[Uuid]
    )
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(|r| onboarding_row!(r)).collect())
}

pub async fn state(db: impl PgExecutor<'_>, id: Uuid) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar!("SELECT state FROM onboardings WHERE id = $1", id)
        .fetch_optional(db)
        .await
}

/// Moves the onboarding from `from` to `to`, in the caller's transaction. Answers false when it
/// was no longer in `from` (another replica or a late answer got there first: theirs stands).
/// Leaving `received` erases the sealed selfie: unico has it, or will never need it.
pub async fn transition(
    db: impl PgExecutor<'_>,
    id: Uuid,
    from: &str,
    to: &str,
) -> Result<Option<bool>, sqlx::Error> {
    // Answers, when it moved, whether the person asked for an erasure meanwhile: the request
    // sets the flag on this row under its lock, so the row as this statement moves it (read
    // again after any wait for that lock) tells, without another round trip.
    sqlx::query_scalar!(
        "UPDATE onboardings
            SET state = $3, updated_at = now(),
                decided_at = CASE WHEN $3 = 'decided' THEN now() ELSE decided_at END,
                selfie_key_id = CASE WHEN $3 = 'received' THEN selfie_key_id END,
                selfie_ciphertext = CASE WHEN $3 = 'received' THEN selfie_ciphertext END
          WHERE id = $1 AND state = $2
          RETURNING erasure_requested",
        id,
        from,
        to,
    )
    .fetch_optional(db)
    .await
}

/// The onboarding and its sealed selfie (None once unico has it), in one statement: what the
/// CreateProcess step needs.
pub async fn get_with_selfie(
    db: impl PgExecutor<'_>,
    cipher: &PiiCipher,
    id: Uuid,
) -> Result<Option<(OnboardingRow, Option<String>)>, StoreError> {
    let row = query_onboarding!(
        "SELECT ",
        ", selfie_key_id, selfie_ciphertext FROM onboardings WHERE id = $1",
        id,
    )
    .fetch_optional(db)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let selfie = match (row.selfie_key_id, row.selfie_ciphertext) {
        (Some(key_id), Some(sealed)) => Some(open_selfie(cipher, id, &key_id, &sealed)?),
        _ => None,
    };
    Ok(Some((onboarding_row!(row), selfie)))
}

fn open_selfie(
    cipher: &PiiCipher,
    id: Uuid,
    key_id: &str,
    sealed: &[u8],
) -> Result<String, StoreError> {
    let plain = cipher.decrypt(key_id, sealed, &selfie_context(id))?;
    String::from_utf8(plain)
        .map_err(|_| StoreError::Corrupt("the sealed selfie is not text".into()))
}

/// An onboarding's link keys as stored: the key names, their hashes, and the advisory-lock ids
/// of those hashes in ascending order (every transaction takes its locks in that order, so two
/// onboardings sharing two values cannot deadlock).
pub struct LinkRows {
    pub keys: Vec<&'static str>,
    pub hashes: Vec<Vec<u8>>,
    pub locks: Vec<i64>,
}

impl LinkRows {
    pub fn of(cipher: &PiiCipher, values: &[(LinkKey, String)]) -> LinkRows {
        let mut rows = LinkRows {
            keys: Vec::new(),
            hashes: Vec::new(),
            locks: Vec::new(),
        };
        for (key, value) in values {
            let hash = cipher.link_hash(value);
            rows.locks.push(lock_id(&hash));
            rows.keys.push(key.as_str());
            rows.hashes.push(hash);
        }
        rows.locks.sort_unstable();
        rows.locks.dedup();
        rows
    }
}

/// The advisory-lock id of a value: the first eight bytes of its keyed hash. Two values that
/// happen to share one only wait for each other.
pub fn lock_id(hash: &[u8]) -> i64 {
    let mut first = [0u8; 8];
    for (to, from) in first.iter_mut().zip(hash) {
        *to = *from;
    }
    i64::from_be_bytes(first)
}
