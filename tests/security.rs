//! What an attacker or an auditor would try: searching by CPF without `pii:read`, reading who
//! searched for what, NUL characters anywhere, wrong content types, forged webhooks piling up.

mod common;
mod device_support;

use common::*;
use std::time::Duration;

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

const AUDITOR_PII_KEY: &str = "vrd_sandbox_auditor_pii";
/// A sandbox CPF whose unico process finishes after `sandbox.processing_delay`, then approves.
const ASYNC_APPROVED: &str = "900.000.007-60";

#[tokio::test]
async fn a_cpf_search_needs_pii_read_and_every_search_is_recorded() {
    let app = TestApp::spawn().await;
    let cpf = "111.444.777-35";
    let response = app.onboard(&key(), &onboarding_body(cpf), Some(10)).await;
    assert_eq!(response.status(), 200);

    // Without pii:read the CPF filter is refused, whatever its value: no guessing by search.
    let (status, problem) = app.get("/v1/decisions?cpf=11144477735", AUDITOR_KEY).await;
    assert_eq!(status, 403, "{problem}");
    assert_eq!(problem["type"], "/problems/forbidden");
    let (status, _) = app
        .get("/v1/decisions/export?cpf=11144477735", AUDITOR_KEY)
        .await;
    assert_eq!(status, 403);
    let (status, page) = app
        .get("/v1/decisions?cpf=11144477735", AUDITOR_PII_KEY)
        .await;
    assert_eq!(status, 200);
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    let decision_id = page["items"][0]["id"].as_str().unwrap().to_owned();
    let (status, _) = app
        .get(&format!("/v1/decisions/{decision_id}"), AUDITOR_KEY)
        .await;
    assert_eq!(status, 200);
    let (status, _) = app.get("/v1/decisions?outcome=approved", AUDITOR_KEY).await;
    assert_eq!(status, 200);

    // The log: who, what, when; the CPF only masked and hashed.
    let (status, log) = app.get("/v1/audit-searches", AUDITOR_KEY).await;
    assert_eq!(status, 200, "{log}");
    let items = log["items"].as_array().unwrap();
    let seen: Vec<(&str, &str)> = items
        .iter()
        .map(|i| {
            (
                i["caller"].as_str().unwrap(),
                i["endpoint"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("sandbox-auditor", "GET /v1/decisions"),
            ("sandbox-auditor", "GET /v1/decisions/{id}"),
            ("sandbox-auditor-pii", "GET /v1/decisions"),
        ],
        "newest first; refused searches are not searches"
    );
    assert_eq!(items[0]["filters"], json!({"outcome": "approved"}));
    assert_eq!(items[1]["filters"]["decision_id"], decision_id);
    let by_cpf = &items[2]["filters"]["cpf"];
    assert_eq!(by_cpf["masked"], "***.444.777-**");
    assert_eq!(by_cpf["hmac"].as_str().unwrap().len(), 64);
    assert!(!log.to_string().contains("11144477735"));
    assert!(!log.to_string().contains(cpf));
    // Pages, and nobody rewrites the log.
    let (_, first) = app.get("/v1/audit-searches?limit=2", AUDITOR_KEY).await;
    assert_eq!(first["items"].as_array().unwrap().len(), 2);
    let cursor = first["next_cursor"].as_str().unwrap().to_owned();
    let (_, second) = app
        .get(
            &format!("/v1/audit-searches?limit=2&cursor={cursor}"),
            AUDITOR_KEY,
        )
        .await;
    assert_eq!(second["items"][0], items[2]);
    assert_eq!(second["items"].as_array().unwrap().len(), 1);
    assert!(second["next_cursor"].is_null());
    let changed = sqlx::query("UPDATE audit_searches SET caller = 'someone else'")
        .execute(&app.db)
        .await;
    assert!(changed.is_err(), "the search log is append-only");
    let (status, _) = app.get("/v1/audit-searches", ONBOARDING_KEY).await;
    assert_eq!(status, 403);
    app.stop().await;
}

#[tokio::test]
async fn nul_characters_and_wrong_content_types_are_refused_by_name() {
    let app = TestApp::spawn().await;
    // In a body: 422 with the field, nothing stored.
    for (field, body) in [
        ("reference", {
            let mut b = onboarding_body("111.444.777-35");
            b["reference"] = json!("ref-\u{0}");
            b
        }),
        ("device.device_id", {
            let mut b = onboarding_body("111.444.777-35");
            b["device"]["device_id"] = json!("dev\u{0}");
            b
        }),
        ("device.risk_signals.os_version", {
            let mut b = onboarding_body("111.444.777-35");
            b["device"]["risk_signals"]["os_version"] = json!("14\u{0}");
            b
        }),
    ] {
        let response = app.onboard(&key(), &body, Some(0)).await;
        assert_eq!(response.status(), 422, "{field}");
        let problem: Value = response.json().await.unwrap();
        assert_eq!(problem["errors"][0]["field"], field, "{problem}");
    }
    // Ids that travel in QI Tech's paths cannot step out of their segment.
    for (field, value) in [
        ("account.account_id", ".."),
        ("account.person_id", "../person"),
        ("device.device_id", "a/b"),
    ] {
        let mut body = onboarding_body("111.444.777-35");
        let (group, name) = field.split_once('.').unwrap();
        body[group][name] = json!(value);
        let response = app.onboard(&key(), &body, Some(0)).await;
        assert_eq!(response.status(), 422, "{field}");
        let problem: Value = response.json().await.unwrap();
        assert_eq!(problem["errors"][0]["field"], field, "{problem}");
    }
    let validation = app
        .http
        .post(app.url("/v1/device-validations"))
        .bearer_auth(ONBOARDING_KEY)
        .header("Idempotency-Key", key())
        .json(&json!({"account_id": "a\u{0}", "person_id": "p", "session_id": "s"}))
        .send()
        .await
        .unwrap();
    assert_eq!(validation.status(), 422);
    // In a query or a path: 422 naming the parameter.
    let (status, problem) = app.get("/v1/decisions?reference=a%00b", AUDITOR_KEY).await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(problem["errors"][0]["field"], "reference");
    let (status, _) = app
        .get("/v1/decisions/export?reason=%00", AUDITOR_KEY)
        .await;
    assert_eq!(status, 422);
    let (status, _) = app.get("/v1/policies/v%001", "vrd_sandbox_risk").await;
    assert_eq!(status, 422);
    let onboardings: i64 = sqlx::query_scalar("SELECT count(*) FROM onboardings")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(onboardings, 0);

    // A JSON body sent as something else: 415, as problem+json.
    let response = app
        .http
        .post(app.url("/v1/onboardings"))
        .bearer_auth(ONBOARDING_KEY)
        .header("Idempotency-Key", key())
        .header("content-type", "text/plain")
        .body(onboarding_body("111.444.777-35").to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 415);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    // The scope is checked before the body: a key without it hears 403, not 415 or 422.
    let response = app
        .http
        .post(app.url("/v1/onboardings"))
        .bearer_auth(AUDITOR_KEY)
        .header("Idempotency-Key", key())
        .header("content-type", "text/plain")
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    for (path, key) in [
        (
            format!("/v1/onboardings/{}/review-requests", uuid::Uuid::new_v4()),
            AUDITOR_KEY,
        ),
        (
            format!("/v1/reviews/{}/resolution", uuid::Uuid::new_v4()),
            ONBOARDING_KEY,
        ),
    ] {
        let response = app
            .http
            .post(app.url(&path))
            .bearer_auth(key)
            .header("content-type", "text/plain")
            .body("{ not json")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403, "{path}");
    }
    // An unknown route or method is problem+json too.
    let response = app.http.get(app.url("/v2/nothing")).send().await.unwrap();
    assert_eq!(response.status(), 404);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let response = app
        .http
        .delete(app.url("/v1/onboardings"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    app.stop().await;
}

#[tokio::test]
async fn retention_deletes_old_webhooks_and_erases_what_providers_said() {
    let app = TestApp::spawn().await;
    sqlx::query(
        "INSERT INTO unico_webhooks (received_at, authenticated, process_id)
         VALUES (now() - interval '31 days', false, NULL),
                (now() - interval '31 days', true, 'old'),
                (now() - interval '1 day', true, 'recent')",
    )
    .execute(&app.db)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO provider_calls (provider, operation, method, path, http_status, latency_ms,
                                     request, response, error, answer_key_id, answer_ciphertext,
                                     created_at)
         VALUES ('qitech', 'register_device', 'POST', '/x', 500, 3, '{}', '{\"m\": \"Maria\"}',
                 'Maria', 'k', '\\x00', now() - interval '1826 days'),
                ('qitech', 'register_device', 'POST', '/x', 500, 3, '{}', '{}', 'recent', 'k',
                 '\\x00', now() - interval '1 day')",
    )
    .execute(&app.db)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO forged_webhooks (minute, deliveries, last_at)
         VALUES (date_trunc('minute', now() - interval '31 days'), 40, now() - interval '31 days'),
                (date_trunc('minute', now() - interval '1 day'), 3, now() - interval '1 day')",
    )
    .execute(&app.db)
    .await
    .unwrap();
    veredito::jobs::retention::erase_expired_by(&app.state, 500, &CancellationToken::new())
        .await
        .unwrap();
    let forged_minutes: i64 = sqlx::query_scalar("SELECT count(*) FROM forged_webhooks")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(
        forged_minutes, 1,
        "the old minute's count of forged deliveries is deleted"
    );
    let left: Vec<Option<String>> =
        sqlx::query_scalar("SELECT process_id FROM unico_webhooks ORDER BY id")
            .fetch_all(&app.db)
            .await
            .unwrap();
    assert_eq!(left, [Some("recent".to_owned())]);
    let calls: Vec<(Option<String>, bool, bool, i32)> = sqlx::query_as(
        "SELECT error, response IS NULL, answer_ciphertext IS NULL AND answer_key_id IS NULL,
                http_status
           FROM provider_calls ORDER BY created_at",
    )
    .fetch_all(&app.db)
    .await
    .unwrap();
    assert_eq!(
        calls,
        [
            (None, true, true, 500),
            (Some("recent".to_owned()), false, false, 500)
        ],
        "the old call keeps its status, not what was said, sealed or not"
    );
    app.stop().await;
}

#[tokio::test]
async fn each_key_has_its_rate_and_a_flood_gets_429_with_retry_after() {
    let app = TestApp::spawn_with(&[("api.rate_per_second", "2"), ("api.rate_burst", "3")]).await;
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
    let app = TestApp::spawn_with(&[
        ("server.max_in_flight", "2"),
        ("sandbox.processing_delay", "3s"),
    ])
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
async fn connections_past_the_cap_are_refused_and_silent_ones_are_closed() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = TestApp::spawn_with(&[
        ("server.max_connections", "3"),
        ("server.header_timeout", "1s"),
    ])
    .await;
    let addr = app.base.trim_start_matches("http://").to_owned();
    // Three connections that send nothing hold every place.
    let mut silent = Vec::new();
    for _ in 0..3 {
        silent.push(tokio::net::TcpStream::connect(&addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut fourth = tokio::net::TcpStream::connect(&addr).await.unwrap();
    fourth
        .write_all(b"GET /health/live HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(5), fourth.read_to_string(&mut answer))
        .await
        .expect("answered and closed")
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("retry-after: 1"),
        "{answer}"
    );
    // A connection that never finishes its headers is closed after server.header_timeout...
    let mut partial = silent.pop().unwrap();
    partial
        .write_all(b"GET /health/live HTTP/1.1\r\nhost:")
        .await
        .unwrap();
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(5), partial.read_to_end(&mut rest)).await;
    assert!(
        closed.is_ok(),
        "the server closed a connection stuck in its headers"
    );
    // ...and the places of silent connections come back: a real request is served.
    drop(silent);
    let mut served = false;
    for _ in 0..30 {
        if let Ok(response) = app.http.get(app.url("/health/live")).send().await {
            if response.status() == 200 {
                served = true;
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(served);
    app.stop().await;
}

#[tokio::test]
async fn a_decision_keeps_only_the_region_and_shows_it_only_with_pii_read() {
    let app = TestApp::spawn().await;
    let mut body = onboarding_body("111.444.777-35");
    body["device"]["risk_signals"]["device_latitude"] = json!(-23.561414);
    body["device"]["risk_signals"]["device_longitude"] = json!(-46.656562);
    let response = app.onboard(&key(), &body, Some(10)).await;
    assert_eq!(response.status(), 200);
    let stored: Value = sqlx::query_scalar("SELECT evidence FROM decisions")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(stored["risk_signals"]["device_latitude"], json!(-23.56));
    assert_eq!(stored["risk_signals"]["device_longitude"], json!(-46.66));
    assert!(!stored.to_string().contains("561414"));
    let (_, page) = app.get("/v1/decisions", AUDITOR_KEY).await;
    let id = page["items"][0]["id"].as_str().unwrap().to_owned();
    let (_, without) = app.get(&format!("/v1/decisions/{id}"), AUDITOR_KEY).await;
    let signals = &without["evidence"]["risk_signals"];
    assert!(signals.is_object(), "{without}");
    assert!(signals.get("device_latitude").is_none(), "{signals}");
    assert!(signals.get("device_longitude").is_none(), "{signals}");
    let (_, with) = app
        .get(&format!("/v1/decisions/{id}"), AUDITOR_PII_KEY)
        .await;
    assert_eq!(
        with["evidence"]["risk_signals"]["device_latitude"],
        json!(-23.56)
    );
    app.stop().await;
}

#[tokio::test]
async fn what_a_provider_echoes_reaches_no_response_timeline_or_decision() {
    let echo = "Maria Teste da Silva 111.444.777-35";
    let fake = device_support::Fake::start(
        device_support::QitechScript {
            device: json!({"device_id": "dev-1", "status": "registered",
                           "analysis_status": "automatically_approved",
                           "reason": format!("ok {echo}"), "reason_description": echo}),
            ..Default::default()
        },
        0,
    )
    .await;
    let app = TestApp::with_fakes(&fake.qitech_url(), &fake.zro_url(), &[]).await;
    let response = app
        .onboard(&key(), &onboarding_body("111.444.777-35"), Some(10))
        .await;
    assert_eq!(response.status(), 200);
    let view = response.text().await.unwrap();
    assert!(!view.contains("Maria"), "{view}");
    let (_, page) = app.get("/v1/decisions", AUDITOR_PII_KEY).await;
    let id = page["items"][0]["id"].as_str().unwrap().to_owned();
    let (_, explained) = app.get(&format!("/v1/decisions/{id}"), AUDITOR_KEY).await;
    assert!(
        !explained["evidence"].to_string().contains("Maria"),
        "{explained}"
    );
    assert!(!explained["timeline"].to_string().contains("Maria"));
    for (table, column) in [
        ("decisions", "evidence::text"),
        ("onboarding_events", "detail::text"),
        ("device_registrations", "coalesce(registration::text, '')"),
        ("steps", "coalesce(last_error, '')"),
    ] {
        let leaked: i64 = sqlx::query_scalar(&format!(
            "SELECT count(*) FROM {table} WHERE {column} LIKE '%Maria%'"
        ))
        .fetch_one(&app.db)
        .await
        .unwrap();
        assert_eq!(leaked, 0, "{table}");
    }
    app.stop().await;
}

/// A service with a pool of two connections that a request waits for at most 500 ms, and no
/// runners.
async fn two_connections_half_a_second() -> TestApp {
    TestApp::spawn_with(&[
        ("database.max_connections", "2"),
        ("database.acquire_timeout", "500ms"),
        ("jobs.enabled", "false"),
    ])
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

/// How many reads `caller` left in the access record under `endpoint`.
async fn access_records(app: &TestApp, caller: &str, endpoint: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM audit_searches WHERE caller = $1 AND endpoint = $2")
        .bind(caller)
        .bind(endpoint)
        .fetch_one(&app.db)
        .await
        .unwrap()
}

#[tokio::test]
async fn every_read_of_a_review_case_leaves_an_access_record() {
    let app = TestApp::spawn().await;
    // A sync review: the case opens with the decision.
    let id = app
        .start_onboarding(&onboarding_body("900.000.002-56"))
        .await;
    app.until_decided(&id, Duration::from_secs(10)).await;
    let (status, cases) = app.get("/v1/reviews", AUDITOR_PII_KEY).await;
    assert_eq!(status, 200, "{cases}");
    let case = cases["items"][0]["id"].as_str().expect("a case").to_owned();
    let (status, shown) = app
        .get(&format!("/v1/reviews/{case}"), AUDITOR_PII_KEY)
        .await;
    assert_eq!(status, 200, "{shown}");
    assert_eq!(
        shown["decision"]["cpf"], "900.000.002-56",
        "a pii:read key sees the whole CPF: {shown}"
    );
    let session = app.console_session(AUDITOR_PII_KEY).await;
    let (status, html) = app
        .console_get(&session, &format!("/console/reviews/{case}"))
        .await;
    assert_eq!(status, 200);
    assert!(html.contains("900.000.002-56"));

    let caller = "sandbox-auditor-pii";
    for endpoint in [
        "GET /v1/reviews",
        "GET /v1/reviews/{id}",
        "console /console/reviews/{id}",
    ] {
        assert_eq!(
            access_records(&app, caller, endpoint).await,
            1,
            "{endpoint} is recorded"
        );
    }
    let (_, log) = app.get("/v1/audit-searches", AUDITOR_KEY).await;
    assert!(
        log["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["endpoint"] == "GET /v1/reviews/{id}" && i["filters"]["case_id"] == case),
        "{log}"
    );
    app.stop().await;
}

#[tokio::test]
async fn console_sessions_spend_their_keys_rate() {
    let app = TestApp::spawn_with(&[("api.rate_per_second", "1"), ("api.rate_burst", "3")]).await;
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
    let app = TestApp::spawn_with(&[("api.max_replays", "1")]).await;
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
