//! The sandbox driven over real HTTP, with assertions signed here from the published sandbox
//! key. Expected bodies are spelled out by hand from unico's scenario pages rather than read
//! from `SCENARIOS`, so a wrong row in the table fails a test.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::HeaderMap;
use axum::routing::post;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::scenarios::{self, Behaviour};
use super::{SCENARIOS, SandboxConfig, unico};

const PRIVATE_PEM: &str = include_str!("../../config/sandbox/unico-service-account.pem");
const PUBLIC_PEM: &str = include_str!("../../config/sandbox/unico-service-account.pub.pem");
const ACCOUNT: &str = "veredito-sandbox@sandbox-tenant.iam.acesso.io";
const AUDIENCE: &str = "https://identityhomolog.acesso.io";
const API_KEY: &str = "sandbox-api-key";
const WEBHOOK_HEADER: &str = "X-Veredito-Webhook-Token";
const WEBHOOK_SECRET: &str = "sandbox-webhook-secret";

fn config(webhook_url: &str, processing: Duration, webhook: Duration) -> SandboxConfig {
    SandboxConfig {
        service_account: ACCOUNT.to_owned(),
        identity_audience: AUDIENCE.to_owned(),
        public_key_pem: PUBLIC_PEM.to_owned(),
        api_key: API_KEY.to_owned(),
        webhook_url: webhook_url.to_owned(),
        webhook_header: WEBHOOK_HEADER.to_owned(),
        webhook_secret: WEBHOOK_SECRET.to_owned(),
        processing_delay: processing,
        webhook_delay: webhook,
        faults: Default::default(),
        unlisted: &SCENARIOS[0],
    }
}

async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}")
}

struct Sandbox {
    base: String,
    http: reqwest::Client,
}

impl Sandbox {
    async fn start(config: SandboxConfig) -> Self {
        Self::at(serve(super::router(config)).await)
    }

    fn at(base: String) -> Self {
        Sandbox {
            base,
            http: reqwest::Client::new(),
        }
    }

    async fn exchange(&self, grant_type: &str, assertion: &str) -> (u16, Value) {
        let response = self
            .http
            .post(format!("{}/sandbox/unico-identity/oauth2/token", self.base))
            .form(&[("grant_type", grant_type), ("assertion", assertion)])
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap())
    }

    async fn token(&self) -> String {
        let (status, body) = self.exchange(JWT_BEARER, &sign(&claims())).await;
        assert_eq!(status, 200, "{body}");
        body["access_token"].as_str().unwrap().to_owned()
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        api_key: Option<&str>,
        body: Option<String>,
    ) -> (u16, Value) {
        let mut request = self
            .http
            .request(method, format!("{}/sandbox/unico{path}", self.base));
        if let Some(token) = token {
            request = request.header("Authorization", format!("Bearer {token}"));
        }
        if let Some(key) = api_key {
            request = request.header("APIKEY", key);
        }
        if let Some(body) = body {
            request = request
                .header("Content-Type", "application/json")
                .body(body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap())
    }

    async fn create(&self, token: &str, body: Value) -> (u16, Value) {
        self.call(
            reqwest::Method::POST,
            "/processes/v1",
            Some(token),
            Some(API_KEY),
            Some(body.to_string()),
        )
        .await
    }

    async fn get(&self, token: &str, id: &str) -> (u16, Value) {
        self.call(
            reqwest::Method::GET,
            &format!("/processes/v1/{id}"),
            Some(token),
            Some(API_KEY),
            None,
        )
        .await
    }
}

const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn claims() -> Value {
    let now = now();
    json!({"iss": ACCOUNT, "aud": AUDIENCE, "scope": "*", "iat": now, "exp": now + 3600})
}

fn sign(claims: &Value) -> String {
    let key = EncodingKey::from_rsa_pem(PRIVATE_PEM.as_bytes()).unwrap();
    jsonwebtoken::encode(&Header::new(Algorithm::RS256), claims, &key).unwrap()
}

fn with(mut claims: Value, key: &str, value: Value) -> Value {
    claims[key] = value;
    claims
}

