//! The values of one sign-in, each derived from the secret the browser holds in a cookie: the
//! `state` and `nonce` sent to the provider and the PKCE verifier (RFC 7636, S256).

use base64::Engine;

/// The values of one sign-in, each derived from the secret the browser holds in a cookie, so
/// that none has to be kept: the `state` and `nonce` sent to the provider and the PKCE verifier.
pub struct Attempt {
    pub state: String,
    pub(super) nonce: String,
    pub(super) verifier: String,
}

impl Attempt {
    pub fn of(secret: &str) -> Attempt {
        Attempt {
            state: derived(secret, "state"),
            nonce: derived(secret, "nonce"),
            verifier: derived(secret, "pkce"),
        }
    }

    /// S256: the verifier's SHA-256, base64url.
    pub(super) fn challenge(&self) -> String {
        b64(&crate::crypto::sha256(self.verifier.as_bytes()))
    }
}

fn derived(secret: &str, purpose: &str) -> String {
    b64(&crate::crypto::sha256(
        format!("veredito console sign-in {purpose}:{secret}").as_bytes(),
    ))
}

pub(super) fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}
