//! Process ids that carry their own state (creation time and scenario, signed), so GetProcess
//! needs no memory and survives restarts.

use ring::hmac;
use ring::rand::SecureRandom;
use subtle::ConstantTimeEq;
use uuid::Uuid;

use super::Unico;
use crate::sandbox::scenarios::{self, Scenario};

/// Bytes of the process id given over to authenticating it.
const ID_TAG_LEN: usize = 4;

// Process ids carry their own state, so GetProcess needs no memory and survives restarts.
// Layout, a well-formed UUIDv7:
//   0..6  creation time, unix milliseconds (48 bits)
//   6     version 7 | 4 random bits
//   7     scenario number
//   8     RFC 4122 variant | 6 random bits
//   9..12 random
//   12..16 HMAC-SHA256 of bytes 0..12, truncated
impl Unico {
    pub(super) fn new_process_id(&self, scenario: &Scenario, created_ms: u64) -> Option<Uuid> {
        let mut bytes = [0u8; 16];
        self.rng.fill(&mut bytes[6..12]).ok()?;
        bytes[..6].copy_from_slice(&created_ms.to_be_bytes()[2..]);
        bytes[6] = 0x70 | (bytes[6] & 0x0f);
        bytes[7] = scenario.number;
        bytes[8] = 0x80 | (bytes[8] & 0x3f);
        let tag = hmac::sign(&self.id_key, &bytes[..12]);
        bytes[12..].copy_from_slice(&tag.as_ref()[..ID_TAG_LEN]);
        Some(Uuid::from_bytes(bytes))
    }

    pub(super) fn read_process_id(&self, id: &str) -> Option<(&'static Scenario, u64)> {
        let bytes = Uuid::try_parse(id).ok()?.into_bytes();
        let tag = hmac::sign(&self.id_key, &bytes[..12]);
        if !bool::from(bytes[12..].ct_eq(&tag.as_ref()[..ID_TAG_LEN])) {
            return None;
        }
        let mut millis = [0u8; 8];
        millis[2..].copy_from_slice(&bytes[..6]);
        Some((scenarios::by_number(bytes[7])?, u64::from_be_bytes(millis)))
    }
}
