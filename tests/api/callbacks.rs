//! Decision callbacks as the onboarding backend receives them: a receiver of the test's own
//! that checks every signature by the Standard Webhooks scheme, written here from the scheme's
//! description (not with veredito's code).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::*;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use base64::Engine;
use serde_json::{Value, json};

/// The signing key's bytes, and the secret as configured.
const KEY: &[u8] = b"veredito-callback-test-key-0123456789";

fn secret() -> String {
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(KEY)
    )
}

#[derive(Debug, Clone)]
struct Delivery {
    id: String,
    kind: String,
    body: Value,
}

/// How the receiver answers the next deliveries; once the script is empty, 204.
#[derive(Clone, Copy, Debug)]
enum Reply {
    Status(u16),
    Hang,
}

#[derive(Clone, Default)]
struct Receiver {
    script: Arc<Mutex<VecDeque<Reply>>>,
    /// Every attempt that carried a valid signature, in order.
    attempts: Arc<Mutex<Vec<Delivery>>>,
    /// Attempts whose signature did not verify.
    forged: Arc<Mutex<usize>>,
}

impl Receiver {
    async fn start(script: Vec<Reply>) -> (Receiver, String) {
        let receiver = Receiver {
            script: Arc::new(Mutex::new(script.into())),
            ..Default::default()
        };
        let shared = receiver.clone();
        let router = axum::Router::new().route(
            "/events",
            post(move |headers: HeaderMap, body: Bytes| {
                let receiver = shared.clone();
                async move { receiver.take(headers, body).await }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/events", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await });
        (receiver, url)
    }

    async fn take(&self, headers: HeaderMap, body: Bytes) -> axum::response::Response {
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        let (id, timestamp, signatures) = (
            header("webhook-id"),
            header("webhook-timestamp"),
            header("webhook-signature"),
        );
        let fresh = timestamp
            .parse::<i64>()
            .is_ok_and(|t| (chrono::Utc::now().timestamp() - t).abs() < 300);
        if !fresh || !verify(&id, &timestamp, &body, &signatures) {
            *self.forged.lock().unwrap() += 1;
            return StatusCode::BAD_REQUEST.into_response();
        }
        let body: Value = serde_json::from_slice(&body).unwrap();
        self.attempts.lock().unwrap().push(Delivery {
            id,
            kind: body["type"].as_str().unwrap_or_default().to_owned(),
            body,
        });
        let reply = self.script.lock().unwrap().pop_front();
        match reply {
            Some(Reply::Status(code)) => StatusCode::from_u16(code).unwrap().into_response(),
            Some(Reply::Hang) => {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                StatusCode::NO_CONTENT.into_response()
            }
            None => StatusCode::NO_CONTENT.into_response(),
        }
    }

    fn attempts(&self) -> Vec<Delivery> {
        self.attempts.lock().unwrap().clone()
    }

    async fn until(&self, what: &str, check: impl Fn(&[Delivery]) -> bool) -> Vec<Delivery> {
        let started = tokio::time::Instant::now();
        loop {
            let seen = self.attempts();
            if check(&seen) {
                return seen;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "{what}: {:?}",
                seen.iter().map(|d| &d.kind).collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Standard Webhooks: HMAC-SHA256 over `{id}.{timestamp}.{body}`, base64, after `v1,`; the
/// header may carry several space-separated signatures.
fn verify(id: &str, timestamp: &str, body: &[u8], header: &str) -> bool {
    let mut signed = Vec::new();
    signed.extend_from_slice(id.as_bytes());
    signed.push(b'.');
    signed.extend_from_slice(timestamp.as_bytes());
    signed.push(b'.');
    signed.extend_from_slice(body);
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, KEY);
    header.split(' ').any(|candidate| {
        candidate
            .strip_prefix("v1,")
            .and_then(|b64| base64::engine::general_purpose::STANDARD.decode(b64).ok())
            .is_some_and(|tag| ring::hmac::verify(&key, &signed, &tag).is_ok())
    })
}

async fn app_for(url: &str, extra: &[(&str, &str)]) -> TestApp {
    let secret = secret();
    let mut all = vec![
        ("callbacks.url", url),
        ("callbacks.secret", secret.as_str()),
        ("callbacks.retry_initial", "100ms"),
        ("callbacks.retry_max", "400ms"),
        ("callbacks.timeout", "2s"),
    ];
    all.extend_from_slice(extra);
    TestApp::builder().config(&all).spawn().await
}

#[tokio::test]
async fn every_event_type_arrives_signed() {
    let (receiver, url) = Receiver::start(vec![]).await;
    let app = app_for(&url, &[]).await;
    // A review verdict: onboarding.decided and review.opened.
    let response = app
        .onboard(&key(), &onboarding_body("900.000.019-02"), Some(10))
        .await;
    let view: Value = response.json().await.unwrap();
    let id = view["id"].as_str().unwrap().to_owned();
    let seen = receiver.until("decided and opened", |s| s.len() >= 2).await;
    let decided = seen
        .iter()
        .find(|d| d.kind == "onboarding.decided")
        .unwrap();
    assert_eq!(decided.body["data"]["id"], id.as_str());
    assert_eq!(decided.body["data"]["outcome"], "review");
    assert_eq!(
        decided.body["data"],
        app.onboarding(&id).await,
        "what GET answers"
    );
    assert!(decided.body["timestamp"].is_string());
    let opened = seen.iter().find(|d| d.kind == "review.opened").unwrap();
    let case_id = opened.body["data"]["id"].as_str().unwrap().to_owned();
    assert_eq!(opened.body["data"]["onboarding_id"], id.as_str());

    // The reviewer rejects: review.resolved and a second onboarding.decided.
    let case = format!("/v1/reviews/{case_id}");
    for (path, body) in [
        (format!("{case}/claim"), None),
        (
            format!("{case}/resolution"),
            Some(json!({"outcome": "rejected", "note": "fraude evidente"})),
        ),
    ] {
        let mut request = app
            .http
            .post(app.url(&path))
            .bearer_auth("vrd_sandbox_reviewer");
        if let Some(body) = body {
            request = request.json(&body);
        }
        assert_eq!(request.send().await.unwrap().status(), 200, "{path}");
    }
    let seen = receiver
        .until("resolved and decided again", |s| s.len() >= 4)
        .await;
    let resolved = seen.iter().find(|d| d.kind == "review.resolved").unwrap();
    assert_eq!(resolved.body["data"]["resolution"]["outcome"], "rejected");
    let by_reviewer = seen
        .iter()
        .filter(|d| d.kind == "onboarding.decided")
        .find(|d| d.body["data"]["decided_by"] == "reviewer")
        .expect("the reviewer's decision is announced");
    assert_eq!(by_reviewer.body["data"]["outcome"], "rejected");

    // A device validation.
    let (status, _, validation) = app
        .validate(
            &key(),
            &json!({"account_id": "acc-1", "person_id": "per-1", "session_id": "scan-2"}),
        )
        .await;
    assert_eq!(status, 200, "{validation}");
    let seen = receiver
        .until("validation", |s| {
            s.iter().any(|d| d.kind == "device_validation.decided")
        })
        .await;
    let validated = seen
        .iter()
        .find(|d| d.kind == "device_validation.decided")
        .unwrap();
    assert_eq!(validated.body["data"]["id"], validation["id"]);
    assert_eq!(validated.body["data"]["outcome"], "approved");
    // One delivery each, every one signed, each with its own id.
    assert_eq!(*receiver.forged.lock().unwrap(), 0);
    let ids: std::collections::BTreeSet<&str> = seen.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(ids.len(), seen.len(), "one webhook-id per event");
    // The receiver may hold the last delivery a moment before veredito records its 2xx.
    let mut delivered = 0;
    for _ in 0..50 {
        let (status, listed) = app.get("/v1/callbacks?status=delivered", AUDITOR_KEY).await;
        assert_eq!(status, 200);
        delivered = listed["items"].as_array().unwrap().len();
        if delivered == seen.len() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(delivered, seen.len());
    app.stop().await;
}

#[tokio::test]
async fn a_failing_receiver_gets_the_same_webhook_id_until_it_answers() {
    let (receiver, url) = Receiver::start(vec![Reply::Status(500), Reply::Status(500)]).await;
    let app = app_for(&url, &[]).await;
    let response = app
        .onboard(&key(), &onboarding_body("900.000.001-75"), Some(10))
        .await;
    assert_eq!(response.status(), 200);
    let seen = receiver.until("three attempts", |s| s.len() >= 3).await;
    assert_eq!(seen.len(), 3);
    assert!(seen.iter().all(|d| d.id == seen[0].id), "{seen:?}");
    assert!(seen.iter().all(|d| d.body == seen[0].body));
    let (_, delivered) = app.get("/v1/callbacks?status=delivered", AUDITOR_KEY).await;
    let started = tokio::time::Instant::now();
    let mut delivered = delivered;
    while delivered["items"].as_array().unwrap().is_empty() {
        assert!(started.elapsed() < Duration::from_secs(5));
        tokio::time::sleep(Duration::from_millis(20)).await;
        delivered = app
            .get("/v1/callbacks?status=delivered", AUDITOR_KEY)
            .await
            .1;
    }
    assert_eq!(delivered["items"][0]["id"], seen[0].id.as_str());
    assert_eq!(delivered["items"][0]["attempts"], 3);
    app.stop().await;
}

#[tokio::test]
async fn undelivered_events_are_delivered_after_a_restart() {
    // The receiver refuses everything at first.
    let (receiver, url) = Receiver::start(vec![Reply::Status(503); 1000]).await;
    let app = app_for(
        &url,
        &[
            ("callbacks.retry_initial", "1s"),
            ("callbacks.retry_max", "1s"),
        ],
    )
    .await;
    let response = app
        .onboard(&key(), &onboarding_body("900.000.001-75"), Some(10))
        .await;
    assert_eq!(response.status(), 200);
    receiver.until("a first attempt", |s| !s.is_empty()).await;
    let app = app.restart().await;
    // Now it takes them.
    receiver.script.lock().unwrap().clear();
    let before = receiver.attempts().len();
    let seen = receiver
        .until("delivered after the restart", |s| s.len() > before)
        .await;
    assert!(seen.iter().all(|d| d.id == seen[0].id));
    let started = tokio::time::Instant::now();
    loop {
        let status: String = sqlx::query_scalar("SELECT status FROM callbacks")
            .fetch_one(&app.db)
            .await
            .unwrap();
        if status == "delivered" {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "{status}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    app.stop().await;
}

#[tokio::test]
async fn a_receiver_that_never_answers_delays_no_decision() {
    let (receiver, url) = Receiver::start(vec![Reply::Hang; 1000]).await;
    let app = app_for(&url, &[("callbacks.timeout", "30s")]).await;
    for _ in 0..20 {
        let started = tokio::time::Instant::now();
        let response = app
            .onboard(&key(), &onboarding_body("900.000.001-75"), Some(10))
            .await;
        assert_eq!(response.status(), 200);
        let view: Value = response.json().await.unwrap();
        assert_eq!(view["outcome"], "approved");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "decided in {:?}",
            started.elapsed()
        );
    }
    // The deliveries are hanging, not lost.
    receiver
        .until("deliveries under way", |s| s.len() >= 16)
        .await;
    let pending: i64 =
        sqlx::query_scalar("SELECT count(*) FROM callbacks WHERE status = 'pending'")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(pending, 20);
    app.stop().await;
}

#[tokio::test]
async fn a_failed_callback_can_be_sent_again() {
    let (receiver, url) = Receiver::start(vec![Reply::Status(410)]).await;
    // Retries stop at once: the first failure is past callbacks.max_age.
    let app = app_for(&url, &[("callbacks.max_age", "1ms")]).await;
    let response = app
        .onboard(&key(), &onboarding_body("900.000.001-75"), Some(10))
        .await;
    assert_eq!(response.status(), 200);
    let started = tokio::time::Instant::now();
    let failed = loop {
        let (_, page) = app.get("/v1/callbacks?status=failed", AUDITOR_KEY).await;
        if let Some(item) = page["items"].as_array().unwrap().first() {
            break item.clone();
        }
        assert!(started.elapsed() < Duration::from_secs(10));
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(failed["last_status"], 410);
    let id = failed["id"].as_str().unwrap();
    let retry = app
        .http
        .post(app.url(&format!("/v1/callbacks/{id}/retry")))
        .bearer_auth(ONBOARDING_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(retry.status(), 200);
    let seen = receiver.until("sent again", |s| s.len() >= 2).await;
    assert_eq!(seen[1].id, id, "the same webhook-id");
    let again = app
        .http
        .post(app.url(&format!("/v1/callbacks/{id}/retry")))
        .bearer_auth(ONBOARDING_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 409, "only a failed one is sent again");
    app.stop().await;
}

#[tokio::test]
async fn the_persons_statement_is_sealed_in_the_outbox_and_erased_by_retention() {
    let (receiver, url) = Receiver::start(vec![]).await;
    let app = app_for(&url, &[("retention.pii_days", "1")]).await;
    let response = app
        .onboard(&key(), &onboarding_body("900.000.006-80"), Some(10))
        .await;
    let view: Value = response.json().await.unwrap();
    assert_eq!(view["outcome"], "rejected", "{view}");
    let id = view["id"].as_str().unwrap().to_owned();
    // The person's own words (LGPD Art. 20), forwarded by the onboarding backend.
    let statement = "Sou eu na selfie, Quitéria Albuquerque, e nunca abri conta em outro banco";
    let (status, case) = app
        .post_json(
            &format!("/v1/onboardings/{id}/review-requests"),
            ONBOARDING_KEY,
            &json!({ "statement": statement }),
        )
        .await;
    assert_eq!(status, 201, "{case}");
    let case_id = case["id"].as_str().unwrap().to_owned();

    // The contract: a review event's data is what GET /v1/reviews/{id} answers, the statement
    // included, so the backend receives it.
    let seen = receiver
        .until("review.opened", |s| {
            s.iter().any(|d| d.kind == "review.opened")
        })
        .await;
    let opened = seen.iter().find(|d| d.kind == "review.opened").unwrap();
    assert_eq!(opened.body["data"]["id"], case_id.as_str());
    assert_eq!(opened.body["data"]["statement"], statement);
    let (_, shown) = app
        .get(&format!("/v1/reviews/{case_id}"), "vrd_sandbox_reviewer")
        .await;
    assert_eq!(shown["statement"], statement);

    // At rest it is nowhere in the clear: not in the outbox, not in any row of any table.
    let words = [statement, "Quitéria", "Albuquerque", "nunca abri conta"];
    let bodies: Vec<String> = sqlx::query_scalar("SELECT body::text FROM callbacks")
        .fetch_all(&app.db)
        .await
        .unwrap();
    assert!(bodies.len() >= 2, "{bodies:?}");
    for body in &bodies {
        for word in words {
            assert!(
                !body.contains(word),
                "{word:?} is in the clear in callbacks.body: {body}"
            );
        }
    }
    let in_the_clear = |rows: &[(String, String)]| {
        rows.iter()
            .filter(|(_, row)| words.iter().any(|w| row.contains(w)))
            .map(|(table, _)| table.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        in_the_clear(&all_rows_as_text(&app.db).await),
        Vec::<String>::new()
    );

    // Retention erases it: the case keeps no sealed copy, and a delivery sent again carries
    // none either.
    decided_days_ago(&app.db, &id, 2).await;
    assert_eq!(app.retention_pass().await, 1);
    assert_eq!(app.sealed_statement(&case_id).await, None);
    assert_eq!(
        in_the_clear(&all_rows_as_text(&app.db).await),
        Vec::<String>::new()
    );
    sqlx::query("UPDATE callbacks SET status = 'failed' WHERE type = 'review.opened'")
        .execute(&app.db)
        .await
        .unwrap();
    let callback: String =
        sqlx::query_scalar("SELECT id::text FROM callbacks WHERE type = 'review.opened'")
            .fetch_one(&app.db)
            .await
            .unwrap();
    let before = receiver.attempts().len();
    let retried = app
        .http
        .post(app.url(&format!("/v1/callbacks/{callback}/retry")))
        .bearer_auth(ONBOARDING_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(retried.status(), 200);
    let seen = receiver.until("sent again", |s| s.len() > before).await;
    let again = seen.last().unwrap();
    assert_eq!(again.id, callback);
    assert_eq!(
        again.body["data"]["statement"],
        Value::Null,
        "{}",
        again.body
    );
    app.stop().await;
}

#[tokio::test]
async fn the_answer_to_the_person_goes_with_review_resolved_sealed_and_erased_by_retention() {
    let (receiver, url) = Receiver::start(vec![]).await;
    let app = app_for(&url, &[("retention.pii_days", "1")]).await;
    let response = app
        .onboard(&key(), &onboarding_body("900.000.006-80"), Some(10))
        .await;
    let view: Value = response.json().await.unwrap();
    let id = view["id"].as_str().unwrap().to_owned();
    let (status, case) = app
        .post_json(
            &format!("/v1/onboardings/{id}/review-requests"),
            ONBOARDING_KEY,
            &json!({}),
        )
        .await;
    assert_eq!(status, 201, "{case}");
    let case_id = case["id"].as_str().unwrap().to_owned();
    // An Art. 20 request has its own deadline: review.subject_request_sla, 15 days.
    let opened: chrono::DateTime<chrono::Utc> =
        case["opened_at"].as_str().unwrap().parse().unwrap();
    let due: chrono::DateTime<chrono::Utc> = case["due_at"].as_str().unwrap().parse().unwrap();
    assert_eq!((due - opened).num_days(), 15, "{case}");
    let (status, _) = app
        .post_json(
            &format!("/v1/reviews/{case_id}/claim"),
            "vrd_sandbox_reviewer",
            &json!({}),
        )
        .await;
    assert_eq!(status, 200);
    let answer = "Revimos a decisão: a selfie não corresponde ao documento de Quitéria Albuquerque";
    let (status, resolved) = app
        .post_json(
            &format!("/v1/reviews/{case_id}/resolution"),
            "vrd_sandbox_reviewer",
            &json!({"outcome": "rejected", "note": "Conferido.", "answer": answer}),
        )
        .await;
    assert_eq!(status, 200, "{resolved}");

    let seen = receiver
        .until("review.resolved", |s| {
            s.iter().any(|d| d.kind == "review.resolved")
        })
        .await;
    let sent = seen.iter().find(|d| d.kind == "review.resolved").unwrap();
    assert_eq!(sent.body["data"]["answer"], answer, "{}", sent.body);
    let opened = seen.iter().find(|d| d.kind == "review.opened").unwrap();
    assert!(
        opened.body["data"].get("answer").is_none(),
        "{}",
        opened.body
    );

    // Nowhere in the clear at rest; retention erases the sealed copy.
    let words = ["Quitéria Albuquerque", "a selfie não corresponde"];
    let clear = |rows: Vec<(String, String)>| {
        rows.into_iter()
            .filter(|(_, row)| words.iter().any(|w| row.contains(w)))
            .map(|(table, _)| table)
            .collect::<Vec<_>>()
    };
    assert_eq!(clear(all_rows_as_text(&app.db).await), Vec::<String>::new());
    decided_days_ago(&app.db, &id, 2).await;
    assert_eq!(app.retention_pass().await, 1);
    let sealed: Option<Vec<u8>> =
        sqlx::query_scalar("SELECT ciphertext FROM review_notes WHERE kind = 'answer'")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(sealed, None, "erased with the onboarding's personal data");

    // An answer goes only with a case the person opened.
    let response = app
        .onboard(&key(), &onboarding_body("900.000.019-02"), Some(10))
        .await;
    let view: Value = response.json().await.unwrap();
    assert_eq!(view["outcome"], "review", "{view}");
    let (_, cases) = app
        .get("/v1/reviews?status=open", "vrd_sandbox_reviewer")
        .await;
    let policy_case = cases["items"][0]["id"].as_str().unwrap().to_owned();
    app.post_json(
        &format!("/v1/reviews/{policy_case}/claim"),
        "vrd_sandbox_reviewer",
        &json!({}),
    )
    .await;
    let (status, refused) = app
        .post_json(
            &format!("/v1/reviews/{policy_case}/resolution"),
            "vrd_sandbox_reviewer",
            &json!({"outcome": "approved", "note": "Ok.", "answer": "Aprovado."}),
        )
        .await;
    assert_eq!(status, 422, "{refused}");
    assert_eq!(refused["errors"][0]["field"], "answer", "{refused}");
    let (_, still) = app
        .get(
            &format!("/v1/reviews/{policy_case}"),
            "vrd_sandbox_reviewer",
        )
        .await;
    assert_eq!(still["status"], "claimed", "the refusal resolved nothing");
    app.stop().await;
}
