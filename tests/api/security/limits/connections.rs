//! Request and connection caps: past them 503 with Retry-After while the probes still answer,
//! and silent or idle connections keep nothing out.

use super::*;

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
    // The gauge follows once the server has let go of each connection.
    eventually(
        Duration::from_secs(5),
        "only the metrics request's connection open",
        || async {
            let text = app.metrics().await;
            let open: f64 = text
                .lines()
                .find_map(|l| l.strip_prefix("veredito_connections_open "))
                .expect("the open-connections gauge")
                .parse()
                .unwrap();
            open <= 2.0
        },
    )
    .await;
    drop(idle_h2);
    app.stop().await;
}
