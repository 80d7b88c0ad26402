//! Reads of personal data need their scope and each leaves an access record.

use super::*;

#[tokio::test]
async fn a_cpf_search_needs_pii_read_and_every_search_is_recorded() {
    // Reads counters of the process's one metrics registry: alone in a process.
    if isolation::own_process(
        module_path!(),
        "a_cpf_search_needs_pii_read_and_every_search_is_recorded",
        isolation::Server::Shared,
    )
    .await
    {
        return;
    }
    let app = TestApp::spawn().await;
    let counted = || async {
        let text = app.metrics().await;
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
