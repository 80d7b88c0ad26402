//! Onboardings: the request as received (personal data sealed), and where it stands.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::{PgExecutor, PgPool};
use uuid::Uuid;

use crate::crypto::PiiCipher;
use crate::store::StoreError;

/// The personal data of an onboarding, stored only as ciphertext.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PersonData {
    /// The CPF's 11 digits.
    pub cpf: String,
    pub name: String,
    pub birth_date: Option<String>,
    pub gender: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
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
}

pub enum Inserted {
    New(Uuid),
    /// The Idempotency-Key was used before; `same_body` tells whether the body matches.
    Existing {
        id: Uuid,
        same_body: bool,
    },
}

pub async fn insert(
    pool: &PgPool,
    cipher: &PiiCipher,
    new: NewOnboarding<'_>,
) -> Result<Inserted, StoreError> {
    let plaintext =
        serde_json::to_vec(new.person).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let (key_id, sealed) = cipher.encrypt(&plaintext, new.id.as_bytes())?;
    let inserted: Option<Uuid> = sqlx::query_scalar(
        "INSERT INTO onboardings (id, client_name, idempotency_key, request_hash, reference, cpf_hash,
                                  pii_key_id, pii_ciphertext, account_id, person_id, device, open_finance)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
         ON CONFLICT (client_name, idempotency_key) DO NOTHING
         RETURNING id",
    )
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
    .fetch_optional(pool)
    .await?;
    if let Some(id) = inserted {
        return Ok(Inserted::New(id));
    }
    let (id, hash): (Uuid, Vec<u8>) = sqlx::query_as(
        "SELECT id, request_hash FROM onboardings WHERE client_name = $1 AND idempotency_key = $2",
    )
    .bind(new.client_name)
    .bind(new.idempotency_key)
    .fetch_one(pool)
    .await?;
    Ok(Inserted::Existing {
        id,
        same_body: hash == new.request_hash,
    })
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

    pub fn risk_signals(&self) -> Option<crate::domain::evidence::RiskSignals> {
        self.device
            .get("risk_signals")
            .and_then(|v| serde_json::from_value(v.clone()).ok())
    }
}

const COLUMNS: &str =
    "id, client_name, reference, account_id, person_id, device, open_finance, state,
                       pii_key_id, pii_ciphertext, last_error, created_at, decided_at";

pub async fn get(db: impl PgExecutor<'_>, id: Uuid) -> Result<Option<OnboardingRow>, sqlx::Error> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM onboardings WHERE id = $1"))
        .bind(id)
        .fetch_optional(db)
        .await
}

pub async fn state(db: impl PgExecutor<'_>, id: Uuid) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT state FROM onboardings WHERE id = $1")
        .bind(id)
        .fetch_optional(db)
        .await
}

/// Takes the right to create this onboarding's unico process for `lease`. Only one request at a
/// time holds it, and a holder that crashed loses it when the lease runs out.
pub async fn claim_creation(
    pool: &PgPool,
    id: Uuid,
    lease: std::time::Duration,
) -> Result<bool, sqlx::Error> {
    let claimed: Option<Uuid> = sqlx::query_scalar(
        "UPDATE onboardings
            SET create_claimed_until = now() + make_interval(secs => $2), updated_at = now()
          WHERE id = $1 AND state = 'received'
            AND (create_claimed_until IS NULL OR create_claimed_until < now())
          RETURNING id",
    )
    .bind(id)
    .bind(lease.as_secs_f64())
    .fetch_optional(pool)
    .await?;
    Ok(claimed.is_some())
}

/// Gives the claim back after a failed attempt, so a retry of the request may try again.
pub async fn release_creation(pool: &PgPool, id: Uuid, error: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE onboardings SET create_claimed_until = NULL, last_error = $2, updated_at = now()
          WHERE id = $1 AND state = 'received'",
    )
    .bind(id)
    .bind(error)
    .execute(pool)
    .await?;
    Ok(())
}

pub async fn set_state(db: impl PgExecutor<'_>, id: Uuid, state: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE onboardings SET state = $2, updated_at = now() WHERE id = $1 AND state <> 'decided'")
        .bind(id)
        .bind(state)
        .execute(db)
        .await?;
    Ok(())
}

/// Onboardings whose unico process was never created (the request died before it could be)
/// and that nobody is creating now, older than `age`.
pub async fn stranded(
    pool: &PgPool,
    age: std::time::Duration,
    limit: i64,
) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT id FROM onboardings
          WHERE state = 'received' AND created_at < now() - make_interval(secs => $1)
            AND (create_claimed_until IS NULL OR create_claimed_until < now())
          ORDER BY created_at LIMIT $2",
    )
    .bind(age.as_secs_f64())
    .bind(limit)
    .fetch_all(pool)
    .await
}
