//! The reviewers' console in a real browser: headless Chromium (Debian's `chromium`, installed by
//! `.ci/run` when missing), driven over the DevTools protocol (`common::browser`).
//! `VEREDITO_CHROMIUM` names another binary; `VEREDITO_SCREENSHOTS=dir` keeps a PNG of each page.

use crate::common;

use crate::common::browser::Browser;
use crate::common::*;
use serde_json::{Value, json};

#[tokio::test]
async fn a_reviewer_signs_in_claims_and_resolves_a_case_in_the_browser() {
    let app = TestApp::spawn().await;
    // A decision the policy sends to review (score 20).
    let response = app
        .onboard(&key(), &onboarding_body("900.000.019-02"), Some(10))
        .await;
    let onboarding: Value = response.json().await.unwrap();
    assert_eq!(onboarding["outcome"], "review");
    let id = onboarding["id"].as_str().unwrap().to_owned();
    let (_, cases) = app.get("/v1/reviews", "vrd_sandbox_reviewer").await;
    let case_id = cases["items"][0]["id"].as_str().unwrap().to_owned();

    let mut browser = Browser::start().await;
    // Without a session every console page leads to the sign-in page.
    for page in [
        "/console".to_owned(),
        "/console/reviews".to_owned(),
        format!("/console/reviews/{case_id}"),
        "/console/decisions".to_owned(),
    ] {
        browser.go(&app.url(&page)).await;
        assert_eq!(browser.path().await, "/console/sign-in", "{page}");
    }
    browser.screenshot("sign-in").await;

    // A wrong key is refused; the reviewer's key opens the queue.
    browser
        .eval("document.querySelector('input[name=api_key]').value = 'not-a-key'")
        .await;
    browser.click("button[type=submit]").await;
    assert_eq!(browser.path().await, "/console/sign-in");
    assert!(browser.text(".error").await.contains("cannot open"));
    browser
        .eval("document.querySelector('input[name=api_key]').value = 'vrd_sandbox_reviewer'")
        .await;
    browser.click("button[type=submit]").await;
    assert_eq!(browser.path().await, "/console/reviews");
    let cookie = browser
        .call("Network.getCookies", json!({"urls": [app.url("/console")]}))
        .await;
    let session = &cookie["cookies"][0];
    assert_eq!(session["httpOnly"], true, "{cookie}");
    assert_eq!(session["sameSite"], "Strict");
    assert_eq!(
        browser.eval("document.cookie").await,
        "",
        "scripts cannot read it"
    );
    // The page's own stylesheet is the one the Content-Security-Policy lets through.
    assert_eq!(
        browser
            .eval("getComputedStyle(document.body).backgroundColor")
            .await,
        "rgb(246, 247, 249)"
    );
    let queue = browser.text("#queue").await;
    assert!(queue.contains("score.uncertain"), "{queue}");
    assert!(queue.contains("open"), "{queue}");
    browser.screenshot("queue").await;

    // The case: reasons, masked CPF, rules, timeline, provider calls.
    browser.click("a.case").await;
    assert_eq!(browser.path().await, format!("/console/reviews/{case_id}"));
    assert_eq!(browser.text("#status").await, "open");
    assert!(browser.text("#reasons").await.contains("score.uncertain"));
    let cpf = browser.text("#cpf").await;
    assert!(
        cpf.starts_with("***.") && cpf.ends_with("-**"),
        "masked: {cpf}"
    );
    assert!(browser.text("#rules").await.contains("score.uncertain"));
    assert!(browser.text("#timeline").await.contains("review_opened"));
    assert!(browser.text("#calls").await.contains("create_process"));

    // Claim, then resolve.
    browser.click("#claim").await;
    assert_eq!(browser.text("#status").await, "claimed");
    assert_eq!(browser.text("#assignee").await, "sandbox-reviewer");
    browser
        .eval("document.querySelector('#resolve select').value = 'rejected'")
        .await;
    browser
        .eval("document.querySelector('#resolve textarea').value = 'Outra pessoa na selfie.'")
        .await;
    browser.screenshot("case-claimed").await;
    browser.click("#resolve button[type=submit]").await;
    // No other case is waiting: the queue, saying so once.
    assert_eq!(browser.path().await, "/console/reviews");
    assert!(browser.text("#notice").await.contains("Resolved"));
    browser
        .go(&app.url(&format!("/console/reviews/{case_id}")))
        .await;
    assert_eq!(browser.text("#status").await, "resolved");
    assert!(
        browser
            .text("#resolution")
            .await
            .contains("Outra pessoa na selfie.")
    );
    let verdict = browser.text("#verdict").await;
    assert!(
        verdict.contains("rejected") && verdict.contains("reviewer"),
        "{verdict}"
    );
    browser.screenshot("case-resolved").await;
    // The API agrees.
    let view = app.onboarding(&id).await;
    assert_eq!(view["outcome"], "rejected");
    assert_eq!(view["decided_by"], "reviewer");

    // The new decision is in the search.
    browser.go(&app.url("/console/decisions")).await;
    let decisions = browser.text("#decisions").await;
    assert!(decisions.contains("review.rejected"), "{decisions}");
    assert!(decisions.contains("sandbox-reviewer"), "{decisions}");
    browser.screenshot("decisions").await;

    // The policy versions, with a replay beside the shadow report.
    browser.go(&app.url("/console/policies")).await;
    let versions = browser.text("#versions").await;
    assert!(
        versions.contains("active") && versions.contains("configuration"),
        "{versions}"
    );
    browser.click("#versions a").await;
    let replay = browser.text("#replay").await;
    assert!(replay.contains("evaluated"), "{replay}");
    assert!(browser.text("#shadow").await.contains("agreed"));
    browser.screenshot("policies").await;

    // A form posted without the session's token is refused.
    let forged = browser
        .eval(&format!(
            "fetch('/console/reviews/{case_id}/release', {{method: 'POST', headers: {{'content-type': 'application/x-www-form-urlencoded'}}, body: 'csrf=forged'}}).then(r => r.status)"
        ))
        .await;
    assert_eq!(forged, 403);

    // Signing out ends the session.
    browser.click("header button[type=submit]").await;
    assert_eq!(browser.path().await, "/console/sign-in");
    browser.go(&app.url("/console/reviews")).await;
    assert_eq!(browser.path().await, "/console/sign-in");
    drop(browser);
    app.stop().await;
}

