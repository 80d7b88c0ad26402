//! What an attacker or an auditor would try: searching by CPF without `pii:read`, reading who
//! searched for what, NUL characters anywhere, wrong content types, forged webhooks piling up.

use crate::device_support;

use crate::common::*;
use std::time::Duration;

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

const AUDITOR_PII_KEY: &str = "vrd_sandbox_auditor_pii";
/// A sandbox CPF whose unico process finishes after `sandbox.processing_delay`, then approves.
const ASYNC_APPROVED: &str = "900.000.007-60";

#[tokio::test]
async fn a_cpf_search_needs_pii_read_and_every_search_is_recorded() {
    let app = TestApp::spawn().await;
    let counted = || async {
        let text = app
            .http
            .get(app.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix("veredito_audit_searches_total "))
            .and_then(|v| v.parse::<f64>().ok())
            .expect("the audit-search counter")
    };
    let before = counted().await;
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
    // The published counter counts them too (other tests of this process may add to it).
    assert!(
        counted().await > before,
        "veredito_audit_searches_total counts searches"
    );
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
async fn connections_past_the_cap_get_health_from_the_reserve_and_503_for_the_rest() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = TestApp::spawn_with(&[
        ("server.max_connections", "3"),
        ("server.header_timeout", "1s"),
    ])
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
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = TestApp::spawn_with(&[
        ("server.max_connections", "100"),
        ("server.header_timeout", "2s"),
        ("server.idle_timeout", "3s"),
    ])
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
async fn retention_erases_the_phones_coordinates_from_the_decision_too() {
    let app = TestApp::spawn_with(&[("retention.pii_days", "1")]).await;
    let mut body = onboarding_body("111.444.777-35");
    body["device"]["risk_signals"]["device_latitude"] = json!(-23.561414);
    body["device"]["risk_signals"]["device_longitude"] = json!(-46.656562);
    let response = app.onboard(&key(), &body, Some(10)).await;
    let view: Value = response.json().await.unwrap();
    assert_eq!(view["outcome"], "approved", "{view}");
    let id = view["id"].as_str().unwrap().to_owned();
    let evidence = || async {
        sqlx::query_scalar::<_, Value>(
            "SELECT evidence FROM decisions WHERE onboarding_id = $1::uuid",
        )
        .bind(&id)
        .fetch_one(&app.db)
        .await
        .unwrap()
    };
    let before = evidence().await;
    assert_eq!(before["risk_signals"]["device_latitude"], json!(-23.56));

    decided_days_ago(&app.db, &id, 2).await;
    assert_eq!(app.retention_pass().await, 1);
    // Gone from the decision's record, and from every other row, whatever its precision.
    let after = evidence().await;
    let signals = after["risk_signals"].as_object().unwrap();
    assert!(!signals.contains_key("device_latitude"), "{after}");
    assert!(!signals.contains_key("device_longitude"), "{after}");
    let held: Vec<String> = all_rows_as_text(&app.db)
        .await
        .into_iter()
        .filter(|(_, row)| {
            ["-23.56", "-46.65", "-46.66"]
                .iter()
                .any(|c| row.contains(c))
        })
        .map(|(table, _)| table)
        .collect();
    assert_eq!(
        held,
        Vec::<String>::new(),
        "rows that still hold the coordinates"
    );
    // The rest of the evidence, and the decision, stay as they were.
    let mut expected = before.clone();
    let kept = expected["risk_signals"].as_object_mut().unwrap();
    kept.remove("device_latitude");
    kept.remove("device_longitude");
    assert_eq!(after, expected);
    let (_, page) = app.get("/v1/decisions", AUDITOR_PII_KEY).await;
    assert_eq!(page["items"][0]["outcome"], "approved");
    assert_eq!(page["items"][0]["reasons"][0]["code"], "identity.confirmed");
    // The decision stays a record: any other change is refused, for the owner too.
    let refused = sqlx::query(
        "UPDATE decisions SET evidence = jsonb_set(evidence, '{risk_signals,os_version}', '\"15\"')",
    )
    .execute(&app.db)
    .await;
    assert!(refused.is_err(), "only the coordinates may be erased");
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

/// What every console answer must carry: pages with personal data are not kept by browsers or
/// proxies, cannot be framed by another site, and load nothing from anywhere else.
fn assert_console_headers(what: &str, response: &reqwest::Response) {
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(header("cache-control"), "no-store", "{what}");
    assert_eq!(header("x-frame-options"), "DENY", "{what}");
    assert_eq!(header("x-content-type-options"), "nosniff", "{what}");
    assert_eq!(header("referrer-policy"), "no-referrer", "{what}");
    let csp = header("content-security-policy");
    for directive in [
        "default-src 'none'",
        "frame-ancestors 'none'",
        "form-action 'self'",
        "base-uri 'none'",
    ] {
        assert!(csp.contains(directive), "{what}: {directive} in {csp:?}");
    }
    assert!(!csp.contains("unsafe-inline"), "{what}: {csp}");
}

#[tokio::test]
async fn every_console_answer_forbids_caching_framing_and_outside_content() {
    let app = TestApp::spawn().await;
    let response = app
        .onboard(&key(), &onboarding_body("900.000.019-02"), Some(10))
        .await;
    assert_eq!(response.status(), 200);
    let (_, cases) = app.get("/v1/reviews", "vrd_sandbox_reviewer").await;
    let case = cases["items"][0]["id"].as_str().unwrap().to_owned();
    let anonymous = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for path in ["/console/sign-in", "/console", "/console/reviews"] {
        let response = anonymous.get(app.url(path)).send().await.unwrap();
        assert_console_headers(path, &response);
    }
    let console = ConsoleSession::sign_in(&app, AUDITOR_PII_KEY).await;
    for path in [
        "/console/reviews".to_owned(),
        format!("/console/reviews/{case}"),
        "/console/decisions".to_owned(),
        "/console/policies".to_owned(),
        "/console/lists".to_owned(),
        "/console/subject-requests".to_owned(),
        "/console/fraud-indications".to_owned(),
        format!("/console/reviews/{}", uuid::Uuid::new_v4()),
    ] {
        let response = console.get(&path).await;
        assert_console_headers(&path, &response);
    }
    let case_page = console.get(&format!("/console/reviews/{case}")).await;
    assert_eq!(case_page.status(), 200);
    let html = case_page.text().await.unwrap();
    assert!(
        html.contains("score.uncertain"),
        "the page is the case: {html}"
    );
    assert!(
        !html.contains(" style=\""),
        "no inline style attribute the policy would refuse"
    );
    // A form answer and an error answer too.
    let refused = console
        .post(&format!("/console/reviews/{case}/claim"), &[])
        .await;
    assert_console_headers("a form's answer", &refused);
    let forged = console
        .http
        .post(app.url(&format!("/console/reviews/{case}/release")))
        .header(reqwest::header::COOKIE, &console.cookie)
        .form(&[("csrf", "forged")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    assert_console_headers("a refusal", &forged);
    app.stop().await;
}

#[tokio::test]
async fn a_sign_in_posted_from_another_site_is_refused() {
    let app = TestApp::spawn().await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    // Two sign-in pages shown to this browser: each sets its cookie and holds its token.
    let mut pages = Vec::new();
    for _ in 0..2 {
        let page = http.get(app.url("/console/sign-in")).send().await.unwrap();
        let cookie = set_cookie(&page, "veredito_sign_in").expect("a pre-session cookie");
        let token = hidden_field(&page.text().await.unwrap(), "sign_in_token").expect("a token");
        pages.push((cookie, token));
    }
    let (cookie, token) = (pages[0].0.as_str(), pages[0].1.as_str());
    let other_cookie = pages[1].0.as_str();
    /// What the case is, the headers the browser sends, the form's token, the answer.
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], Option<&'a str>, u16);
    let cases: [Case; 6] = [
        // A page of another site posts the attacker's key into the victim's browser (login
        // CSRF): the browser says so, and it carries no token of a console sign-in page.
        (
            "cross-site, no token",
            &[
                ("Sec-Fetch-Site", "cross-site"),
                ("Origin", "https://evil.example"),
            ],
            None,
            403,
        ),
        ("a browser that says nothing, no token", &[], None, 403),
        ("a token without its cookie", &[], Some(token), 403),
        (
            "a token with another page's cookie",
            &[("Cookie", other_cookie)],
            Some(token),
            403,
        ),
        (
            "cross-site with a page's token and cookie",
            &[("Cookie", cookie), ("Sec-Fetch-Site", "cross-site")],
            Some(token),
            403,
        ),
        // The console's own sign-in page, as a browser posts it, opens a session.
        (
            "the console's own page",
            &[("Cookie", cookie), ("Sec-Fetch-Site", "same-origin")],
            Some(token),
            303,
        ),
    ];
    for (what, headers, token, expected) in cases {
        let mut form = vec![("api_key", "vrd_sandbox_reviewer")];
        form.extend(token.map(|t| ("sign_in_token", t)));
        let mut request = http.post(app.url("/console/sign-in")).form(&form);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), expected, "{what}");
        assert_eq!(
            set_cookie(&response, "veredito_console").is_some(),
            expected == 303,
            "{what}: a session opened only by the console's own page"
        );
    }
    app.stop().await;
}

/// Starts the service on `database` connected as `role`, as production should run it: the
/// owner migrates, the service does not.
async fn as_app_role(
    database: &std::sync::Arc<TestDatabase>,
    role: &AppRole,
    extra: &[(&str, &str)],
) -> TestApp {
    let mut all = vec![
        ("database.url", role.url.as_str()),
        ("database.migrate_on_start", "false"),
        ("database.create_if_missing", "false"),
    ];
    all.extend_from_slice(extra);
    TestApp::spawn_on_with(database, &all).await
}

#[tokio::test]
async fn the_app_role_may_change_only_what_legitimately_changes() {
    let owner = TestApp::spawn().await;
    // A resolved case, its provider calls and a published version to try to rewrite.
    let response = owner
        .onboard(&key(), &onboarding_body("900.000.019-02"), Some(10))
        .await;
    let view: Value = response.json().await.unwrap();
    let id = view["id"].as_str().unwrap().to_owned();
    let (_, cases) = owner.get("/v1/reviews", "vrd_sandbox_reviewer").await;
    let case = cases["items"][0]["id"].as_str().unwrap().to_owned();
    for (path, body) in [
        (format!("/v1/reviews/{case}/claim"), json!(null)),
        (
            format!("/v1/reviews/{case}/resolution"),
            json!({"outcome": "rejected", "note": "outra pessoa"}),
        ),
    ] {
        let (status, answer) = owner.post_json(&path, "vrd_sandbox_reviewer", &body).await;
        assert_eq!(status, 200, "{path}: {answer}");
    }
    let role = AppRole::create(&owner.db, &owner.db_url).await;
    let mut app = role.connect().await;
    let mut outcomes = Vec::new();
    for statement in [
        // The provider-call log is a record: retention erases through its function.
        "UPDATE provider_calls SET error = 'rewritten'".to_owned(),
        "UPDATE provider_calls SET request = NULL, response = NULL".to_owned(),
        "UPDATE provider_calls SET http_status = 200".to_owned(),
        // A case's resolution, its decision and the person's statement are written once.
        format!("UPDATE review_cases SET resolution_outcome = 'approved' WHERE id = '{case}'"),
        format!("UPDATE review_cases SET resolution_reviewer = 'someone' WHERE id = '{case}'"),
        format!(
            "UPDATE review_cases SET resolution_note = 'x', resolved_at = now() WHERE id = '{case}'"
        ),
        format!(
            "UPDATE review_cases SET resolution_decision_id = gen_random_uuid() WHERE id = '{case}'"
        ),
        format!(
            "UPDATE review_cases SET decision_id = decision_id, opened_by = 'policy' WHERE id = '{case}'"
        ),
        format!("UPDATE review_cases SET statement_ciphertext = '\\x00' WHERE id = '{case}'"),
        // The four-eyes record of a policy version.
        "UPDATE policy_versions SET created_by = 'sandbox-risk-2'".to_owned(),
        "UPDATE policy_versions SET published_by = 'sandbox-risk'".to_owned(),
        "UPDATE policy_versions SET published_at = now()".to_owned(),
        // A signed event's body.
        "UPDATE callbacks SET body = '{}'".to_owned(),
    ] {
        let result = sqlx::query(&statement).execute(&mut app).await;
        outcomes.push((
            statement,
            result.map(|r| r.rows_affected()).map_err(|e| e.to_string()),
        ));
    }
    // What is left to the role by its privileges is still held by triggers: a resolved case
    // does not go back to the queue, and the active version changes only by publication.
    let mut by_trigger = Vec::new();
    for statement in [
        format!("UPDATE review_cases SET status = 'open', assignee = NULL WHERE id = '{case}'"),
        "UPDATE policy_versions SET status = 'retired' WHERE status = 'active'".to_owned(),
    ] {
        let result = sqlx::query(&statement).execute(&mut app).await;
        by_trigger.push((
            statement,
            result.map(|r| r.rows_affected()).map_err(|e| e.to_string()),
        ));
    }
    drop(app);
    role.drop(&owner.db).await;
    for (statement, outcome) in outcomes {
        match outcome {
            Err(error) => assert!(
                error.contains("permission denied for table"),
                "{statement}: {error}"
            ),
            Ok(rows) => panic!("{statement}: allowed to the app role ({rows} rows)"),
        }
    }
    for (statement, outcome) in by_trigger {
        match outcome {
            Err(error) => assert!(error.contains("not allowed"), "{statement}: {error}"),
            Ok(rows) => panic!("{statement}: allowed to the app role ({rows} rows)"),
        }
    }
    let (_, after) = owner
        .get(&format!("/v1/reviews/{case}"), "vrd_sandbox_reviewer")
        .await;
    assert_eq!(after["resolution"]["outcome"], "rejected");
    assert_eq!(owner.onboarding(&id).await["outcome"], "rejected");
    owner.stop().await;
}

#[tokio::test]
async fn the_service_decides_reviews_publishes_and_erases_as_the_app_role() {
    let owner = TestApp::spawn().await;
    let database = owner.stop_keeping_database().await;
    let admin = sqlx::PgPool::connect(&database.url).await.unwrap();
    let role = AppRole::create(&admin, &database.url).await;
    let app = as_app_role(&database, &role, &[("retention.pii_days", "1")]).await;

    // A decision the policy sends to review, with the phone's coordinates.
    let mut body = onboarding_body("900.000.019-02");
    body["device"]["risk_signals"]["device_latitude"] = json!(-23.561684);
    body["device"]["risk_signals"]["device_longitude"] = json!(-46.655981);
    let response = app.onboard(&key(), &body, Some(10)).await;
    assert_eq!(response.status(), 200);
    let view: Value = response.json().await.unwrap();
    assert_eq!(view["outcome"], "review", "{view}");
    let id = view["id"].as_str().unwrap().to_owned();
    // Reviewed, contested by the person, reviewed again by someone else.
    let (_, cases) = app.get("/v1/reviews", "vrd_sandbox_reviewer").await;
    let case = cases["items"][0]["id"].as_str().unwrap().to_owned();
    let steps = [
        (
            "vrd_sandbox_reviewer",
            format!("/v1/reviews/{case}/claim"),
            json!(null),
        ),
        (
            "vrd_sandbox_reviewer",
            format!("/v1/reviews/{case}/release"),
            json!(null),
        ),
        (
            "vrd_sandbox_reviewer",
            format!("/v1/reviews/{case}/claim"),
            json!(null),
        ),
        (
            "vrd_sandbox_reviewer",
            format!("/v1/reviews/{case}/resolution"),
            json!({"outcome": "rejected", "note": "outra pessoa"}),
        ),
        (
            ONBOARDING_KEY,
            format!("/v1/onboardings/{id}/review-requests"),
            json!({"statement": "era eu"}),
        ),
    ];
    for (key, path, body) in &steps {
        let (status, answer) = app.post_json(path, key, body).await;
        assert!(status == 200 || status == 201, "{path}: {status} {answer}");
    }
    let (_, open) = app
        .get("/v1/reviews?status=open", "vrd_sandbox_reviewer")
        .await;
    let contested = open["items"][0]["id"].as_str().unwrap().to_owned();
    let (status, _) = app
        .post_json(
            &format!("/v1/reviews/{contested}/claim"),
            "vrd_sandbox_reviewer",
            &json!(null),
        )
        .await;
    assert_eq!(status, 403);
    for (path, body) in [
        (format!("/v1/reviews/{contested}/claim"), json!(null)),
        (
            format!("/v1/reviews/{contested}/resolution"),
            json!({"outcome": "retry", "note": "nova captura"}),
        ),
    ] {
        let (status, answer) = app.post_json(&path, "vrd_sandbox_reviewer_2", &body).await;
        assert_eq!(status, 200, "{path}: {answer}");
    }
    assert_eq!(app.onboarding(&id).await["outcome"], "retry");

    // A policy version drafted, shadowed and published under four eyes.
    let draft = json!({"version": "as-app-1", "score_reject_max": -40, "score_approve_min": 45,
        "fraudsters_suspicious": "review",
        "risk_signals": {"is_emulated": "rejected", "is_monkey_runner": "rejected",
                         "is_rooted_device": "review", "is_mock_gps": "review",
                         "is_call_in_progress": "review"},
        "biometrics_deadline": "10m", "device_deadline": "30m"});
    let (status, answer) = app
        .post_json("/v1/policies", "vrd_sandbox_risk", &draft)
        .await;
    assert_eq!(status, 201, "{answer}");
    for (key, path, expected) in [
        ("vrd_sandbox_risk", "/v1/policies/as-app-1/shadow", 200),
        ("vrd_sandbox_risk", "/v1/policies/as-app-1/publish", 403),
        ("vrd_sandbox_risk_2", "/v1/policies/as-app-1/publish", 200),
    ] {
        let (status, answer) = app.post_json(path, key, &json!(null)).await;
        assert_eq!(status, expected, "{key} {path}: {answer}");
    }
    let (_, published) = app.get("/v1/policies/as-app-1", AUDITOR_KEY).await;
    assert_eq!(published["status"], "active", "{published}");
    assert_eq!(published["published_by"], "sandbox-risk-2");

    // Retention, through the functions the owner granted.
    decided_days_ago(&app.db, &id, 2).await;
    sqlx::query("UPDATE provider_calls SET created_at = now() - interval '2 days'")
        .execute(&app.db)
        .await
        .unwrap();
    assert_eq!(app.retention_pass().await, 1);
    let kept: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM provider_calls
          WHERE request IS NOT NULL OR response IS NOT NULL OR error IS NOT NULL",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(kept, 0, "what providers said is erased");
    let statements: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM review_cases WHERE statement_ciphertext IS NOT NULL",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(statements, 0);
    let coordinates: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM decisions WHERE evidence #> '{risk_signals,device_latitude}' IS NOT NULL",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(coordinates, 0, "the decisions keep no coordinates");
    let (_, after) = app
        .get(&format!("/v1/reviews/{contested}"), "vrd_sandbox_reviewer")
        .await;
    assert_eq!(after["resolution"]["outcome"], "retry", "the case stays");
    app.stop().await;
    admin.close().await;
    role.drop(&sqlx::PgPool::connect(&database.url).await.unwrap())
        .await;
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
