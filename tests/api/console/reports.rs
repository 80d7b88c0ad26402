//! The data-protection officer opens a person's report from the console.

use super::*;

#[tokio::test]
async fn the_officer_opens_a_persons_report_from_the_console() {
    if browser::no_chromium() {
        return;
    }
    let app = TestApp::spawn().await;
    let cpf = cpf_from(611);
    let view: Value = app
        .onboard(&key(), &onboarding_body(&cpf), Some(10))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(view["outcome"], "approved", "{view}");
    let onboarding_id = view["id"].as_str().unwrap().to_owned();
    let (status, request) = app
        .post_json(
            "/v1/subject-requests",
            "vrd_sandbox_dpo",
            &json!({"cpf": cpf, "kind": "access"}),
        )
        .await;
    assert_eq!(status, 201, "{request}");
    let request_id = request["id"].as_str().unwrap().to_owned();

    let mut browser = Browser::start().await;
    sign_in(&mut browser, &app, "vrd_sandbox_dpo").await;
    assert_eq!(browser.path().await, "/console/subject-requests");
    let requests = browser.text("#requests").await;
    let digits: String = cpf.chars().filter(char::is_ascii_digit).collect();
    assert!(
        requests.contains(&format!("***.{}.{}-**", &digits[3..6], &digits[6..9])),
        "{requests}"
    );
    assert!(requests.contains("open"), "{requests}");
    assert!(!requests.contains(&cpf), "masked in the list: {requests}");
    browser.screenshot("subject-requests").await;

    browser.click("a.report").await;
    assert_eq!(
        browser.path().await,
        format!("/console/subject-requests/{request_id}/report")
    );
    let text = browser
        .eval("document.body.innerText")
        .await
        .as_str()
        .unwrap()
        .to_owned();
    assert!(text.contains("Relatório dos seus dados pessoais"), "{text}");
    assert!(text.contains(&cpf), "{text}");
    assert!(text.contains(&onboarding_id), "{text}");
    // The printable page's own stylesheet applies: its policy names it.
    let font = browser
        .eval("getComputedStyle(document.body).fontFamily")
        .await;
    assert!(font.as_str().unwrap().contains("Georgia"), "{font}");
    browser.screenshot("subject-report-console").await;
    drop(browser);

    // Reading it answered the request, by the signed-in key, and left an access record.
    let (_, listed) = app.get("/v1/subject-requests", "vrd_sandbox_dpo").await;
    let item = &listed["items"][0];
    assert_eq!(item["status"], "answered", "{listed}");
    assert_eq!(item["answered_by"], "sandbox-dpo", "{listed}");
    let (_, searches) = app.get("/v1/audit-searches", AUDITOR_KEY).await;
    assert!(
        searches["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(
                |s| s["endpoint"] == "console /console/subject-requests/{id}/report"
                    && s["filters"]["subject_request_id"] == request_id.as_str()
            ),
        "{searches}"
    );

    // Other keys do not reach the requests or the report.
    let risk = ConsoleSession::sign_in(&app, "vrd_sandbox_risk").await;
    assert_eq!(risk.get("/console/subject-requests").await.status(), 403);
    let report = format!("/console/subject-requests/{request_id}/report");
    assert_eq!(risk.get(&report).await.status(), 403);
    app.stop().await;
}
