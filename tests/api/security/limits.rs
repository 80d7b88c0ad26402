//! Floods, slow clients and exhausted pools: rates per key, request and connection caps, bounded
//! waits, all answered with Retry-After.

use super::*;

#[tokio::test]
async fn each_key_has_its_rate_and_a_flood_gets_429_with_retry_after() {
    // Reads counters of the process's one metrics registry: alone in a process.
    if isolation::own_process(
        module_path!(),
        "each_key_has_its_rate_and_a_flood_gets_429_with_retry_after",
        isolation::Server::Shared,
    )
    .await
    {
        return;
    }
    let app = TestApp::builder()
        .config(&[("api.rate_per_second", "2"), ("api.rate_burst", "3")])
        .spawn()
        .await;
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for _ in 0..6 {
        let response = app
            .http
            .get(app.url("/v1/decisions"))
            .bearer_auth(AUDITOR_KEY)
            .send()
            .await
            .unwrap();
        statuses.push(response.status().as_u16());
        if response.status() == 429 {
            assert_eq!(
                response.headers()["content-type"],
                "application/problem+json"
            );
            retry_after = response.headers().get("retry-after").cloned();
        }
    }
    assert_eq!(
        &statuses[..3],
        [200, 200, 200],
        "the burst passes: {statuses:?}"
    );
    assert!(statuses[3..].contains(&429), "{statuses:?}");
    let seconds: u64 = retry_after.unwrap().to_str().unwrap().parse().unwrap();
    assert!((1..=2).contains(&seconds));
    // Another key is not slowed by the first one's flood.
    let (status, _) = app.get("/v1/decisions", AUDITOR_PII_KEY).await;
    assert_eq!(status, 200);
    // After the wait, the first key is served again.
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let (status, _) = app.get("/v1/decisions", AUDITOR_KEY).await;
    assert_eq!(status, 200);
    let metrics = app
        .http
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!metrics.contains("veredito_requests_rejected_total{reason=\"rate_limited\"} 0\n"));
    app.stop().await;
}

#[tokio::test]
async fn past_the_request_limit_503_with_retry_after_and_probes_still_answer() {
    let app = TestApp::builder()
        .config(&[
            ("server.max_in_flight", "2"),
            ("sandbox.processing_delay", "3s"),
        ])
        .spawn()
        .await;
    // Two requests waiting for an async verdict hold both places.
    let waiting: Vec<_> = (0..2)
        .map(|_| {
            let request = app
                .http
                .post(app.url("/v1/onboardings"))
                .bearer_auth(ONBOARDING_KEY)
                .header("Idempotency-Key", key())
                .header("Prefer", "wait=10")
                .json(&onboarding_body(ASYNC_APPROVED));
            tokio::spawn(async move { request.send().await.unwrap().status().as_u16() })
        })
        .collect();
    let mut refused = None;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let response = app
            .http
            .get(app.url("/v1/decisions"))
            .bearer_auth(AUDITOR_KEY)
            .send()
            .await
            .unwrap();
        if response.status() == 503 {
            refused = Some(response);
            break;
        }
    }
    let refused = refused.expect("a third request was refused while two waited");
    assert_eq!(refused.headers()["retry-after"], "1");
    assert_eq!(
        refused.headers()["content-type"],
        "application/problem+json"
    );
    let live = app.http.get(app.url("/health/live")).send().await.unwrap();
    assert_eq!(live.status(), 200, "probes are never refused");
    for request in waiting {
        assert_eq!(request.await.unwrap(), 200);
    }
    let (status, _) = app.get("/v1/decisions", AUDITOR_KEY).await;
    assert_eq!(status, 200, "served again once the places are free");
    app.stop().await;
}

