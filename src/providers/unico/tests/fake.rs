//! The fake unico: wiremock's server with the routes unico answers. Two parts of it are
//! responders of their own because they hold what wiremock's matchers cannot: the identity
//! host's token endpoint checks each assertion's signature and claims and issues tokens, and the
//! API refuses a token it did not issue, one past its expiry, or one it is told to refuse next.
//! The rest (the API key, the answers a test scripts, the default answers) is plain wiremock.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex as StdMutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Instant as StdInstant;

use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, json};
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Match, Mock, MockServer, Request, Respond, ResponseTemplate};

use super::*;

/// An answer a test scripts for the next API call (create or get), in the order scripted.
pub(super) enum Answer {
    Json(u16, Value),
    Raw(u16, Vec<(&'static str, &'static str)>, &'static str),
    /// The default answer, this late.
    Late(Duration),
}

/// An API call as the fake received it.
#[derive(Clone, Debug)]
pub(super) struct Seen {
    pub raw_path: String,
    /// GetProcess's id, percent-decoded.
    pub id: Option<String>,
    pub authorization: Option<String>,
    pub api_key: Option<String>,
    pub body: Option<Value>,
}

/// What the identity host issued and checked.
pub(super) struct Identity {
    audience: String,
    decoding_key: DecodingKey,
    pub lifetime_secs: AtomicU64,
    pub delay_ms: AtomicU64,
    exchanges: AtomicUsize,
    /// Everything the fake found wrong in what the client sent to the token endpoint.
    problems: StdMutex<Vec<String>>,
    assertions: StdMutex<Vec<String>>,
    pub forms: StdMutex<Vec<Vec<(String, String)>>>,
    /// Each token issued, with the instant the API stops honouring it.
    pub tokens: StdMutex<HashMap<String, StdInstant>>,
    /// What the token endpoint answers instead of a token, when set.
    answer: StdMutex<Option<(u16, Value)>>,
    /// How many calls from now on the API refuses whatever their token.
    pub refuse_tokens: AtomicUsize,
    pub token_refusals: AtomicUsize,
}

pub(super) struct Fake {
    server: MockServer,
    pub base: String,
    pub identity: Arc<Identity>,
    _shared: Option<tokio::sync::RwLockReadGuard<'static, ()>>,
}

impl Fake {
    pub async fn start() -> Fake {
        let shared = LOG_CAPTURE.read().await;
        let mut fake = Fake::start_alone().await;
        fake._shared = Some(shared);
        fake
    }

    /// For the test that already holds `LOG_CAPTURE` exclusively.
    pub async fn start_alone() -> Fake {
        let server = MockServer::builder().start().await;
        let base = server.uri();
        let identity = Arc::new(Identity {
            audience: format!("{base}/identity"),
            decoding_key: DecodingKey::from_rsa_pem(PUBLIC_KEY.as_bytes()).expect("public key"),
            lifetime_secs: AtomicU64::new(3600),
            delay_ms: AtomicU64::new(0),
            exchanges: AtomicUsize::new(0),
            problems: StdMutex::default(),
            assertions: StdMutex::default(),
            forms: StdMutex::default(),
            tokens: StdMutex::default(),
            answer: StdMutex::default(),
            refuse_tokens: AtomicUsize::new(0),
            token_refusals: AtomicUsize::new(0),
        });
        Mock::given(method("POST"))
            .and(path("/identity/oauth2/token"))
            .respond_with(TokenEndpoint(identity.clone()))
            .with_priority(5)
            .mount(&server)
            .await;
        // unico checks the API key, then the token, before it looks at the request.
        Mock::given(path_regex("^/api/"))
            .and(|r: &Request| header(r, "apikey").as_deref() != Some(API_KEY))
            .respond_with(
                ResponseTemplate::new(403).set_body_json(business("10201", "invalid APIKEY")),
            )
            .with_priority(1)
            .mount(&server)
            .await;
        Mock::given(path_regex("^/api/"))
            .and(|r: &Request| bearer(r).is_none())
            .respond_with(
                ResponseTemplate::new(400).set_body_json(business("20001", "token header missing")),
            )
            .with_priority(1)
            .mount(&server)
            .await;
        for (refusal, code) in [(Refusal::Unknown, "10501"), (Refusal::Expired, "10502")] {
            Mock::given(path_regex("^/api/"))
                .and(TokenRefused(identity.clone(), refusal))
                .respond_with(
                    ResponseTemplate::new(403).set_body_json(business(code, "token refused")),
                )
                .with_priority(1)
                .mount(&server)
                .await;
        }
        Mock::given(method("POST"))
            .and(path("/api/processes/v1"))
            .respond_with(create_answer)
            .with_priority(5)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path_regex("^/api/processes/v1/[^/]+$"))
            .respond_with(|r: &Request| ResponseTemplate::new(200).set_body_json(read_answer(r)))
            .with_priority(5)
            .mount(&server)
            .await;
        Fake {
            server,
            base,
            identity,
            _shared: None,
        }
    }

