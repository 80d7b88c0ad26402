//! unico's identity token endpoint and the by-Client processes API, simulated.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use ring::rand::{SecureRandom, SystemRandom};
use ring::{digest, hmac};
use serde::Serialize;
use serde_json::{Map, Value, json};
use subtle::ConstantTimeEq;
use uuid::Uuid;

use super::SandboxConfig;
use super::scenarios::{self, Outcome, Scenario};

const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// unico rejects anything else in the assertion with 1.2.22.
const ASSERTION_CLAIMS: [&str; 5] = ["iss", "aud", "scope", "iat", "exp"];
const MAX_ASSERTION_LIFETIME: i64 = 3600;
/// Clocks of client and server never agree exactly; an `iat` this far ahead is still honest.
const CLOCK_SKEW: i64 = 60;
const TOKEN_TTL: Duration = Duration::from_secs(3600);
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(5);
/// Bytes of the process id given over to authenticating it.
const ID_TAG_LEN: usize = 4;

pub(super) struct Unico {
    config: SandboxConfig,
    /// `None` when the configured PEM does not parse: every assertion is then refused.
    verifier: Option<DecodingKey>,
    pub(super) token_ttl: Duration,
    tokens: Mutex<HashMap<String, Instant>>,
    /// SHA-256 of each accepted assertion, with its `exp`: past that it is refused anyway.
    used_assertions: Mutex<HashMap<[u8; 32], i64>>,
    /// Signs process ids, so GetProcess can tell its own ids from made-up ones without memory.
    id_key: hmac::Key,
    rng: SystemRandom,
    http: Option<reqwest::Client>,
}

impl Unico {
    pub(super) fn new(config: SandboxConfig) -> Self {
        let verifier = match DecodingKey::from_rsa_pem(config.public_key_pem.as_bytes()) {
            Ok(key) => Some(key),
            Err(error) => {
                tracing::error!(%error, "sandbox: unico public key does not parse; all assertions will be refused");
                None
            }
        };
        // Derived from the configuration, not drawn at random, so that ids handed out before a
        // restart still open afterwards. Secrecy is not the point: only telling ids apart.
        let mut material = b"veredito sandbox process id v1\0".to_vec();
        for part in [
            &config.api_key,
            &config.service_account,
            &config.public_key_pem,
        ] {
            material.extend_from_slice(part.as_bytes());
            material.push(0);
        }
        let id_key = hmac::Key::new(hmac::HMAC_SHA256, &material);
        let http = match reqwest::Client::builder().timeout(WEBHOOK_TIMEOUT).build() {
            Ok(client) => Some(client),
            Err(error) => {
                tracing::warn!(%error, "sandbox: no HTTP client, webhooks disabled");
                None
            }
        };
        Unico {
            config,
            verifier,
            token_ttl: TOKEN_TTL,
            tokens: Mutex::new(HashMap::new()),
            used_assertions: Mutex::new(HashMap::new()),
            id_key,
            rng: SystemRandom::new(),
            http,
        }
    }
}

pub(super) fn router(unico: Arc<Unico>) -> Router {
    Router::new()
        .route("/sandbox/unico-identity/oauth2/token", post(token))
        .route("/sandbox/unico/processes/v1", post(create_process))
        .route("/sandbox/unico/processes/v1/{process_id}", get(get_process))
        .with_state(unico)
}

// ---------------------------------------------------------------------------------------------
// Token endpoint

fn auth_error(status: StatusCode, code: &str) -> Response {
    let body = json!({
        "error": "server_error",
        "error_description": format!("Falha na autenticação {code}"),
    });
    (status, axum::Json(body)).into_response()
}

async fn token(State(unico): State<Arc<Unico>>, body: Bytes) -> Response {
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

// ---------------------------------------------------------------------------------------------
// Processes API

fn business_error(status: StatusCode, code: &str, description: &str) -> Response {
    let body = json!({ "error": { "code": code, "description": description } });
    (status, axum::Json(body)).into_response()
}

struct Refusal(StatusCode, &'static str, &'static str);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        business_error(self.0, self.1, self.2)
    }
}

fn header_text(headers: &HeaderMap, name: impl header::AsHeaderName) -> Option<&str> {
    headers
        .get(name)
        .map(|v| v.to_str().unwrap_or_default().trim())
        .filter(|v| !v.is_empty())
}

