//! Human review over HTTP, as reviewers and the onboarding backend use it: cases opened by the
//! policy and by the person's request, claims, releases, resolutions, the reviewer's decision
//! beside the untouched automatic one, and the overdue queue.

use std::time::Duration;

use crate::common::*;
use reqwest::Response;
use serde_json::{Value, json};

const REVIEWER: &str = "vrd_sandbox_reviewer";
const REVIEWER_2: &str = "vrd_sandbox_reviewer_2";
const LIMIT: Duration = Duration::from_secs(15);

/// An onboarding decided `review` by the policy (score 20) and its id.
async fn reviewed(app: &TestApp) -> String {
    decided(app, "900.000.019-02", "review").await
}

async fn decided(app: &TestApp, cpf: &str, outcome: &str) -> String {
    let response = app.onboard(&key(), &onboarding_body(cpf), Some(10)).await;
    assert_eq!(response.status(), 200, "{cpf}");
    let view: Value = response.json().await.unwrap();
    assert_eq!(view["outcome"], outcome, "{view}");
    view["id"].as_str().unwrap().to_owned()
}

async fn post(app: &TestApp, key: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut request = app.http.post(app.url(path)).bearer_auth(key);
    if let Some(body) = body {
        request = request.json(&body);
    }
    answer(request.send().await.unwrap()).await
}

async fn answer(response: Response) -> (u16, Value) {
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn case_of(app: &TestApp, onboarding_id: &str) -> Value {
    let (status, page) = app.get("/v1/reviews", REVIEWER).await;
    assert_eq!(status, 200, "{page}");
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["onboarding_id"] == onboarding_id)
        .cloned()
        .unwrap_or_else(|| panic!("no case for {onboarding_id}: {page}"))
}