/// Signs the browser in with `key` from the sign-in page.
async fn sign_in(browser: &mut Browser, app: &TestApp, key: &str) {
    browser.go(&app.url("/console/sign-in")).await;
    browser
        .eval(&format!(
            "document.querySelector('input[name=api_key]').value = '{key}'"
        ))
        .await;
    browser.click("button[type=submit]").await;
}

/// The texts of the cells in column `column` of the rows matching `rows`.
async fn column(browser: &mut Browser, rows: &str, column: usize) -> Vec<String> {
    let texts = browser
        .eval(&format!(
            "Array.from(document.querySelectorAll({rows:?})).map(r => r.cells[{column}].innerText)"
        ))
        .await;
    texts
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn the_risk_team_keeps_a_list_in_the_browser_and_a_case_shows_who_shares_its_device() {
    let app = TestApp::spawn().await;
    let (status, _) = app
        .post_json(
            "/v1/lists",
            "vrd_sandbox_risk",
            &json!({"name": "blocked_devices", "key": "device_id", "note": "devices of mule rings"}),
        )
        .await;
    assert_eq!(status, 201);
    // Two approved onboardings from one device, then a third from it that goes to review; none
    // shares a phone or an e-mail with the others.
    let mut approved_refs = Vec::new();
    for (n, cpf) in [(1, cpf_from(501)), (2, cpf_from(502))] {
        let mut body = onboarding_body(&cpf);
        body["device"]["device_id"] = json!("ring-phone-7");
        body["person"]["phone"] = json!(format!("551197474900{n}"));
        body["person"]["email"] = json!(format!("person{n}@example.com"));
        let view: Value = app
            .onboard(&key(), &body, Some(10))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(view["outcome"], "approved", "{view}");
        approved_refs.push(body["reference"].as_str().unwrap().to_owned());
    }
    let mut body = onboarding_body("900.000.019-02");
    body["device"]["device_id"] = json!("ring-phone-7");
    let view: Value = app
        .onboard(&key(), &body, Some(10))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(view["outcome"], "review", "{view}");
    let (_, cases) = app.get("/v1/reviews", "vrd_sandbox_reviewer").await;
    let case_id = cases["items"][0]["id"].as_str().unwrap().to_owned();

    let mut browser = Browser::start().await;
    sign_in(&mut browser, &app, "vrd_sandbox_risk").await;
    assert_eq!(browser.path().await, "/console/reviews");
    browser.click("header a[href='/console/lists']").await;
    assert_eq!(browser.path().await, "/console/lists");
    let lists = browser.text("#lists").await;
    assert!(
        lists.contains("blocked_devices") && lists.contains("device_id"),
        "{lists}"
    );
    assert!(browser.text("#entries").await.is_empty(), "no entry yet");

    // Adding an entry: listed masked, never as typed.
    browser
        .eval("document.querySelector('#add input[name=value]').value = 'mule-device-4821'")
        .await;
    browser
        .eval("document.querySelector('#add textarea').value = 'Opened nine accounts in an hour.'")
        .await;
    browser.click("#add button[type=submit]").await;
    assert_eq!(browser.text(".notice").await, "Added.");
    let entries = browser.text("#entries").await;
    assert!(entries.contains("***4821"), "{entries}");
    assert!(
        entries.contains("Opened nine accounts in an hour."),
        "{entries}"
    );
    assert!(entries.contains("sandbox-risk"), "{entries}");
    let page = browser.eval("document.documentElement.outerHTML").await;
    assert!(!page.as_str().unwrap().contains("mule-device-4821"));
    browser.screenshot("lists").await;
    let (_, lookup) = app
        .get(
            "/v1/lists/blocked_devices/entries?value=mule-device-4821",
            "vrd_sandbox_auditor",
        )
        .await;
    assert_eq!(lookup["listed"], true, "{lookup}");
    assert_eq!(lookup["entry"]["added_by"], "sandbox-risk", "{lookup}");

    // A value its key refuses is not added, and the page says why.
    browser
        .eval("document.querySelector('#add input[name=value]').value = '   '")
        .await;
    browser
        .eval("document.querySelector('#add textarea').value = 'x'")
        .await;
    browser.click("#add button[type=submit]").await;
    assert!(!browser.text("#error").await.is_empty());

    // Removing it, with a reason: gone from the live entries, kept in the history.
    browser
        .eval("document.querySelector('#remove input[name=value]').value = 'mule-device-4821'")
        .await;
    browser
        .eval("document.querySelector('#remove textarea').value = 'Returned to its owner.'")
        .await;
    browser.click("#remove button[type=submit]").await;
    assert_eq!(browser.text(".notice").await, "Removed.");
    assert!(browser.text("#entries").await.is_empty());
    let (_, lookup) = app
        .get(
            "/v1/lists/blocked_devices/entries?value=mule-device-4821",
            "vrd_sandbox_auditor",
        )
        .await;
    assert_eq!(lookup["listed"], false, "{lookup}");
    assert_eq!(lookup["history"][1]["action"], "removed", "{lookup}");
    assert_eq!(lookup["history"][1]["reason"], "Returned to its owner.");

    // The case of the third onboarding shows the two that share its device, with their
    // outcomes, and leads to each.
    browser
        .go(&app.url(&format!("/console/reviews/{case_id}")))
        .await;
    let links = browser.text("#links").await;
    assert!(links.contains("Same device: 2"), "{links}");
    let rows = "table[data-key=device_id] tr.linked";
    assert_eq!(
        column(&mut browser, rows, 3).await,
        ["approved", "approved"]
    );
    assert!(
        browser
            .eval("document.querySelector('table[data-key=phone]') === null")
            .await
            == true,
        "no other onboarding has its phone: {links}"
    );
    browser.screenshot("case-links").await;
    browser
        .click("table[data-key=device_id] tr.linked a.open")
        .await;
    // The newest first: the second approved onboarding, which had no case: its decision.
    let path = browser.path().await;
    assert!(path.starts_with("/console/decisions/"), "{path}");
    assert_eq!(browser.text("#outcome").await, "approved");
    let cpf_shown = browser.text("#cpf").await;
    assert_eq!(cpf_shown, format!("***.{}-**", &cpf_from(502)[4..11]));
    let (_, verdict) = app
        .get(
            &format!("/v1/decisions?reference={}", approved_refs[1]),
            AUDITOR_KEY,
        )
        .await;
    assert_eq!(
        path,
        format!(
            "/console/decisions/{}",
            verdict["items"][0]["id"].as_str().unwrap()
        )
    );
    let back = browser.text("#links").await;
    assert!(back.contains("Same device: 2"), "{back}");
    assert!(back.contains("review"), "{back}");
    browser.screenshot("decision-links").await;
    drop(browser);

    // Without lists:write the page is read-only and its forms are refused; the officer's key
    // does not see it.
    let auditor = ConsoleSession::sign_in(&app, AUDITOR_KEY).await;
    let page = auditor.get("/console/lists").await.text().await.unwrap();
    assert!(page.contains("blocked_devices") && !page.contains("id=\"add\""));
    let refused = auditor
        .post(
            "/console/lists/blocked_devices/entries",
            &[("value", "other-device-1"), ("reason", "x")],
        )
        .await;
    assert_eq!(refused.status(), 403);
    let dpo = ConsoleSession::sign_in(&app, "vrd_sandbox_dpo").await;
    assert_eq!(dpo.get("/console/lists").await.status(), 403);
    assert_eq!(
        dpo.get(&format!("/console/reviews/{case_id}"))
            .await
            .status(),
        403
    );
    app.stop().await;
}

#[tokio::test]
async fn the_officer_opens_a_persons_report_from_the_console() {
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

#[tokio::test]
async fn a_reviewer_records_fraud_from_the_console_and_the_overdue_indications_come_first() {
    // No sharing system: indications stay pending, and one identified 30 hours ago is overdue.
    let app = TestApp::spawn_with(&[("sandbox.fraud_sharing", "false")]).await;
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

/// The reviewer of the end-to-end test as veredito records a person signed in through the
/// identity provider.
const REVIEWER: &str = "oidc:davi.rocha (Davi Rocha)";

#[tokio::test]
async fn a_reviewer_works_the_queue_notes_a_case_answers_an_art_20_request_and_moves_on() {
    // The reviewer signs in through the bank's identity provider, as a person (Davi Rocha, the
    // reviewer role only); the auditor and a second reviewer with the sandbox's keys.
    let (_provider, app) = common::identity_provider::provider_and_console().await;
    // A case the policy opened (score 20), due in 24 hours, so first in the queue...
    let mut body = onboarding_body("900.000.019-02");
    body["device"]["device_id"] = json!("shared-phone-1");
    let first: Value = app
        .onboard(&key(), &body, Some(10))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(first["outcome"], "review", "{first}");
    // ...an approval minutes earlier from the same device, under another CPF...
    let mut earlier = onboarding_body(&cpf_from(700));
    earlier["device"]["device_id"] = json!("shared-phone-1");
    earlier["person"]["phone"] = json!("5511900000700");
    earlier["person"]["email"] = json!("p700@example.com");
    let earlier: Value = app
        .onboard(&key(), &earlier, Some(10))
        .await
        .json()
        .await
        .unwrap();
    // ...and 52 people asking for a human review of their approval (LGPD Art. 20), due in 15
    // days: 53 cases, more than a page of 50. The first two are one person (one CPF) who
    // onboarded twice.
    for n in 0..52u32 {
        let mut body = onboarding_body(&cpf_from(800 + n.max(1)));
        body["device"]["device_id"] = json!(format!("phone-{n}"));
        body["person"]["phone"] = json!(format!("55119000{:05}", 800 + n));
        body["person"]["email"] = json!(format!("p{n}@example.com"));
        let view: Value = app
            .onboard(&key(), &body, Some(10))
            .await
            .json()
            .await
            .unwrap();
        let (status, _) = app
            .post_json(
                &format!(
                    "/v1/onboardings/{}/review-requests",
                    view["id"].as_str().unwrap()
                ),
                ONBOARDING_KEY,
                &json!({"statement": "Quero entender a decisão."}),
            )
            .await;
        assert_eq!(status, 201);
    }
    let (_, cases) = app.get("/v1/reviews?limit=1", "vrd_sandbox_reviewer").await;
    let case_id = cases["items"][0]["id"].as_str().unwrap().to_owned();

    // A reviewer who also holds the provider's pii role (Ana Souza) sees who the person is;
    // each page load is an access record in her name.
    let ana = "oidc:ana.souza (Ana Souza)";
    let mut pii = Browser::start().await;
    common::identity_provider::sign_in_at_the_provider(&mut pii, &app.base, "ana.souza").await;
    pii.until("location.pathname === '/console/reviews' && document.querySelector('#who')")
        .await;
    pii.go(&app.url(&format!("/console/reviews/{case_id}")))
        .await;
    assert_eq!(pii.text("#name").await, "Maria Teste da Silva");
    assert_eq!(pii.text("#cpf").await, "900.000.019-02");
    assert_eq!(pii.text("#device").await, "shared-phone-1");
    assert!(pii.text("#reference").await.starts_with("ref-"));
    assert!(!pii.text("#policy-version").await.is_empty());
    pii.go(&app.url(&format!("/console/reviews/{case_id}")))
        .await;
    assert_eq!(
        access_records(&app, ana, "console /console/reviews/{id}").await,
        2
    );
    pii.go(&app.url("/console/reviews")).await;
    let cpfs = column(&mut pii, "#queue tbody tr", 2).await;
    assert!(cpfs.contains(&"900.000.019-02".to_owned()), "{cpfs:?}");
    // Two loads of the worklist with whole CPFs: where signing in led, and this one.
    assert_eq!(
        access_records(&app, ana, "console /console/reviews").await,
        2
    );
    pii.click("header button[type=submit]").await;
    let mut browser = Browser::start().await;

    // The reviewer's worklist: masked CPFs, counts, reasons to pick from, pages of 50.
    common::identity_provider::sign_in_at_the_provider(&mut browser, &app.base, "davi.rocha").await;
    browser
        .until("location.pathname === '/console/reviews' && document.querySelector('#who')")
        .await;
    assert_eq!(browser.text("#who").await, "Davi Rocha");
    assert_eq!(browser.text("#total").await, "53");
    let cpfs = column(&mut browser, "#queue tbody tr", 2).await;
    assert_eq!(cpfs.len(), 50);
    assert!(cpfs.iter().all(|c| c.starts_with("***.")), "{cpfs:?}");
    assert!(column(&mut browser, "#queue tbody tr", 4).await[1].contains("Art. 20 request"));
    // The reviewer's page shows no whole CPF: no access record.
    assert_eq!(
        access_records(&app, REVIEWER, "console /console/reviews").await,
        0
    );
    let same = browser
        .eval("document.querySelectorAll('#queue tr.same .same-person').length")
        .await;
    assert_eq!(same, 2, "the one person's two open cases are marked");
    browser.screenshot("worklist").await;
    browser.click("#next").await;
    assert_eq!(column(&mut browser, "#queue tbody tr", 2).await.len(), 3);
    browser.screenshot("worklist-page-2").await;
    browser.click("#previous").await;
    assert_eq!(column(&mut browser, "#queue tbody tr", 2).await.len(), 50);
    let reasons = browser
        .eval(
            "Array.from(document.querySelectorAll('select[name=reason] option')).map(o => o.value)",
        )
        .await;
    assert!(
        reasons
            .as_array()
            .unwrap()
            .contains(&json!("score.uncertain")),
        "{reasons}"
    );
    browser
        .eval("document.querySelector('select[name=reason]').value = 'score.uncertain'")
        .await;
    browser.click("#filters button[type=submit]").await;
    assert_eq!(browser.text("#total").await, "1");

    // The case: who shares its device, the rules that fired with their messages, evidence as
    // fields, São Paulo times.
    browser.click("a.case").await;
    assert_eq!(browser.path().await, format!("/console/reviews/{case_id}"));
    let links = browser.text("#links").await;
    assert!(links.contains("Same device: 1"), "{links}");
    assert!(
        browser
            .eval(&format!(
                "!!document.querySelector('#links a[href=\"/console/onboardings/{}\"]')",
                earlier["id"].as_str().unwrap()
            ))
            .await
            == true
    );
    let fired = browser.text("#rules").await;
    assert!(fired.contains("score.uncertain"), "{fired}");
    assert!(
        browser
            .text("#unfired summary")
            .await
            .contains("did not fire")
    );
    let evidence = browser.text("#evidence").await;
    assert!(
        evidence.contains("score") && !evidence.contains('{'),
        "{evidence}"
    );
    assert!(browser.text("#signals").await.contains("os version"));
    let time = browser.text("#timeline time").await;
    assert!(time.ends_with(" -03:00"), "{time}");
    let tall = browser.eval("document.documentElement.scrollHeight").await;
    assert!(tall.as_i64().unwrap() < 4000, "{tall}");

    // Claim, two notes, a reload that shows no stale message.
    browser.click("#claim").await;
    assert_eq!(browser.text("#notice").await, "Claimed.");
    for text in [
        "A selfie está escura.",
        "O aparelho já aprovou outra pessoa.",
    ] {
        browser
            .eval(&format!(
                "document.querySelector('#add-note textarea').value = {text:?}"
            ))
            .await;
        browser.click("#add-note button[type=submit]").await;
        assert_eq!(browser.text("#notice").await, "Note added.");
    }
    let notes = column_texts(&mut browser, "#notes .note").await;
    assert_eq!(notes.len(), 2, "{notes:?}");
    assert!(notes[0].contains("Davi Rocha") && notes[1].contains("outra pessoa"));
    browser.screenshot("case-with-notes").await;
    browser.eval("location.reload()").await;
    browser.settle().await;
    assert_eq!(browser.text("#notice").await, "");
    let stored: Vec<Option<Vec<u8>>> =
        sqlx::query_scalar("SELECT ciphertext FROM review_notes WHERE kind = 'internal'")
            .fetch_all(&app.db)
            .await
            .unwrap();
    assert_eq!(stored.len(), 2);
    assert!(
        stored
            .iter()
            .flatten()
            .all(|c| !String::from_utf8_lossy(c).contains("escura")),
        "sealed"
    );

    // "mine": the one case the reviewer holds.
    browser.go(&app.url("/console/reviews?who=mine")).await;
    assert_eq!(browser.text("#total").await, "1");

    // Another reviewer sees who holds it and cannot claim.
    let mut other = Browser::start().await;
    sign_in(&mut other, &app, "vrd_sandbox_reviewer_2").await;
    other
        .go(&app.url(&format!("/console/reviews/{case_id}")))
        .await;
    assert!(other.text("#held").await.contains("Davi Rocha"));
    assert_eq!(
        other
            .eval("document.querySelector('#claim').disabled")
            .await,
        true
    );
    drop(other);

    // Resolving goes to the next case; an Art. 20 case takes an answer to the person.
    browser
        .go(&app.url(&format!("/console/reviews/{case_id}")))
        .await;
    browser
        .eval("document.querySelector('#resolve select').value = 'rejected'")
        .await;
    browser
        .eval("document.querySelector('#resolve textarea[name=note]').value = 'Rosto diferente.'")
        .await;
    browser.click("#resolve button[type=submit]").await;
    let next = browser.path().await;
    assert!(next.starts_with("/console/reviews/") && next != format!("/console/reviews/{case_id}"));
    assert!(browser.text("#notice").await.contains("Resolved"));
    assert_eq!(browser.text("#opened-by").await, "Art. 20 request");
    browser.click("#claim").await;
    // Without the answer the resolution is refused, and what was typed stays.
    browser
        .eval("document.querySelector('#resolve textarea[name=note]').value = 'Aprovação mantida.'")
        .await;
    browser
        .eval("document.querySelector('#answer').required = false")
        .await;
    browser.click("#resolve button[type=submit]").await;
    assert!(browser.text("#error").await.contains("answer"));
    assert_eq!(
        browser
            .eval("document.querySelector('#resolve textarea[name=note]').value")
            .await,
        "Aprovação mantida."
    );
    browser
        .eval("document.querySelector('#answer').value = 'Revisamos: a aprovação está mantida.'")
        .await;
    browser.screenshot("art-20-case").await;
    browser.click("#resolve button[type=submit]").await;
    assert!(browser.text("#notice").await.contains("Resolved"));
    let answers: i64 =
        sqlx::query_scalar("SELECT count(*) FROM review_notes WHERE kind = 'answer'")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(answers, 1);
    let (_, resolved) = app
        .get("/v1/reviews?status=resolved", "vrd_sandbox_reviewer")
        .await;
    assert_eq!(resolved["items"].as_array().unwrap().len(), 2, "{resolved}");

    // Resolved cases show their outcome and when.
    browser
        .go(&app.url("/console/reviews?status=resolved"))
        .await;
    let states = column(&mut browser, "#queue tbody tr", 6).await;
    assert!(
        states
            .iter()
            .any(|s| s.contains("rejected") && s.contains("-03:00")),
        "{states:?}"
    );

    // Decisions: a reference found by its start, each row linked to its case, a date filter,
    // and the export of what the search finds, recorded as the API's exports are.
    let reference = first["reference"].as_str().unwrap().to_owned();
    browser
        .go(&app.url(&format!(
            "/console/decisions?reference={}",
            &reference[..12]
        )))
        .await;
    let refs = column(&mut browser, "#decisions tbody tr", 5).await;
    assert_eq!(
        refs.len(),
        2,
        "the automatic decision and the reviewer's: {refs:?}"
    );
    assert!(refs.iter().all(|r| r == &reference), "{refs:?}");
    browser.screenshot("decisions-by-reference").await;
    let csv = browser
        .eval("fetch(document.querySelector('#export').href).then(r => r.text())")
        .await;
    let csv = csv.as_str().unwrap();
    assert_eq!(csv.lines().count(), 3, "a header and two rows: {csv}");
    assert!(csv.contains(&reference), "{csv}");
    assert_eq!(
        access_records(&app, REVIEWER, "console /console/decisions/export").await,
        1
    );
    browser.click("#decisions a.case").await;
    assert_eq!(browser.path().await, format!("/console/reviews/{case_id}"));
    let tomorrow = (chrono::Utc::now() + chrono::Duration::days(2)).format("%Y-%m-%d");
    browser
        .go(&app.url(&format!("/console/decisions?from={tomorrow}")))
        .await;
    assert_eq!(
        column(&mut browser, "#decisions tbody tr", 5).await.len(),
        0
    );

    // A bad id and an expired form answer pages with a way back.
    browser.go(&app.url("/console/reviews/not-a-case")).await;
    assert!(
        browser
            .text("#problem")
            .await
            .contains("no such review case"),
        "{}",
        browser.text("main").await
    );
    assert_eq!(browser.text("#back").await, "Back to the console");
    browser.go(&app.url("/console/no-such-page")).await;
    assert!(browser.text("#problem").await.contains("no such page"));
    let status = browser
        .eval(&format!(
            "fetch('/console/reviews/{case_id}/note', {{method: 'POST', headers: {{'content-type': 'application/x-www-form-urlencoded'}}, body: 'csrf=old&thread_note=x'}}).then(r => r.headers.get('content-type') + ' ' + r.status)"
        ))
        .await;
    assert_eq!(status, "text/html; charset=utf-8 403");
    browser.screenshot("bad-id").await;
    drop(browser);
    app.stop().await;
}

/// The texts of the elements matching `selector`.
async fn column_texts(browser: &mut Browser, selector: &str) -> Vec<String> {
    let texts = browser
        .eval(&format!(
            "Array.from(document.querySelectorAll({selector:?})).map(e => e.innerText)"
        ))
        .await;
    texts
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_owned())
        .collect()
}
