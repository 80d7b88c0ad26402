//! What a provider writes in its own words (an error title naming the person, a description
//! quoting the CPF) is personal data veredito did not choose to keep: it reaches no answer to a
//! key without `pii:read`, no log line and no column in clear. The test installs a global
//! subscriber that keeps every log line of the service at DEBUG, in a process of its own.

use crate::device_support;

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use crate::common::*;
use serde_json::{Value, json};

const AUDITOR_PII: &str = "vrd_sandbox_auditor_pii";
const REVIEWER: &str = "vrd_sandbox_reviewer";

/// Every log line the service wrote in this process, as JSON lines.
fn logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .with_env_filter(tracing_subscriber::EnvFilter::new("debug"))
            .with_writer(move || Writer(writer.clone()))
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");
        buffer
    })
    .clone()
}

struct Writer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Writer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn person(cpf: &str, name: &str) -> Value {
    let mut body = onboarding_body(cpf);
    body["person"]["name"] = json!(name);
    body
}

/// The person's name and CPF, punctuated and as digits: none of them may show.
fn secrets_of(cpf: &str, name: &str) -> Vec<String> {
    vec![
        name.to_owned(),
        cpf.to_owned(),
        cpf.chars().filter(char::is_ascii_digit).collect(),
    ]
}

fn assert_clean(place: &str, text: &str, secrets: &[String]) {
    for secret in secrets {
        assert!(
            !text.contains(secret.as_str()),
            "{place} holds {secret:?}: {}",
            excerpt(text, secret)
        );
    }
}

fn excerpt(text: &str, secret: &str) -> String {
    let at = text.find(secret).unwrap_or(0);
    let start = text[..at]
        .char_indices()
        .rev()
        .nth(200)
        .map_or(0, |(i, _)| i);
    text[start..].chars().take(500).collect()
}

#[tokio::test]
async fn what_providers_write_about_a_person_reaches_no_answer_log_or_dump() {
    // Installs the process's global log subscriber: alone in a process.
    if isolation::own_process(
        module_path!(),
        "what_providers_write_about_a_person_reaches_no_answer_log_or_dump",
        isolation::Server::Shared,
    )
    .await
    {
        return;
    }
    let logs = logs();
    // QI Tech refuses the person with a 422 quoting the name and the CPF it was sent; unico's
    // sandbox refuses 900.000.024-61's selfie with a description naming the person.
    let fake = device_support::Fake::start(
        device_support::QitechScript {
            person_echo_refusal: true,
            ..Default::default()
        },
        0,
    )
    .await;
    let app = TestApp::builder()
        .device_fakes(&fake.qitech_url(), &fake.zro_url())
        .spawn()
        .await;
    let (qitech_cpf, qitech_name) = ("400.025.841-90", "Maria Costa");
    let (unico_cpf, unico_name) = ("900.000.024-61", "Joana Prado Refusada");
    let mut secrets = secrets_of(qitech_cpf, qitech_name);
    secrets.extend(secrets_of(unico_cpf, unico_name));

    let refused_by_qitech = app.start_onboarding(&person(qitech_cpf, qitech_name)).await;
    let refused_by_unico = app.start_onboarding(&person(unico_cpf, unico_name)).await;
    let qitech_view = app
        .until_decided(&refused_by_qitech, Duration::from_secs(20))
        .await;
    let unico_view = app
        .until_decided(&refused_by_unico, Duration::from_secs(20))
        .await;
    assert_eq!(qitech_view["outcome"], "review", "{qitech_view}");
    assert_eq!(unico_view["outcome"], "retry", "{unico_view}");
    assert!(
        fake.seen()
            .await
            .iter()
            .any(|s| s.path.ends_with("/person") && s.body["person_data"]["name"] == qitech_name),
        "QI Tech was sent the person it echoed"
    );

    // Every answer to keys without pii:read: the onboarding, the search, the explanations,
    // the exports, the review case and the console's pages.
    let mut answers = Vec::new();
    for id in [&refused_by_qitech, &refused_by_unico] {
        answers.push(app.onboarding(id).await.to_string());
    }
    let (status, page) = app.get("/v1/decisions", AUDITOR_KEY).await;
    assert_eq!(status, 200, "{page}");
    answers.push(page.to_string());
    let decisions: Vec<String> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(decisions.len(), 2, "{page}");
    for id in &decisions {
        for key in [AUDITOR_KEY, REVIEWER] {
            let (status, explained) = app.get(&format!("/v1/decisions/{id}"), key).await;
            assert_eq!(status, 200, "{explained}");
            assert!(
                explained["provider_calls"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .all(|c| c.get("provider_said").is_none()),
                "{explained}"
            );
            answers.push(explained.to_string());
        }
    }
    for format in ["csv", "ndjson"] {
        let export = app
            .get_response(
                &format!("/v1/decisions/export?format={format}"),
                AUDITOR_KEY,
            )
            .await;
        assert_eq!(export.status(), 200);
        answers.push(export.text().await.unwrap());
    }
    let (status, cases) = app.get("/v1/reviews", REVIEWER).await;
    assert_eq!(status, 200, "{cases}");
    let case = cases["items"][0]["id"].as_str().expect("a case").to_owned();
    answers.push(cases.to_string());
    for key in [REVIEWER, AUDITOR_KEY] {
        let (status, shown) = app.get(&format!("/v1/reviews/{case}"), key).await;
        assert_eq!(status, 200, "{shown}");
        answers.push(shown.to_string());
    }
    for key in [AUDITOR_KEY, REVIEWER] {
        let session = app.console_session(key).await;
        for path in [
            "/console/decisions".to_owned(),
            "/console/reviews".to_owned(),
            format!("/console/reviews/{case}"),
        ] {
            let (status, html) = app.console_get(&session, &path).await;
            assert_eq!(status, 200, "{path}");
            answers.push(html);
        }
    }
    for answer in &answers {
        assert_clean("an answer to a key without pii:read", answer, &secrets);
    }

    // A key with pii:read reads what the providers said, opened from its sealed copy, and the
    // read is recorded.
    let mut said = String::new();
    for id in &decisions {
        let (status, explained) = app.get(&format!("/v1/decisions/{id}"), AUDITOR_PII).await;
        assert_eq!(status, 200, "{explained}");
        for call in explained["provider_calls"].as_array().unwrap() {
            said.push_str(&call["provider_said"].to_string());
        }
    }
    assert!(said.contains(qitech_name), "{said}");
    assert!(said.contains(unico_name), "{said}");
    let recorded: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_searches WHERE caller = 'sandbox-auditor-pii' AND endpoint = 'GET /v1/decisions/{id}'",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert!(recorded >= 2, "{recorded}");

    // The service's log lines, all of them at DEBUG.
    let logged = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
    assert!(logged.contains("provider call"), "the capture works");
    assert_clean("the log", &logged, &secrets);

    // Every column of every table, as pg_dump writes them.
    let url = app.db_url.clone();
    let dump = tokio::task::spawn_blocking(move || {
        std::process::Command::new("pg_dump")
            .arg("--no-owner")
            .arg(url)
            .output()
    })
    .await
    .unwrap()
    .expect("pg_dump runs");
    assert!(
        dump.status.success(),
        "{}",
        String::from_utf8_lossy(&dump.stderr)
    );
    let dump = String::from_utf8_lossy(&dump.stdout).into_owned();
    assert!(dump.contains("COPY public.provider_calls"), "a full dump");
    assert_clean("pg_dump", &dump, &secrets);
    app.stop().await;
}