    pub fn config(&self, timeout: Duration) -> UnicoConfig {
        UnicoConfig {
            base_url: format!("{}/api", self.base),
            // The trailing slash must not reach the assertion's aud.
            identity_url: format!("{}/identity/", self.base),
            api_key: SecretString::from(API_KEY),
            service_account: ACCOUNT.to_owned(),
            private_key_pem: SecretString::from(PRIVATE_KEY),
            timeout,
        }
    }

    pub fn client(&self) -> (UnicoClient, Arc<Recorder>) {
        self.client_with(self.config(Duration::from_secs(5)))
    }

    pub fn client_with(&self, config: UnicoConfig) -> (UnicoClient, Arc<Recorder>) {
        let recorder = Arc::new(Recorder::default());
        let client = UnicoClient::new(config, recorder.clone()).expect("client");
        (client, recorder)
    }

    /// The next API call with a valid key and token gets `answer` (after those scripted before).
    pub async fn answer(&self, answer: Answer) {
        let template = match answer {
            Answer::Json(status, body) => ResponseTemplate::new(status).set_body_json(body),
            Answer::Raw(status, headers, body) => {
                let mime = headers
                    .iter()
                    .find(|(name, _)| name.eq_ignore_ascii_case("content-type"))
                    .map_or("text/plain; charset=utf-8", |(_, value)| *value);
                headers
                    .iter()
                    .filter(|(name, _)| !name.eq_ignore_ascii_case("content-type"))
                    .fold(
                        ResponseTemplate::new(status).set_body_raw(body, mime),
                        |template, (name, value)| template.insert_header(*name, *value),
                    )
            }
            Answer::Late(delay) => ResponseTemplate::new(200)
                .set_body_json(json!({"id": PROCESS_ID, "status": 3}))
                .set_delay(delay),
        };
        Mock::given(path_regex("^/api/processes/v1"))
            .respond_with(template)
            .up_to_n_times(1)
            .with_priority(2)
            .mount(&self.server)
            .await;
    }

    /// The identity host answers every exchange with `status` and `body` from now on.
    pub fn identity_answers(&self, status: u16, body: Value) {
        *lock(&self.identity.answer) = Some((status, body));
    }

    /// Token exchanges the token endpoint answered.
    pub fn exchanges(&self) -> usize {
        self.identity.exchanges.load(Ordering::SeqCst)
    }

    pub fn problems(&self) -> Vec<String> {
        lock(&self.identity.problems).clone()
    }

    /// The API calls received, in order.
    pub async fn seen(&self) -> Vec<Seen> {
        let received = self.server.received_requests().await.unwrap_or_default();
        received
            .iter()
            .filter(|r| r.url.path().starts_with("/api/"))
            .map(|r| Seen {
                raw_path: r.url.path().to_owned(),
                id: (r.method.as_str() == "GET").then(|| {
                    let segment = r.url.path().rsplit('/').next().unwrap_or_default();
                    percent_decoded(segment)
                }),
                authorization: header(r, "authorization"),
                api_key: header(r, "apikey"),
                body: serde_json::from_slice(&r.body).ok(),
            })
            .collect()
    }

    /// Every secret the client handled: what must never be recorded or logged.
    pub fn secrets(&self) -> Vec<String> {
        let mut all = vec![
            CPF.to_owned(),
            NAME.to_owned(),
            SELFIE.to_owned(),
            API_KEY.to_owned(),
            BIRTH_DATE.to_owned(),
            EMAIL.to_owned(),
            PHONE.to_owned(),
        ];
        all.extend(lock(&self.identity.tokens).keys().cloned());
        all.extend(lock(&self.identity.assertions).iter().cloned());
        all
    }
}

