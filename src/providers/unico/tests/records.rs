//! What the client records and logs: never personal data, a token or an assertion.

use std::sync::Mutex as StdMutex;
use std::sync::atomic::Ordering;

use serde_json::json;

use super::fake::{Answer, Fake};
use super::*;

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
    ))
    .await;
    let (client, recorder) = fake.client();
    let context = ctx();
    client
        .create_process(&request(), context)
        .await
        .expect_err("20507");
    fake.identity.refuse_tokens.store(1, Ordering::SeqCst);
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
    fake.identity
        .lifetime_secs
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
