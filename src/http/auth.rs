//! API keys: `Authorization: Bearer <key>`, matched by SHA-256 against the configured keys, so
//! the keys themselves are never in the configuration, in memory or in a log.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use std::num::NonZeroU32;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, NotUntil, Quota, RateLimiter};

use crate::config::{ApiSettings, Scope};
use crate::http::error::ApiError;

pub const ONBOARDING_WRITE: Scope = Scope::OnboardingWrite;
pub const DECISIONS_READ: Scope = Scope::DecisionsRead;
pub const PII_READ: Scope = Scope::PiiRead;

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub name: Arc<str>,
    scopes: Arc<[Scope]>,
}

impl Caller {
    pub fn new(name: &str, scopes: Vec<Scope>) -> Caller {
        Caller {
            name: name.into(),
            scopes: scopes.into(),
        }
    }

    pub fn scopes(&self) -> &[Scope] {
        &self.scopes
    }

    pub fn has(&self, scope: Scope) -> bool {
        self.scopes.contains(&scope)
    }

    pub fn require(&self, scope: Scope) -> Result<(), ApiError> {
        if self.has(scope) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(scope.as_str()))
        }
    }

    /// Passes when the key carries at least one of `scopes`.
    pub fn require_any(&self, scopes: &[Scope]) -> Result<(), ApiError> {
        match scopes.iter().find(|s| self.has(**s)) {
            Some(_) => Ok(()),
            None => Err(ApiError::Forbidden(scopes[0].as_str())),
        }
    }
}

/// The configured keys, indexed by the SHA-256 of the key. Looking up a digest leaks nothing
/// useful through timing: the attacker does not control the digest's bytes.
/// The configured keys, each with its own request rate (governor's GCRA: a steady rate and a
/// burst above it).
pub struct ApiKeys {
    by_digest: HashMap<[u8; 32], (Caller, Arc<DefaultDirectRateLimiter>)>,
    /// The same limiters by the key's name, for the console sessions opened with a key: a
    /// session spends its key's rate, not a rate of its own.
    by_name: HashMap<Arc<str>, Arc<DefaultDirectRateLimiter>>,
    /// The console sessions of people signed in through the identity provider: each person at
    /// `api.rate_per_second` and `api.rate_burst`, as a key of their own would be.
    people: DefaultKeyedRateLimiter<String>,
}

impl ApiKeys {
    pub fn from_settings(api: &ApiSettings) -> Self {
        let mut map = HashMap::new();
        let mut by_name = HashMap::new();
        for key in &api.keys {
            let mut digest = [0u8; 32];
            if hex::decode_to_slice(&key.key_sha256, &mut digest).is_ok() {
                let rate = key.rate_per_second.unwrap_or(api.rate_per_second);
                let limiter = Arc::new(RateLimiter::direct(quota(rate, api.rate_burst)));
                let name: Arc<str> = key.name.as_str().into();
                by_name
                    .entry(name.clone())
                    .or_insert_with(|| limiter.clone());
                map.insert(
                    digest,
                    (
                        Caller {
                            name,
                            scopes: key.scopes.iter().filter_map(|s| Scope::parse(s)).collect(),
                        },
                        limiter,
                    ),
                );
            }
        }
        ApiKeys {
            by_digest: map,
            by_name,
            people: RateLimiter::keyed(quota(api.rate_per_second, api.rate_burst)),
        }
    }

    /// The caller a key belongs to, if the key is known and within its rate.
    pub fn authenticate(&self, presented: &str) -> Result<Caller, ApiError> {
        let (caller, limiter) = self
            .by_digest
            .get(&crate::crypto::sha256(presented.as_bytes()))
            .ok_or(ApiError::Unauthorized)?;
        within_rate(limiter.check())?;
        Ok(caller.clone())
    }

    /// A request of a console session opened with the key named `name`: within that key's rate,
    /// or 429. A key no longer configured is `Unauthorized`: its sessions end with it.
    pub fn session_request(&self, name: &str) -> Result<(), ApiError> {
        let limiter = self.by_name.get(name).ok_or(ApiError::Unauthorized)?;
        within_rate(limiter.check())
    }

    /// A request of a console session of the person with this subject: within the person's
    /// rate, or 429.
    pub fn person_request(&self, subject: &str) -> Result<(), ApiError> {
        within_rate(self.people.check_key(&subject.to_owned()))
    }
}

/// `rate` requests a second with bursts of `burst` (at least the rate).
fn quota(rate: u32, burst: u32) -> Quota {
    let rate = rate.max(1);
    let burst = burst.max(rate);
    Quota::per_second(NonZeroU32::new(rate).unwrap_or(NonZeroU32::MIN))
        .allow_burst(NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN))
}

fn within_rate(
    checked: Result<(), NotUntil<<DefaultClock as Clock>::Instant>>,
) -> Result<(), ApiError> {
    if let Err(not_until) = checked {
        crate::metrics::rejected("rate_limited");
        let wait = not_until.wait_time_from(DefaultClock::default().now());
        return Err(ApiError::RateLimited {
            retry_after_secs: wait.as_secs().max(1),
        });
    }
    Ok(())
}

impl std::fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeys")
            .field("keys", &self.by_digest.len())
            .finish()
    }
}

impl<S> FromRequestParts<S> for Caller
where
    Arc<ApiKeys>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let api_keys = Arc::<ApiKeys>::from_ref(state);
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .ok_or(ApiError::Unauthorized)?;
        let value = header.to_str().map_err(|_| ApiError::Unauthorized)?;
        let (scheme, key) = value.split_once(' ').ok_or(ApiError::Unauthorized)?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(ApiError::Unauthorized);
        }
        let caller = api_keys.authenticate(key.trim())?;
        tracing::Span::current().record("caller", &*caller.name);
        Ok(caller)
    }
}

/// A caller whose key may write onboardings and device validations. Checked from the headers
/// alone, so a key without the scope gets its 403 before its body is looked at.
pub struct Writer(pub Caller);

impl<S> FromRequestParts<S> for Writer
where
    Arc<ApiKeys>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let caller = Caller::from_request_parts(parts, state).await?;
        caller.require(ONBOARDING_WRITE)?;
        Ok(Writer(caller))
    }
}
