//! unico's identity token endpoint and the by-Client processes API, simulated.
//!
//! This file holds the simulated provider's state and routes; `token` the identity token
//! endpoint, `processes` CreateProcess, GetProcess and the webhook, `process_id` the ids that
//! carry their own state.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::{get, post};
use jsonwebtoken::DecodingKey;
use ring::hmac;
use ring::rand::SystemRandom;

use super::SandboxConfig;

mod process_id;
mod processes;
mod token;

use processes::{create_process, get_process};
use token::token;

const TOKEN_TTL: Duration = Duration::from_secs(3600);
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(5);

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
