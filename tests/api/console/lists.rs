//! The risk team keeps a list in the console, and a case shows who shares its device.

use super::*;

#[tokio::test]
async fn the_risk_team_keeps_a_list_in_the_browser_and_a_case_shows_who_shares_its_device() {
    if browser::no_chromium() {
        return;
    }
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