#[tokio::test]
async fn a_review_verdict_opens_a_case_in_the_queue() {
    let app = TestApp::spawn().await;
    let id = reviewed(&app).await;
    let case = case_of(&app, &id).await;
    assert_eq!(case["status"], "open");
    assert_eq!(case["opened_by"], "policy");
    assert_eq!(case["reasons"], json!(["score.uncertain"]));
    assert_eq!(case["assignee"], Value::Null);
    assert_eq!(case["resolution"], Value::Null);
    let opened = chrono::DateTime::parse_from_rfc3339(case["opened_at"].as_str().unwrap()).unwrap();
    let due = chrono::DateTime::parse_from_rfc3339(case["due_at"].as_str().unwrap()).unwrap();
    assert_eq!((due - opened).num_hours(), 24, "review.sla");
    // The case explains the decision it is about; auditors may read it too.
    let path = format!("/v1/reviews/{}", case["id"].as_str().unwrap());
    let (status, full) = app.get(&path, AUDITOR_KEY).await;
    assert_eq!(status, 200, "{full}");
    assert_eq!(full["decision"]["outcome"], "review");
    assert!(full["decision"]["evaluations"].is_array(), "{full}");
    assert!(full["decision"]["timeline"].is_array(), "{full}");
    // An approved onboarding opens none.
    decided(&app, "900.000.001-75", "approved").await;
    let (_, page) = app.get("/v1/reviews", REVIEWER).await;
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn a_subject_request_opens_a_case_once_and_only_on_a_decided_onboarding() {
    let app = TestApp::builder()
        .config(&[("sandbox.processing_delay", "3s")])
        .spawn()
        .await;
    let rejected = decided(&app, "900.000.006-80", "rejected").await;
    let path = format!("/v1/onboardings/{rejected}/review-requests");
    let statement = json!({"statement": "Sou eu mesmo, a foto estava escura."});
    let (status, case) = post(&app, ONBOARDING_KEY, &path, Some(statement.clone())).await;
    assert_eq!(status, 201, "{case}");
    assert_eq!(case["opened_by"], "subject_request");
    assert_eq!(case["statement"], "Sou eu mesmo, a foto estava escura.");
    assert_eq!(case["reasons"], json!(["identity.not_confirmed"]));
    // Asked again: the open case, not a second one.
    let (status, again) = post(&app, ONBOARDING_KEY, &path, None).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["id"], case["id"]);
    // The statement is personal data: sealed at rest, shown to reviewers, hidden from auditors
    // without pii:read.
    let stored: Option<Vec<u8>> =
        sqlx::query_scalar("SELECT statement_ciphertext FROM review_cases WHERE id = $1::uuid")
            .bind(case["id"].as_str().unwrap())
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert!(!String::from_utf8_lossy(&stored.unwrap()).contains("foto"));
    let (_, for_auditor) = app
        .get(
            &format!("/v1/reviews/{}", case["id"].as_str().unwrap()),
            AUDITOR_KEY,
        )
        .await;
    assert_eq!(for_auditor["statement"], Value::Null);

    // Still processing: nothing to review yet.
    let processing = app
        .start_onboarding(&onboarding_body("900.000.007-60"))
        .await;
    let (status, problem) = post(
        &app,
        ONBOARDING_KEY,
        &format!("/v1/onboardings/{processing}/review-requests"),
        None,
    )
    .await;
    assert_eq!(status, 409, "{problem}");
    let (status, _) = post(
        &app,
        ONBOARDING_KEY,
        &format!("/v1/onboardings/{}/review-requests", uuid::Uuid::new_v4()),
        None,
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = post(&app, REVIEWER, &path, None).await;
    assert_eq!(status, 403, "the onboarding backend's scope");
    let long = json!({"statement": "x".repeat(2001)});
    let (status, problem) = post(&app, ONBOARDING_KEY, &path, Some(long)).await;
    assert_eq!(status, 422);
    assert_eq!(problem["errors"][0]["field"], "statement");
    app.stop().await;
}

#[tokio::test]
async fn two_reviewers_claim_at_once_and_one_wins() {
    let app = TestApp::spawn().await;
    let id = reviewed(&app).await;
    let case = case_of(&app, &id).await;
    let claim = format!("/v1/reviews/{}/claim", case["id"].as_str().unwrap());
    let (first, second) = tokio::join!(
        post(&app, REVIEWER, &claim, None),
        post(&app, REVIEWER_2, &claim, None)
    );
    let mut statuses = [first.0, second.0];
    statuses.sort();
    assert_eq!(statuses, [200, 409], "{first:?} {second:?}");
    let (winner_key, loser_key, winner) = if first.0 == 200 {
        (REVIEWER, REVIEWER_2, first.1)
    } else {
        (REVIEWER_2, REVIEWER, second.1)
    };
    assert_eq!(winner["status"], "claimed");
    // Claiming again is harmless for the holder.
    let (status, _) = post(&app, winner_key, &claim, None).await;
    assert_eq!(status, 200);
    // Nobody else may release or resolve it.
    let case_path = format!("/v1/reviews/{}", case["id"].as_str().unwrap());
    let (status, _) = post(&app, loser_key, &format!("{case_path}/release"), None).await;
    assert_eq!(status, 403);
    let resolution = json!({"outcome": "rejected", "note": "not my case"});
    let (status, _) = post(
        &app,
        loser_key,
        &format!("{case_path}/resolution"),
        Some(resolution),
    )
    .await;
    assert_eq!(status, 403);
    // Released, it is anyone's again.
    let (status, released) = post(&app, winner_key, &format!("{case_path}/release"), None).await;
    assert_eq!(status, 200);
    assert_eq!(released["status"], "open");
    assert_eq!(released["assignee"], Value::Null);
    let (status, _) = post(&app, loser_key, &claim, None).await;
    assert_eq!(status, 200);
    let events = app.events(&id).await;
    for kind in ["review_opened", "review_claimed", "review_released"] {
        assert!(events.contains(&kind.to_owned()), "{kind}: {events:?}");
    }
    app.stop().await;
}

#[tokio::test]
async fn an_approval_registers_the_device_and_keeps_both_decisions() {
    let app = TestApp::spawn().await;
    let id = reviewed(&app).await;
    let automatic = app.onboarding(&id).await;
    assert_eq!(automatic["decided_by"], "policy");
    let case = case_of(&app, &id).await;
    let case_path = format!("/v1/reviews/{}", case["id"].as_str().unwrap());
    let automatic_decision = case["decision_id"].as_str().unwrap().to_owned();
    assert_eq!(app.calls(&id, "qitech", "register_device").await, 0);

    let (status, _) = post(&app, REVIEWER, &format!("{case_path}/claim"), None).await;
    assert_eq!(status, 200);
    let bad = json!({"outcome": "maybe", "note": ""});
    let (status, problem) = post(
        &app,
        REVIEWER,
        &format!("{case_path}/resolution"),
        Some(bad),
    )
    .await;
    assert_eq!(status, 422);
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["outcome", "note"]);
    let resolution = json!({"outcome": "approved", "note": "Selfie conferida com o documento."});
    let (status, resolved) = post(
        &app,
        REVIEWER,
        &format!("{case_path}/resolution"),
        Some(resolution.clone()),
    )
    .await;
    assert_eq!(status, 200, "{resolved}");
    assert_eq!(resolved["status"], "resolved");
    assert_eq!(resolved["resolution"]["outcome"], "approved");
    assert_eq!(resolved["resolution"]["reviewer"], "sandbox-reviewer");
    let reviewer_decision = resolved["resolution"]["decision_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, _) = post(
        &app,
        REVIEWER,
        &format!("{case_path}/resolution"),
        Some(resolution),
    )
    .await;
    assert_eq!(status, 409, "resolved once");

    // The device is registered first; then the reviewer's approval is the verdict.
    let view = app.until_decided(&id, LIMIT).await;
    assert_eq!(view["outcome"], "approved", "{view}");
    assert_eq!(view["decided_by"], "reviewer");
    assert_eq!(
        reason_codes(&view),
        ["review.approved", "device.registered"]
    );
    assert_eq!(view["device"]["status"], "registered");
    assert_eq!(app.calls(&id, "qitech", "register_device").await, 1);

    // Both decisions stay: the automatic one unchanged.
    let (status, first) = app
        .get(&format!("/v1/decisions/{automatic_decision}"), AUDITOR_KEY)
        .await;
    assert_eq!(status, 200);
    assert_eq!(first["outcome"], "review");
    assert_eq!(first["decided_by"], "policy");
    assert_eq!(first["reasons"], automatic["reasons"]);
    let (status, second) = app
        .get(&format!("/v1/decisions/{reviewer_decision}"), AUDITOR_KEY)
        .await;
    assert_eq!(status, 200, "{second}");
    assert_eq!(second["outcome"], "approved");
    assert_eq!(second["decided_by"], "reviewer");
    assert_eq!(second["reviewer"], "sandbox-reviewer");
    assert_eq!(second["note"], "Selfie conferida com o documento.");
    let count: i64 =
        sqlx::query_scalar("SELECT count(*) FROM decisions WHERE onboarding_id = $1::uuid")
            .bind(&id)
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(count, 2);
    // In the audit trail: the timeline and the export.
    let events = app.events(&id).await;
    for kind in [
        "review_claimed",
        "review_resolved",
        "device_registration_answered",
    ] {
        assert!(events.contains(&kind.to_owned()), "{kind}: {events:?}");
    }
    let export = app
        .http
        .get(app.url("/v1/decisions/export?format=ndjson"))
        .bearer_auth(AUDITOR_KEY)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let mine: Vec<Value> = export
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|d| d["onboarding_id"] == id.as_str())
        .collect();
    assert_eq!(mine.len(), 2, "{export}");
    assert!(mine.iter().any(|d| d["decided_by"] == "reviewer"));
    app.stop().await;
}