fn process(code: &str) -> Value {
    json!({
        "subject": {
            "code": code,
            "name": "Maria da Silva",
            "gender": "F",
            "birthDate": "1990-04-01",
            "email": "maria@example.com",
            "phone": "5511999999999"
        },
        "imageBase64": "data:image/jpeg;base64,/9j/4AAQSkZJRgABAQAAAQABAAD"
    })
}

fn digits(cpf: &str) -> String {
    cpf.chars().filter(char::is_ascii_digit).collect()
}

fn error_code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_default()
}

fn auth_failure(body: &Value) -> &str {
    body["error_description"].as_str().unwrap_or_default()
}

fn fast() -> SandboxConfig {
    config("", Duration::from_millis(100), Duration::from_millis(50))
}

// ---------------------------------------------------------------------------------------------
// Token endpoint

#[tokio::test]
async fn valid_assertion_gets_a_bearer_token() {
    let sandbox = Sandbox::start(fast()).await;
    let (status, body) = sandbox.exchange(JWT_BEARER, &sign(&claims())).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    assert!(body["access_token"].as_str().unwrap().len() >= 32);
    assert_eq!(body.as_object().unwrap().len(), 3);
}

#[tokio::test]
async fn claims_beyond_the_documented_five_are_refused() {
    let sandbox = Sandbox::start(fast()).await;
    for (claim, value) in [
        ("sub", json!(ACCOUNT)),
        ("jti", json!("a5f1")),
        ("nbf", json!(now())),
        ("tenant", json!("x")),
    ] {
        let (status, body) = sandbox
            .exchange(JWT_BEARER, &sign(&with(claims(), claim, value)))
            .await;
        assert_eq!(status, 401, "{claim}: {body}");
        assert_eq!(body["error"], "server_error");
        assert_eq!(
            auth_failure(&body),
            "Falha na autenticação 1.2.22",
            "{claim}"
        );
    }
}

#[tokio::test]
async fn wrong_audience_issuer_or_scope_is_refused() {
    let sandbox = Sandbox::start(fast()).await;
    let cases = [
        (
            with(claims(), "aud", json!(format!("{AUDIENCE}/"))),
            "1.2.5",
        ),
        (
            with(claims(), "aud", json!("https://identity.acesso.io")),
            "1.2.5",
        ),
        (
            with(claims(), "iss", json!("other@tenant.iam.acesso.io")),
            "1.0.1",
        ),
        (with(claims(), "scope", json!("read")), "1.2.5"),
    ];
    for (claims, code) in cases {
        let (status, body) = sandbox.exchange(JWT_BEARER, &sign(&claims)).await;
        assert_eq!(status, 401, "{claims}: {body}");
        assert_eq!(auth_failure(&body), format!("Falha na autenticação {code}"));
    }
    let mut no_scope = claims();
    no_scope.as_object_mut().unwrap().remove("scope");
    let (_, body) = sandbox.exchange(JWT_BEARER, &sign(&no_scope)).await;
    assert_eq!(auth_failure(&body), "Falha na autenticação 1.1.1");
}

#[tokio::test]
async fn expired_overlong_or_future_assertions_are_refused() {
    let sandbox = Sandbox::start(fast()).await;
    let t = now();
    let cases = [
        (
            json!({"iss": ACCOUNT, "aud": AUDIENCE, "scope": "*", "iat": t - 4000, "exp": t - 400}),
            "1.2.4",
        ),
        (
            json!({"iss": ACCOUNT, "aud": AUDIENCE, "scope": "*", "iat": t, "exp": t + 3601}),
            "1.2.5",
        ),
        (
            json!({"iss": ACCOUNT, "aud": AUDIENCE, "scope": "*", "iat": t + 600, "exp": t + 1200}),
            "1.2.5",
        ),
        (
            json!({"iss": ACCOUNT, "aud": AUDIENCE, "scope": "*", "iat": "now", "exp": t + 60}),
            "1.2.21",
        ),
    ];
    for (claims, code) in cases {
        let (status, body) = sandbox.exchange(JWT_BEARER, &sign(&claims)).await;
        assert_eq!(status, 401, "{claims}: {body}");
        assert_eq!(auth_failure(&body), format!("Falha na autenticação {code}"));
    }
}