#[tokio::test]
async fn connections_past_the_cap_get_health_from_the_reserve_and_503_for_the_rest() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = TestApp::builder()
        .config(&[
            ("server.max_connections", "3"),
            ("server.header_timeout", "1s"),
        ])
        .spawn()
        .await;
    let addr = app.base.trim_start_matches("http://").to_owned();
    // Three connections with a request in progress (unico never finishes this CPF) hold every
    // slot; none of them is idle, so none gives its slot back.
    let mut busy = Vec::new();
    for _ in 0..3 {
        let http = reqwest::Client::new();
        let url = app.url("/v1/onboardings");
        busy.push(tokio::spawn(async move {
            http.post(url)
                .bearer_auth(ONBOARDING_KEY)
                .header("Idempotency-Key", key())
                .header("Prefer", "wait=4")
                .json(&onboarding_body("900.000.022-08"))
                .send()
                .await
                .map(|r| r.status().as_u16())
        }));
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    let ask = |request: &'static [u8]| {
        let addr = addr.clone();
        async move {
            let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
            stream.write_all(request).await.unwrap();
            let mut answer = String::new();
            tokio::time::timeout(Duration::from_secs(5), stream.read_to_string(&mut answer))
                .await
                .expect("answered and closed")
                .unwrap();
            answer
        }
    };
    let refused = ask(b"GET /v1/decisions HTTP/1.1\r\nhost: x\r\n\r\n").await;
    assert!(refused.starts_with("HTTP/1.1 503"), "{refused}");
    assert!(
        refused.to_ascii_lowercase().contains("retry-after: 1"),
        "{refused}"
    );
    let live = ask(b"GET /health/live HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").await;
    assert!(
        live.starts_with("HTTP/1.1 200"),
        "health answered from the reserve: {live}"
    );
    for request in busy {
        assert_eq!(request.await.unwrap().unwrap(), 202);
    }
    app.stop().await;
}

/// Connections that hold a slot and do nothing with it: TCP connections that never send a byte,
/// one stuck in its headers, and HTTP/2 connections that made one request and then only answer
/// PINGs.
#[tokio::test]
async fn silent_and_idle_connections_cannot_keep_health_or_onboardings_out() {
    // Reads counters of the process's one metrics registry: alone in a process.
    if isolation::own_process(
        module_path!(),
        "silent_and_idle_connections_cannot_keep_health_or_onboardings_out",
        isolation::Server::Shared,
    )
    .await
    {
        return;
    }
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = TestApp::builder()
        .config(&[
            ("server.max_connections", "100"),
            ("server.header_timeout", "2s"),
            ("server.idle_timeout", "3s"),
        ])
        .spawn()
        .await;
    let addr = app.base.trim_start_matches("http://").to_owned();
    let mut silent = Vec::new();
    for _ in 0..200 {
        silent.push(tokio::net::TcpStream::connect(&addr).await.unwrap());
    }
    let mut partial = tokio::net::TcpStream::connect(&addr).await.unwrap();
    partial
        .write_all(b"GET /health/live HTTP/1.1\r\nhost:")
        .await
        .unwrap();
    // 200 h2c clients, each with its own connection kept open after one request.
    let mut idle_h2 = Vec::new();
    for _ in 0..200 {
        let client = reqwest::Client::builder()
            .http2_prior_knowledge()
            .http2_keep_alive_interval(Duration::from_millis(500))
            .http2_keep_alive_while_idle(true)
            .build()
            .unwrap();
        let _ = client.get(app.url("/health/live")).send().await;
        idle_h2.push(client);
    }
    // Throughout, with more silent connections arriving, a new client is served within 1 s.
    let started = std::time::Instant::now();
    let mut slowest = Duration::ZERO;
    while started.elapsed() < Duration::from_secs(4) {
        for _ in 0..20 {
            silent.push(tokio::net::TcpStream::connect(&addr).await.unwrap());
        }
        let fresh = reqwest::Client::new();
        let asked = std::time::Instant::now();
        let live = tokio::time::timeout(
            Duration::from_secs(1),
            fresh.get(app.url("/health/live")).send(),
        )
        .await
        .expect("health answered within 1 s")
        .unwrap();
        assert_eq!(live.status(), 200);
        let onboarding = tokio::time::timeout(
            Duration::from_secs(1),
            fresh
                .post(app.url("/v1/onboardings"))
                .bearer_auth(ONBOARDING_KEY)
                .header("Idempotency-Key", key())
                .json(&onboarding_body(&cpf_from(4000 + silent.len() as u32)))
                .send(),
        )
        .await
        .expect("an onboarding answered within 1 s")
        .unwrap();
        assert_eq!(onboarding.status(), 200);
        slowest = slowest.max(asked.elapsed());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!("slowest health + onboarding under 400+ idle connections: {slowest:?}");
    // The idle ones are closed by their deadlines: a connection that sent nothing within
    // server.header_timeout, the stuck one too, the HTTP/2 ones server.idle_timeout after
    // their request (a PING is not a request).
    let mut closed = 0;
    let total = silent.len() + 1;
    for mut stream in silent.into_iter().chain([partial]) {
        let mut rest = Vec::new();
        if tokio::time::timeout(Duration::from_secs(3), stream.read_to_end(&mut rest))
            .await
            .is_ok()
        {
            closed += 1;
        }
    }
    assert_eq!(closed, total, "every silent connection closed");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let metrics = app.http.get(app.url("/metrics")).send().await.unwrap();
    let text = metrics.text().await.unwrap();
    let open: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("veredito_connections_open "))
        .expect("the open-connections gauge")
        .parse()
        .unwrap();
    assert!(
        open <= 2.0,
        "only the metrics request's connection is open: {open}"
    );
    drop(idle_h2);
    app.stop().await;
}

