//! Replicas killed with SIGKILL, mid-call or after answering 202: the next one takes their work
//! over.

use super::*;

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
    let mut db = PgConnection::connect(&database.url).await.unwrap();
    let claimed = "SELECT count(*) FROM steps WHERE status = 'pending' AND claimed_until > now()";
    // Killed once its steps are in flight (claimed, unico failing slowly).
    let started = std::time::Instant::now();
    while sqlx::query_scalar::<_, i64>(claimed)
        .fetch_one(&mut db)
        .await
        .unwrap()
        == 0
    {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no step claimed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // SIGKILL: no shutdown, no release of the claims it holds.
    first.kill().unwrap();
    first.wait().unwrap();
    let held: i64 = sqlx::query_scalar(claimed)
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