impl Unico {
    fn authorize(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        let authorization = header_text(headers, header::AUTHORIZATION).ok_or(Refusal(
            StatusCode::BAD_REQUEST,
            "20001",
            "Authorization header missing",
        ))?;
        let api_key = header_text(headers, "apikey").ok_or(Refusal(
            StatusCode::BAD_REQUEST,
            "20002",
            "APIKEY header missing",
        ))?;
        if !bool::from(api_key.as_bytes().ct_eq(self.config.api_key.as_bytes())) {
            return Err(Refusal(StatusCode::FORBIDDEN, "10201", "invalid APIKEY"));
        }
        let invalid = Refusal(StatusCode::FORBIDDEN, "10501", "invalid access token");
        let token = match authorization.split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
            _ => return Err(invalid),
        };
        let tokens = self.tokens.lock().unwrap_or_else(PoisonError::into_inner);
        match tokens.get(token) {
            None => Err(invalid),
            Some(expires) if *expires <= Instant::now() => Err(Refusal(
                StatusCode::FORBIDDEN,
                "10502",
                "access token expired",
            )),
            Some(_) => Ok(()),
        }
    }
}

/// CreateProcess's checks on the body, in unico's order; answers `subject.code` and
/// `subject.name`.
fn validate_create(body: &[u8]) -> Result<(String, String), Refusal> {
    let bad_body = || Refusal(StatusCode::BAD_REQUEST, "20003", "invalid request body");
    let refuse = |code, description| Refusal(StatusCode::BAD_REQUEST, code, description);
    let body: Value = serde_json::from_slice(body).map_err(|_| bad_body())?;
    let body = body.as_object().ok_or_else(bad_body)?;
    let present = |object: &Map<String, Value>, key: &str| {
        object
            .get(key)
            .filter(|v| !v.is_null() && v.as_str() != Some(""))
            .cloned()
    };

    let subject = present(body, "subject").ok_or(refuse("20004", "subject is required"))?;
    let subject = subject.as_object().ok_or_else(bad_body)?;
    let code = present(subject, "code").ok_or(refuse("20005", "subject.code is required"))?;
    let name = present(subject, "name").ok_or(refuse("20006", "subject.name is required"))?;
    if name.as_str().is_none_or(|n| n.trim().is_empty()) {
        return Err(refuse("20006", "subject.name is required"));
    }
    let code = code
        .as_str()
        .filter(|c| scenarios::valid_cpf(c))
        .ok_or(refuse("20507", "subject.code is not a valid CPF"))?;
    if let Some(gender) = present(subject, "gender") {
        if !matches!(gender.as_str(), Some("M" | "F")) {
            return Err(refuse("20508", "subject.gender must be M or F"));
        }
    }
    if let Some(birth) = present(subject, "birthDate") {
        let valid = birth.as_str().is_some_and(|b| {
            b.len() == 10 && chrono::NaiveDate::parse_from_str(b, "%Y-%m-%d").is_ok()
        });
        if !valid {
            return Err(refuse("20019", "subject.birthDate must be YYYY-MM-DD"));
        }
    }
    let image = present(body, "imageBase64").ok_or(refuse("20009", "imageBase64 is required"))?;
    if !image.is_string() {
        return Err(bad_body());
    }
    let name = name.as_str().unwrap_or_default().trim().to_owned();
    Ok((code.to_owned(), name))
}

/// A process as unico spells it on the wire.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ProcessBody<'a> {
    id: &'a str,
    status: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    unico_id: Option<ResultField>,
    #[serde(skip_serializing_if = "Option::is_none")]
    liveness: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    identity_fraudsters: Option<ResultField>,
    #[serde(skip_serializing_if = "Option::is_none")]
    score: Option<i32>,
}

#[derive(Serialize)]
struct ResultField {
    result: &'static str,
}

fn process_response(id: &str, outcome: Outcome) -> Response {
    let body = ProcessBody {
        id,
        status: outcome.status,
        unico_id: outcome.unico_id.map(|result| ResultField { result }),
        liveness: outcome.liveness,
        identity_fraudsters: outcome
            .identity_fraudsters
            .map(|result| ResultField { result }),
        score: outcome.score,
    };
    axum::Json(body).into_response()
}

