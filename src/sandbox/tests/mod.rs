//! The sandbox driven over real HTTP, with assertions signed here from the published sandbox
//! key. Expected bodies are spelled out by hand from unico's scenario pages rather than read
//! from `SCENARIOS`, so a wrong row in the table fails a test.
//!
//! This file holds the harness; each module tests one part of the simulated unico: `token` the
//! identity token endpoint, `processes` the processes API's credentials and body, `answers`
//! what each scenario answers, `webhook` the announcement, `table` the scenario table itself.

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

mod answers;
mod processes;
mod table;
mod token;
mod webhook;

const PRIVATE_PEM: &str = include_str!("../../../config/sandbox/unico-service-account.pem");
const PUBLIC_PEM: &str = include_str!("../../../config/sandbox/unico-service-account.pub.pem");
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
