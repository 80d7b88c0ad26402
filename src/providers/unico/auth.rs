//! The service-account access token: a signed assertion exchanged for a bearer token, which is
//! cached and shared by every call until shortly before it expires.

use std::time::Duration;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::Url;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde_json::json;
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::wire;
use super::{Http, UnicoError};
use crate::providers::CallContext;
use crate::providers::http::{Answer, Exchange};

const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// The longest assertion lifetime unico accepts.
const ASSERTION_LIFETIME_SECS: i64 = 3600;
/// Used when the identity host leaves `expires_in` out; 3600 is what it documents answering.
const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(3600);
const MIN_RENEWAL_MARGIN: Duration = Duration::from_secs(60);

/// unico rejects any claim beyond these five (error 1.2.22), so this struct is the whole set.
#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    aud: &'a str,
    scope: &'a str,
    iat: i64,
    exp: i64,
}

/// A token handed to a caller. `generation` lets a caller that saw it refused drop exactly that
/// token, not one another caller has already renewed in the meantime.
#[derive(Clone)]
pub(crate) struct AccessToken {
    pub value: SecretString,
    generation: u64,
}

struct Cached {
    token: AccessToken,
    renew_at: Instant,
}

#[derive(Default)]
struct CacheState {
    current: Option<Cached>,
    generation: u64,
    /// `iat` of the last assertion signed, see `fresh_iat`.
    last_iat: i64,
}

pub(crate) struct TokenSource {
    key: EncodingKey,
    issuer: String,
    audience: String,
    token_url: Url,
    // tokio's Mutex, held across the exchange: callers arriving while a token is being fetched
    // wait for it instead of starting exchanges of their own.
    cache: Mutex<CacheState>,
}

impl TokenSource {
    pub(crate) fn new(
        private_key_pem: &SecretString,
        issuer: String,
        identity_url: &str,
    ) -> Result<Self, UnicoError> {
        let key =
            EncodingKey::from_rsa_pem(private_key_pem.expose_secret().as_bytes()).map_err(|e| {
                UnicoError::Config(format!("the unico private key is not an RSA PEM: {e}"))
            })?;
        // Parsing the PEM only decodes base64; ring looks at the RSA structure when signing, so
        // sign once now to fail at start-up rather than on the first onboarding.
        jsonwebtoken::crypto::sign(b"probe", &key, Algorithm::RS256).map_err(|e| {
            UnicoError::Config(format!("the unico private key cannot sign RS256: {e}"))
        })?;

        if issuer.trim().is_empty() {
            return Err(UnicoError::Config(
                "the unico service account is empty".into(),
            ));
        }
        let audience = identity_url.trim().trim_end_matches('/').to_owned();
        let token_url = super::endpoint(&audience, &["oauth2", "token"])?;
        Ok(TokenSource {
            key,
            issuer,
            audience,
            token_url,
            cache: Mutex::new(CacheState::default()),
        })
    }