#[tokio::test]
async fn a_rejection_is_decided_at_once_without_qitech() {
    let app = TestApp::spawn().await;
    let id = reviewed(&app).await;
    let case = case_of(&app, &id).await;
    let case_path = format!("/v1/reviews/{}", case["id"].as_str().unwrap());
    post(&app, REVIEWER_2, &format!("{case_path}/claim"), None).await;
    let (status, resolved) = post(
        &app,
        REVIEWER_2,
        &format!("{case_path}/resolution"),
        Some(json!({"outcome": "rejected", "note": "Outra pessoa na selfie."})),
    )
    .await;
    assert_eq!(status, 200, "{resolved}");
    let view = app.onboarding(&id).await;
    assert_eq!(view["status"], "decided");
    assert_eq!(view["outcome"], "rejected");
    assert_eq!(view["decided_by"], "reviewer");
    assert_eq!(reason_codes(&view), ["review.rejected"]);
    assert_eq!(app.calls(&id, "qitech", "register_device").await, 0);
    let (_, resolved_list) = app.get("/v1/reviews?status=resolved", REVIEWER).await;
    assert_eq!(resolved_list["items"].as_array().unwrap().len(), 1);
    let (_, open_list) = app.get("/v1/reviews?status=open", REVIEWER).await;
    assert_eq!(open_list["items"].as_array().unwrap().len(), 0);
    app.stop().await;
}

