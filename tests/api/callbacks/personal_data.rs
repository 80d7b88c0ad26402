//! The person's words in callbacks (the statement, the answer to the person): sealed in the
//! outbox and erased by retention.

use super::*;

/// A receiver, a service that erases personal data a day after the decision, and an onboarding
/// it rejected (identity not confirmed).
async fn rejected_with_retention() -> (Receiver, TestApp, String) {
    let (receiver, url) = Receiver::start(vec![]).await;
    let app = app_for(&url, &[("retention.pii_days", "1")]).await;
    let response = app
        .onboard(&key(), &onboarding_body("900.000.006-80"), Some(10))
        .await;
    let view: Value = response.json().await.unwrap();
    assert_eq!(view["outcome"], "rejected", "{view}");
    let id = view["id"].as_str().unwrap().to_owned();
    (receiver, app, id)
}

#[tokio::test]
async fn the_persons_statement_is_sealed_in_the_outbox_and_erased_by_retention() {
    let (receiver, app, id) = rejected_with_retention().await;
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
    let (receiver, app, id) = rejected_with_retention().await;
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
