//! Decision callbacks as the onboarding backend receives them: a receiver of the test's own
//! that checks every signature by the Standard Webhooks scheme, written here from the scheme's
//! description (not with veredito's code).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::*;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use base64::Engine;
use serde_json::{Value, json};

mod delivery;
mod personal_data;
mod signing;

/// The signing key's bytes, and the secret as configured.
const KEY: &[u8] = b"veredito-callback-test-key-0123456789";

fn secret() -> String {
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(KEY)
    )
}

#[derive(Debug, Clone)]
struct Delivery {
    id: String,
    kind: String,
    body: Value,
}

/// How the receiver answers the next deliveries; once the script is empty, 204.
#[derive(Clone, Copy, Debug)]
enum Reply {
    Status(u16),
    Hang,
}

#[derive(Clone, Default)]
struct Receiver {
    script: Arc<Mutex<VecDeque<Reply>>>,
    /// Every attempt that carried a valid signature, in order.
    attempts: Arc<Mutex<Vec<Delivery>>>,
    /// Attempts whose signature did not verify.
    forged: Arc<Mutex<usize>>,
}

impl Receiver {
    async fn start(script: Vec<Reply>) -> (Receiver, String) {
        let receiver = Receiver {
            script: Arc::new(Mutex::new(script.into())),
            ..Default::default()
        };
        let shared = receiver.clone();
        let router = axum::Router::new().route(
            "/events",
            post(move |headers: HeaderMap, body: Bytes| {
                let receiver = shared.clone();
                async move { receiver.take(headers, body).await }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/events", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await });
        (receiver, url)
    }

    async fn take(&self, headers: HeaderMap, body: Bytes) -> axum::response::Response {
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        let (id, timestamp, signatures) = (
            header("webhook-id"),
            header("webhook-timestamp"),
            header("webhook-signature"),
        );
        let fresh = timestamp
            .parse::<i64>()
            .is_ok_and(|t| (chrono::Utc::now().timestamp() - t).abs() < 300);
        if !fresh || !verify(&id, &timestamp, &body, &signatures) {
            *self.forged.lock().unwrap() += 1;
            return StatusCode::BAD_REQUEST.into_response();
        }
        let body: Value = serde_json::from_slice(&body).unwrap();
        self.attempts.lock().unwrap().push(Delivery {
            id,
            kind: body["type"].as_str().unwrap_or_default().to_owned(),
            body,
        });
        let reply = self.script.lock().unwrap().pop_front();
        match reply {
            Some(Reply::Status(code)) => StatusCode::from_u16(code).unwrap().into_response(),
            Some(Reply::Hang) => {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                StatusCode::NO_CONTENT.into_response()
            }
            None => StatusCode::NO_CONTENT.into_response(),
        }
    }

    fn attempts(&self) -> Vec<Delivery> {
        self.attempts.lock().unwrap().clone()
    }

    async fn until(&self, what: &str, check: impl Fn(&[Delivery]) -> bool) -> Vec<Delivery> {
        let started = tokio::time::Instant::now();
        loop {
            let seen = self.attempts();
            if check(&seen) {
                return seen;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "{what}: {:?}",
                seen.iter().map(|d| &d.kind).collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Standard Webhooks: HMAC-SHA256 over `{id}.{timestamp}.{body}`, base64, after `v1,`; the
/// header may carry several space-separated signatures.
fn verify(id: &str, timestamp: &str, body: &[u8], header: &str) -> bool {
    let mut signed = Vec::new();
    signed.extend_from_slice(id.as_bytes());
    signed.push(b'.');
    signed.extend_from_slice(timestamp.as_bytes());
    signed.push(b'.');
    signed.extend_from_slice(body);
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, KEY);
    header.split(' ').any(|candidate| {
        candidate
            .strip_prefix("v1,")
            .and_then(|b64| base64::engine::general_purpose::STANDARD.decode(b64).ok())
            .is_some_and(|tag| ring::hmac::verify(&key, &signed, &tag).is_ok())
    })
}

async fn app_for(url: &str, extra: &[(&str, &str)]) -> TestApp {
    let secret = secret();
    let mut all = vec![
        ("callbacks.url", url),
        ("callbacks.secret", secret.as_str()),
        ("callbacks.retry_initial", "100ms"),
        ("callbacks.retry_max", "400ms"),
        ("callbacks.timeout", "2s"),
    ];
    all.extend_from_slice(extra);
    TestApp::builder().config(&all).spawn().await
}
