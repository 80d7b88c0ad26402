//! Requests identified by their caller and `Idempotency-Key`: the first one is stored, a repeat
//! with the same body finds it, a repeat with another body is a conflict.

use sqlx::PgConnection;
use uuid::Uuid;

/// What storing a keyed request led to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inserted {
    New(Uuid),
    /// The Idempotency-Key was used before; `same_body` tells whether the body matches.
    Existing {
        id: Uuid,
        same_body: bool,
    },
}

/// The tables whose rows are keyed requests.
#[derive(Debug, Clone, Copy)]
pub enum Keyed {
    Onboardings,
    DeviceValidations,
}

/// After an `INSERT ... ON CONFLICT (client_name, idempotency_key) DO NOTHING RETURNING id`:
/// answers the new row, or finds the one stored earlier under the same key.
pub async fn resolve(
    tx: &mut PgConnection,
    table: Keyed,
    inserted: Option<Uuid>,
    client_name: &str,
    idempotency_key: &str,
    request_hash: &[u8],
) -> Result<Inserted, sqlx::Error> {
    if let Some(id) = inserted {
        return Ok(Inserted::New(id));
    }
    // The table is part of the statement, so each table has its own (checked at build time).
    macro_rules! stored_under_key {
        ($table:literal) => {
            sqlx::query!(
                "SELECT id, request_hash FROM "
                    + $table
                    + " WHERE client_name = $1 AND idempotency_key = $2",
                client_name,
                idempotency_key,
            )
            .fetch_one(&mut *tx)
            .await
            .map(|row| (row.id, row.request_hash))?
        };
    }
    let (id, hash) = match table {
        Keyed::Onboardings => stored_under_key!("onboardings"),
        Keyed::DeviceValidations => stored_under_key!("device_validations"),
    };
    Ok(Inserted::Existing {
        id,
        same_body: hash == request_hash,
    })
}
