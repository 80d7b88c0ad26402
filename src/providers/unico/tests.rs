//! The real client over real HTTP against a small fake unico (axum on 127.0.0.1:0). The fake is
//! strict where unico is documented to be strict: it verifies the assertion's signature and exact
//! claim set, refuses a reused assertion, an unknown or expired token and a wrong API key.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Mutex as StdMutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Instant as StdInstant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap as AxumHeaders, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, json};

use super::*;
use crate::providers::CallRecord;
use crate::providers::CallSink;

const PRIVATE_KEY: &str = include_str!("testdata/private_key.pem");
const PRIVATE_KEY_PKCS1: &str = include_str!("testdata/private_key_pkcs1.pem");
const PUBLIC_KEY: &str = include_str!("testdata/public_key.pem");
const ACCOUNT: &str = "veredito@tenant-42.iam.acesso.io";
const API_KEY: &str = "apikey-3c9d0e1f";
const CPF: &str = "11144477735";
const NAME: &str = "Maria Aparecida Souza";
const SELFIE: &str = "eyJhbGciOiJSU0EtT0FFUC0yNTYifQ.SELFIE-CIPHERTEXT-q1w2e3r4t5";
const BIRTH_DATE: &str = "1990-04-17";
const EMAIL: &str = "maria@example.com";
const PHONE: &str = "5511987654321";
const PROCESS_ID: &str = "80371b2a-3ac7-432e-866d-57fe37896ac6";

// ---------------------------------------------------------------------------------------------
// The fake unico.

#[derive(Clone)]
enum Answer {
    Json(u16, Value),
    Raw(u16, Vec<(&'static str, &'static str)>, &'static str),
    Sleep(Duration),
}

#[derive(Clone, Debug)]
struct Seen {
    raw_path: String,
    /// The id after axum decoded the path segment.
    id: Option<String>,
    authorization: Option<String>,
    api_key: Option<String>,
    body: Option<Value>,
}

struct FakeState {
    audience: String,
    decoding_key: DecodingKey,
    token_lifetime_secs: AtomicU64,
    exchange_delay_ms: AtomicU64,
    exchanges: AtomicUsize,
    /// Everything the fake found wrong in what the client sent to the token endpoint.
    problems: StdMutex<Vec<String>>,
    assertions: StdMutex<Vec<String>>,
    forms: StdMutex<Vec<Vec<(String, String)>>>,
    tokens: StdMutex<HashMap<String, StdInstant>>,
    token_override: StdMutex<Option<(u16, Value)>>,
    answers: StdMutex<VecDeque<Answer>>,
    refuse_tokens: AtomicUsize,
    token_refusals: AtomicUsize,
    seen: StdMutex<Vec<Seen>>,
}

struct Fake {
    base: String,
    state: Arc<FakeState>,
    _shared: Option<tokio::sync::RwLockReadGuard<'static, ()>>,
}

/// tracing caches per callsite whether anyone listens; tests logging with no subscriber on other
/// threads race with the test that captures logs and can make its events vanish. Every test that
/// logs holds this shared; the capturing test holds it alone.
static LOG_CAPTURE: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

fn lock<T>(m: &StdMutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().expect("fake state lock")
}

impl Fake {
    async fn start() -> Fake {
        let shared = LOG_CAPTURE.read().await;
        let mut fake = Fake::start_alone().await;
        fake._shared = Some(shared);
        fake
    }

