//! Policies as versioned data, as a risk team uses them over HTTP: a draft replayed over stored
//! decisions, put in shadow on live traffic, published under four eyes, in force on every
//! replica; and versions that never change.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::*;
use axum::routing::{get, post};
use serde_json::{Value, json};

const RISK: &str = "vrd_sandbox_risk";
const RISK_2: &str = "vrd_sandbox_risk_2";

/// A unico whose every process is final at once, inconclusive on identity, with the risk score
/// the test chose for the person's CPF.
async fn scoring_unico(scores: HashMap<String, i32>) -> String {
    let scores = Arc::new(Mutex::new(scores));
    let router = axum::Router::new()
        .route(
            "/oauth2/token",
            post(|| async {
                axum::Json(json!({"access_token": "t", "expires_in": 3600, "token_type": "Bearer"}))
            }),
        )
        .route(
            "/processes/v1",
            post(move |axum::Json(body): axum::Json<Value>| {
                let scores = scores.clone();
                async move {
                    let cpf = body["subject"]["code"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned();
                    let score = scores.lock().unwrap().get(&cpf).copied().unwrap_or(-90);
                    axum::Json(json!({"id": uuid::Uuid::new_v4().to_string(), "status": 3,
                        "unicoId": {"result": "inconclusive"}, "liveness": 1, "score": score}))
                }
            }),
        )
        .route(
            "/processes/v1/{id}",
            get(|| async { axum::http::StatusCode::NOT_FOUND }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    url
}

/// People numbered 1..; person n's score is `scores[n-1]`.
fn people(scores: &[i32]) -> (Vec<String>, HashMap<String, i32>) {
    let cpfs: Vec<String> = (1..=scores.len() as u32).map(cpf_from).collect();
    let table = cpfs
        .iter()
        .zip(scores)
        .map(|(cpf, score)| (cpf.chars().filter(char::is_ascii_digit).collect(), *score))
        .collect();
    (cpfs, table)
}

async fn app_with_unico(unico: &str) -> TestApp {
    TestApp::builder()
        .config(&[
            ("sandbox.unico_provider", "false"),
            ("unico.base_url", unico),
            ("unico.identity_url", unico),
        ])
        .spawn()
        .await
}

async fn onboard(app: &TestApp, cpf: &str) -> Value {
    let response = app.onboard(&key(), &onboarding_body(cpf), Some(10)).await;
    assert_eq!(response.status(), 200, "{cpf}");
    response.json().await.unwrap()
}

async fn call(app: &TestApp, key: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut request = app.http.post(app.url(path)).bearer_auth(key);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn draft(version: &str, approve_min: i32) -> Value {
    json!({"version": version, "note": "approve from a lower score",
           "score_reject_max": -40, "score_approve_min": approve_min,
           "fraudsters_suspicious": "review",
           "risk_signals": {"is_emulated": "rejected", "is_monkey_runner": "rejected",
                            "is_rooted_device": "review", "is_mock_gps": "review",
                            "is_call_in_progress": "review"},
           "biometrics_deadline": "10m", "device_deadline": "30m"})
}

fn rfc3339(at: chrono::DateTime<chrono::Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

#[tokio::test]
async fn a_draft_replayed_changes_exactly_the_scores_it_moves() {
    let scores = [30, 39, 40, 45, 49, 50, 60];
    let (cpfs, table) = people(&scores);
    let unico = scoring_unico(table).await;
    let app = app_with_unico(&unico).await;
    let from = rfc3339(chrono::Utc::now() - chrono::Duration::seconds(5));
    let mut by_score = HashMap::new();
    for (cpf, score) in cpfs.iter().zip(scores) {
        let view = onboard(&app, cpf).await;
        by_score.insert(view["id"].as_str().unwrap().to_owned(), score);
    }
    let to = rfc3339(chrono::Utc::now() + chrono::Duration::seconds(5));

    // The configuration is the first active version.
    let (status, listed) = app.get("/v1/policies", AUDITOR_KEY).await;
    assert_eq!(status, 200);
    assert_eq!(listed["items"][0]["status"], "active");
    assert_eq!(listed["items"][0]["created_by"], "configuration");

    let (status, created) = call(&app, RISK, "/v1/policies", Some(draft("2026-12-01.1", 40))).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["status"], "draft");
    assert_eq!(created["document"]["score_approve_min"], 40);
    let (status, report) = call(
        &app,
        AUDITOR_KEY,
        "/v1/policies/2026-12-01.1/replay",
        Some(json!({"decided_from": from, "decided_to": to})),
    )
    .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["policy_version"], "2026-12-01.1");
    assert_eq!(report["evaluated"], 7);
    assert_eq!(report["changed"], 3, "{report}");
    assert_eq!(report["by_transition"], json!({"review->approved": 3}));
    let mut moved: Vec<i32> = report["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| by_score[c["onboarding_id"].as_str().unwrap()])
        .collect();
    moved.sort();
    assert_eq!(moved, [40, 45, 49]);
    for change in report["changes"].as_array().unwrap() {
        assert_eq!(
            change["replayed_reasons"],
            json!(["score.low_risk", "device.not_checked"]),
            "approved, with QI Tech still to ask"
        );
    }
    // The active version replays onto itself without a change.
    let active = listed["items"][0]["version"].as_str().unwrap().to_owned();
    let (_, same) = call(
        &app,
        AUDITOR_KEY,
        &format!("/v1/policies/{active}/replay"),
        Some(json!({"decided_from": from, "decided_to": to})),
    )
    .await;
    assert_eq!(
        (same["changed"].as_u64(), same["reasons_changed"].as_u64()),
        (Some(0), Some(0))
    );
    app.stop().await;
}

#[tokio::test]
async fn shadow_publish_under_four_eyes_and_every_replica_follows() {
    let scores = [45, 45, 45, 45, 60, -60, 45, 45];
    let (cpfs, table) = people(&scores);
    let unico = scoring_unico(table).await;
    let app = app_with_unico(&unico).await;
    let replica = app
        .replica(&[
            ("sandbox.unico_provider", "false"),
            ("unico.base_url", &unico),
            ("unico.identity_url", &unico),
        ])
        .await;
    let (status, _) = call(&app, RISK, "/v1/policies", Some(draft("lower-40", 40))).await;
    assert_eq!(status, 201);

    // In shadow: live decisions are the active version's, the shadow's verdict is stored beside.
    let (status, shadowed) = call(&app, RISK, "/v1/policies/lower-40/shadow", None).await;
    assert_eq!(status, 200, "{shadowed}");
    assert_eq!(shadowed["status"], "shadow");
    let from = rfc3339(chrono::Utc::now() - chrono::Duration::seconds(5));
    let mut live = Vec::new();
    for cpf in &cpfs[..6] {
        live.push(onboard(&app, cpf).await);
    }
    let outcomes: Vec<&str> = live
        .iter()
        .map(|v| v["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(
        outcomes,
        [
            "review", "review", "review", "review", "approved", "rejected"
        ]
    );
    let first = &live[0];
    let (_, decisions) = app
        .get(
            &format!(
                "/v1/decisions?reference={}",
                first["reference"].as_str().unwrap()
            ),
            AUDITOR_KEY,
        )
        .await;
    let decision_id = decisions["items"][0]["id"].as_str().unwrap();
    let (_, explained) = app
        .get(&format!("/v1/decisions/{decision_id}"), AUDITOR_KEY)
        .await;
    assert_eq!(explained["outcome"], "review");
    assert_eq!(explained["shadow"]["version"], "lower-40");
    assert_eq!(explained["shadow"]["outcome"], "approved");
    let to = rfc3339(chrono::Utc::now() + chrono::Duration::seconds(5));
    let (status, report) = app
        .get(
            &format!("/v1/policies/lower-40/shadow-report?from={from}&to={to}"),
            AUDITOR_KEY,
        )
        .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["evaluated"], 6);
    let pairs: i64 = report["pairs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["count"].as_i64().unwrap())
        .sum();
    assert_eq!(pairs, 6, "the pairs add up to the decisions evaluated");
    assert_eq!(report["agreed"], 2);
    let moved = report["pairs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["live"] == "review" && p["shadow"] == "approved")
        .unwrap();
    assert_eq!(moved["count"], 4);
    assert_eq!(report["examples"].as_array().unwrap().len(), 4);

    // Four eyes: the key that drafted it may not publish it.
    let (status, _) = call(&app, RISK, "/v1/policies/lower-40/publish", None).await;
    assert_eq!(status, 403);
    let (status, published) = call(&app, RISK_2, "/v1/policies/lower-40/publish", None).await;
    assert_eq!(status, 200, "{published}");
    assert_eq!(published["status"], "active");
    assert_eq!(published["published_by"], "sandbox-risk-2");
    let next = onboard(&app, &cpfs[6]).await;
    assert_eq!(next["outcome"], "approved", "{next}");
    assert_eq!(next["policy_version"], "lower-40");
    // The other replica follows within a second.
    let started = tokio::time::Instant::now();
    loop {
        let on_replica = {
            let response = replica
                .onboard(&key(), &onboarding_body(&cpfs[7]), Some(10))
                .await;
            response.json::<Value>().await.unwrap()
        };
        if on_replica["policy_version"] == "lower-40" {
            assert_eq!(on_replica["outcome"], "approved");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "the replica still decides under {}",
            on_replica["policy_version"]
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (_, listed) = app.get("/v1/policies", AUDITOR_KEY).await;
    let statuses: Vec<(&str, &str)> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["version"].as_str().unwrap(),
                p["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert!(statuses.contains(&("lower-40", "active")), "{statuses:?}");
    assert_eq!(
        statuses.iter().filter(|(_, s)| *s == "retired").count(),
        1,
        "the configuration's version is retired: {statuses:?}"
    );
    replica.stop().await;
    app.stop().await;
}

#[tokio::test]
async fn versions_never_change_and_invalid_documents_name_their_field() {
    let app = TestApp::spawn().await;
    let (status, _) = call(&app, RISK, "/v1/policies", Some(draft("fixed-1", 45))).await;
    assert_eq!(status, 201);
    let (status, _) = call(&app, RISK_2, "/v1/policies/fixed-1/publish", None).await;
    assert_eq!(status, 200);
    // The same version again: refused, whatever it says.
    let (status, problem) = call(&app, RISK, "/v1/policies", Some(draft("fixed-1", 60))).await;
    assert_eq!(status, 409, "{problem}");
    let (_, stored) = app.get("/v1/policies/fixed-1", AUDITOR_KEY).await;
    assert_eq!(stored["document"]["score_approve_min"], 45);
    // Not even by hand in the database.
    let refused = sqlx::query(
        "UPDATE policy_versions SET document = jsonb_set(document, '{score_approve_min}', '1') WHERE version = 'fixed-1'",
    )
    .execute(&app.db)
    .await;
    assert!(refused.is_err());
    // An active version cannot go back into shadow or be published again.
    let (status, _) = call(&app, RISK, "/v1/policies/fixed-1/shadow", None).await;
    assert_eq!(status, 409);

    for (change, field) in [
        (json!({"score_approve_min": -50}), "score_approve_min"),
        (
            json!({"fraudsters_suspicious": "approved"}),
            "fraudsters_suspicious",
        ),
        (
            json!({"risk_signals": {"is_rooted_device": "approved"}}),
            "risk_signals.is_rooted_device",
        ),
        (json!({"device_deadline": "later"}), "device_deadline"),
    ] {
        let mut document = draft("bad-1", 50);
        for (k, v) in change.as_object().unwrap() {
            document[k] = v.clone();
        }
        let (status, problem) = call(&app, RISK, "/v1/policies", Some(document)).await;
        assert_eq!(status, 422, "{problem}");
        assert_eq!(problem["errors"][0]["field"], field, "{problem}");
    }
    let (status, _) = call(&app, AUDITOR_KEY, "/v1/policies", Some(draft("x-1", 50))).await;
    assert_eq!(status, 403, "drafting takes policies:write");
    let (status, _) = app.get("/v1/policies/none-such", AUDITOR_KEY).await;
    assert_eq!(status, 404);
    app.stop().await;
}

#[tokio::test]
async fn a_draft_whose_list_rule_names_no_list_is_refused_naming_the_rule() {
    let app = TestApp::spawn().await;
    let mut document = draft("lists-1", 50);
    document["lists"] = json!([{"list": "blocked_devices", "outcome": "rejected"},
                               {"list": "watched_phones", "outcome": "review"}]);
    let new_list = json!({"name": "blocked_devices", "key": "device_id"});
    let (status, _) = call(&app, RISK, "/v1/lists", Some(new_list)).await;
    assert_eq!(status, 201);

    let (status, problem) = call(&app, RISK, "/v1/policies", Some(document.clone())).await;
    assert_eq!(status, 422, "{problem}");
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["field"].as_str())
        .collect();
    assert_eq!(fields, ["lists[1].list"], "{problem}");
    let (status, _) = app.get("/v1/policies/lists-1", RISK).await;
    assert_eq!(status, 404, "nothing stored");

    // Once the list exists the same document is a draft.
    let new_list = json!({"name": "watched_phones", "key": "phone"});
    let (status, _) = call(&app, RISK, "/v1/lists", Some(new_list)).await;
    assert_eq!(status, 201);
    let (status, drafted) = call(&app, RISK, "/v1/policies", Some(document)).await;
    assert_eq!(status, 201, "{drafted}");
    app.stop().await;
}