    fn assertion(&self, iat: i64) -> Result<String, UnicoError> {
        let claims = Claims {
            iss: &self.issuer,
            aud: &self.audience,
            scope: "*",
            iat,
            exp: iat + ASSERTION_LIFETIME_SECS,
        };
        // Header::new sets exactly alg and typ "JWT"; nothing else is serialised.
        jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, &self.key)
            .map_err(|e| UnicoError::Config(format!("could not sign the unico assertion: {e}")))
    }

    /// The cached token, or a new one when there is none or it is about to expire.
    pub(crate) async fn token(
        &self,
        http: &Http,
        context: CallContext,
    ) -> Result<AccessToken, UnicoError> {
        let mut cache = self.cache.lock().await;
        if let Some(cached) = &cache.current {
            if Instant::now() < cached.renew_at {
                return Ok(cached.token.clone());
            }
            tracing::debug!("unico access token is due for renewal");
        }
        // Counted from before the request: the token's lifetime started no earlier than that.
        let started = Instant::now();
        let iat = fresh_iat(cache.last_iat).await;
        cache.last_iat = iat;
        let answer = self.exchange(http, context, iat).await?;
        let lifetime = answer
            .expires_in
            // A day at most: an absurd lifetime must not overflow the clock arithmetic below,
            // and no identity host issues longer ones.
            .map(|secs| Duration::from_secs(secs.min(86_400)))
            .unwrap_or(DEFAULT_TOKEN_LIFETIME);
        cache.generation += 1;
        let token = AccessToken {
            value: SecretString::from(answer.access_token),
            generation: cache.generation,
        };
        cache.current = Some(Cached {
            token: token.clone(),
            renew_at: started + lifetime - renewal_margin(lifetime),
        });
        tracing::debug!(
            lifetime_secs = lifetime.as_secs(),
            "unico access token obtained"
        );
        Ok(token)
    }

    /// Forgets `token` after unico refused it, unless it was already replaced.
    pub(crate) async fn invalidate(&self, token: &AccessToken) {
        let mut cache = self.cache.lock().await;
        if cache
            .current
            .as_ref()
            .is_some_and(|c| c.token.generation == token.generation)
        {
            cache.current = None;
        }
    }

    async fn exchange(
        &self,
        http: &Http,
        context: CallContext,
        iat: i64,
    ) -> Result<wire::TokenAnswer, UnicoError> {
        // unico accepts each assertion once (1.2.7), so every exchange signs a new one.
        let assertion = self.assertion(iat)?;
        let request = http.client.post(self.token_url.clone()).form(&[
            ("grant_type", GRANT_TYPE),
            ("assertion", assertion.as_str()),
        ]);
        let exchange = Exchange {
            provider: "unico",
            operation: "token",
            method: "POST",
            path: self.token_url.path().to_owned(),
            request: Some(json!({"grant_type": GRANT_TYPE, "assertion": wire::REDACTED})),
            context,
        };
        let answer = http
            .send(request, exchange, |a: &Answer| {
                token_outcome(a.status, &a.headers, a.body.as_ref())
            })
            .await;
        crate::metrics::token_refresh(answer.is_ok());
        let answer = answer?;
        if let Some(token_type) = &answer.token_type {
            if !token_type.eq_ignore_ascii_case("bearer") {
                tracing::debug!(token_type = %crate::providers::safe_code(token_type), "unico answered an unexpected token type");
            }
        }
        Ok(answer)
    }
}

/// The current second, but later than `last`. The claims allowed leave nothing to make two
/// assertions differ but `iat`, and an RS256 signature is deterministic: two exchanges in the
/// same second (a refused token renewed right after it was obtained) would send the same
/// assertion, which unico refuses as reused. So the second one waits for the next second.
async fn fresh_iat(last: i64) -> i64 {
    loop {
        let now = chrono::Utc::now();
        if now.timestamp() > last {
            return now.timestamp();
        }
        let into_second = u64::from(now.timestamp_subsec_nanos()).min(999_999_999);
        tracing::debug!("waiting for the next second to sign a distinct unico assertion");
        tokio::time::sleep(Duration::from_nanos(1_000_000_000 - into_second)).await;
    }
}

/// How long before expiry a token is renewed: a tenth of its lifetime but at least a minute, and
/// never more than half of it, so a short-lived token is still reused a little.
pub(crate) fn renewal_margin(lifetime: Duration) -> Duration {
    (lifetime / 10).max(MIN_RENEWAL_MARGIN).min(lifetime / 2)
}

/// Turns the identity host's answer into a token or an error.
fn token_outcome(
    status: u16,
    headers: &reqwest::header::HeaderMap,
    body: Option<&serde_json::Value>,
) -> Result<wire::TokenAnswer, UnicoError> {
    if (200..300).contains(&status) {
        let body = body.ok_or_else(|| UnicoError::Decode("the token answer is not JSON".into()))?;
        return wire::parse_token(body);
    }
    if status == 429 {
        return Err(UnicoError::RateLimited {
            retry_after: super::retry_after(headers),
        });
    }
    // An OAuth error body means the key, claims or assertion were refused, and unico reports
    // that as "server_error" too: retrying the same thing would not help, whatever the status.
    if let Some(description) = body.and_then(wire::parse_oauth_error) {
        return Err(UnicoError::Auth {
            http_status: Some(status),
            description,
        });
    }
    if status >= 500 {
        return Err(UnicoError::Server {
            http_status: status,
        });
    }
    Err(UnicoError::Auth {
        http_status: Some(status),
        description: format!("the token exchange answered HTTP {status} without an error body"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renewal_margin_scales_with_lifetime() {
        assert_eq!(
            renewal_margin(Duration::from_secs(3600)),
            Duration::from_secs(360)
        );
        assert_eq!(
            renewal_margin(Duration::from_secs(300)),
            Duration::from_secs(60)
        );
        assert_eq!(
            renewal_margin(Duration::from_secs(2)),
            Duration::from_secs(1)
        );
        assert_eq!(renewal_margin(Duration::ZERO), Duration::ZERO);
    }
}