#[tokio::test]
async fn overdue_cases_are_listed_first_and_counted() {
    // Reads counters of the process's one metrics registry: alone in a process.
    if isolation::own_process(
        module_path!(),
        "overdue_cases_are_listed_first_and_counted",
        isolation::Server::Shared,
    )
    .await
    {
        return;
    }
    let app = TestApp::builder()
        .config(&[("review.sla", "1s")])
        .spawn()
        .await;
    let first = reviewed(&app).await;
    // Wait until the first case is past due, then open a second that is not.
    let started = tokio::time::Instant::now();
    loop {
        let (_, page) = app.get("/v1/reviews?overdue=true", REVIEWER).await;
        if page["items"].as_array().unwrap().len() == 1 {
            assert_eq!(page["items"][0]["onboarding_id"], first.as_str());
            assert_eq!(page["items"][0]["overdue"], true);
            break;
        }
        assert!(started.elapsed() < LIMIT, "never overdue: {page}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let second = reviewed(&app).await;
    let (_, overdue) = app.get("/v1/reviews?overdue=true", REVIEWER).await;
    let ids: Vec<&str> = overdue["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["onboarding_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [first.as_str()], "the new case is not overdue yet");
    // The whole queue, soonest due first, one per page.
    let (_, page) = app.get("/v1/reviews?limit=1", REVIEWER).await;
    assert_eq!(page["items"][0]["onboarding_id"], first.as_str());
    let cursor = page["next_cursor"].as_str().unwrap();
    let (_, next) = app
        .get(&format!("/v1/reviews?limit=1&cursor={cursor}"), REVIEWER)
        .await;
    assert_eq!(next["items"][0]["onboarding_id"], second.as_str());
    assert_eq!(next["next_cursor"], Value::Null);
    let (status, problem) = app.get("/v1/reviews?overdue=maybe", REVIEWER).await;
    assert_eq!(status, 422, "{problem}");
    let metrics = app
        .http
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("veredito_review_cases_overdue 1"),
        "{metrics}"
    );
    assert!(metrics.contains("veredito_review_cases_unresolved 2"));
    app.stop().await;
}

#[tokio::test]
async fn retention_erases_the_statement_with_the_rest() {
    let app = TestApp::builder()
        .config(&[("retention.pii_days", "1")])
        .spawn()
        .await;
    let rejected = decided(&app, "900.000.006-80", "rejected").await;
    let (status, case) = post(
        &app,
        ONBOARDING_KEY,
        &format!("/v1/onboardings/{rejected}/review-requests"),
        Some(json!({"statement": "quero uma revisão"})),
    )
    .await;
    assert_eq!(status, 201);
    decided_days_ago(&app.db, &rejected, 2).await;
    assert_eq!(app.retention_pass().await, 1);
    assert_eq!(
        app.sealed_statement(case["id"].as_str().unwrap()).await,
        None
    );
    let (_, after) = app
        .get(
            &format!("/v1/reviews/{}", case["id"].as_str().unwrap()),
            REVIEWER,
        )
        .await;
    assert_eq!(after["statement"], Value::Null);
    assert_eq!(
        after["reasons"],
        json!(["identity.not_confirmed"]),
        "the case stays"
    );
    app.stop().await;
}

#[tokio::test]
async fn the_reviewer_whose_decision_is_contested_may_not_review_the_request() {
    let app = TestApp::spawn().await;
    let id = reviewed(&app).await;
    let first = case_of(&app, &id).await["id"].as_str().unwrap().to_owned();
    // sandbox-reviewer rejects the onboarding the policy sent to review.
    let (status, _) = post(&app, REVIEWER, &format!("/v1/reviews/{first}/claim"), None).await;
    assert_eq!(status, 200);
    let (status, _) = post(
        &app,
        REVIEWER,
        &format!("/v1/reviews/{first}/resolution"),
        Some(json!({"outcome": "rejected", "note": "selfie de outra pessoa"})),
    )
    .await;
    assert_eq!(status, 200);
    // The person contests that decision (LGPD Art. 20).
    let (status, contested) = post(
        &app,
        ONBOARDING_KEY,
        &format!("/v1/onboardings/{id}/review-requests"),
        Some(json!({"statement": "fui eu mesma"})),
    )
    .await;
    assert_eq!(status, 201, "{contested}");
    assert_eq!(contested["opened_by"], "subject_request");
    let case = contested["id"].as_str().unwrap().to_owned();

    // The reviewer who made it may not claim the case: a 403 that says why.
    let response = app
        .http
        .post(app.url(&format!("/v1/reviews/{case}/claim")))
        .bearer_auth(REVIEWER)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let problem: Value = response.json().await.unwrap();
    assert_eq!(
        problem["type"], "/problems/separation-of-duties",
        "{problem}"
    );
    let detail = problem["detail"].as_str().unwrap();
    assert!(
        detail.contains("contest") && detail.contains("another reviewer"),
        "{detail}"
    );
    let (_, still) = app.get(&format!("/v1/reviews/{case}"), REVIEWER).await;
    assert_eq!(still["status"], "open", "nobody holds it");

    // Nor through the console.
    let console = ConsoleSession::sign_in(&app, REVIEWER).await;
    let refused = console
        .post(&format!("/console/reviews/{case}/claim"), &[])
        .await;
    assert_eq!(refused.status(), 303);
    let page = console
        .get(refused.headers()["location"].to_str().unwrap())
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("you made the decision this person contests"),
        "{page}"
    );
    assert!(
        !page.contains("id=\"claim\""),
        "no Claim button for them: {page}"
    );
    let (_, still) = app.get(&format!("/v1/reviews/{case}"), REVIEWER).await;
    assert_eq!(still["status"], "open");

    // A case the same reviewer held from before this rule cannot be resolved by them either.
    sqlx::query(
        "UPDATE review_cases SET status = 'claimed', assignee = 'sandbox-reviewer', claimed_at = now()
          WHERE id = $1::uuid",
    )
    .bind(&case)
    .execute(&app.db)
    .await
    .unwrap();
    let (status, problem) = post(
        &app,
        REVIEWER,
        &format!("/v1/reviews/{case}/resolution"),
        Some(json!({"outcome": "rejected", "note": "mantenho"})),
    )
    .await;
    assert_eq!(status, 403, "{problem}");
    assert_eq!(problem["type"], "/problems/separation-of-duties");
    let (status, _) = post(&app, REVIEWER, &format!("/v1/reviews/{case}/release"), None).await;
    assert_eq!(status, 200, "giving it back is allowed");

    // Another reviewer takes it and decides.
    let (status, claimed) =
        post(&app, REVIEWER_2, &format!("/v1/reviews/{case}/claim"), None).await;
    assert_eq!(status, 200, "{claimed}");
    let (status, resolved) = post(
        &app,
        REVIEWER_2,
        &format!("/v1/reviews/{case}/resolution"),
        Some(json!({"outcome": "rejected", "note": "confirmo a rejeição"})),
    )
    .await;
    assert_eq!(status, 200, "{resolved}");
    assert_eq!(resolved["resolution"]["reviewer"], "sandbox-reviewer-2");
    app.stop().await;
}

