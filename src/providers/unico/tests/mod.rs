//! The real client over real HTTP against a fake unico on wiremock's server (`fake.rs`). The fake
//! is strict where unico is documented to be strict: it verifies the assertion's signature and
//! exact claim set, refuses a reused assertion, an unknown or expired token and a wrong API key.

mod fake;
mod processes;
mod records;
mod token;

use std::sync::Mutex as StdMutex;

use serde_json::json;

use super::*;
use crate::providers::CallRecord;
use crate::providers::CallSink;

const PRIVATE_KEY: &str = include_str!("../testdata/private_key.pem");
const PRIVATE_KEY_PKCS1: &str = include_str!("../testdata/private_key_pkcs1.pem");
const PUBLIC_KEY: &str = include_str!("../testdata/public_key.pem");
const ACCOUNT: &str = "veredito@tenant-42.iam.acesso.io";
const API_KEY: &str = "apikey-3c9d0e1f";
const CPF: &str = "11144477735";
const NAME: &str = "Maria Aparecida Souza";
const SELFIE: &str = "eyJhbGciOiJSU0EtT0FFUC0yNTYifQ.SELFIE-CIPHERTEXT-q1w2e3r4t5";
const BIRTH_DATE: &str = "1990-04-17";
const EMAIL: &str = "maria@example.com";
const PHONE: &str = "5511987654321";
const PROCESS_ID: &str = "80371b2a-3ac7-432e-866d-57fe37896ac6";

/// tracing caches per callsite whether anyone listens; tests logging with no subscriber on other
/// threads race with the test that captures logs and can make its events vanish. Every test that
/// logs holds this shared; the capturing test holds it alone.
static LOG_CAPTURE: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

fn lock<T>(m: &StdMutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().expect("test state lock")
}

/// The call records the client hands over, kept.
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

/// A business error as unico words it.
fn business(code: &str, description: &str) -> Value {
    json!({"error": {"code": code, "description": description}})
}
