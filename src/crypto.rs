//! Protection of personal data at rest: AES-256-GCM under rotating keys, and a keyed hash of
//! the CPF so decisions can be found by CPF without storing it in the clear.

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use secrecy::ExposeSecret;

use crate::config::PiiSettings;

#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("configuration key `{key}`: {message}")]
    Config { key: &'static str, message: String },
    #[error("no key `{0}` is configured to decrypt this row")]
    UnknownKey(String),
    #[error("ciphertext does not authenticate")]
    Tampered,
    #[error("no randomness available")]
    Random,
}

/// Encrypts with the active key, decrypts with any configured key, so keys can rotate: new rows
/// use the new key while old rows stay readable until they are re-encrypted or erased.
pub struct PiiCipher {
    active: String,
    keys: HashMap<String, LessSafeKey>,
    hash_key: hmac::Key,
    rng: SystemRandom,
}

impl std::fmt::Debug for PiiCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PiiCipher")
            .field("active", &self.active)
            .finish_non_exhaustive()
    }
}

fn decode_key(key: &'static str, value: &str) -> Result<Vec<u8>, CryptoError> {
    let bytes = BASE64
        .decode(value.trim())
        .map_err(|_| CryptoError::Config {
            key,
            message: "must be base64".into(),
        })?;
    if bytes.len() != 32 {
        return Err(CryptoError::Config {
            key,
            message: format!("must decode to 32 bytes, not {}", bytes.len()),
        });
    }
    Ok(bytes)
}

impl PiiCipher {
    pub fn from_settings(settings: &PiiSettings) -> Result<Self, CryptoError> {
        let mut keys = HashMap::new();
        for entry in &settings.keys {
            let bytes = decode_key("pii.keys", entry.key.expose_secret())?;
            let unbound =
                UnboundKey::new(&AES_256_GCM, &bytes).map_err(|_| CryptoError::Config {
                    key: "pii.keys",
                    message: "unusable AES-256 key".into(),
                })?;
            keys.insert(entry.id.clone(), LessSafeKey::new(unbound));
        }
        if !keys.contains_key(&settings.active_key_id) {
            return Err(CryptoError::Config {
                key: "pii.active_key_id",
                message: "must name one of pii.keys".into(),
            });
        }
        let hash_key = hmac::Key::new(
            hmac::HMAC_SHA256,
            &decode_key("pii.hash_key", settings.hash_key.expose_secret())?,
        );
        Ok(PiiCipher {
            active: settings.active_key_id.clone(),
            keys,
            hash_key,
            rng: SystemRandom::new(),
        })
    }

    pub fn active_key_id(&self) -> &str {
        &self.active
    }

    /// Seals `plaintext` bound to `context` (the row's id), so a ciphertext copied onto another
    /// row does not decrypt. Output: nonce followed by ciphertext and tag.
    pub fn encrypt(
        &self,
        plaintext: &[u8],
        context: &[u8],
    ) -> Result<(String, Vec<u8>), CryptoError> {
        let key = &self.keys[&self.active];
        let mut nonce = [0u8; NONCE_LEN];
        self.rng.fill(&mut nonce).map_err(|_| CryptoError::Random)?;
        let mut sealed = plaintext.to_vec();
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(context),
            &mut sealed,
        )
        .map_err(|_| CryptoError::Tampered)?;
        let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok((self.active.clone(), out))
    }

    pub fn decrypt(
        &self,
        key_id: &str,
        sealed: &[u8],
        context: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        let key = self
            .keys
            .get(key_id)
            .ok_or_else(|| CryptoError::UnknownKey(key_id.to_owned()))?;
        if sealed.len() < NONCE_LEN {
            return Err(CryptoError::Tampered);
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| CryptoError::Tampered)?;
        let mut buffer = body.to_vec();
        let plain = key
            .open_in_place(nonce, Aad::from(context), &mut buffer)
            .map_err(|_| CryptoError::Tampered)?;
        Ok(plain.to_vec())
    }

    /// HMAC-SHA256 of the CPF's 11 digits: equal CPFs give equal hashes, and without the key the
    /// hash cannot be brute-forced over the small CPF space.
    pub fn cpf_hash(&self, cpf_digits: &str) -> Vec<u8> {
        self.link_hash(cpf_digits)
    }

    /// The same keyed hash of any normalised link value (`domain::link`): the CPF's is its
    /// blind index above, so the two always agree. Rotating the sealing keys leaves it as is.
    pub fn link_hash(&self, normalised: &str) -> Vec<u8> {
        hmac::sign(&self.hash_key, normalised.as_bytes())
            .as_ref()
            .to_vec()
    }
}

pub fn sha256(data: &[u8]) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::PiiKeySettings;

    fn settings(active: &str) -> PiiSettings {
        PiiSettings {
            active_key_id: active.into(),
            hash_key: BASE64.encode([7u8; 32]).into(),
            keys: vec![
                PiiKeySettings {
                    id: "k1".into(),
                    key: BASE64.encode([1u8; 32]).into(),
                },
                PiiKeySettings {
                    id: "k2".into(),
                    key: BASE64.encode([2u8; 32]).into(),
                },
            ],
        }
    }

    #[test]
    fn round_trip_and_rotation() {
        let old = PiiCipher::from_settings(&settings("k1")).unwrap();
        let (key_id, sealed) = old.encrypt(b"11144477735", b"row-1").unwrap();
        assert_eq!(key_id, "k1");
        assert!(!sealed.windows(11).any(|w| w == b"11144477735"));
        let rotated = PiiCipher::from_settings(&settings("k2")).unwrap();
        assert_eq!(
            rotated.decrypt(&key_id, &sealed, b"row-1").unwrap(),
            b"11144477735"
        );
        assert_eq!(rotated.encrypt(b"x", b"row-2").unwrap().0, "k2");
    }

    #[test]
    fn ciphertext_is_bound_to_its_row_and_key() {
        let cipher = PiiCipher::from_settings(&settings("k1")).unwrap();
        let (_, sealed) = cipher.encrypt(b"secret", b"row-1").unwrap();
        assert!(matches!(
            cipher.decrypt("k1", &sealed, b"row-2"),
            Err(CryptoError::Tampered)
        ));
        assert!(matches!(
            cipher.decrypt("k2", &sealed, b"row-1"),
            Err(CryptoError::Tampered)
        ));
        assert!(matches!(
            cipher.decrypt("k9", &sealed, b"row-1"),
            Err(CryptoError::UnknownKey(_))
        ));
    }

    #[test]
    fn cpf_hash_is_keyed_and_stable() {
        let a = PiiCipher::from_settings(&settings("k1")).unwrap();
        assert_eq!(a.cpf_hash("11144477735"), a.cpf_hash("11144477735"));
        assert_ne!(a.cpf_hash("11144477735"), a.cpf_hash("90000000175"));
        assert_ne!(
            a.cpf_hash("11144477735").as_slice(),
            &sha256(b"11144477735")
        );
    }

    #[test]
    fn rejects_short_keys() {
        let mut s = settings("k1");
        s.keys[0].key = BASE64.encode([1u8; 16]).into();
        assert!(matches!(
            PiiCipher::from_settings(&s),
            Err(CryptoError::Config {
                key: "pii.keys",
                ..
            })
        ));
    }
}
