//! Reviewers' notes on a case, kept as a thread until it is resolved.

use super::*;

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
