//! Starts veredito on port 0 against a fresh PostgreSQL database, and talks to it over HTTP:
//! `app` starts and stops the service (`TestApp`), `requests` is what tests ask of it, `database`
//! makes and drops each test's database and looks into it, `process` runs the binary as its own
//! process, `console_session` signs in to the console over HTTP; `browser` and
//! `identity_provider` are the real Chromium and OpenID provider some tests drive, `isolation`
//! runs a test alone in a process of its own.

pub mod browser;
pub mod identity_provider;
pub mod isolation;

mod app;
mod console_session;
mod database;
mod process;
mod requests;

pub use app::*;
pub use console_session::*;
pub use database::*;
pub use process::*;

use std::time::Duration;

use serde_json::{Value, json};
use uuid::Uuid;

pub const ONBOARDING_KEY: &str = "vrd_sandbox_onboarding";
pub const AUDITOR_KEY: &str = "vrd_sandbox_auditor";
pub const WEBHOOK_HEADER: &str = "X-Veredito-Webhook-Token";
pub const WEBHOOK_SECRET: &str = "sandbox-webhook-secret";

/// A complete, valid onboarding request for `cpf`.
pub fn onboarding_body(cpf: &str) -> Value {
    json!({
        "reference": format!("ref-{}", Uuid::new_v4().simple()),
        "person": {"cpf": cpf, "name": "Maria Teste da Silva", "birth_date": "1990-01-31", "gender": "F",
                   "email": "maria.teste@example.com", "phone": "5511974749090"},
        "selfie": "c2VsZmllLWJ5dGVzLW5vdC1hLXJlYWwtaW1hZ2U=",
        "account": {"account_id": "acc-1", "person_id": "per-1"},
        "device": {"device_id": "dev-1", "session_id": "scan-session-1", "face_recognition_key": null,
                   "risk_signals": {"os_version": "14", "user_time_zone_offset": "-03", "language": "pt",
                                    "screen_width": 1080, "screen_height": 2400, "is_emulated": false}}
    })
}

pub fn key() -> String {
    Uuid::new_v4().to_string()
}

pub fn reason_codes(view: &Value) -> Vec<String> {
    view["reasons"]
        .as_array()
        .expect("reasons")
        .iter()
        .map(|r| r["code"].as_str().unwrap().to_owned())
        .collect()
}

/// A valid CPF made from `n` (its nine first digits), so every test person is distinct.
pub fn cpf_from(n: u32) -> String {
    let base = format!("{:09}", 123_000_000 + n);
    let digits: Vec<u32> = base.chars().map(|c| c.to_digit(10).unwrap()).collect();
    let check = |ds: &[u32]| {
        let start = ds.len() as u32 + 1;
        let sum: u32 = ds
            .iter()
            .enumerate()
            .map(|(i, d)| d * (start - i as u32))
            .sum();
        let rest = (sum * 10) % 11;
        if rest == 10 { 0 } else { rest }
    };
    let mut all = digits.clone();
    all.push(check(&all));
    all.push(check(&all));
    let d: String = all
        .iter()
        .map(|d| char::from_digit(*d, 10).unwrap())
        .collect();
    format!("{}.{}.{}-{}", &d[0..3], &d[3..6], &d[6..9], &d[9..11])
}

/// Waits until `holds` answers true, looking every 20 ms, and fails the test if it does not
/// within `limit`: what a test waits for, instead of sleeping for as long as it usually takes.
pub async fn eventually<F, Fut>(limit: Duration, what: &str, mut holds: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = tokio::time::Instant::now();
    while !holds().await {
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