    /// For the test that already holds `LOG_CAPTURE` exclusively.
    async fn start_alone() -> Fake {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let state = Arc::new(FakeState {
            audience: format!("{base}/identity"),
            decoding_key: DecodingKey::from_rsa_pem(PUBLIC_KEY.as_bytes()).expect("public key"),
            token_lifetime_secs: AtomicU64::new(3600),
            exchange_delay_ms: AtomicU64::new(0),
            exchanges: AtomicUsize::new(0),
            problems: StdMutex::default(),
            assertions: StdMutex::default(),
            forms: StdMutex::default(),
            tokens: StdMutex::default(),
            token_override: StdMutex::default(),
            answers: StdMutex::default(),
            refuse_tokens: AtomicUsize::new(0),
            token_refusals: AtomicUsize::new(0),
            seen: StdMutex::default(),
        });
        let app = Router::new()
            .route("/identity/oauth2/token", post(token_endpoint))
            .route("/api/processes/v1", post(create_endpoint))
            .route("/api/processes/v1/{id}", get(get_endpoint))
            .with_state(state.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Fake {
            base,
            state,
            _shared: None,
        }
    }

    fn config(&self, timeout: Duration) -> UnicoConfig {
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

    fn client(&self) -> (UnicoClient, Arc<Recorder>) {
        self.client_with(self.config(Duration::from_secs(5)))
    }

    fn client_with(&self, config: UnicoConfig) -> (UnicoClient, Arc<Recorder>) {
        let recorder = Arc::new(Recorder::default());
        let client = UnicoClient::new(config, recorder.clone()).expect("client");
        (client, recorder)
    }

    fn answer(&self, answer: Answer) {
        lock(&self.state.answers).push_back(answer);
    }

    fn exchanges(&self) -> usize {
        self.state.exchanges.load(Ordering::SeqCst)
    }

    fn problems(&self) -> Vec<String> {
        lock(&self.state.problems).clone()
    }

    fn seen(&self) -> Vec<Seen> {
        lock(&self.state.seen).clone()
    }

    /// Every secret the client handled: what must never be recorded or logged.
    fn secrets(&self) -> Vec<String> {
        let mut all = vec![
            CPF.to_owned(),
            NAME.to_owned(),
            SELFIE.to_owned(),
            API_KEY.to_owned(),
            BIRTH_DATE.to_owned(),
            EMAIL.to_owned(),
            PHONE.to_owned(),
        ];
        all.extend(lock(&self.state.tokens).keys().cloned());
        all.extend(lock(&self.state.assertions).iter().cloned());
        all
    }
}

fn oauth_refusal(why: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({"error": "server_error", "error_description": format!("Falha na autenticação {why}")})),
    )
        .into_response()
}

async fn token_endpoint(
    State(state): State<Arc<FakeState>>,
    headers: AxumHeaders,
    body: Bytes,
) -> Response {
    let delay = state.exchange_delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    state.exchanges.fetch_add(1, Ordering::SeqCst);
    if let Some((status, body)) = lock(&state.token_override).clone() {
        return (
            StatusCode::from_u16(status).expect("status"),
            axum::Json(body),
        )
            .into_response();
    }
    match check_token_request(&state, &headers, &body) {
        Ok(()) => {}
        Err(problem) => {
            lock(&state.problems).push(problem.clone());
            return oauth_refusal(&problem);
        }
    }
    let lifetime = state.token_lifetime_secs.load(Ordering::SeqCst);
    let token = format!(
        "at-{}-{}",
        state.exchanges.load(Ordering::SeqCst),
        uuid::Uuid::new_v4()
    );
    // The fake honours its tokens a day at most, whatever lifetime it announces.
    lock(&state.tokens).insert(
        token.clone(),
        StdInstant::now() + Duration::from_secs(lifetime.min(86_400)),
    );
    axum::Json(json!({"access_token": token, "expires_in": lifetime, "token_type": "Bearer"}))
        .into_response()
}

fn check_token_request(
    state: &FakeState,
    headers: &AxumHeaders,
    body: &[u8],
) -> Result<(), String> {
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !content_type.starts_with("application/x-www-form-urlencoded") {
        return Err(format!("content-type {content_type}"));
    }
    let form: Vec<(String, String)> =
        serde_urlencoded::from_bytes(body).map_err(|e| format!("form: {e}"))?;
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

fn business(status: StatusCode, code: &str, description: &str) -> Response {
    (
        status,
        axum::Json(json!({"error": {"code": code, "description": description}})),
    )
        .into_response()
}

/// Checks the API key and the token, as unico does before looking at the request.
fn guard(state: &FakeState, headers: &AxumHeaders) -> Option<Response> {
    if headers.get("apikey").and_then(|v| v.to_str().ok()) != Some(API_KEY) {
        return Some(business(StatusCode::FORBIDDEN, "10201", "invalid APIKEY"));
    }
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let Some(token) = token else {
        return Some(business(
            StatusCode::BAD_REQUEST,
            "20001",
            "token header missing",
        ));
    };
    let refusal = match lock(&state.tokens).get(token) {
        None => Some("10501"),
        Some(expiry) if *expiry <= StdInstant::now() => Some("10502"),
        Some(_) => None,
    };
    let forced = state
        .refuse_tokens
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    if let Some(code) = refusal.or(forced.then_some("10502")) {
        state.token_refusals.fetch_add(1, Ordering::SeqCst);
        return Some(business(StatusCode::FORBIDDEN, code, "token refused"));
    }
    None
}

async fn scripted(state: &FakeState, default: Value) -> Response {
    let next = lock(&state.answers).pop_front();
    match next {
        None => axum::Json(default).into_response(),
        Some(Answer::Json(status, body)) => (
            StatusCode::from_u16(status).expect("status"),
            axum::Json(body),
        )
            .into_response(),
        Some(Answer::Raw(status, headers, body)) => {
            let mut response =
                (StatusCode::from_u16(status).expect("status"), body).into_response();
            for (name, value) in headers {
                response
                    .headers_mut()
                    .insert(name, value.parse().expect("header value"));
            }
            response
        }
        Some(Answer::Sleep(delay)) => {
            tokio::time::sleep(delay).await;
            axum::Json(default).into_response()
        }
    }
}

fn header(headers: &AxumHeaders, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

async fn create_endpoint(
    State(state): State<Arc<FakeState>>,
    uri: Uri,
    headers: AxumHeaders,
    body: Bytes,
) -> Response {
    let json: Option<Value> = serde_json::from_slice(&body).ok();
    lock(&state.seen).push(Seen {
        raw_path: uri.path().to_owned(),
        id: None,
        authorization: header(&headers, "authorization"),
        api_key: header(&headers, "apikey"),
        body: json.clone(),
    });
    if let Some(refusal) = guard(&state, &headers) {
        return refusal;
    }
    let Some(json) = json else {
        return business(StatusCode::BAD_REQUEST, "20003", "body");
    };
    if json["subject"]["code"].as_str().is_none() || json["subject"]["name"].as_str().is_none() {
        return business(StatusCode::BAD_REQUEST, "20004", "subject");
    }
    if json["imageBase64"].as_str().is_none() {
        return business(StatusCode::BAD_REQUEST, "20009", "image");
    }
    scripted(&state, json!({"id": PROCESS_ID, "status": 1, "unicoId": {"result": "inconclusive"}, "liveness": 1})).await
}

async fn get_endpoint(
    State(state): State<Arc<FakeState>>,
    Path(id): Path<String>,
    uri: Uri,
    headers: AxumHeaders,
) -> Response {
    lock(&state.seen).push(Seen {
        raw_path: uri.path().to_owned(),
        id: Some(id.clone()),
        authorization: header(&headers, "authorization"),
        api_key: header(&headers, "apikey"),
        body: None,
    });
    if let Some(refusal) = guard(&state, &headers) {
        return refusal;
    }
    scripted(
        &state,
        json!({"id": id, "status": 3, "unicoId": {"result": "yes"}}),
    )
    .await
}

#[derive(Default)]
struct Recorder {
    calls: StdMutex<Vec<CallRecord>>,
}

impl CallSink for Recorder {
    fn record(&self, call: CallRecord) {
        lock(&self.calls).push(call);
    }
}

impl Recorder {
    fn calls(&self) -> Vec<CallRecord> {
        lock(&self.calls).clone()
    }

    fn operations(&self) -> Vec<(&'static str, Option<u16>)> {
        self.calls()
            .iter()
            .map(|c| (c.operation, c.http_status))
            .collect()
    }
}

fn request() -> CreateProcess {
    CreateProcess {
        subject: Subject {
            code: CPF.into(),
            name: NAME.into(),
            gender: Some("F".into()),
            birth_date: Some(BIRTH_DATE.into()),
            email: Some(EMAIL.into()),
            phone: Some(PHONE.into()),
        },
        image_base64: SecretString::from(SELFIE),
    }
}

fn minimal_request() -> CreateProcess {
    CreateProcess {
        subject: Subject {
            code: CPF.into(),
            name: NAME.into(),
            gender: None,
            birth_date: None,
            email: Some("  ".into()),
            phone: None,
        },
        image_base64: SecretString::from(SELFIE),
    }
}

fn ctx() -> CallContext {
    CallContext::onboarding(uuid::Uuid::new_v4())
}

// ---------------------------------------------------------------------------------------------
// Token.

#[tokio::test]
async fn assertion_has_exact_header_claims_and_form() {
    let fake = Fake::start().await;
    let (client, _) = fake.client();
    client
        .get_process(PROCESS_ID, ctx())
        .await
        .expect("get_process");

    assert_eq!(fake.problems(), Vec::<String>::new());
    assert_eq!(fake.exchanges(), 1);
    let forms = lock(&fake.state.forms).clone();
    assert_eq!(forms.len(), 1);
    assert_eq!(
        forms[0][0],
        (
            "grant_type".to_owned(),
            "urn:ietf:params:oauth:grant-type:jwt-bearer".to_owned()
        )
    );

    // Read the assertion again here, independently of the fake's checks.
    let assertion = &forms[0][1].1;
    let parts: Vec<&str> = assertion.split('.').collect();
    assert_eq!(parts.len(), 3);
    let decode = |part: &str| -> Value {
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .expect("base64url");
        serde_json::from_slice(&raw).expect("json")
    };
    assert_eq!(decode(parts[0]), json!({"alg": "RS256", "typ": "JWT"}));
    let claims = decode(parts[1]);
    let iat = claims["iat"].as_i64().expect("iat");
    assert_eq!(
        claims,
        json!({"iss": ACCOUNT, "aud": format!("{}/identity", fake.base), "scope": "*", "iat": iat, "exp": iat + 3600})
    );
}

#[tokio::test]
async fn one_exchange_serves_many_calls() {
    let fake = Fake::start().await;
    let (client, recorder) = fake.client();
    for _ in 0..5 {
        client
            .get_process(PROCESS_ID, ctx())
            .await
            .expect("get_process");
    }
    client
        .create_process(&request(), ctx())
        .await
        .expect("create_process");
    assert_eq!(fake.exchanges(), 1);
    let ops: Vec<&str> = recorder.calls().iter().map(|c| c.operation).collect();
    assert_eq!(ops.iter().filter(|op| **op == "token").count(), 1);
    assert_eq!(ops.len(), 7);
}

#[tokio::test]
async fn concurrent_first_calls_share_one_exchange() {
    let fake = Fake::start().await;
    // A slow identity host keeps the exchange in flight while the other calls arrive.
    fake.state.exchange_delay_ms.store(300, Ordering::SeqCst);
    let (client, _) = fake.client();
    let calls = (0..8).map(|_| {
        let client = client.clone();
        tokio::spawn(async move { client.get_process(PROCESS_ID, ctx()).await })
    });
    for call in futures_util::future::join_all(calls).await {
        call.expect("task").expect("get_process");
    }
    assert_eq!(fake.exchanges(), 1);
    assert_eq!(fake.seen().len(), 8);
}

#[tokio::test]
async fn token_is_renewed_before_it_expires() {
    let fake = Fake::start().await;
    fake.state.token_lifetime_secs.store(2, Ordering::SeqCst);
    let (client, _) = fake.client();

    client.get_process(PROCESS_ID, ctx()).await.expect("first");
    client.get_process(PROCESS_ID, ctx()).await.expect("second");
    assert_eq!(fake.exchanges(), 1, "a fresh token is reused");

    // Before the 2 s expiry the old token is still accepted, so only the client's own schedule
    // can cause a second exchange: keep calling until it does, and it must be in time.
    let started = StdInstant::now();
    while fake.exchanges() < 2 {
        assert!(
            started.elapsed() < Duration::from_millis(1900),
            "not renewed ahead of expiry"
        );
        client.get_process(PROCESS_ID, ctx()).await.expect("later");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(fake.exchanges(), 2, "renewed once");
    assert_eq!(
        fake.state.token_refusals.load(Ordering::SeqCst),
        0,
        "never sent an expired token"
    );
    assert_eq!(
        fake.problems(),
        Vec::<String>::new(),
        "a new assertion for each exchange"
    );

    let seen = fake.seen();
    assert_ne!(
        seen[1].authorization,
        seen.last().unwrap().authorization,
        "the last call went out with the new token"
    );
}

#[tokio::test]
async fn refused_token_is_renewed_and_the_call_retried_once() {
    let fake = Fake::start().await;
    let (client, recorder) = fake.client();
    client
        .get_process(PROCESS_ID, ctx())
        .await
        .expect("warm up");

    fake.state.refuse_tokens.store(1, Ordering::SeqCst);
    let result = client
        .create_process(&request(), ctx())
        .await
        .expect("retried");
    assert_eq!(result.process_id, PROCESS_ID);
    assert_eq!(fake.exchanges(), 2);
    assert_eq!(
        recorder.operations(),
        [
            ("token", Some(200)),
            ("get_process", Some(200)),
            ("create_process", Some(403)),
            ("token", Some(200)),
            ("create_process", Some(200)),
        ]
    );
    let seen = fake.seen();
    assert_ne!(
        seen[1].authorization, seen[2].authorization,
        "the retry carries the new token"
    );
    assert_eq!(seen[1].body, seen[2].body, "the same body is sent again");
}

#[tokio::test]
async fn a_second_refusal_is_returned_not_retried() {
    let fake = Fake::start().await;
    fake.state.refuse_tokens.store(5, Ordering::SeqCst);
    let (client, _) = fake.client();
    let error = client
        .get_process(PROCESS_ID, ctx())
        .await
        .expect_err("refused twice");
    assert_eq!(
        error,
        UnicoError::Business {
            http_status: 403,
            code: "10502".into(),
            description: "token refused".into()
        }
    );
    assert_eq!(fake.seen().len(), 2);
    assert_eq!(fake.exchanges(), 2);
}

#[tokio::test]
async fn identity_refusal_is_an_auth_error() {
    let fake = Fake::start().await;
    *lock(&fake.state.token_override) = Some((
        401,
        json!({"error": "server_error", "error_description": "Falha na autenticação 1.2.5"}),
    ));
    let (client, recorder) = fake.client();
    let error = client
        .get_process(PROCESS_ID, ctx())
        .await
        .expect_err("auth");
    assert_eq!(
        error,
        UnicoError::Auth {
            http_status: Some(401),
            description: "server_error: Falha na autenticação 1.2.5".into()
        }
    );
    assert!(!error.is_transient());
    assert!(fake.seen().is_empty(), "no API call without a token");
    assert_eq!(recorder.operations(), [("token", Some(401))]);

    // unico also answers auth failures as 5xx with an OAuth body: still Auth, not Server.
    *lock(&fake.state.token_override) = Some((
        500,
        json!({"error": "server_error", "error_description": "Falha na autenticação 1.2.7"}),
    ));
    let error = client
        .get_process(PROCESS_ID, ctx())
        .await
        .expect_err("auth");
    assert!(
        matches!(
            error,
            UnicoError::Auth {
                http_status: Some(500),
                ..
            }
        ),
        "{error:?}"
    );
}

#[tokio::test]
async fn token_exchange_record_holds_no_assertion_or_token() {
    let fake = Fake::start().await;
    let (client, recorder) = fake.client();
    client
        .get_process(PROCESS_ID, ctx())
        .await
        .expect("get_process");
    let token_call = recorder
        .calls()
        .into_iter()
        .find(|c| c.operation == "token")
        .expect("token record");
    assert_eq!(token_call.method, "POST");
    assert_eq!(token_call.path, "/identity/oauth2/token");
    assert_eq!(
        token_call.request,
        Some(
            json!({"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": "[redacted]"})
        )
    );
    assert_eq!(
        token_call.response,
        Some(json!({"expires_in": 3600, "token_type": "Bearer"}))
    );
    let said = token_call.said.expect("the answer, to be sealed").0;
    assert_eq!(
        said["body"],
        json!({"access_token": "[redacted]", "expires_in": 3600, "token_type": "Bearer"})
    );
}

#[test]
fn bad_keys_fail_at_construction_and_pkcs1_is_accepted() {
    let config = |pem: &str| UnicoConfig {
        base_url: "https://api.id.uat.unico.app".into(),
        identity_url: "https://identityhomolog.acesso.io".into(),
        api_key: SecretString::from(API_KEY),
        service_account: ACCOUNT.into(),
        private_key_pem: SecretString::from(pem),
        timeout: Duration::from_secs(5),
    };
    let sink: SharedSink = Arc::new(crate::providers::DiscardCalls);
    for pem in [
        "not a pem",
        PUBLIC_KEY,
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    ] {
        let result = UnicoClient::new(config(pem), sink.clone());
        assert!(matches!(result, Err(UnicoError::Config(_))), "{pem}");
    }
    assert!(UnicoClient::new(config(PRIVATE_KEY), sink.clone()).is_ok());
    assert!(UnicoClient::new(config(PRIVATE_KEY_PKCS1), sink.clone()).is_ok());
    let mut bad_url = config(PRIVATE_KEY);
    bad_url.base_url = "api.id.unico.app".into();
    assert!(matches!(
        UnicoClient::new(bad_url, sink),
        Err(UnicoError::Config(_))
    ));
}

// ---------------------------------------------------------------------------------------------
// Processes.

#[tokio::test]
async fn sends_bearer_token_and_apikey() {
    let fake = Fake::start().await;
    let (client, _) = fake.client();
    client
        .create_process(&request(), ctx())
        .await
        .expect("create_process");
    client
        .get_process(PROCESS_ID, ctx())
        .await
        .expect("get_process");
    let token = lock(&fake.state.tokens)
        .keys()
        .next()
        .cloned()
        .expect("issued token");
    for seen in fake.seen() {
        assert_eq!(
            seen.authorization.as_deref(),
            Some(format!("Bearer {token}").as_str()),
            "{seen:?}"
        );
        assert_eq!(seen.api_key.as_deref(), Some(API_KEY), "{seen:?}");
    }
}

#[tokio::test]
async fn create_process_body_has_the_documented_shape() {
    let fake = Fake::start().await;
    let (client, _) = fake.client();
    let result = client
        .create_process(&request(), ctx())
        .await
        .expect("create_process");
    assert_eq!(result.status, 1);
    client
        .create_process(&minimal_request(), ctx())
        .await
        .expect("create_process");

    let seen = fake.seen();
    assert_eq!(seen[0].raw_path, "/api/processes/v1");
    assert_eq!(
        seen[0].body,
        Some(json!({
            "subject": {"code": CPF, "name": NAME, "gender": "F", "birthDate": BIRTH_DATE, "email": EMAIL, "phone": PHONE},
            "imageBase64": SELFIE
        }))
    );
    assert_eq!(
        seen[1].body,
        Some(json!({"subject": {"code": CPF, "name": NAME}, "imageBase64": SELFIE}))
    );
}

#[tokio::test]
async fn get_process_percent_encodes_the_id() {
    let fake = Fake::start().await;
    let (client, recorder) = fake.client();
    let hostile = "../v2/x y?z#w";
    client
        .get_process(hostile, ctx())
        .await
        .expect("get_process");
    let seen = fake.seen();
    assert_eq!(seen[0].id.as_deref(), Some(hostile));
    assert_eq!(
        seen[0].raw_path,
        "/api/processes/v1/..%2Fv2%2Fx%20y%3Fz%23w"
    );
    let get = recorder
        .calls()
        .into_iter()
        .find(|c| c.operation == "get_process")
        .expect("record");
    assert_eq!(get.path, seen[0].raw_path);
    assert_eq!(get.method, "GET");
    assert_eq!(get.request, None);
}

#[tokio::test]
async fn reads_both_key_spellings_and_ignores_unknown_fields() {
    let fake = Fake::start().await;
    fake.answer(Answer::Json(
        200,
        json!({"id": PROCESS_ID, "status": 3, "unicoId": {"result": "Inconclusive"}, "liveness": 1,
               "identityFraudsters": {"result": "SUSPICIOUS"}, "score": -40, "novidade": {"a": [1]}}),
    ));
    fake.answer(Answer::Json(
        200,
        json!({"Id": PROCESS_ID, "Status": 3, "UnicoId": {"Result": "YES"},
               "IdentityFraudsters": {"Result": "inconclusive"}, "Extra": null}),
    ));
    let (client, _) = fake.client();
    let camel = client
        .get_process(PROCESS_ID, ctx())
        .await
        .expect("camelCase");
    assert_eq!(
        camel,
        BiometricResult {
            process_id: PROCESS_ID.into(),
            status: 3,
            unico_id: Some("inconclusive".into()),
            liveness: Some(1),
            identity_fraudsters: Some("suspicious".into()),
            score: Some(-40),
        }
    );
    let pascal = client
        .get_process(PROCESS_ID, ctx())
        .await
        .expect("PascalCase");
    assert_eq!(
        pascal,
        BiometricResult {
            process_id: PROCESS_ID.into(),
            status: 3,
            unico_id: Some("yes".into()),
            liveness: None,
            identity_fraudsters: Some("inconclusive".into()),
            score: None,
        }
    );
}

#[tokio::test]
async fn answer_without_id_or_status_is_a_decode_error() {
    let fake = Fake::start().await;
    fake.answer(Answer::Json(200, json!({"status": 3})));
    fake.answer(Answer::Json(200, json!({"id": PROCESS_ID})));
    fake.answer(Answer::Raw(
        200,
        vec![("content-type", "text/html")],
        "<html>ok</html>",
    ));
    let (client, _) = fake.client();
    for _ in 0..3 {
        let error = client
            .get_process(PROCESS_ID, ctx())
            .await
            .expect_err("decode");
        assert!(matches!(error, UnicoError::Decode(_)), "{error:?}");
    }
}

#[tokio::test]
async fn business_errors_are_typed_with_their_code() {
    let fake = Fake::start().await;
    fake.answer(Answer::Json(
        400,
        json!({"error": {"code": "20507", "description": "CPF inválido"}}),
    ));
    fake.answer(Answer::Json(
        400,
        json!({"error": {"code": 20506, "description": "imagem acima de 800KB"}}),
    ));
    fake.answer(Answer::Raw(404, vec![], "not found"));
    let (client, _) = fake.client();

    let error = client
        .create_process(&request(), ctx())
        .await
        .expect_err("20507");
    assert_eq!(
        error,
        UnicoError::Business {
            http_status: 400,
            code: "20507".into(),
            description: "CPF inválido".into()
        }
    );
    assert!(error.capture_problem().is_none() && !error.is_transient());

    let error = client
        .create_process(&request(), ctx())
        .await
        .expect_err("20506");
    assert!(
        matches!(&error, UnicoError::Business { code, .. } if code == "20506"),
        "{error:?}"
    );
    assert_eq!(error.capture_problem(), Some("20506"));

    let error = client
        .get_process(PROCESS_ID, ctx())
        .await
        .expect_err("404");
    assert!(
        matches!(&error, UnicoError::Business { http_status: 404, code, .. } if code.is_empty()),
        "{error:?}"
    );
}

#[tokio::test]
async fn rate_limit_carries_retry_after() {
    let fake = Fake::start().await;
    fake.answer(Answer::Raw(429, vec![("retry-after", "7")], ""));
    fake.answer(Answer::Raw(429, vec![], "{}"));
    let (client, recorder) = fake.client();
    let error = client
        .get_process(PROCESS_ID, ctx())
        .await
        .expect_err("429");
    assert_eq!(
        error,
        UnicoError::RateLimited {
            retry_after: Some(Duration::from_secs(7))
        }
    );
    assert!(error.is_transient());
    let error = client
        .get_process(PROCESS_ID, ctx())
        .await
        .expect_err("429");
    assert_eq!(error, UnicoError::RateLimited { retry_after: None });
    assert_eq!(
        recorder.calls().last().and_then(|c| c.http_status),
        Some(429)
    );
}

#[tokio::test]
async fn server_errors_are_transient() {
    let fake = Fake::start().await;
    fake.answer(Answer::Raw(503, vec![], "<html>bad gateway</html>"));
    fake.answer(Answer::Json(
        500,
        json!({"error": {"code": "99999", "description": "oops"}}),
    ));
    let (client, _) = fake.client();
    let error = client
        .get_process(PROCESS_ID, ctx())
        .await
        .expect_err("503");
    assert_eq!(error, UnicoError::Server { http_status: 503 });
    assert!(error.is_transient());
    let error = client
        .create_process(&request(), ctx())
        .await
        .expect_err("500");
    assert_eq!(error, UnicoError::Server { http_status: 500 });
}

#[tokio::test]
async fn slow_answer_times_out() {
    let fake = Fake::start().await;
    fake.answer(Answer::Sleep(Duration::from_secs(3)));
    let (client, recorder) = fake.client_with(fake.config(Duration::from_millis(400)));
    let started = StdInstant::now();
    let error = client
        .get_process(PROCESS_ID, ctx())
        .await
        .expect_err("timeout");
    assert_eq!(error, UnicoError::Timeout);
    assert!(started.elapsed() < Duration::from_secs(2));
    let last = recorder.calls().pop().expect("record");
    assert_eq!((last.operation, last.http_status), ("get_process", None));
    assert!(last.error.is_some());
}

#[tokio::test]
async fn unreachable_host_is_a_transport_error() {
    let _shared = LOG_CAPTURE.read().await;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    let recorder = Arc::new(Recorder::default());
    let config = UnicoConfig {
        base_url: format!("http://{addr}/api"),
        identity_url: format!("http://{addr}/identity"),
        api_key: SecretString::from(API_KEY),
        service_account: ACCOUNT.into(),
        private_key_pem: SecretString::from(PRIVATE_KEY),
        timeout: Duration::from_secs(2),
    };
    let client = UnicoClient::new(config, recorder.clone()).expect("client");
    let error = client
        .get_process(PROCESS_ID, ctx())
        .await
        .expect_err("refused");
    assert!(matches!(&error, UnicoError::Transport(_)), "{error:?}");
    assert!(error.is_transient());
    assert_eq!(recorder.operations(), [("token", None)]);
}

// ---------------------------------------------------------------------------------------------
// What is recorded and logged.

#[derive(Clone, Default)]
struct LogBuffer(Arc<StdMutex<Vec<u8>>>);

impl std::io::Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        lock(&self.0).extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn records_and_logs_hold_no_personal_data_or_secrets() {
    let _alone = LOG_CAPTURE.write().await;
    let logs = LogBuffer::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("veredito=trace"))
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    // What earlier tests cached without a subscriber must not hide this test's events.
    tracing::callsite::rebuild_interest_cache();

    let fake = Fake::start_alone().await;
    // An error description quoting the CPF must not carry it into the record either.
    fake.answer(Answer::Json(
        400,
        json!({"error": {"code": "20507", "description": format!("CPF {CPF} inválido")}}),
    ));
    let (client, recorder) = fake.client();
    let context = ctx();
    client
        .create_process(&request(), context)
        .await
        .expect_err("20507");
    fake.state.refuse_tokens.store(1, Ordering::SeqCst);
    client
        .create_process(&request(), context)
        .await
        .expect("create_process");
    client
        .get_process(PROCESS_ID, context)
        .await
        .expect("get_process");

    let calls = recorder.calls();
    assert_eq!(calls.len(), 6, "{:?}", recorder.operations());
    let creates: Vec<&CallRecord> = calls
        .iter()
        .filter(|c| c.operation == "create_process")
        .collect();
    for call in &creates {
        assert_eq!(
            call.request,
            Some(json!({
                "subject": {"code": "[redacted]", "name": "[redacted]", "gender": "F", "birthDate": "[redacted]",
                            "email": "[redacted]", "phone": "[redacted]"},
                "imageBase64": "[redacted]"
            }))
        );
    }
    // In clear, unico's code alone; its words only in the copy the store seals.
    assert_eq!(
        creates[0].response,
        Some(json!({"error": {"code": "20507"}}))
    );
    assert_eq!(
        creates[0].error.as_deref(),
        Some("unico.business.400.20507")
    );
    let said = creates[0].said.clone().expect("the answer, to be sealed").0;
    assert_eq!(
        said["body"],
        json!({"error": {"code": "20507", "description": "CPF [redacted] inválido"}})
    );
    assert!(
        calls
            .iter()
            .all(|c| c.provider == "unico" && c.context == context)
    );

    let recorded = format!("{calls:?}");
    let logged = String::from_utf8(lock(&logs.0).clone()).expect("utf8 logs");
    assert!(
        logged.contains("provider call") && logged.contains("create_process"),
        "{logged}"
    );
    assert!(
        logged.contains(PROCESS_ID),
        "the process id is logged: {logged}"
    );
    let secrets = fake.secrets();
    assert!(
        secrets.len() >= 9,
        "two tokens and two assertions were issued: {secrets:?}"
    );
    for secret in &secrets {
        assert!(!recorded.contains(secret.as_str()), "recorded {secret}");
        assert!(!logged.contains(secret.as_str()), "logged {secret}");
    }
}

#[tokio::test]
async fn an_absurd_token_lifetime_is_clamped_and_the_client_keeps_working() {
    let fake = Fake::start().await;
    fake.state
        .token_lifetime_secs
        .store(u64::MAX, Ordering::SeqCst);
    let (client, _) = fake.client();
    client
        .get_process(PROCESS_ID, ctx())
        .await
        .expect("a token with an absurd lifetime still serves");
    client
        .get_process(PROCESS_ID, ctx())
        .await
        .expect("and again");
    assert_eq!(fake.exchanges(), 1);
}
