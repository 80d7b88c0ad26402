//! The console's client of the bank's identity provider (OpenID Connect Core 1.0, authorization
//! code flow with PKCE, RFC 7636): discovery, the authorization request, the code exchange with
//! the client secret, and the ID token checked against the provider's keys (`iss`, `aud`, `azp`,
//! `exp`, `nonce`, the signature).
//!
//! Written on `jsonwebtoken` and `reqwest`, which the service already builds (unico's service
//! account signs with the one, every provider is called with the other), rather than with the
//! `openidconnect` crate: that crate brings `oauth2`, `serde_with`, `rsa`, `p256`, `p384`,
//! `ed25519-dalek` and their trees, some sixty crates more to compile on the build machines, for
//! the four requests above. What it would check is checked here and tested against a certified
//! provider (`tests/api/console_oidc.rs` runs `oidc-provider`).
//!
//! Nothing secret is logged: not the client secret, the code, the tokens nor the verifier.

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::Value;
use subtle::ConstantTimeEq;
use tokio::sync::RwLock;

use crate::config::oidc::OidcSettings;

/// How long discovery's answer is kept before it is asked again.
const METADATA_LIFETIME: Duration = Duration::from_secs(3600);
/// The provider's keys are fetched again on an unknown `kid`, but not more often than this.
const JWKS_REFRESH_AT_MOST: Duration = Duration::from_secs(10);
/// Clock difference allowed with the provider on `exp`, `iat` and `nbf`.
const LEEWAY_SECS: u64 = 60;

/// What went wrong, for the page the person sees; the cause goes to the log.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    /// The provider did not answer, or not as a provider does.
    #[error("the identity provider is unreachable or answered unexpectedly: {0}")]
    Unreachable(String),
    /// The token endpoint refused the code (its OAuth error code).
    #[error("the identity provider refused the code: {0}")]
    Refused(String),
    /// The ID token failed a check.
    #[error("the ID token was refused: {0}")]
    BadToken(String),
}

/// The provider's discovery document, the fields used.
#[derive(Debug, Deserialize)]
struct Metadata {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
    #[serde(default)]
    code_challenge_methods_supported: Option<Vec<String>>,
    #[serde(default)]
    token_endpoint_auth_methods_supported: Option<Vec<String>>,
    #[serde(default)]
    id_token_signing_alg_values_supported: Option<Vec<String>>,
}

/// The person the ID token names.
#[derive(Debug, Clone)]
pub struct Person {
    pub subject: String,
    /// `name`, else `preferred_username`, else the subject.
    pub name: String,
    /// The role names of the configured claim.
    pub roles: Vec<String>,
}

pub struct Oidc {
    settings: OidcSettings,
    http: reqwest::Client,
    metadata: RwLock<Option<(Instant, Arc<Metadata>)>>,
    jwks: RwLock<Option<(Instant, Arc<JwkSet>)>>,
}

impl std::fmt::Debug for Oidc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Oidc")
            .field("issuer", &self.settings.issuer)
            .finish()
    }
}

/// The values of one sign-in, each derived from the secret the browser holds in a cookie, so
/// that none has to be kept: the `state` and `nonce` sent to the provider and the PKCE verifier.
pub struct Attempt {
    pub state: String,
    nonce: String,
    verifier: String,
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
    fn challenge(&self) -> String {
        b64(&crate::crypto::sha256(self.verifier.as_bytes()))
    }
}