#[tokio::test]
async fn reviewers_keep_a_thread_of_notes_on_a_case_until_it_is_resolved() {
    let app = TestApp::spawn().await;
    let onboarding = reviewed(&app).await;
    let case = case_of(&app, &onboarding).await;
    let notes = format!("/v1/reviews/{}/notes", case["id"].as_str().unwrap());
    for (key, text) in [
        (REVIEWER, "Selfie escura; pedir nova captura?"),
        (REVIEWER_2, "O aparelho aprovou outra pessoa ontem."),
    ] {
        let (status, note) = post(&app, key, &notes, Some(json!({ "text": text }))).await;
        assert_eq!(status, 201, "{note}");
        assert_eq!(note["text"], text);
        assert_eq!(note["kind"], "internal");
    }
    let (status, wrong) = post(&app, REVIEWER, &notes, Some(json!({ "text": "  " }))).await;
    assert_eq!(status, 422, "{wrong}");
    assert_eq!(wrong["errors"][0]["field"], "text");
    // An auditor may not add one.
    let (status, _) = post(&app, AUDITOR_KEY, &notes, Some(json!({ "text": "x" }))).await;
    assert_eq!(status, 403);

    // Oldest first, with who wrote them; the text for reviewers only (and pii:read).
    let (status, thread) = app.get(&notes, REVIEWER).await;
    assert_eq!(status, 200, "{thread}");
    let authors: Vec<&str> = thread["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["author"].as_str().unwrap())
        .collect();
    assert_eq!(authors, ["sandbox-reviewer", "sandbox-reviewer-2"]);
    assert_eq!(
        thread["items"][1]["text"],
        "O aparelho aprovou outra pessoa ontem."
    );
    let (_, seen_by_auditor) = app.get(&notes, AUDITOR_KEY).await;
    assert_eq!(seen_by_auditor["items"][0]["text"], Value::Null);
    assert_eq!(seen_by_auditor["items"][0]["author"], "sandbox-reviewer");

    // A resolved case's thread is closed.
    let path = format!("/v1/reviews/{}", case["id"].as_str().unwrap());
    assert_eq!(
        post(&app, REVIEWER, &format!("{path}/claim"), None).await.0,
        200
    );
    let (status, _) = post(
        &app,
        REVIEWER,
        &format!("{path}/resolution"),
        Some(json!({"outcome": "approved", "note": "Conferido."})),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = post(&app, REVIEWER, &notes, Some(json!({ "text": "depois" }))).await;
    assert_eq!(status, 409);
    app.stop().await;
}