/// A service with a pool of two connections that a request waits for at most 500 ms, and no
/// runners.
async fn two_connections_half_a_second() -> TestApp {
    TestApp::builder()
        .config(&[
            ("database.max_connections", "2"),
            ("database.acquire_timeout", "500ms"),
            ("jobs.enabled", "false"),
        ])
        .spawn()
        .await
}

/// An onboarding the service answers 503: how long it took, its Retry-After and its problem.
async fn refused_onboarding(app: &TestApp) -> (Duration, String, Value) {
    let started = std::time::Instant::now();
    let response = app
        .onboard(&key(), &onboarding_body("111.444.777-35"), Some(5))
        .await;
    let waited = started.elapsed();
    assert_eq!(response.status(), 503);
    let retry_after = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .to_owned();
    (waited, retry_after, response.json().await.unwrap())
}

#[tokio::test]
async fn a_request_waits_for_a_connection_at_most_the_acquire_timeout() {
    let app = two_connections_half_a_second().await;
    // Every connection of the service's pool is taken, as when the database stalls (the
    // listener holds one of them already).
    let mut held = Vec::new();
    while let Ok(connection) = app.state.db.acquire().await {
        held.push(connection);
    }
    assert!(!held.is_empty());
    let (waited, _, problem) = refused_onboarding(&app).await;
    assert_eq!(
        problem["detail"], "the database is unreachable",
        "no internal detail"
    );
    assert!(waited < Duration::from_secs(3), "answered after {waited:?}");
    drop(held);
    let response = app
        .onboard(&key(), &onboarding_body("111.444.777-35"), Some(5))
        .await;
    assert_eq!(response.status(), 200);
    app.stop().await;
}

