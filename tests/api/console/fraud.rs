//! A reviewer records fraud from the console; overdue indications come first.

use super::*;

#[tokio::test]
async fn a_reviewer_records_fraud_from_the_console_and_the_overdue_indications_come_first() {
    if browser::no_chromium() {
        return;
    }
    // No sharing system: indications stay pending, and one identified 30 hours ago is overdue.
    let app = TestApp::builder()
        .config(&[("sandbox.fraud_sharing", "false")])
        .spawn()
        .await;
    let identified = chrono::Utc::now() - chrono::Duration::hours(30);
    let (status, old) = app
        .post_json(
            "/v1/fraud-indications",
            "vrd_sandbox_fraud",
            &json!({"cpf": cpf_from(713), "typology": "mule_account",
                    "description": "Conta usada como laranja.",
                    "identified_at": identified.to_rfc3339()}),
        )
        .await;
    assert_eq!(status, 201, "{old}");
    let kept = chrono::DateTime::parse_from_rfc3339(old["identified_at"].as_str().unwrap())
        .unwrap()
        .with_timezone(&chrono::Utc);
    assert!(
        (kept - identified).num_seconds().abs() < 2,
        "identified_at taken as sent: {old}"
    );
    // A decision the policy sends to review (score 20).
    let onboarding: Value = app
        .onboard(&key(), &onboarding_body("900.000.019-02"), Some(10))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(onboarding["outcome"], "review", "{onboarding}");
    let (_, cases) = app.get("/v1/reviews", "vrd_sandbox_reviewer").await;
    let case_id = cases["items"][0]["id"].as_str().unwrap().to_owned();

    let mut browser = Browser::start().await;
    sign_in(&mut browser, &app, "vrd_sandbox_reviewer").await;
    browser
        .go(&app.url(&format!("/console/reviews/{case_id}")))
        .await;
    browser.click("#claim").await;
    assert_eq!(browser.text("#status").await, "claimed");
    let fill = |outcome: &str| {
        format!(
            "document.querySelector('#resolve select[name=outcome]').value = '{outcome}';
             document.querySelector('#resolve textarea[name=note]').value = 'Selfie de outra pessoa.';
             document.querySelector('#resolve select[name=fraud_typology]').value = 'identity_theft';
             document.querySelector('#resolve textarea[name=fraud_description]').value = 'Rosto de terceiro com o CPF da vítima.';"
        )
    };
    // Fraud with an approval is refused on the page, which keeps what was typed.
    browser.eval(&fill("approved")).await;
    browser.click("#resolve button[type=submit]").await;
    let error = browser.text("#error").await;
    assert!(error.contains("only with a rejected outcome"), "{error}");
    assert_eq!(browser.text("#status").await, "claimed");
    let kept = browser
        .eval(
            "['select[name=outcome]', 'textarea[name=note]', 'select[name=fraud_typology]', 'textarea[name=fraud_description]']
               .map(s => document.querySelector('#resolve ' + s).value)",
        )
        .await;
    assert_eq!(
        kept,
        json!([
            "approved",
            "Selfie de outra pessoa.",
            "identity_theft",
            "Rosto de terceiro com o CPF da vítima."
        ])
    );
    browser.screenshot("case-fraud-refused").await;
    let (_, listed) = app.get("/v1/fraud-indications", "vrd_sandbox_fraud").await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 1, "{listed}");

    // Rejected with fraud: resolved, and one indication made by the reviewer.
    browser.eval(&fill("rejected")).await;
    browser.click("#resolve button[type=submit]").await;
    assert!(browser.text("#notice").await.contains("Resolved"));
    browser
        .go(&app.url(&format!("/console/reviews/{case_id}")))
        .await;
    assert_eq!(browser.text("#status").await, "resolved");
    let (_, case) = app
        .get(&format!("/v1/reviews/{case_id}"), "vrd_sandbox_reviewer")
        .await;
    let decision_id = case["resolution"]["decision_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, decision) = app
        .get(&format!("/v1/decisions/{decision_id}"), AUDITOR_KEY)
        .await;
    assert_eq!(decision["decided_by"], "reviewer", "{decision}");
    assert_eq!(decision["outcome"], "rejected", "{decision}");
    let (_, listed) = app.get("/v1/fraud-indications", "vrd_sandbox_fraud").await;
    let made: Vec<&Value> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["id"] != old["id"])
        .collect();
    assert_eq!(made.len(), 1, "{listed}");
    assert_eq!(made[0]["typology"], "identity_theft", "{listed}");
    assert_eq!(made[0]["created_by"], "sandbox-reviewer", "{listed}");
    assert_eq!(
        made[0]["evidence"]["decision_id"],
        decision_id.as_str(),
        "{listed}"
    );
    assert_eq!(
        made[0]["description"],
        "Rosto de terceiro com o CPF da vítima."
    );
    assert_eq!(made[0]["onboarding_id"], onboarding["id"], "{listed}");

    // The indications page, from the menu: the overdue one first and marked, then the
    // reviewer's, with the CPFs masked.
    browser
        .click("header a[href='/console/fraud-indications']")
        .await;
    assert_eq!(browser.path().await, "/console/fraud-indications");
    let rows = "#indications tr.indication";
    assert_eq!(
        column(&mut browser, rows, 2).await,
        ["mule_account", "identity_theft"]
    );
    let identified_cells = column(&mut browser, rows, 0).await;
    assert!(
        identified_cells[0].contains("(overdue)"),
        "{identified_cells:?}"
    );
    assert!(
        !identified_cells[1].contains("overdue"),
        "{identified_cells:?}"
    );
    assert_eq!(
        browser
            .eval("document.querySelector('#indications tr.indication td').className")
            .await,
        "overdue"
    );
    assert_eq!(column(&mut browser, rows, 5).await[1], "sandbox-reviewer");
    for cpf in column(&mut browser, rows, 1).await {
        assert!(
            cpf.starts_with("***.") && cpf.ends_with("-**"),
            "masked: {cpf}"
        );
    }
    browser.screenshot("fraud-indications").await;
    drop(browser);

    // Masked, the page is no access to personal data; whole (pii:read), it is recorded.
    let (_, searches) = app.get("/v1/audit-searches", AUDITOR_KEY).await;
    let recorded = |searches: &Value| {
        searches["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["endpoint"] == "console /console/fraud-indications")
            .count()
    };
    assert_eq!(recorded(&searches), 0, "{searches}");
    let auditor = ConsoleSession::sign_in(&app, "vrd_sandbox_auditor_pii").await;
    let page = auditor
        .get("/console/fraud-indications")
        .await
        .text()
        .await
        .unwrap();
    let digits: String = cpf_from(713).chars().filter(char::is_ascii_digit).collect();
    assert!(page.contains(&digits), "whole with pii:read");
    let (_, searches) = app.get("/v1/audit-searches", AUDITOR_KEY).await;
    assert_eq!(recorded(&searches), 1, "{searches}");

    // A key without fraud:write or decisions:read neither sees the link nor opens the page.
    let dpo = ConsoleSession::sign_in(&app, "vrd_sandbox_dpo").await;
    let home = dpo
        .get("/console/subject-requests")
        .await
        .text()
        .await
        .unwrap();
    assert!(!home.contains("/console/fraud-indications"));
    assert_eq!(dpo.get("/console/fraud-indications").await.status(), 403);
    app.stop().await;
}
