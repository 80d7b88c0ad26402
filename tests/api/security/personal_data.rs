//! What providers said and where the phone was: kept no longer and shown no wider than needed.

use super::*;

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
    let app = TestApp::builder()
        .config(&[("retention.pii_days", "1")])
        .spawn()
        .await;
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
    let app = TestApp::builder()
        .device_fakes(&fake.qitech_url(), &fake.zro_url())
        .spawn()
        .await;
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
