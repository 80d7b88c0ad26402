//! What the compliance team reads: the list by status, CPF and overdue, and the month's report.

use super::*;

#[tokio::test]
async fn indications_are_listed_by_status_cpf_and_overdue() {
    let app = TestApp::builder()
        .config(&[("sandbox.fraud_sharing", "false")])
        .spawn()
        .await;
    // No sharing system: what is identified stays pending; 30 hours ago, it is overdue.
    let old = make(
        &app,
        FRAUD,
        json!({"cpf": cpf_from(5), "typology": "other", "description": "antiga",
               "identified_at": (chrono::Utc::now() - chrono::Duration::hours(30)).to_rfc3339()}),
    )
    .await;
    let fresh = make(
        &app,
        FRAUD,
        json!({"cpf": cpf_from(6), "typology": "other", "description": "recente"}),
    )
    .await;
    assert_eq!(fresh["cpf"], Value::String(mask(&cpf_from(6))));
    let overdue = indications(&app, "?overdue=true", AUDITOR_KEY).await;
    assert_eq!(overdue.len(), 1);
    assert_eq!(overdue[0]["id"], old["id"]);
    assert_eq!(overdue[0]["overdue"], true);
    assert_eq!(
        indications(&app, "?status=pending", AUDITOR_KEY)
            .await
            .len(),
        2
    );
    assert!(
        indications(&app, "?status=registered", AUDITOR_KEY)
            .await
            .is_empty()
    );
    let (status, _) = app
        .get(
            &format!("/v1/fraud-indications?cpf={}", cpf_from(6)),
            AUDITOR_KEY,
        )
        .await;
    assert_eq!(status, 403, "a search by CPF takes pii:read");
    let by_cpf = indications(&app, &format!("?cpf={}", cpf_from(6)), AUDITOR_PII).await;
    assert_eq!(by_cpf.len(), 1);
    assert_eq!(by_cpf[0]["cpf"], cpf_from(6).replace(['.', '-'], ""));
    let (status, bad) = app
        .get("/v1/fraud-indications?overdue=yes", AUDITOR_KEY)
        .await;
    assert_eq!(status, 422);
    assert_eq!(bad["errors"][0]["field"], "overdue");
    let (status, bad) = app
        .post_json(
            "/v1/fraud-indications",
            FRAUD,
            &json!({"cpf": "111.444.777-36", "typology": "other", "description": "x"}),
        )
        .await;
    assert_eq!(status, 422);
    assert_eq!(bad["errors"][0]["field"], "cpf");
    let (status, _) = app
        .post_json(
            "/v1/fraud-indications",
            AUDITOR_KEY,
            &json!({"cpf": cpf_from(7), "typology": "other", "description": "x"}),
        )
        .await;
    assert_eq!(status, 403);
    app.stop().await;
}

fn mask(cpf: &str) -> String {
    let digits: String = cpf.chars().filter(char::is_ascii_digit).collect();
    format!("***.{}.{}-**", &digits[3..6], &digits[6..9])
}

#[tokio::test]
async fn the_monthly_report_counts_late_on_time_withdrawn_and_confidential() {
    let app = TestApp::spawn().await;
    let hours_ago = |h: i64| (chrono::Utc::now() - chrono::Duration::hours(h)).to_rfc3339();
    let body = |n: u32, identified: String, confidential: bool| {
        json!({"cpf": cpf_from(n), "typology": "identity_theft", "description": "relatório",
               "identified_at": identified, "confidential": confidential})
    };
    let late = make(&app, FRAUD, body(10, hours_ago(30), false)).await;
    let on_time = make(&app, FRAUD, body(11, hours_ago(2), false)).await;
    let withdrawn = make(&app, FRAUD, body(12, hours_ago(3), false)).await;
    let confidential = make(&app, FRAUD, body(13, hours_ago(1), true)).await;
    for made in [&late, &on_time, &withdrawn] {
        until(
            &app,
            made["id"].as_str().unwrap(),
            Duration::from_secs(10),
            |v| v["status"] == "registered",
        )
        .await;
    }
    let (status, _) = app
        .post_json(
            &format!(
                "/v1/fraud-indications/{}/withdrawal",
                withdrawn["id"].as_str().unwrap()
            ),
            FRAUD_2,
            &json!({"reason": "duplicada"}),
        )
        .await;
    assert_eq!(status, 200);
    // Withdrawing the late one after it was registered leaves it late.
    let (status, _) = app
        .post_json(
            &format!(
                "/v1/fraud-indications/{}/withdrawal",
                late["id"].as_str().unwrap()
            ),
            FRAUD_2,
            &json!({"reason": "engano"}),
        )
        .await;
    assert_eq!(status, 200);
    // The four move, together, into the middle of a month of their own (registered_at and the
    // history keep their distance from identified_at), so the figures do not depend on the day
    // the test runs; the records refuse any change, so this goes around their triggers.
    let ids: Vec<uuid::Uuid> = [&late, &on_time, &withdrawn, &confidential]
        .iter()
        .map(|v| v["id"].as_str().unwrap().parse().unwrap())
        .collect();
    let mut conn = app.db.acquire().await.unwrap();
    sqlx::query("SET session_replication_role = replica")
        .execute(&mut *conn)
        .await
        .unwrap();
    let shift = "(timestamptz '2026-10-15 12:00:00-03' - now())";
    sqlx::query(&format!(
        "UPDATE fraud_indications SET identified_at = identified_at + {shift},
                registered_at = registered_at + {shift} WHERE id = ANY($1)"
    ))
    .bind(&ids)
    .execute(&mut *conn)
    .await
    .unwrap();
    sqlx::query(&format!(
        "UPDATE fraud_indication_history SET at = at + {shift} WHERE indication_id = ANY($1)"
    ))
    .bind(&ids)
    .execute(&mut *conn)
    .await
    .unwrap();
    sqlx::query("SET session_replication_role = origin")
        .execute(&mut *conn)
        .await
        .unwrap();
    drop(conn);

    let (status, report) = app
        .get("/v1/reports/fraud-indications?month=2026-10", AUDITOR_KEY)
        .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(
        report,
        json!({"month": "2026-10", "identified": 4, "registered_within_24h": 2,
               "registered_late": 1, "pending": 0, "withdrawn": 2, "confidential": 1,
               "late": [late["id"]]})
    );
    let (_, empty) = app
        .get("/v1/reports/fraud-indications?month=2026-09", AUDITOR_KEY)
        .await;
    assert_eq!(empty["identified"], 0);
    for bad in ["2026-13", "2026-1", "october", ""] {
        let (status, problem) = app
            .get(
                &format!("/v1/reports/fraud-indications?month={bad}"),
                AUDITOR_KEY,
            )
            .await;
        assert_eq!(status, 422, "{bad}");
        assert_eq!(problem["errors"][0]["field"], "month", "{bad}");
    }
    app.stop().await;
}
