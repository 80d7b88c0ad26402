//! The identity token endpoint: a JWT bearer assertion (RFC 7523) signed with the service
//! account's key, checked as unico checks it, spent once, answered with an access token.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use ring::digest;
use ring::rand::SecureRandom;
use serde_json::{Map, Value, json};

use super::Unico;

const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// unico rejects anything else in the assertion with 1.2.22.
const ASSERTION_CLAIMS: [&str; 5] = ["iss", "aud", "scope", "iat", "exp"];
const MAX_ASSERTION_LIFETIME: i64 = 3600;
/// Clocks of client and server never agree exactly; an `iat` this far ahead is still honest.
const CLOCK_SKEW: i64 = 60;

fn auth_error(status: StatusCode, code: &str) -> Response {
    let body = json!({
        "error": "server_error",
        "error_description": format!("Falha na autenticação {code}"),
    });
    (status, axum::Json(body)).into_response()
}

pub(super) async fn token(State(unico): State<Arc<Unico>>, body: Bytes) -> Response {
    let Ok(form) = serde_urlencoded::from_bytes::<HashMap<String, String>>(&body) else {
        return auth_error(StatusCode::BAD_REQUEST, "1.2.5");
    };
    if form.get("grant_type").map(String::as_str) != Some(JWT_BEARER) {
        return auth_error(StatusCode::BAD_REQUEST, "1.2.5");
    }
    let Some(assertion) = form.get("assertion").filter(|a| !a.is_empty()) else {
        return auth_error(StatusCode::BAD_REQUEST, "1.2.5");
    };
    let now = unix_now();
    if let Err(code) = unico
        .check_assertion(assertion, now)
        .and_then(|exp| unico.spend_assertion(assertion, exp, now))
    {
        return auth_error(StatusCode::UNAUTHORIZED, code);
    }
    let Some(access_token) = unico.issue_token() else {
        return auth_error(StatusCode::INTERNAL_SERVER_ERROR, "1.2.5");
    };
    let body = json!({
        "access_token": access_token,
        "expires_in": unico.token_ttl.as_secs(),
        "token_type": "Bearer",
    });
    axum::Json(body).into_response()
}

/// Seconds since the epoch as a JWT counts them; a clock before 1970 is treated as 1970.
fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// JWT dates are integers, but some signers write floats; take those too.
fn numeric_date(value: Option<&Value>) -> Option<i64> {
    let value = value?;
    value
        .as_i64()
        .or_else(|| value.as_f64().filter(|f| f.is_finite()).map(|f| f as i64))
}

impl Unico {
    /// The checks unico makes on an assertion, in its order; answers the assertion's `exp`.
    fn check_assertion(&self, assertion: &str, now: i64) -> Result<i64, &'static str> {
        let header = jsonwebtoken::decode_header(assertion).map_err(|_| "1.2.20")?;
        if header.alg != Algorithm::RS256 {
            return Err("1.2.5");
        }
        let verifier = self.verifier.as_ref().ok_or("1.2.5")?;
        // The library only checks the signature here: the claims are judged below, where each
        // failure can get unico's own code.
        let mut validation = Validation::new(Algorithm::RS256);
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        let claims = jsonwebtoken::decode::<Map<String, Value>>(assertion, verifier, &validation)
            .map_err(|error| match error.kind() {
                ErrorKind::Json(_) | ErrorKind::Base64(_) | ErrorKind::Utf8(_) => "1.2.20",
                _ => "1.2.5",
            })?
            .claims;

        if claims
            .keys()
            .any(|claim| !ASSERTION_CLAIMS.contains(&claim.as_str()))
        {
            return Err("1.2.22");
        }
        if !claims.contains_key("scope") {
            return Err("1.1.1");
        }
        let text = |name: &str| claims.get(name).and_then(Value::as_str).ok_or("1.2.21");
        let (iss, aud, scope) = (text("iss")?, text("aud")?, text("scope")?);
        let iat = numeric_date(claims.get("iat")).ok_or("1.2.21")?;
        let exp = numeric_date(claims.get("exp")).ok_or("1.2.21")?;

        if iss != self.config.service_account {
            return Err("1.0.1");
        }
        if aud != self.config.identity_audience || scope != "*" {
            return Err("1.2.5");
        }
        if exp <= now {
            return Err("1.2.4");
        }
        if iat > now + CLOCK_SKEW || exp < iat || exp - iat > MAX_ASSERTION_LIFETIME {
            return Err("1.2.5");
        }
        Ok(exp)
    }

    /// Records a good assertion as used, refusing it if it already was.
    fn spend_assertion(&self, assertion: &str, exp: i64, now: i64) -> Result<(), &'static str> {
        let hash = digest::digest(&digest::SHA256, assertion.as_bytes());
        let mut key = [0u8; 32];
        key.copy_from_slice(hash.as_ref());
        let mut used = self
            .used_assertions
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // An expired assertion fails on `exp` before it gets here, so its entry can go.
        used.retain(|_, until| *until > now);
        if used.insert(key, exp).is_some() {
            return Err("1.2.7");
        }
        Ok(())
    }

    fn issue_token(&self) -> Option<String> {
        let mut bytes = [0u8; 32];
        self.rng.fill(&mut bytes).ok()?;
        let token = hex::encode(bytes);
        let now = Instant::now();
        let mut tokens = self.tokens.lock().unwrap_or_else(PoisonError::into_inner);
        // Expired tokens linger for one lifetime so that late callers hear "expired" (10502)
        // rather than "invalid" (10501), as they would from unico.
        tokens.retain(|_, expires| {
            now.checked_duration_since(*expires)
                .is_none_or(|late| late < self.token_ttl)
        });
        tokens.insert(token.clone(), now + self.token_ttl);
        Some(token)
    }
}