fn derived(secret: &str, purpose: &str) -> String {
    b64(&crate::crypto::sha256(
        format!("veredito console sign-in {purpose}:{secret}").as_bytes(),
    ))
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

impl Oidc {
    pub fn new(settings: OidcSettings) -> Result<Oidc, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .connect_timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Oidc {
            settings,
            http,
            metadata: RwLock::new(None),
            jwks: RwLock::new(None),
        })
    }

    pub fn settings(&self) -> &OidcSettings {
        &self.settings
    }

    async fn metadata(&self) -> Result<Arc<Metadata>, OidcError> {
        if let Some((at, metadata)) = &*self.metadata.read().await {
            if at.elapsed() < METADATA_LIFETIME {
                return Ok(metadata.clone());
            }
        }
        let url = format!(
            "{}/.well-known/openid-configuration",
            self.settings.issuer.trim_end_matches('/')
        );
        let metadata: Metadata = self.get_json(&url).await?;
        // OpenID Connect Discovery 4.3: the document speaks for the issuer configured.
        if metadata.issuer != self.settings.issuer {
            return Err(OidcError::Unreachable(format!(
                "discovery names the issuer {:?}, not the configured one",
                metadata.issuer
            )));
        }
        if let Some(methods) = &metadata.code_challenge_methods_supported {
            if !methods.iter().any(|m| m == "S256") {
                return Err(OidcError::Unreachable(
                    "the provider does not offer PKCE with S256".into(),
                ));
            }
        }
        let metadata = Arc::new(metadata);
        *self.metadata.write().await = Some((Instant::now(), metadata.clone()));
        Ok(metadata)
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, OidcError> {
        let response = self
            .http
            .get(url)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| OidcError::Unreachable(format!("GET {url}: {e}")))?;
        if !response.status().is_success() {
            return Err(OidcError::Unreachable(format!(
                "GET {url}: {}",
                response.status()
            )));
        }
        response
            .json()
            .await
            .map_err(|e| OidcError::Unreachable(format!("GET {url}: {e}")))
    }

    /// Where to send the browser to sign in.
    pub async fn authorization_url(&self, attempt: &Attempt) -> Result<String, OidcError> {
        let metadata = self.metadata().await?;
        let mut url = reqwest::Url::parse(&metadata.authorization_endpoint).map_err(|e| {
            OidcError::Unreachable(format!("the authorization endpoint is not a URL: {e}"))
        })?;
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.settings.client_id)
            .append_pair("redirect_uri", &self.settings.redirect_url)
            .append_pair("scope", &self.settings.scopes.join(" "))
            .append_pair("state", &attempt.state)
            .append_pair("nonce", &attempt.nonce)
            .append_pair("code_challenge", &attempt.challenge())
            .append_pair("code_challenge_method", "S256");
        Ok(url.into())
    }

    /// The issuer a callback's `iss` parameter must name (RFC 9207), when it carries one.
    pub fn issuer(&self) -> &str {
        &self.settings.issuer
    }

    /// Exchanges the code for tokens and answers the person the ID token names.
    pub async fn finish(&self, attempt: &Attempt, code: &str) -> Result<Person, OidcError> {
        let metadata = self.metadata().await?;
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", self.settings.redirect_url.as_str()),
            ("code_verifier", attempt.verifier.as_str()),
        ];
        let secret = self.settings.client_secret.expose_secret();
        // client_secret_basic unless the provider takes only client_secret_post.
        let post_only = metadata
            .token_endpoint_auth_methods_supported
            .as_ref()
            .is_some_and(|m| {
                !m.iter().any(|m| m == "client_secret_basic")
                    && m.iter().any(|m| m == "client_secret_post")
            });
        let mut request = self.http.post(&metadata.token_endpoint);
        if post_only {
            form.push(("client_id", self.settings.client_id.as_str()));
            form.push(("client_secret", secret));
        } else {
            // RFC 6749 2.3.1: both form-encoded before they are joined.
            request = request.basic_auth(
                form_encoded(&self.settings.client_id),
                Some(form_encoded(secret)),
            );
        }
        let response = request
            .header(reqwest::header::ACCEPT, "application/json")
            .form(&form)
            .send()
            .await
            .map_err(|e| OidcError::Unreachable(format!("the token endpoint: {e}")))?;
        let status = response.status();
        let body: Value = response
            .json()
            .await
            .map_err(|e| OidcError::Unreachable(format!("the token endpoint ({status}): {e}")))?;
        if status.is_client_error() {
            let code = body["error"].as_str().unwrap_or("unknown");
            return Err(OidcError::Refused(oauth_code(code)));
        }
        if !status.is_success() {
            return Err(OidcError::Unreachable(format!(
                "the token endpoint answered {status}"
            )));
        }
        let id_token = body["id_token"]
            .as_str()
            .ok_or_else(|| OidcError::BadToken("the token response has no id_token".into()))?;
        let claims = self.verify(&metadata, id_token, &attempt.nonce).await?;
        self.person(&claims)
    }

    /// The ID token's claims, once its signature, issuer, audience, authorized party, expiry and
    /// nonce are what they must be.
    async fn verify(
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

    fn person(&self, claims: &Value) -> Result<Person, OidcError> {
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
fn pick(jwks: &JwkSet, kid: Option<&str>) -> Result<Option<DecodingKey>, OidcError> {
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
fn allowed_algorithms(metadata: &Metadata) -> Vec<Algorithm> {
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
fn printable(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_control())
        .take(100)
        .collect::<String>()
        .trim()
        .to_owned()
}

/// An OAuth error code as it may be shown: its own characters only (RFC 6749 A.7).
pub fn oauth_code(code: &str) -> String {
    code.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .take(64)
        .collect()
}

/// `application/x-www-form-urlencoded` of one value.
fn form_encoded(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                out.push(byte as char)
            }
            b' ' => out.push('+'),
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn roles_come_from_a_list_a_string_or_a_nested_claim() {
        let claims = json!({
            "roles": ["reviewer", "pii", 7],
            "groups": "audit  staff",
            "realm_access": {"roles": ["risk"]},
        });
        assert_eq!(role_names(&claims, "roles"), ["reviewer", "pii"]);
        assert_eq!(role_names(&claims, "groups"), ["audit", "staff"]);
        assert_eq!(role_names(&claims, "realm_access.roles"), ["risk"]);
        assert!(role_names(&claims, "missing").is_empty());
        assert!(role_names(&claims, "realm_access").is_empty());
    }

    #[test]
    fn each_sign_in_has_its_own_state_nonce_and_verifier() {
        let one = Attempt::of("a");
        let other = Attempt::of("b");
        assert_ne!(one.state, other.state);
        assert_ne!(one.nonce, other.nonce);
        assert_ne!(one.state, one.nonce);
        assert_ne!(one.verifier, one.state);
        // RFC 7636 4.1: 43 to 128 unreserved characters.
        assert_eq!(one.verifier.len(), 43);
        assert!(
            one.verifier
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
        // The same secret gives the same values, so nothing of them needs keeping.
        assert_eq!(Attempt::of("a").state, one.state);
    }

    #[test]
    fn the_pkce_challenge_is_the_rfc_7636_s256_of_the_verifier() {
        // RFC 7636 Appendix B.
        let attempt = Attempt {
            state: String::new(),
            nonce: String::new(),
            verifier: "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk".into(),
        };
        assert_eq!(
            attempt.challenge(),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn hmac_and_unknown_algorithms_are_never_allowed() {
        let metadata = |algs: Option<Vec<&str>>| Metadata {
            issuer: String::new(),
            authorization_endpoint: String::new(),
            token_endpoint: String::new(),
            jwks_uri: String::new(),
            code_challenge_methods_supported: None,
            token_endpoint_auth_methods_supported: None,
            id_token_signing_alg_values_supported: algs
                .map(|a| a.into_iter().map(str::to_owned).collect()),
        };
        assert_eq!(allowed_algorithms(&metadata(None)), [Algorithm::RS256]);
        assert_eq!(
            allowed_algorithms(&metadata(Some(vec!["HS256", "ES256", "none", "RS256"]))),
            [Algorithm::RS256, Algorithm::ES256]
        );
    }

    use jsonwebtoken::{EncodingKey, Header};
    use ring::signature::KeyPair;

    const ISSUER: &str = "https://login.bank.example/realms/staff";
    const CLIENT: &str = "veredito-console";

    /// An Ed25519 key: the signing half, and the public half as the provider publishes it.
    fn ed25519(kid: &str) -> (EncodingKey, Value) {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = ring::signature::Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        let pair = ring::signature::Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        let public = json!({
            "kty": "OKP", "crv": "Ed25519", "use": "sig", "alg": "EdDSA", "kid": kid,
            "x": b64(pair.public_key().as_ref()),
        });
        (EncodingKey::from_ed_der(pkcs8.as_ref()), public)
    }

    fn metadata() -> Metadata {
        Metadata {
            issuer: ISSUER.into(),
            authorization_endpoint: format!("{ISSUER}/auth"),
            token_endpoint: format!("{ISSUER}/token"),
            // Never fetched: the keys are in the cache, fetched "just now".
            jwks_uri: "http://127.0.0.1:9/jwks".into(),
            code_challenge_methods_supported: Some(vec!["S256".into()]),
            token_endpoint_auth_methods_supported: None,
            id_token_signing_alg_values_supported: Some(vec!["EdDSA".into(), "RS256".into()]),
        }
    }

    fn client(roles_claim: &str) -> Oidc {
        Oidc::new(OidcSettings {
            issuer: ISSUER.into(),
            name: None,
            client_id: CLIENT.into(),
            client_secret: "s3cret".to_owned().into(),
            redirect_url: "https://veredito.bank.example/console/oidc/callback".into(),
            scopes: vec!["openid".into()],
            roles_claim: roles_claim.into(),
            roles: Default::default(),
        })
        .unwrap()
    }

    async fn client_knowing(keys: Vec<Value>) -> Oidc {
        let oidc = client("roles");
        let jwks: JwkSet = serde_json::from_value(json!({ "keys": keys })).unwrap();
        *oidc.jwks.write().await = Some((Instant::now(), Arc::new(jwks)));
        oidc
    }

    fn claims(change: impl FnOnce(&mut Value)) -> Value {
        let now = jsonwebtoken::get_current_timestamp();
        let mut claims = json!({
            "iss": ISSUER, "aud": CLIENT, "sub": "ana.souza", "nonce": "n-1",
            "iat": now, "exp": now + 300, "name": "Ana Souza", "roles": ["analyst"],
        });
        change(&mut claims);
        claims
    }

    fn signed(key: &EncodingKey, kid: &str, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(kid.into());
        jsonwebtoken::encode(&header, claims, key).unwrap()
    }

    #[tokio::test]
    async fn an_id_token_is_taken_only_when_every_check_passes() {
        let (key, public) = ed25519("k1");
        let (other_key, _) = ed25519("k1");
        let oidc = client_knowing(vec![public]).await;
        let metadata = metadata();
        let good = signed(&key, "k1", &claims(|_| {}));
        let taken = oidc.verify(&metadata, &good, "n-1").await.unwrap();
        let person = oidc.person(&taken).unwrap();
        assert_eq!(
            (person.subject.as_str(), person.name.as_str()),
            ("ana.souza", "Ana Souza")
        );
        assert_eq!(person.roles, ["analyst"]);

        let now = jsonwebtoken::get_current_timestamp();
        let hmac = {
            let mut header = Header::new(Algorithm::HS256);
            header.kid = Some("k1".into());
            jsonwebtoken::encode(
                &header,
                &claims(|_| {}),
                &EncodingKey::from_secret(b"s3cret"),
            )
            .unwrap()
        };
        let refused = [
            ("another sign-in's nonce", good.clone(), "n-2"),
            (
                "another client's",
                signed(&key, "k1", &claims(|c| c["aud"] = json!("other-client"))),
                "n-1",
            ),
            (
                "another issuer's",
                signed(
                    &key,
                    "k1",
                    &claims(|c| c["iss"] = json!("https://evil.example")),
                ),
                "n-1",
            ),
            (
                "expired",
                signed(&key, "k1", &claims(|c| c["exp"] = json!(now - 3600))),
                "n-1",
            ),
            (
                "for two clients, authorized for the other",
                signed(
                    &key,
                    "k1",
                    &claims(|c| {
                        c["aud"] = json!([CLIENT, "other-client"]);
                        c["azp"] = json!("other-client");
                    }),
                ),
                "n-1",
            ),
            (
                "without a subject",
                signed(
                    &key,
                    "k1",
                    &claims(|c| {
                        c.as_object_mut().unwrap().remove("sub");
                    }),
                ),
                "n-1",
            ),
            (
                "signed by a key the provider does not publish",
                signed(&key, "k2", &claims(|_| {})),
                "n-1",
            ),
            (
                "signed by another key under a published kid",
                signed(&other_key, "k1", &claims(|_| {})),
                "n-1",
            ),
            ("signed with the client secret (HS256)", hmac, "n-1"),
            ("not a token", "a.b.c".to_owned(), "n-1"),
        ];
        for (case, token, nonce) in refused {
            match oidc.verify(&metadata, &token, nonce).await {
                Err(OidcError::BadToken(_)) => {}
                other => panic!("{case}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_person_is_named_by_name_then_preferred_username_then_subject() {
        let oidc = client("realm_access.roles");
        let named = |claims: Value| oidc.person(&claims).unwrap().name;
        assert_eq!(
            named(json!({"sub": "s1", "name": "Ana", "preferred_username": "ana"})),
            "Ana"
        );
        assert_eq!(
            named(json!({"sub": "s1", "name": " ", "preferred_username": "ana"})),
            "ana"
        );
        assert_eq!(named(json!({"sub": "s1"})), "s1");
        let roles = oidc
            .person(&json!({"sub": "s1", "realm_access": {"roles": ["risk"]}}))
            .unwrap()
            .roles;
        assert_eq!(roles, ["risk"]);
        assert!(oidc.person(&json!({"sub": ""})).is_err());
    }

    #[test]
    fn names_are_kept_printable_and_short_and_codes_to_their_characters() {
        assert_eq!(printable(" Ana\u{0007} Souza\n"), "Ana Souza");
        assert_eq!(printable(&"x".repeat(300)).len(), 100);
        assert_eq!(oauth_code("access_denied<script>"), "access_deniedscript");
        assert_eq!(form_encoded("a b:c%"), "a+b%3Ac%25");
    }
}
