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
//!
//! This file holds the client and its requests; `attempt` the values of one sign-in, `id_token`
//! the checks of the ID token and the person it names.

use std::sync::Arc;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::RwLock;

use crate::config::oidc::OidcSettings;

mod attempt;
mod id_token;
#[cfg(test)]
mod tests;

pub use attempt::Attempt;
pub use id_token::role_names;

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
