//! The `veredito` binary as an operator runs it: `serve` creates its database, applies
//! migrations and serves; its logs never carry personal data or secrets; `migrate` and
//! configuration errors behave as documented.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::*;
use serde_json::{Value, json};
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

#[tokio::test]
async fn serve_creates_its_database_and_logs_no_personal_data() {
    let database = format!("veredito_test_{}", Uuid::new_v4().simple());
    let _dropped_at_the_end = TestDatabase::adopt(&database);
    let port = free_port();
    let child = veredito_command()
        .arg("serve")
        .env("VEREDITO__SERVER__ADDR", format!("127.0.0.1:{port}"))
        .env(
            "VEREDITO__DATABASE__URL",
            format!("{}/{database}", server_url()),
        )
        .env("VEREDITO__TELEMETRY__LOG_FORMAT", "json")
        .env("VEREDITO__SANDBOX__PROCESSING_DELAY", "300ms")
        .env("VEREDITO__UNICO__POLL_INITIAL", "200ms")
        .env("RUST_LOG", "debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary starts");
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let mut ready = false;
    for _ in 0..100 {
        if let Ok(response) = http.get(format!("{base}/health/ready")).send().await {
            ready = response.status() == 200;
            if ready {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ready, "serve did not become ready");

    let cpfs = [
        "900.000.001-75",
        "900.000.007-60",
        "900.000.009-22",
        "900.000.024-61",
        "111.444.777-35",
    ];
    for cpf in cpfs {
        let response = http
            .post(format!("{base}/v1/onboardings"))
            .bearer_auth(ONBOARDING_KEY)
            .header("Idempotency-Key", key())
            .header("Prefer", "wait=10")
            .json(&onboarding_body(cpf))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{cpf}");
    }
    let mut invalid = onboarding_body("111.444.777-35");
    invalid["person"]["cpf"] = json!("111.444.777-36");
    let response = http
        .post(format!("{base}/v1/onboardings"))
        .bearer_auth(ONBOARDING_KEY)
        .header("Idempotency-Key", key())
        .json(&invalid)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 422);
    let problem: Value = response.json().await.unwrap();
    assert!(
        !problem.to_string().contains("111.444.777-36"),
        "the problem does not echo the CPF"
    );
    http.post(format!("{base}/v1/webhooks/unico"))
        .header(WEBHOOK_HEADER, "forged")
        .json(&json!({"processId": "x"}))
        .send()
        .await
        .unwrap();

    let output = terminate(child).await;
    assert!(
        output.status.success(),
        "serve exits cleanly on SIGTERM: {:?}",
        output.status
    );
    let logs = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(logs.contains("veredito listening"), "logs were captured");
    assert!(
        logs.contains("\"level\":\"DEBUG\""),
        "debug lines were emitted, so the scan covers them"
    );
    assert!(logs.contains("decided"), "decisions are logged");
    assert!(
        logs.contains("serve is connected as a superuser"),
        "the tests connect as postgres, and serve says it should not"
    );
    let mut forbidden: Vec<String> = Vec::new();
    for cpf in cpfs.iter().chain(["111.444.777-36"].iter()) {
        forbidden.push((*cpf).to_owned());
        forbidden.push(cpf.replace(['.', '-'], ""));
    }
    forbidden.extend(
        [
            "Maria Teste",
            "maria.teste@example.com",
            "5511974749090",
            // The phone as QI Tech receives it, split into area code and number.
            "974749090",
            "c2VsZmllLWJ5dGVz",
            "vrd_sandbox_onboarding",
            "sandbox-webhook-secret",
            "sandbox-api-key",
            "BEGIN PRIVATE KEY",
        ]
        .map(str::to_owned),
    );
    for secret in forbidden {
        assert!(!logs.contains(&secret), "`{secret}` appears in the logs");
    }
    // The token endpoint's answer must not be logged either.
    assert!(
        !logs.contains("access_token\":\""),
        "an access token appears in the logs"
    );

    let mut admin = PgConnection::connect(&format!("{}/postgres", server_url()))
        .await
        .unwrap();
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(&database)
            .fetch_one(&mut admin)
            .await
            .unwrap();
    assert!(exists, "serve created its database");
}

#[tokio::test]
async fn migrate_applies_every_migration_and_is_repeatable() {
    let database = fresh_database().await;
    let url = database.url.clone();
    for _ in 0..2 {
        let output = veredito_command()
            .arg("migrate")
            .env("VEREDITO__DATABASE__URL", &url)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let mut conn = PgConnection::connect(&url).await.unwrap();
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    for table in [
        "decisions",
        "onboarding_events",
        "onboardings",
        "provider_calls",
        "unico_processes",
        "unico_webhooks",
    ] {
        assert!(
            tables.iter().any(|t| t == table),
            "{table} missing: {tables:?}"
        );
    }
}

#[test]
fn configuration_errors_name_the_key() {
    let cases = [
        (
            "VEREDITO__POLICY__SCORE_REJECT_MAX",
            "80",
            "policy.score_reject_max",
        ),
        ("VEREDITO__POLICY__DEFAULT_WAIT", "soon", "default_wait"),
        ("VEREDITO__SERVER__ADDR", "localhost", "server.addr"),
        (
            "VEREDITO__UNICO__WEBHOOK_SECRET",
            "short",
            "unico.webhook_secret",
        ),
    ];
    for (variable, value, key) in cases {
        let output = veredito_command()
            .args(["migrate"])
            .env(variable, value)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{variable}={value}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(key), "{variable}={value}: {stderr}");
    }
    // Three bad values at once: one start names all three.
    let mut command = veredito_command();
    command.args(["migrate"]);
    let checked = cases
        .iter()
        .filter(|(variable, ..)| *variable != "VEREDITO__POLICY__DEFAULT_WAIT");
    for (variable, value, _) in checked.clone() {
        command.env(variable, value);
    }
    let output = command.output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("3 configuration mistakes"), "{stderr}");
    for (_, _, key) in checked {
        assert!(stderr.contains(key), "{key}: {stderr}");
    }
    let output = veredito_command()
        .args(["serve", "--config", "no/such/file.toml"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
}

#[tokio::test]
async fn rotate_keys_moves_every_row_to_the_active_key() {
    let database = fresh_database().await;
    let url = database.url.clone();
    let app = TestApp::builder().database(&database).spawn().await;
    for cpf in ["900.000.001-75", "111.444.777-35"] {
        let response = app.onboard(&key(), &onboarding_body(cpf), Some(5)).await;
        assert_eq!(response.status(), 200);
    }
    app.stop().await;
    // The old key stays configured so its rows can be read; the new one becomes active.
    let file =
        std::env::temp_dir().join(format!("veredito-rotate-{}.toml", Uuid::new_v4().simple()));
    std::fs::write(
        &file,
        r#"[pii]
active_key_id = "rotated-2"
hash_key = "W4wusdwNWgkz296xz0C5lG1zoJAbT/o97AKxatRUrzI="
keys = [
  { id = "sandbox-1", key = "BRiCy4R4zdcy33daNragGMYBNF9FCr07ZNORKTW8sik=" },
  { id = "rotated-2", key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=" },
]
"#,
    )
    .unwrap();
    let output = veredito_command()
        .args(["rotate-keys", "--config"])
        .arg(&file)
        .env("VEREDITO__DATABASE__URL", &url)
        .output()
        .unwrap();
    std::fs::remove_file(&file).ok();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("re-encrypted 2 rows under key `rotated-2`"),
        "{stdout}"
    );
    let mut conn = PgConnection::connect(&url).await.unwrap();
    let keys: Vec<String> = sqlx::query_scalar("SELECT DISTINCT pii_key_id FROM onboardings")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    assert_eq!(keys, ["rotated-2"]);
    conn.close().await.ok();

    // With the old key gone from the configuration, every name still reads back.
    let only_new =
        std::env::temp_dir().join(format!("veredito-rotated-{}.toml", Uuid::new_v4().simple()));
    std::fs::write(
        &only_new,
        r#"[pii]
active_key_id = "rotated-2"
hash_key = "W4wusdwNWgkz296xz0C5lG1zoJAbT/o97AKxatRUrzI="
keys = [{ id = "rotated-2", key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=" }]
"#,
    )
    .unwrap();
    let app = TestApp::builder()
        .database(&database)
        .file(only_new.clone())
        .spawn()
        .await;
    std::fs::remove_file(&only_new).ok();
    let (status, page) = app.get("/v1/decisions", "vrd_sandbox_auditor_pii").await;
    assert_eq!(status, 200, "{page}");
    let names: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap_or("unreadable"))
        .collect();
    assert_eq!(names, ["Maria Teste da Silva", "Maria Teste da Silva"]);
    app.stop().await;
}

/// `serve` on `database` and `port`, with the sandbox's unico taking 3 s per process; answers
/// once it is ready.
async fn serve_slow_unico(database_url: &str, port: u16) -> std::process::Child {
    let mut child = veredito_command()
        .arg("serve")
        .env("VEREDITO__SERVER__ADDR", format!("127.0.0.1:{port}"))
        .env("VEREDITO__SERVER__SHUTDOWN_GRACE", "3s")
        .env("VEREDITO__DATABASE__URL", database_url)
        .env("VEREDITO__SANDBOX__PROCESSING_DELAY", "3s")
        .env("VEREDITO__UNICO__POLL_INITIAL", "500ms")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("binary starts");
    let http = reqwest::Client::new();
    for _ in 0..100 {
        if let Ok(response) = http
            .get(format!("http://127.0.0.1:{port}/health/ready"))
            .send()
            .await
        {
            if response.status() == 200 {
                return child;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    child.kill().ok();
    child.wait().ok();
    panic!("serve did not become ready");
}

#[tokio::test]
async fn sigterm_answers_a_waiting_request_and_the_next_start_decides() {
    let database = fresh_database().await;
    let url = database.url.clone();
    let port = free_port();
    let child = serve_slow_unico(&url, port).await;
    let base = format!("http://127.0.0.1:{port}");
    let waiting = {
        let base = base.clone();
        tokio::spawn(async move {
            let response = reqwest::Client::new()
                .post(format!("{base}/v1/onboardings"))
                .bearer_auth(ONBOARDING_KEY)
                .header("Idempotency-Key", key())
                .header("Prefer", "wait=30")
                .json(&onboarding_body("900.000.007-60"))
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            let location = response.headers().get("location").cloned();
            let body: Value = response.json().await.unwrap();
            (status, location, body)
        })
    };
    // SIGTERM once unico has the process, while the request waits for it.
    let mut db = PgConnection::connect(&url).await.unwrap();
    let started = std::time::Instant::now();
    let id: String = loop {
        let open: Option<String> =
            sqlx::query_scalar("SELECT onboarding_id::text FROM unico_processes LIMIT 1")
                .fetch_optional(&mut db)
                .await
                .unwrap();
        if let Some(id) = open {
            break id;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no process created"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let term = std::time::Instant::now();
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let (status, location, body) = waiting.await.unwrap();
    assert_eq!(status, 202, "{body}");
    assert!(
        term.elapsed() < Duration::from_secs(2),
        "answered at once, not at the end of its wait"
    );
    assert_eq!(
        location.unwrap().to_str().unwrap(),
        format!("/v1/onboardings/{id}")
    );
    let exited = tokio::task::spawn_blocking(move || {
        let mut child = child;
        child.wait()
    })
    .await
    .unwrap()
    .unwrap();
    assert!(exited.success(), "serve exits cleanly: {exited:?}");
    let decided_before: Option<String> =
        sqlx::query_scalar("SELECT outcome FROM decisions WHERE onboarding_id = $1::uuid")
            .bind(&id)
            .fetch_optional(&mut db)
            .await
            .unwrap();
    assert_eq!(
        decided_before, None,
        "nothing was decided before the restart"
    );

    let mut again = serve_slow_unico(&url, port).await;
    let started = std::time::Instant::now();
    let outcome = loop {
        let outcome: Option<String> =
            sqlx::query_scalar("SELECT outcome FROM decisions WHERE onboarding_id = $1::uuid")
                .bind(&id)
                .fetch_optional(&mut db)
                .await
                .unwrap();
        if let Some(outcome) = outcome {
            break outcome;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "not decided after the restart"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(outcome, "approved");
    let processes: i64 = sqlx::query_scalar("SELECT count(*) FROM unico_processes")
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert_eq!(processes, 1, "one unico process");
    again.kill().ok();
    again.wait().ok();
}

/// `serve` with every provider timeout at 1 s (so a step's lease is 9 s) and `fault_rate` of
/// the sandbox's calls stalling 0.8 s and failing.
fn serve_with_faults(database_url: &str, port: u16, fault_rate: &str) -> std::process::Child {
    veredito_command()
        .arg("serve")
        .env("VEREDITO__SERVER__ADDR", format!("127.0.0.1:{port}"))
        .env("VEREDITO__DATABASE__URL", database_url)
        .env("VEREDITO__SANDBOX__FAULT_RATE", fault_rate)
        .env("VEREDITO__SANDBOX__FAULT_STALL", "800ms")
        .env("VEREDITO__UNICO__TIMEOUT", "1s")
        .env("VEREDITO__QITECH__TIMEOUT", "1s")
        .env("VEREDITO__ZRO__TIMEOUT", "1s")
        .env("VEREDITO__CALLBACKS__TIMEOUT", "1s")
        .env("VEREDITO__UNICO__POLL_INITIAL", "300ms")
        .env("VEREDITO__UNICO__POLL_MAX", "1s")
        .env("VEREDITO__SANDBOX__PROCESSING_DELAY", "300ms")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("binary starts")
}

#[tokio::test]
async fn a_replica_killed_mid_call_leaves_its_steps_to_the_next_one() {
    let database = fresh_database().await;
    let port = free_port();
    // The first replica: unico fails every call, slowly, so its steps are in flight.
    let mut first = serve_with_faults(&database.url, port, "1.0");
    wait_ready(&format!("http://127.0.0.1:{port}")).await;
    let http = reqwest::Client::new();
    for n in 0..12 {
        let response = http
            .post(format!("http://127.0.0.1:{port}/v1/onboardings"))
            .bearer_auth(ONBOARDING_KEY)
            .header("Idempotency-Key", key())
            .header("Prefer", "respond-async")
            .json(&onboarding_body(&cpf_from(900 + n)))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 202);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    // SIGKILL: no shutdown, no release of the claims it holds.
    first.kill().unwrap();
    first.wait().unwrap();
    let mut db = PgConnection::connect(&database.url).await.unwrap();
    let held: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM steps WHERE status = 'pending' AND claimed_until > now()",
    )
    .fetch_one(&mut db)
    .await
    .unwrap();
    assert!(held > 0, "the killed replica held steps");

    // The next replica, with a unico that answers, takes them once their leases run out.
    let port = free_port();
    let mut second = serve_with_faults(&database.url, port, "0");
    wait_ready(&format!("http://127.0.0.1:{port}")).await;
    let started = std::time::Instant::now();
    let mut decided = 0;
    while started.elapsed() < Duration::from_secs(40) {
        decided = sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM onboardings WHERE state = 'decided'",
        )
        .fetch_one(&mut db)
        .await
        .unwrap();
        if decided == 12 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    second.kill().unwrap();
    second.wait().unwrap();
    assert_eq!(decided, 12, "every onboarding decided after the takeover");
    let created: Vec<(String, i64)> = sqlx::query_as(
        "SELECT onboarding_id::text, count(*) FROM provider_calls
          WHERE provider = 'unico' AND operation = 'create_process' AND http_status = 200
          GROUP BY 1",
    )
    .fetch_all(&mut db)
    .await
    .unwrap();
    assert_eq!(created.len(), 12);
    assert!(created.iter().all(|(_, n)| *n == 1), "{created:?}");
    let decisions: i64 = sqlx::query_scalar("SELECT count(*) FROM decisions")
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert_eq!(decisions, 12, "decided once each");
}

/// `serve` as the crash-recovery test runs it: an 8 s biometrics deadline, unico paced to 20
/// calls a second (so a burst's CreateProcess calls are still in flight when the replica dies)
/// and its asynchronous processes finishing after 1 s.
fn serve_paced(database_url: &str, port: u16) -> std::process::Child {
    veredito_command()
        .arg("serve")
        .env("VEREDITO__SERVER__ADDR", format!("127.0.0.1:{port}"))
        .env("VEREDITO__DATABASE__URL", database_url)
        .env("VEREDITO__POLICY__BIOMETRICS_DEADLINE", "8s")
        .env("VEREDITO__UNICO__REQUESTS_PER_SECOND", "20")
        .env("VEREDITO__UNICO__POLL_INITIAL", "500ms")
        .env("VEREDITO__UNICO__POLL_MAX", "1s")
        .env("VEREDITO__SANDBOX__PROCESSING_DELAY", "1s")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("binary starts")
}

#[tokio::test]
async fn a_replica_killed_after_answering_202_has_its_work_taken_over_within_seconds() {
    let database = fresh_database().await;
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut first = serve_paced(&database.url, port);
    wait_ready(&base).await;
    // Ten that unico answers at once and ten it finishes later, each with what the sandbox's
    // table says of it.
    let mut expected: Vec<(String, &str)> =
        (0..10).map(|n| (cpf_from(7100 + n), "approved")).collect();
    expected.extend(
        [
            ("900.000.006-80", "rejected"),
            ("900.000.007-60", "approved"),
            ("900.000.008-41", "approved"),
            ("900.000.009-22", "rejected"),
            ("900.000.012-28", "rejected"),
            ("900.000.015-70", "approved"),
            ("900.000.016-51", "review"),
            ("900.000.018-13", "rejected"),
            ("900.000.019-02", "review"),
            ("900.000.025-42", "approved"),
        ]
        .map(|(cpf, outcome)| (cpf.to_owned(), outcome)),
    );
    let http = reqwest::Client::new();
    let sent = futures_util::future::join_all(expected.iter().map(|(cpf, _)| {
        let http = http.clone();
        let base = base.clone();
        async move {
            let response = http
                .post(format!("{base}/v1/onboardings"))
                .bearer_auth(ONBOARDING_KEY)
                .header("Idempotency-Key", key())
                .header("Prefer", "respond-async")
                .json(&onboarding_body(cpf))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 202);
            let body: Value = response.json().await.unwrap();
            body["id"].as_str().unwrap().to_owned()
        }
    }))
    .await;
    // SIGKILL at once: no shutdown, no claim given back.
    first.kill().unwrap();
    first.wait().unwrap();
    let mut db = PgConnection::connect(&database.url).await.unwrap();
    let in_flight: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM steps
          WHERE kind = 'create_process' AND status = 'pending' AND claimed_until > now()",
    )
    .fetch_one(&mut db)
    .await
    .unwrap();
    assert!(
        in_flight >= 1,
        "the killed replica held CreateProcess steps"
    );

    let mut second = serve_paced(&database.url, port);
    wait_ready(&base).await;
    let restarted = std::time::Instant::now();
    let mut decided: Vec<(String, String)> = Vec::new();
    while restarted.elapsed() < Duration::from_secs(10) {
        decided = sqlx::query_as(
            "SELECT onboarding_id::text, outcome FROM decisions WHERE decided_by = 'policy'",
        )
        .fetch_all(&mut db)
        .await
        .unwrap();
        if decided.len() == expected.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let took = restarted.elapsed();
    second.kill().unwrap();
    second.wait().unwrap();
    assert_eq!(
        decided.len(),
        expected.len(),
        "all decided within 10 s of the restart: {decided:?}"
    );
    for (id, (cpf, outcome)) in sent.iter().zip(&expected) {
        let got = decided
            .iter()
            .find(|(d, _)| d == id)
            .map(|(_, o)| o.as_str());
        assert_eq!(got, Some(*outcome), "{cpf} decided as its scenario says");
    }
    let processes: Vec<(String, i64)> =
        sqlx::query_as("SELECT onboarding_id::text, count(*) FROM unico_processes GROUP BY 1")
            .fetch_all(&mut db)
            .await
            .unwrap();
    assert_eq!(processes.len(), expected.len(), "{processes:?}");
    assert!(
        processes.iter().all(|(_, n)| *n == 1),
        "one unico process each: {processes:?}"
    );
    eprintln!(
        "all {} decided {:?} after the restart",
        expected.len(),
        took
    );
}