async fn create_process(
    State(unico): State<Arc<Unico>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(refusal) = unico.authorize(&headers) {
        return refusal.into_response();
    }
    let (code, name) = match validate_create(&body) {
        Ok(subject) => subject,
        Err(refusal) => return refusal.into_response(),
    };
    let scenario = scenarios::for_code(&code).unwrap_or(unico.config.unlisted);
    let outcome = match scenario.at_create() {
        Ok(outcome) => outcome,
        Err(refused) => {
            // unico documents no echo, but a provider's wording may quote what it was sent:
            // this refusal names the person and the CPF in both forms, as a hostile case.
            let description = format!(
                "unsupported image for {name}, CPF {} ({code})",
                scenario.cpf
            );
            return business_error(StatusCode::BAD_REQUEST, refused, &description);
        }
    };
    let Some(id) = unico.new_process_id(scenario, unix_millis()) else {
        return business_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "50000",
            "could not create the process",
        );
    };
    let id = id.to_string();
    if scenario.sends_webhook() {
        unico.schedule_webhook(id.clone());
    }
    process_response(&id, outcome)
}

async fn get_process(
    State(unico): State<Arc<Unico>>,
    headers: HeaderMap,
    Path(process_id): Path<String>,
) -> Response {
    if let Err(refusal) = unico.authorize(&headers) {
        return refusal.into_response();
    }
    let not_found = || business_error(StatusCode::NOT_FOUND, "404", "process not found");
    let Some((scenario, created_ms)) = unico.read_process_id(&process_id) else {
        return not_found();
    };
    let elapsed = Duration::from_millis(unix_millis().saturating_sub(created_ms));
    match scenario.outcome_after(elapsed, unico.config.processing_delay) {
        Some(outcome) => process_response(&process_id, outcome),
        None => not_found(),
    }
}

fn unix_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

// Process ids carry their own state, so GetProcess needs no memory and survives restarts.
// Layout, a well-formed UUIDv7:
//   0..6  creation time, unix milliseconds (48 bits)
//   6     version 7 | 4 random bits
//   7     scenario number
//   8     RFC 4122 variant | 6 random bits
//   9..12 random
//   12..16 HMAC-SHA256 of bytes 0..12, truncated
impl Unico {
    fn new_process_id(&self, scenario: &Scenario, created_ms: u64) -> Option<Uuid> {
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

    fn read_process_id(&self, id: &str) -> Option<(&'static Scenario, u64)> {
        let bytes = Uuid::try_parse(id).ok()?.into_bytes();
        let tag = hmac::sign(&self.id_key, &bytes[..12]);
        if !bool::from(bytes[12..].ct_eq(&tag.as_ref()[..ID_TAG_LEN])) {
            return None;
        }
        let mut millis = [0u8; 8];
        millis[2..].copy_from_slice(&bytes[..6]);
        Some((scenarios::by_number(bytes[7])?, u64::from_be_bytes(millis)))
    }

    /// unico calls back once processing ends; one attempt is enough for a sandbox, since the
    /// service polls anyway.
    fn schedule_webhook(&self, process_id: String) {
        let Some(client) = self.http.clone() else {
            return;
        };
        if self.config.webhook_url.is_empty() {
            tracing::debug!("sandbox: no webhook URL, process {process_id} finishes silently");
            return;
        }
        let url = self.config.webhook_url.clone();
        let header_name = self.config.webhook_header.clone();
        let secret = self.config.webhook_secret.clone();
        let wait = self.config.processing_delay + self.config.webhook_delay;
        // Injected faults: the notification also comes early (before the process is done, often
        // before CreateProcess has answered), or comes twice.
        let (early, twice) = match (self.config.faults.strikes(), fastrand::bool()) {
            (false, _) => (false, false),
            (true, true) => (true, false),
            (true, false) => (false, true),
        };
        tokio::spawn(async move {
            let send = || {
                client
                    .post(&url)
                    .header(header_name.as_str(), secret.as_str())
                    .json(&json!({
                        "processId": process_id,
                        "state": "PROCESS_STATE_FINISHED",
                        "flow": "id",
                    }))
                    .send()
            };
            if early {
                let _ = send().await;
            }
            tokio::time::sleep(wait).await;
            let sent = send().await;
            if twice {
                let _ = send().await;
            }
            match sent {
                Ok(response) if response.status().is_success() => {
                    tracing::debug!(%process_id, "sandbox: webhook delivered");
                }
                Ok(response) => {
                    tracing::warn!(%process_id, status = %response.status(), "sandbox: webhook refused");
                }
                Err(error) => {
                    tracing::warn!(%process_id, %error, "sandbox: webhook not delivered");
                }
            }
        });
    }
}