#[tokio::test]
async fn submissions_past_their_turns_wait_with_their_bodies_unread_and_then_are_refused() {
    use tokio::io::AsyncWriteExt;
    // Two pool connections: four submissions may be read and stored at once.
    let app = two_connections_half_a_second().await;
    let addr = app.base.trim_start_matches("http://").to_owned();
    // Four submissions send their headers and hold back their bodies: each has its turn and
    // waits for the body it was promised.
    let mut holding = Vec::new();
    for n in 0..4 {
        let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let head = format!(
            "POST /v1/onboardings HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {ONBOARDING_KEY}\r\n\
             idempotency-key: held-{n}\r\ncontent-type: application/json\r\n\
             content-length: 1000\r\n\r\n"
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        holding.push(stream);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    // A fifth is not read: it waits for a turn for database.acquire_timeout, then is refused as
    // an overloaded service refuses, with Retry-After.
    let (waited, retry_after, problem) = refused_onboarding(&app).await;
    assert_eq!(retry_after, "1");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("too many submissions"),
        "{problem}"
    );
    assert!(
        waited >= Duration::from_millis(450) && waited < Duration::from_secs(3),
        "refused after {waited:?}"
    );
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM onboardings")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(stored, 0, "nothing was stored for the refused one");
    // The turns come back when the held submissions end: the next one is stored and decided.
    drop(holding);
    let mut status = 0;
    for _ in 0..20 {
        let response = app
            .onboard(&key(), &onboarding_body("111.444.777-35"), Some(5))
            .await;
        status = response.status().as_u16();
        if status != 503 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(status, 200);
    app.stop().await;
}

#[tokio::test]
async fn console_sessions_spend_their_keys_rate() {
    let app = TestApp::builder()
        .config(&[("api.rate_per_second", "1"), ("api.rate_burst", "3")])
        .spawn()
        .await;
    let session = app.console_session(AUDITOR_KEY).await;
    let mut answered = 0;
    let mut refused = 0;
    for _ in 0..20 {
        let response = reqwest::Client::new()
            .get(app.url("/console/decisions"))
            .header("Cookie", &session)
            .send()
            .await
            .unwrap();
        match response.status().as_u16() {
            200 => answered += 1,
            429 => {
                refused += 1;
                let wait: u64 = response.headers()["retry-after"]
                    .to_str()
                    .unwrap()
                    .parse()
                    .unwrap();
                assert!(wait >= 1);
            }
            other => panic!("console answered {other}"),
        }
    }
    assert!(
        answered >= 1 && refused >= 15,
        "{answered} answered, {refused} refused"
    );
    // What was refused left no access record: the log grows at the key's rate, not the flood's.
    assert_eq!(
        access_records(&app, "sandbox-auditor", "console /console/decisions").await,
        answered
    );
    app.stop().await;
}

#[tokio::test]
async fn replays_run_a_few_at_once_and_the_others_are_refused_with_retry_after() {
    let app = TestApp::builder()
        .config(&[("api.max_replays", "1")])
        .spawn()
        .await;
    let from = "2020-01-01T00:00:00Z";
    let to = "2100-01-01T00:00:00Z";
    let candidate = json!({"decided_from": from, "decided_to": to,
                           "policy": {"version": "candidate-1", "score_reject_max": -20, "score_approve_min": 40}});
    // A replay that takes long: the decisions it reads are locked for now.
    let mut lock = app.db.begin().await.unwrap();
    sqlx::query("LOCK TABLE decisions IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *lock)
        .await
        .unwrap();
    let slow = {
        let (http, url, body) = (
            app.http.clone(),
            app.url("/v1/decisions/replay"),
            candidate.clone(),
        );
        tokio::spawn(async move {
            http.post(url)
                .bearer_auth(AUDITOR_KEY)
                .json(&body)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Every other replay, through the API or the console, is refused at once, not queued.
    let refused = |response: reqwest::Response, what: &str| {
        assert_eq!(response.status(), 503, "{what}");
        let wait: u64 = response.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(wait >= 1, "{what}");
    };
    let at_once = Duration::from_secs(5);
    let api = tokio::time::timeout(
        at_once,
        app.http
            .post(app.url("/v1/decisions/replay"))
            .bearer_auth(AUDITOR_KEY)
            .json(&candidate)
            .send(),
    )
    .await
    .expect("a second replay is answered at once, not queued behind the first")
    .unwrap();
    refused(api, "POST /v1/decisions/replay");
    let version = tokio::time::timeout(
        at_once,
        app.http
            .post(app.url("/v1/policies/2026-11-23.1/replay"))
            .bearer_auth(AUDITOR_KEY)
            .json(&json!({"decided_from": from, "decided_to": to}))
            .send(),
    )
    .await
    .expect("a version's replay is answered at once")
    .unwrap();
    refused(version, "POST /v1/policies/{version}/replay");
    let session = app.console_session(AUDITOR_KEY).await;
    let console = tokio::time::timeout(
        at_once,
        reqwest::Client::new()
            .get(app.url("/console/policies?version=2026-11-23.1"))
            .header("Cookie", &session)
            .send(),
    )
    .await
    .expect("the console's replay is answered at once")
    .unwrap();
    refused(console, "GET /console/policies");

    // Once the first is done, replays run again.
    lock.rollback().await.unwrap();
    assert_eq!(slow.await.unwrap(), 200);
    let (status, report) = app
        .post_json("/v1/decisions/replay", AUDITOR_KEY, &candidate)
        .await;
    assert_eq!(status, 200, "{report}");
    app.stop().await;
}