#[tokio::test]
async fn forged_signatures_are_refused() {
    let sandbox = Sandbox::start(fast()).await;
    // The signature of one set of claims glued onto another.
    let genuine = sign(&claims());
    let other = sign(&with(claims(), "exp", json!(now() + 60)));
    let mut parts: Vec<&str> = genuine.split('.').collect();
    parts[1] = other.split('.').nth(1).unwrap();
    let spliced = parts.join(".");
    // The classic algorithm confusion: HMAC keyed with the public key.
    let hs256 = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims(),
        &EncodingKey::from_secret(PUBLIC_PEM.as_bytes()),
    )
    .unwrap();
    for assertion in [spliced.as_str(), hs256.as_str()] {
        let (status, body) = sandbox.exchange(JWT_BEARER, assertion).await;
        assert_eq!(status, 401, "{body}");
        assert_eq!(auth_failure(&body), "Falha na autenticação 1.2.5");
    }
    let (status, body) = sandbox.exchange(JWT_BEARER, "not-a-jwt").await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(auth_failure(&body), "Falha na autenticação 1.2.20");
}

#[tokio::test]
async fn an_assertion_is_good_for_one_token_only() {
    let sandbox = Sandbox::start(fast()).await;
    let assertion = sign(&claims());
    let (first, _) = sandbox.exchange(JWT_BEARER, &assertion).await;
    assert_eq!(first, 200);
    let (status, body) = sandbox.exchange(JWT_BEARER, &assertion).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(auth_failure(&body), "Falha na autenticação 1.2.7");
    // RS256 signatures are deterministic, so a "new" assertion with the same claims in the
    // same second is the same assertion; one that differs in any claim is fresh.
    let fresh = with(claims(), "exp", json!(now() + 3599));
    let (status, _) = sandbox.exchange(JWT_BEARER, &sign(&fresh)).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn other_grant_types_are_bad_requests() {
    let sandbox = Sandbox::start(fast()).await;
    let (status, body) = sandbox
        .exchange("client_credentials", &sign(&claims()))
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(auth_failure(&body).starts_with("Falha na autenticação 1.2."));
    let (status, _) = sandbox.exchange(JWT_BEARER, "").await;
    assert_eq!(status, 400);
}

// ---------------------------------------------------------------------------------------------
// Processes API: credentials and body

#[tokio::test]
async fn processes_require_a_token_and_the_api_key() {
    let sandbox = Sandbox::start(fast()).await;
    let token = sandbox.token().await;
    let body = Some(process("90000000175").to_string());
    let post = reqwest::Method::POST;
    let path = "/processes/v1";
    let cases = [
        (None, Some(API_KEY), 400, "20001"),
        (Some(token.as_str()), None, 400, "20002"),
        (Some(token.as_str()), Some("wrong-key"), 403, "10201"),
        (Some("not-issued-here"), Some(API_KEY), 403, "10501"),
    ];
    for (token, key, status, code) in cases {
        let (got, answer) = sandbox
            .call(post.clone(), path, token, key, body.clone())
            .await;
        assert_eq!((got, error_code(&answer)), (status, code), "{answer}");
        assert!(answer["error"]["description"].is_string());
    }
    let (status, answer) = sandbox
        .call(
            reqwest::Method::GET,
            "/processes/v1/x",
            None,
            Some(API_KEY),
            None,
        )
        .await;
    assert_eq!((status, error_code(&answer)), (400, "20001"));
}

#[tokio::test]
async fn expired_tokens_are_told_apart_from_unknown_ones() {
    let mut state = unico::Unico::new(fast());
    state.token_ttl = Duration::from_millis(100);
    let sandbox = Sandbox::at(serve(unico::router(Arc::new(state))).await);
    let token = sandbox.token().await;
    let (status, _) = sandbox.create(&token, process("90000000175")).await;
    assert_eq!(status, 200);
    // Refused as expired (not as unknown) once its lifetime is over.
    let started = std::time::Instant::now();
    let (status, body) = loop {
        let (status, body) = sandbox.create(&token, process("90000000175")).await;
        if status != 200 || started.elapsed() > Duration::from_secs(5) {
            break (status, body);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert!(
        started.elapsed() >= Duration::from_millis(90),
        "not before its lifetime"
    );
    assert_eq!((status, error_code(&body)), (403, "10502"), "{body}");
}

#[tokio::test]
async fn create_process_validates_the_body_like_unico() {
    let sandbox = Sandbox::start(fast()).await;
    let token = sandbox.token().await;
    let (status, body) = sandbox
        .call(
            reqwest::Method::POST,
            "/processes/v1",
            Some(&token),
            Some(API_KEY),
            Some("{not json".to_owned()),
        )
        .await;
    assert_eq!((status, error_code(&body)), (400, "20003"));

    let good = process("90000000175");
    let without = |pointer: &str, key: &str| {
        let mut body = good.clone();
        body.pointer_mut(pointer)
            .unwrap()
            .as_object_mut()
            .unwrap()
            .remove(key);
        body
    };
    let set = |pointer: &str, value: Value| {
        let mut body = good.clone();
        *body.pointer_mut(pointer).unwrap() = value;
        body
    };
    let cases = [
        (without("", "subject"), "20004"),
        (without("/subject", "code"), "20005"),
        (without("/subject", "name"), "20006"),
        (set("/subject/code", json!("90000000176")), "20507"),
        (set("/subject/code", json!("900.000.001-75")), "20507"),
        (set("/subject/code", json!("11111111111")), "20507"),
        (set("/subject/gender", json!("X")), "20508"),
        (set("/subject/birthDate", json!("01/04/1990")), "20019"),
        (set("/subject/birthDate", json!("1990-02-30")), "20019"),
        (without("", "imageBase64"), "20009"),
        (set("/imageBase64", json!("")), "20009"),
    ];
    for (body, code) in cases {
        let (status, answer) = sandbox.create(&token, body.clone()).await;
        assert_eq!((status, error_code(&answer)), (400, code), "{body}");
    }
    // Optional fields may be left out altogether.
    let minimal = json!({"subject": {"code": "90000000175", "name": "Maria"}, "imageBase64": "x"});
    let (status, _) = sandbox.create(&token, minimal).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_refused_selfie_is_error_20505() {
    let sandbox = Sandbox::start(fast()).await;
    let token = sandbox.token().await;
    let (status, body) = sandbox.create(&token, process("90000002461")).await;
    assert_eq!((status, error_code(&body)), (400, "20505"), "{body}");
}

// ---------------------------------------------------------------------------------------------
// Scenarios

fn without_id(mut body: Value) -> Value {
    body.as_object_mut().unwrap().remove("id");
    body
}

#[tokio::test]
async fn every_sync_scenario_answers_at_creation() {
    let expected = [
        (
            "90000000175",
            json!({"status": 3, "unicoId": {"result": "yes"}}),
        ),
        ("90000000256", json!({"status": 3, "liveness": 1})),
        ("90000000337", json!({"status": 3, "liveness": 2})),
        (
            "90000000418",
            json!({"status": 3, "unicoId": {"result": "inconclusive"}, "liveness": 2}),
        ),
        (
            "90000000507",
            json!({"status": 3, "unicoId": {"result": "inconclusive"}, "liveness": 1}),
        ),
        (
            "90000000680",
            json!({"status": 3, "unicoId": {"result": "no"}, "liveness": 1}),
        ),
        ("90000002380", json!({"status": 5})),
        // Any other valid CPF is the happy path.
        (
            "52998224725",
            json!({"status": 3, "unicoId": {"result": "yes"}}),
        ),
    ];
    let sync_rows = SCENARIOS
        .iter()
        .filter(|s| matches!(s.behaviour, Behaviour::Sync(_)))
        .count();
    assert_eq!(sync_rows, expected.len() - 1);

    // A long delay proves sync answers do not depend on it.
    let sandbox = Sandbox::start(config("", Duration::from_secs(3600), Duration::ZERO)).await;
    let token = sandbox.token().await;
    for (code, want) in expected {
        let (status, created) = sandbox.create(&token, process(code)).await;
        assert_eq!(status, 200, "{code}: {created}");
        let id = created["id"].as_str().unwrap().to_owned();
        assert!(uuid::Uuid::parse_str(&id).is_ok());
        assert_eq!(without_id(created), want, "{code} at creation");
        let (status, fetched) = sandbox.get(&token, &id).await;
        assert_eq!(status, 200);
        assert_eq!(fetched["id"], id.as_str());
        assert_eq!(without_id(fetched), want, "{code} read back");
    }
}

#[tokio::test]
async fn every_async_scenario_answers_status_1_then_its_result() {
    let inconclusive_live =
        json!({"status": 1, "unicoId": {"result": "inconclusive"}, "liveness": 1});
    let yes = json!({"status": 1, "unicoId": {"result": "yes"}});
    let no_live = json!({"status": 1, "unicoId": {"result": "no"}, "liveness": 1});
    let bare = json!({"status": 1});
    let expected = [
        (
            "90000000760",
            &inconclusive_live,
            json!({"status": 3, "unicoId": {"result": "inconclusive"}, "liveness": 1, "score": 50}),
        ),
        (
            "90000000841",
            &yes,
            json!({"status": 3, "unicoId": {"result": "yes"}, "identityFraudsters": {"result": "inconclusive"}}),
        ),
        (
            "90000000922",
            &yes,
            json!({"status": 3, "unicoId": {"result": "yes"}, "identityFraudsters": {"result": "yes"}}),
        ),
        (
            "90000001066",
            &inconclusive_live,
            json!({"status": 3, "unicoId": {"result": "inconclusive"}, "liveness": 1, "identityFraudsters": {"result": "inconclusive"}}),
        ),
        (
            "90000001147",
            &inconclusive_live,
            json!({"status": 3, "unicoId": {"result": "yes"}, "liveness": 1, "identityFraudsters": {"result": "yes"}}),
        ),
        (
            "90000001228",
            &no_live,
            json!({"status": 3, "unicoId": {"result": "no"}, "liveness": 1, "identityFraudsters": {"result": "inconclusive"}}),
        ),
        (
            "90000001309",
            &no_live,
            json!({"status": 3, "unicoId": {"result": "no"}, "liveness": 1, "identityFraudsters": {"result": "yes"}}),
        ),
        (
            "90000001490",
            &inconclusive_live,
            json!({"status": 3, "unicoId": {"result": "inconclusive"}, "liveness": 1, "identityFraudsters": {"result": "yes"}}),
        ),
        (
            "90000001570",
            &inconclusive_live,
            json!({"status": 3, "unicoId": {"result": "inconclusive"}, "liveness": 1, "identityFraudsters": {"result": "inconclusive"}, "score": 50}),
        ),
        (
            "90000001651",
            &yes,
            json!({"status": 3, "unicoId": {"result": "yes"}, "identityFraudsters": {"result": "SUSPICIOUS"}}),
        ),
        (
            "90000001732",
            &inconclusive_live,
            json!({"status": 3, "unicoId": {"result": "inconclusive"}, "liveness": 1, "score": 0}),
        ),
        (
            "90000001813",
            &inconclusive_live,
            json!({"status": 3, "unicoId": {"result": "inconclusive"}, "liveness": 1, "score": -50}),
        ),
        (
            "90000001902",
            &inconclusive_live,
            json!({"status": 3, "unicoId": {"result": "inconclusive"}, "liveness": 1, "score": 20}),
        ),
        ("90000002038", &bare, json!({"status": 5})),
        ("90000002119", &bare, json!({"status": 4})),
        ("90000002208", &bare, json!({"status": 2})),
        (
            "90000002542",
            &yes,
            json!({"status": 3, "unicoId": {"result": "yes"}, "identityFraudsters": {"result": "inconclusive"}}),
        ),
    ];
    assert_eq!(
        SCENARIOS.iter().filter(|s| s.is_async()).count(),
        expected.len()
    );

    let delay = Duration::from_millis(300);
    let sandbox = Sandbox::start(config("", delay, Duration::ZERO)).await;
    let token = sandbox.token().await;
    let mut ids = Vec::new();
    for (code, at_create, _) in &expected {
        let (status, created) = sandbox.create(&token, process(code)).await;
        assert_eq!(status, 200, "{code}: {created}");
        let id = created["id"].as_str().unwrap().to_owned();
        assert_eq!(&without_id(created), *at_create, "{code} at creation");
        let (_, early) = sandbox.get(&token, &id).await;
        assert_eq!(&without_id(early), *at_create, "{code} before the delay");
        ids.push(id);
    }
    for ((code, _, finally), id) in expected.iter().zip(&ids) {
        // Read until the answer changes (bounded), then it must be the final one.
        let started = std::time::Instant::now();
        let body = loop {
            let (status, body) = sandbox.get(&token, id).await;
            assert_eq!(status, 200);
            let body = without_id(body);
            if &body == finally || started.elapsed() > delay * 20 {
                break body;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        assert_eq!(&body, finally, "{code} after the delay");
        assert!(started.elapsed() <= delay * 20);
    }
}

/// `sandbox.unlisted_cpf_scenario`: a valid CPF outside the table plays the scenario named
/// (8 here: approved later), while the table's own CPFs keep theirs.
#[tokio::test]
async fn an_unlisted_cpf_plays_the_configured_scenario() {
    let delay = Duration::from_millis(200);
    let mut configured = config("", delay, Duration::ZERO);
    configured.unlisted = scenarios::by_number(8).unwrap();
    let sandbox = Sandbox::start(configured).await;
    let token = sandbox.token().await;
    let (status, created) = sandbox.create(&token, process("52998224725")).await;
    assert_eq!(status, 200, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(
        without_id(created),
        json!({"status": 1, "unicoId": {"result": "yes"}}),
        "at creation, as scenario 8"
    );
    tokio::time::sleep(delay + Duration::from_millis(50)).await;
    let (_, finished) = sandbox.get(&token, &id).await;
    assert_eq!(
        without_id(finished),
        json!({"status": 3, "unicoId": {"result": "yes"}, "identityFraudsters": {"result": "inconclusive"}})
    );
    // A CPF of the table is unchanged: scenario 2 answers at once.
    let (_, listed) = sandbox
        .create(&token, process(&digits(SCENARIOS[1].cpf)))
        .await;
    assert_ne!(listed["status"], json!(1), "{listed}");
}

#[tokio::test]
async fn process_ids_survive_a_restart_and_are_unique() {
    let cfg = config("", Duration::from_millis(100), Duration::ZERO);
    let before = Sandbox::start(cfg.clone()).await;
    let token = before.token().await;
    let (_, first) = before.create(&token, process("90000000760")).await;
    let (_, second) = before.create(&token, process("90000000760")).await;
    assert_ne!(first["id"], second["id"]);

    // A second instance from the same configuration: no shared memory at all.
    let after = Sandbox::start(cfg).await;
    let token = after.token().await;
    let started = std::time::Instant::now();
    let (status, body) = loop {
        let (status, body) = after.get(&token, first["id"].as_str().unwrap()).await;
        if body["status"] == 3 || started.elapsed() > Duration::from_secs(5) {
            break (status, body);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], 3);
    assert_eq!(body["score"], 50);
}

#[tokio::test]
async fn unknown_processes_are_404() {
    let sandbox = Sandbox::start(fast()).await;
    let token = sandbox.token().await;
    let (_, created) = sandbox.create(&token, process("90000000175")).await;
    let id = created["id"].as_str().unwrap();
    // Same id pointed at another scenario: the tag no longer matches.
    let mut bytes = uuid::Uuid::parse_str(id).unwrap().into_bytes();
    bytes[7] = 9;
    let tampered = uuid::Uuid::from_bytes(bytes).to_string();
    for unknown in [
        "80371b2a-3ac7-432e-866d-57fe37896ac6",
        tampered.as_str(),
        "not-a-uuid",
    ] {
        let (status, body) = sandbox.get(&token, unknown).await;
        assert_eq!(status, 404, "{unknown}: {body}");
        assert!(body["error"]["code"].is_string());
    }
}

// ---------------------------------------------------------------------------------------------
// Webhook

async fn receiver() -> (String, mpsc::UnboundedReceiver<(HeaderMap, Value)>) {
    let (sender, received) = mpsc::unbounded_channel();
    let app = Router::new().route(
        "/webhooks/unico",
        post(
            move |headers: HeaderMap, axum::Json(body): axum::Json<Value>| {
                let sender = sender.clone();
                async move {
                    let _ = sender.send((headers, body));
                }
            },
        ),
    );
    (format!("{}/webhooks/unico", serve(app).await), received)
}

#[tokio::test]
async fn finished_processes_are_announced_by_webhook() {
    let (url, mut received) = receiver().await;
    let delay = Duration::from_millis(100);
    let sandbox = Sandbox::start(config(&url, delay, Duration::from_millis(50))).await;
    let token = sandbox.token().await;
    let (_, created) = sandbox.create(&token, process("90000000841")).await;
    let id = created["id"].as_str().unwrap();

    let (headers, body) = tokio::time::timeout(Duration::from_secs(5), received.recv())
        .await
        .expect("no webhook within 5 s")
        .unwrap();
    assert_eq!(
        headers.get(WEBHOOK_HEADER).and_then(|v| v.to_str().ok()),
        Some(WEBHOOK_SECRET)
    );
    assert_eq!(
        body,
        json!({"processId": id, "state": "PROCESS_STATE_FINISHED", "flow": "id"})
    );
    // By the time the webhook arrives, GetProcess has the result.
    let (_, fetched) = sandbox.get(&token, id).await;
    assert_eq!(fetched["status"], 3);
    // Exactly one delivery.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(received.try_recv().is_err());
}

#[tokio::test]
async fn silent_scenarios_send_no_webhook() {
    let (url, mut received) = receiver().await;
    let delay = Duration::from_millis(100);
    let sandbox = Sandbox::start(config(&url, delay, Duration::from_millis(50))).await;
    let token = sandbox.token().await;
    let mut ids = Vec::new();
    // 25 finishes without telling anyone, 22 never finishes, 01 is synchronous.
    for code in ["90000002542", "90000002208", "90000000175"] {
        let (status, created) = sandbox.create(&token, process(code)).await;
        assert_eq!(status, 200);
        ids.push(created["id"].as_str().unwrap().to_owned());
    }
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(received.try_recv().is_err(), "a webhook was sent");
    let (_, finished) = sandbox.get(&token, &ids[0]).await;
    assert_eq!(finished["status"], 3, "polling still sees 25 finish");
    let (_, stuck) = sandbox.get(&token, &ids[1]).await;
    assert_eq!(stuck["status"], 2);
}

// ---------------------------------------------------------------------------------------------
// The table itself

#[test]
fn scenario_cpfs_are_valid_distinct_and_numbered_in_order() {
    for (index, scenario) in SCENARIOS.iter().enumerate() {
        assert_eq!(usize::from(scenario.number), index + 1);
        assert!(
            scenarios::valid_cpf(&digits(scenario.cpf)),
            "{}",
            scenario.cpf
        );
        assert_eq!(scenarios::for_code(&digits(scenario.cpf)), Some(scenario));
        assert!(!scenario.name.is_empty());
    }
    assert_eq!(SCENARIOS.len(), 25);
    let webhooks: Vec<u8> = SCENARIOS
        .iter()
        .filter(|s| s.is_async() && !s.sends_webhook())
        .map(|s| s.number)
        .collect();
    assert_eq!(webhooks, [22, 25]);
}

#[test]
fn cpf_check_digits() {
    assert!(scenarios::valid_cpf("52998224725"));
    assert!(scenarios::valid_cpf("11144477735"));
    for bad in [
        "52998224724",
        "11111111111",
        "5299822472",
        "529982247250",
        "529.982.247-25",
        "5299822472a",
    ] {
        assert!(!scenarios::valid_cpf(bad), "{bad}");
    }
}
