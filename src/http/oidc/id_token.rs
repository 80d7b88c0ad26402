//! The ID token's checks (signature with the provider's published keys, issuer, audience,
//! authorized party, expiry, nonce) and the person it names, with the roles of the configured
//! claim.

use std::sync::Arc;
use std::time::Instant;

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;
use subtle::ConstantTimeEq;

use super::{JWKS_REFRESH_AT_MOST, LEEWAY_SECS, Metadata, Oidc, OidcError, Person};

impl Oidc {
    /// The ID token's claims, once its signature, issuer, audience, authorized party, expiry and
    /// nonce are what they must be.
    pub(super) async fn verify(
        &self,
        metadata: &Metadata,
        token: &str,
        nonce: &str,
    ) -> Result<Value, OidcError> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|e| OidcError::BadToken(format!("header: {e}")))?;
        let allowed = allowed_algorithms(metadata);
        if !allowed.contains(&header.alg) {
            return Err(OidcError::BadToken(format!(
                "signed with {:?}, which is not among the provider's",
                header.alg
            )));
        }
        let key = self.key(metadata, header.kid.as_deref()).await?;
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&self.settings.issuer]);
        validation.set_audience(&[&self.settings.client_id]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        let claims = jsonwebtoken::decode::<Value>(token, &key, &validation)
            .map_err(|e| OidcError::BadToken(e.to_string()))?
            .claims;
        // Core 3.1.3.7: with more than one audience, the authorized party is this client.
        let audiences = claims["aud"].as_array().map_or(1, Vec::len);
        if (audiences > 1 || claims.get("azp").is_some())
            && claims["azp"].as_str() != Some(self.settings.client_id.as_str())
        {
            return Err(OidcError::BadToken(
                "azp is not this console's client".into(),
            ));
        }
        let sent = claims["nonce"].as_str().unwrap_or_default();
        if !bool::from(sent.as_bytes().ct_eq(nonce.as_bytes())) {
            return Err(OidcError::BadToken(
                "the nonce is not this sign-in's".into(),
            ));
        }
        Ok(claims)
    }

    /// The provider's key `kid`: from the keys fetched before, or fetched again when it is not
    /// among them (the provider rotated its keys).
    async fn key(&self, metadata: &Metadata, kid: Option<&str>) -> Result<DecodingKey, OidcError> {
        let cached = self.jwks.read().await.clone();
        if let Some((_, jwks)) = &cached {
            if let Some(key) = pick(jwks, kid)? {
                return Ok(key);
            }
        }
        if let Some((at, _)) = &cached {
            if at.elapsed() < JWKS_REFRESH_AT_MOST {
                return Err(OidcError::BadToken(
                    "signed with a key the provider does not publish".into(),
                ));
            }
        }
        let jwks: Arc<JwkSet> = Arc::new(self.get_json(&metadata.jwks_uri).await?);
        *self.jwks.write().await = Some((Instant::now(), jwks.clone()));
        pick(&jwks, kid)?.ok_or_else(|| {
            OidcError::BadToken("signed with a key the provider does not publish".into())
        })
    }

    pub(super) fn person(&self, claims: &Value) -> Result<Person, OidcError> {
        let subject = claims["sub"]
            .as_str()
            .filter(|s| !s.is_empty() && s.len() <= 255)
            .ok_or_else(|| OidcError::BadToken("no usable sub".into()))?;
        let name = ["name", "preferred_username"]
            .iter()
            .filter_map(|claim| claims[*claim].as_str())
            .map(printable)
            .find(|name| !name.is_empty())
            .unwrap_or_else(|| printable(subject));
        Ok(Person {
            subject: subject.to_owned(),
            name,
            roles: role_names(claims, &self.settings.roles_claim),
        })
    }
}

/// A key of `jwks` for verifying: the one named `kid`, or the only signing key when the token
/// names none.
pub(super) fn pick(jwks: &JwkSet, kid: Option<&str>) -> Result<Option<DecodingKey>, OidcError> {
    let signing = |k: &&jsonwebtoken::jwk::Jwk| {
        !matches!(
            k.common.public_key_use,
            Some(jsonwebtoken::jwk::PublicKeyUse::Encryption)
        )
    };
    let found = match kid {
        Some(kid) => jwks
            .keys
            .iter()
            .filter(signing)
            .find(|k| k.common.key_id.as_deref() == Some(kid)),
        None => {
            let mut keys = jwks.keys.iter().filter(signing);
            match (keys.next(), keys.next()) {
                (Some(only), None) => Some(only),
                _ => None,
            }
        }
    };
    found
        .map(|jwk| {
            DecodingKey::from_jwk(jwk).map_err(|e| OidcError::BadToken(format!("the key: {e}")))
        })
        .transpose()
}

/// The asymmetric algorithms the provider says it signs ID tokens with (RS256 when it does not
/// say). HMAC is never taken: it would make the client secret a signing key.
pub(super) fn allowed_algorithms(metadata: &Metadata) -> Vec<Algorithm> {
    let asymmetric = [
        Algorithm::RS256,
        Algorithm::RS384,
        Algorithm::RS512,
        Algorithm::PS256,
        Algorithm::PS384,
        Algorithm::PS512,
        Algorithm::ES256,
        Algorithm::ES384,
        Algorithm::EdDSA,
    ];
    match &metadata.id_token_signing_alg_values_supported {
        None => vec![Algorithm::RS256],
        Some(names) => asymmetric
            .into_iter()
            .filter(|alg| names.iter().any(|n| *n == format!("{alg:?}")))
            .collect(),
    }
}

/// The role names in the claim at `path` (dots reach into objects): a list of strings, or one
/// string of space-separated names.
pub fn role_names(claims: &Value, path: &str) -> Vec<String> {
    let found = path
        .split('.')
        .try_fold(claims, |value, part| value.get(part));
    match found {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        Some(Value::String(text)) => text.split_whitespace().map(str::to_owned).collect(),
        _ => Vec::new(),
    }
}

/// A name as the console shows and records it: no control characters, 100 characters at most.
pub(super) fn printable(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_control())
        .take(100)
        .collect::<String>()
        .trim()
        .to_owned()
}
