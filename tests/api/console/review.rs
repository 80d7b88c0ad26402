//! A reviewer signs in with a key, claims a case and resolves it.

use super::*;

#[tokio::test]
async fn a_reviewer_signs_in_claims_and_resolves_a_case_in_the_browser() {
    if browser::no_chromium() {
        return;
    }
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