fn header(request: &Request, name: &str) -> Option<String> {
    request
        .headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

fn bearer(request: &Request) -> Option<String> {
    header(request, "authorization").and_then(|v| v.strip_prefix("Bearer ").map(str::to_owned))
}

fn percent_decoded(segment: &str) -> String {
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(&format!("id={segment}")).expect("a percent-encoded segment");
    pairs
        .into_iter()
        .next()
        .map(|(_, id)| id)
        .unwrap_or_default()
}

/// CreateProcess's default answer, when the body names a subject and carries an image.
fn create_answer(request: &Request) -> ResponseTemplate {
    let refused =
        |code, description| ResponseTemplate::new(400).set_body_json(business(code, description));
    let Ok(body) = serde_json::from_slice::<Value>(&request.body) else {
        return refused("20003", "body");
    };
    if body["subject"]["code"].as_str().is_none() || body["subject"]["name"].as_str().is_none() {
        return refused("20004", "subject");
    }
    if body["imageBase64"].as_str().is_none() {
        return refused("20009", "image");
    }
    ResponseTemplate::new(200).set_body_json(
        json!({"id": PROCESS_ID, "status": 1, "unicoId": {"result": "inconclusive"}, "liveness": 1}),
    )
}

/// GetProcess's default answer: the process asked for, over.
fn read_answer(request: &Request) -> Value {
    let id = percent_decoded(request.url.path().rsplit('/').next().unwrap_or_default());
    json!({"id": id, "status": 3, "unicoId": {"result": "yes"}})
}

#[derive(Clone, Copy, PartialEq)]
enum Refusal {
    /// A token the identity host never issued.
    Unknown,
    /// An issued token past its expiry, or any token while the fake is told to refuse.
    Expired,
}

/// Matches the API calls whose token unico refuses for the reason given.
struct TokenRefused(Arc<Identity>, Refusal);

impl Match for TokenRefused {
    fn matches(&self, request: &Request) -> bool {
        let Some(token) = bearer(request) else {
            return false;
        };
        let expiry = lock(&self.0.tokens).get(&token).copied();
        let refused = match (self.1, expiry) {
            (Refusal::Unknown, expiry) => expiry.is_none(),
            (Refusal::Expired, None) => false,
            (Refusal::Expired, Some(expiry)) => {
                let forced = self
                    .0
                    .refuse_tokens
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok();
                expiry <= StdInstant::now() || forced
            }
        };
        if refused {
            self.0.token_refusals.fetch_add(1, Ordering::SeqCst);
        }
        refused
    }
}

/// The identity host's token endpoint.
struct TokenEndpoint(Arc<Identity>);

impl Respond for TokenEndpoint {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let state = &self.0;
        let exchange = state.exchanges.fetch_add(1, Ordering::SeqCst) + 1;
        let delay = Duration::from_millis(state.delay_ms.load(Ordering::SeqCst));
        if let Some((status, body)) = lock(&state.answer).clone() {
            return ResponseTemplate::new(status).set_body_json(body);
        }
        if let Err(problem) = check_token_request(state, request) {
            lock(&state.problems).push(problem.clone());
            return ResponseTemplate::new(400)
                .set_body_json(json!({"error": "server_error", "error_description": format!("Falha na autenticação {problem}")}))
                .set_delay(delay);
        }
        let lifetime = state.lifetime_secs.load(Ordering::SeqCst);
        let token = format!("at-{exchange}-{}", uuid::Uuid::new_v4());
        // The fake honours its tokens a day at most, whatever lifetime it announces.
        lock(&state.tokens).insert(
            token.clone(),
            StdInstant::now() + Duration::from_secs(lifetime.min(86_400)),
        );
        ResponseTemplate::new(200)
            .set_body_json(
                json!({"access_token": token, "expires_in": lifetime, "token_type": "Bearer"}),
            )
            .set_delay(delay)
    }
}

fn check_token_request(state: &Identity, request: &Request) -> Result<(), String> {
    let content_type = header(request, "content-type").unwrap_or_default();
    if !content_type.starts_with("application/x-www-form-urlencoded") {
        return Err(format!("content-type {content_type}"));
    }
    let form: Vec<(String, String)> =
        serde_urlencoded::from_bytes(&request.body).map_err(|e| format!("form: {e}"))?;
    lock(&state.forms).push(form.clone());
    let keys: Vec<&str> = form.iter().map(|(k, _)| k.as_str()).collect();
    if keys != ["grant_type", "assertion"] {
        return Err(format!("form keys {keys:?}"));
    }
    if form[0].1 != "urn:ietf:params:oauth:grant-type:jwt-bearer" {
        return Err(format!("grant_type {}", form[0].1));
    }
    let assertion = form[1].1.clone();
    {
        let mut seen = lock(&state.assertions);
        if seen.contains(&assertion) {
            return Err("1.2.7 assertion reused".into());
        }
        seen.push(assertion.clone());
    }

    let header_b64 = assertion.split('.').next().unwrap_or_default();
    let header: Value = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header_b64)
        .ok()
        .and_then(|raw| serde_json::from_slice(&raw).ok())
        .ok_or("header is not base64url JSON")?;
    if header != json!({"alg": "RS256", "typ": "JWT"}) {
        return Err(format!("header {header}"));
    }

    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&[state.audience.as_str()]);
    validation.set_issuer(&[ACCOUNT]);
    validation.set_required_spec_claims(&["exp", "iat", "iss", "aud"]);
    validation.leeway = 0;
    let claims =
        jsonwebtoken::decode::<Map<String, Value>>(&assertion, &state.decoding_key, &validation)
            .map_err(|e| format!("1.2.5 assertion rejected: {e}"))?
            .claims;
    let names: HashSet<&str> = claims.keys().map(String::as_str).collect();
    if names != HashSet::from(["iss", "aud", "scope", "iat", "exp"]) {
        return Err(format!("1.2.22 claim set {names:?}"));
    }
    if claims["scope"] != json!("*") {
        return Err(format!("scope {}", claims["scope"]));
    }
    let iat = claims["iat"].as_i64().ok_or("iat not an integer")?;
    let exp = claims["exp"].as_i64().ok_or("exp not an integer")?;
    if exp - iat != 3600 {
        return Err(format!("exp - iat = {}", exp - iat));
    }
    if (iat - chrono::Utc::now().timestamp()).abs() > 5 {
        return Err(format!("iat {iat} is not now"));
    }
    Ok(())
}
