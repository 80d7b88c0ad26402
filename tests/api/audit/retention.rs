//! Retention erases the personal data of old decisions and keeps the decisions, in batches, on its
//! schedule.

use super::*;

type ErasedRow = (
    Option<String>,
    Option<Vec<u8>>,
    Option<Vec<u8>>,
    Option<DateTime<Utc>>,
    Value,
);

#[tokio::test]
async fn retention_erases_personal_data_and_keeps_the_decision() {
    let h = TestApp::builder()
        .config(&[("retention.pii_days", "30")])
        .spawn()
        .await;
    let expired = h
        .seed(Spec {
            decided_at: Some(Utc::now() - chrono::Duration::days(31)),
            ..Spec::new(1, located(rooted(scored(-60))))
        })
        .await;
    let kept = h
        .seed(Spec {
            decided_at: Some(Utc::now() - chrono::Duration::days(29)),
            ..Spec::new(2, located(scored(60)))
        })
        .await;
    let coordinates = |id: Uuid| {
        let db = h.db.clone();
        async move {
            let device: Value = sqlx::query_scalar("SELECT device FROM onboardings WHERE id = $1")
                .bind(id)
                .fetch_one(&db)
                .await
                .unwrap();
            (
                device["risk_signals"].get("device_latitude").cloned(),
                device["risk_signals"].get("device_longitude").cloned(),
            )
        }
    };
    assert_eq!(
        coordinates(expired.onboarding_id).await,
        (Some(json!(-23.5613)), Some(json!(-46.6565))),
        "stored before retention"
    );
    let path = format!("/v1/decisions/{}", expired.decision_id);
    let before = h.get_json(AUDITOR_PII, &path, &[]).await;
    assert_eq!(before["name"], "Pessoa Auditada 1");

    let erased = veredito::jobs::retention::erase_expired(&h.state, &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(erased, 1);
    assert_eq!(
        veredito::jobs::retention::erase_expired(&h.state, &CancellationToken::new())
            .await
            .unwrap(),
        0
    );

    let row: ErasedRow = sqlx::query_as(
        "SELECT pii_key_id, pii_ciphertext, cpf_hash, pii_erased_at, device FROM onboardings WHERE id = $1",
    )
    .bind(expired.onboarding_id)
    .fetch_one(&h.db)
    .await
    .unwrap();
    let (key_id, sealed, hash, erased_at, device) = row;
    assert_eq!((key_id, sealed, hash), (None, None, None));
    assert!(erased_at.is_some());
    assert!(device["risk_signals"].get("device_latitude").is_none());
    assert_eq!(coordinates(expired.onboarding_id).await, (None, None));
    assert_eq!(
        coordinates(kept.onboarding_id).await,
        (Some(json!(-23.5613)), Some(json!(-46.6565))),
        "a row within retention keeps them"
    );

    // The decision is whole: outcome, reasons, evidence less the coordinates, trace.
    let after = h.get_json(AUDITOR_PII, &path, &[]).await;
    assert_eq!(after["cpf"], Value::Null);
    assert_eq!(after["name"], Value::Null);
    let mut evidence = before["evidence"].clone();
    let signals = evidence["risk_signals"].as_object_mut().unwrap();
    assert!(signals.remove("device_latitude").is_some(), "{before}");
    assert!(signals.remove("device_longitude").is_some());
    assert_eq!(
        after["evidence"], evidence,
        "evidence kept, less the coordinates"
    );
    for field in [
        "outcome",
        "reasons",
        "evaluations",
        "thresholds",
        "policy_version",
        "decided_at",
    ] {
        assert_eq!(after[field], before[field], "{field} kept");
    }
    assert_eq!(after["outcome"], "rejected");
    assert_eq!(
        after["timeline"].as_array().unwrap().last().unwrap()["kind"],
        "pii_erased"
    );
    let masked_view = h.get_json(AUDITOR, &path, &[]).await;
    assert_eq!(masked_view["cpf"], Value::Null);
    // Erased people are no longer found by CPF; the others still are.
    assert!(h.search_ids(&[("cpf", &cpf_from(1))]).await.is_empty());
    assert_eq!(
        h.search_ids(&[("cpf", &cpf_from(2))]).await,
        [kept.decision_id.to_string()]
    );
    assert_eq!(
        h.search_ids(&[("outcome", "rejected")]).await,
        [expired.decision_id.to_string()]
    );
    let (_, csv) = h.export(AUDITOR_PII, &[("format", "csv")]).await;
    assert_eq!(parse_csv(&csv).len(), 3);
    h.stop().await;
}

#[tokio::test]
async fn retention_runs_on_its_schedule_in_batches() {
    let h = TestApp::builder()
        .config(&[("retention.pii_days", "30")])
        .spawn()
        .await;
    let long_ago = Utc::now() - chrono::Duration::days(40);
    for n in 0..5 {
        h.seed(Spec {
            decided_at: Some(long_ago),
            ..Spec::new(n, scored(60))
        })
        .await;
    }
    let recent = h.seed(Spec::new(9, scored(60))).await;
    // Batches of two: five rows take three statements, the last one short.
    let (erased, statements) =
        veredito::jobs::retention::erase_expired_by(&h.state, 2, &CancellationToken::new())
            .await
            .unwrap();
    assert_eq!((erased, statements), (5, 3));

    // On its schedule: more rows fall due, and the job erases them without being called.
    for n in 10..13 {
        h.seed(Spec {
            decided_at: Some(long_ago),
            ..Spec::new(n, scored(60))
        })
        .await;
    }
    let stop = CancellationToken::new();
    let job = tokio::spawn(veredito::jobs::retention::run(
        h.state.clone(),
        Duration::from_millis(100),
        stop.clone(),
    ));
    let started = tokio::time::Instant::now();
    loop {
        let left: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM onboardings WHERE pii_erased_at IS NULL AND decided_at < now() - interval '30 days'",
        )
        .fetch_one(&h.db)
        .await
        .unwrap();
        if left == 0 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{left} rows still due"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.cancel();
    job.await.unwrap();
    let kept: Option<Vec<u8>> =
        sqlx::query_scalar("SELECT pii_ciphertext FROM onboardings WHERE id = $1")
            .bind(recent.onboarding_id)
            .fetch_one(&h.db)
            .await
            .unwrap();
    assert!(kept.is_some(), "a recent row keeps its data");
    h.stop().await;
}
