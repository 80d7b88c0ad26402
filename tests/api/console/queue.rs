//! End to end: a reviewer signed in through the identity provider works the queue, notes a case,
//! answers an Art. 20 request and moves on.

use super::*;

/// The reviewer of the end-to-end test as veredito records a person signed in through the
/// identity provider.
const REVIEWER: &str = "oidc:davi.rocha (Davi Rocha)";

#[tokio::test]
async fn a_reviewer_works_the_queue_notes_a_case_answers_an_art_20_request_and_moves_on() {
    if browser::no_chromium() || identity_provider::no_node() {
        return;
    }
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
    // A list offers only the keys it answers: no claim or resolve away from a case.
    let keys = browser.text("#shortcuts").await;
    assert!(keys.contains("open") && !keys.contains("claim"), "{keys}");
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
    let keys = browser.text("#shortcuts").await;
    assert!(keys.contains("claim") && keys.contains("resolve"), "{keys}");
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
