//! The console's answers forbid caching, framing and outside content; a sign-in from another site
//! is refused.

use super::*;

/// What every console answer must carry: pages with personal data are not kept by browsers or
/// proxies, cannot be framed by another site, and load nothing from anywhere else.
fn assert_console_headers(what: &str, response: &reqwest::Response) {
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(header("cache-control"), "no-store", "{what}");
    assert_eq!(header("x-frame-options"), "DENY", "{what}");
    assert_eq!(header("x-content-type-options"), "nosniff", "{what}");
    assert_eq!(header("referrer-policy"), "no-referrer", "{what}");
    let csp = header("content-security-policy");
    for directive in [
        "default-src 'none'",
        "frame-ancestors 'none'",
        "form-action 'self'",
        "base-uri 'none'",
    ] {
        assert!(csp.contains(directive), "{what}: {directive} in {csp:?}");
    }
    assert!(!csp.contains("unsafe-inline"), "{what}: {csp}");
}

#[tokio::test]
async fn every_console_answer_forbids_caching_framing_and_outside_content() {
    let app = TestApp::spawn().await;
    let response = app
        .onboard(&key(), &onboarding_body("900.000.019-02"), Some(10))
        .await;
    assert_eq!(response.status(), 200);
    let (_, cases) = app.get("/v1/reviews", "vrd_sandbox_reviewer").await;
    let case = cases["items"][0]["id"].as_str().unwrap().to_owned();
    let anonymous = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for path in ["/console/sign-in", "/console", "/console/reviews"] {
        let response = anonymous.get(app.url(path)).send().await.unwrap();
        assert_console_headers(path, &response);
    }
    let console = ConsoleSession::sign_in(&app, AUDITOR_PII_KEY).await;
    for path in [
        "/console/reviews".to_owned(),
        format!("/console/reviews/{case}"),
        "/console/decisions".to_owned(),
        "/console/policies".to_owned(),
        "/console/lists".to_owned(),
        "/console/subject-requests".to_owned(),
        "/console/fraud-indications".to_owned(),
        format!("/console/reviews/{}", uuid::Uuid::new_v4()),
    ] {
        let response = console.get(&path).await;
        assert_console_headers(&path, &response);
    }
    let case_page = console.get(&format!("/console/reviews/{case}")).await;
    assert_eq!(case_page.status(), 200);
    let html = case_page.text().await.unwrap();
    assert!(
        html.contains("score.uncertain"),
        "the page is the case: {html}"
    );
    assert!(
        !html.contains(" style=\""),
        "no inline style attribute the policy would refuse"
    );
    // A form answer and an error answer too.
    let refused = console
        .post(&format!("/console/reviews/{case}/claim"), &[])
        .await;
    assert_console_headers("a form's answer", &refused);
    let forged = console
        .http
        .post(app.url(&format!("/console/reviews/{case}/release")))
        .header(reqwest::header::COOKIE, &console.cookie)
        .form(&[("csrf", "forged")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    assert_console_headers("a refusal", &forged);
    app.stop().await;
}

#[tokio::test]
async fn a_sign_in_posted_from_another_site_is_refused() {
    let app = TestApp::spawn().await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    // Two sign-in pages shown to this browser: each sets its cookie and holds its token.
    let mut pages = Vec::new();
    for _ in 0..2 {
        let page = http.get(app.url("/console/sign-in")).send().await.unwrap();
        let cookie = set_cookie(&page, "veredito_sign_in").expect("a pre-session cookie");
        let token = hidden_field(&page.text().await.unwrap(), "sign_in_token").expect("a token");
        pages.push((cookie, token));
    }
    let (cookie, token) = (pages[0].0.as_str(), pages[0].1.as_str());
    let other_cookie = pages[1].0.as_str();
    /// What the case is, the headers the browser sends, the form's token, the answer.
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], Option<&'a str>, u16);
    let cases: [Case; 6] = [
        // A page of another site posts the attacker's key into the victim's browser (login
        // CSRF): the browser says so, and it carries no token of a console sign-in page.
        (
            "cross-site, no token",
            &[
                ("Sec-Fetch-Site", "cross-site"),
                ("Origin", "https://evil.example"),
            ],
            None,
            403,
        ),
        ("a browser that says nothing, no token", &[], None, 403),
        ("a token without its cookie", &[], Some(token), 403),
        (
            "a token with another page's cookie",
            &[("Cookie", other_cookie)],
            Some(token),
            403,
        ),
        (
            "cross-site with a page's token and cookie",
            &[("Cookie", cookie), ("Sec-Fetch-Site", "cross-site")],
            Some(token),
            403,
        ),
        // The console's own sign-in page, as a browser posts it, opens a session.
        (
            "the console's own page",
            &[("Cookie", cookie), ("Sec-Fetch-Site", "same-origin")],
            Some(token),
            303,
        ),
    ];
    for (what, headers, token, expected) in cases {
        let mut form = vec![("api_key", "vrd_sandbox_reviewer")];
        form.extend(token.map(|t| ("sign_in_token", t)));
        let mut request = http.post(app.url("/console/sign-in")).form(&form);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), expected, "{what}");
        assert_eq!(
            set_cookie(&response, "veredito_console").is_some(),
            expected == 303,
            "{what}: a session opened only by the console's own page"
        );
    }
    app.stop().await;
}
