//! Claims and resolutions: one of two reviewers claiming at once wins; an approval registers the
//! device beside the untouched automatic decision; a rejection is decided at once.

use super::*;

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
