//! Signing in to the console through an identity provider (OpenID Connect, code flow with
//! PKCE): a real, certified one (`oidc-provider`, `tests/common/identity_provider.rs`) at
//! `localhost`, veredito at `127.0.0.1`, and headless Chromium between them.

use crate::common;

use crate::common::browser::Browser;
use crate::common::identity_provider::{
    IdentityProvider, console_at, provider_and_console, sign_in_at_the_provider,
};
use crate::common::*;
use serde_json::{Value, json};

const AUDITOR: &str = "vrd_sandbox_auditor";

/// A case in the review queue: an onboarding the policy sends to review (score 20).
async fn review_case(app: &TestApp, cpf: &str) -> (String, String) {
    let response = app.onboard(&key(), &onboarding_body(cpf), Some(10)).await;
    let onboarding: Value = response.json().await.unwrap();
    assert_eq!(onboarding["outcome"], "review");
    let (_, cases) = app.get("/v1/reviews?status=open", AUDITOR).await;
    let case = cases["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["onboarding_id"] == onboarding["id"])
        .expect("the onboarding's case");
    (
        onboarding["id"].as_str().unwrap().to_owned(),
        case["id"].as_str().unwrap().to_owned(),
    )
}

/// The browser's cookie `name` for `url`, with its attributes.
async fn cookie_of(browser: &mut Browser, url: &str, name: &str) -> Option<Value> {
    let cookies = browser
        .call("Network.getCookies", json!({"urls": [url]}))
        .await;
    cookies["cookies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .cloned()
}

#[tokio::test]
async fn a_reviewer_signs_in_through_the_identity_provider_and_her_resolution_names_her() {
    if browser::no_chromium() || identity_provider::no_node() {
        return;
    }
    let (_provider, app) = provider_and_console().await;
    let (onboarding_id, case_id) = review_case(&app, "900.000.019-02").await;

    let mut browser = Browser::start().await;
    browser.go(&app.url("/console/sign-in")).await;
    assert_eq!(browser.text("#oidc").await, "Sign in with Banco Exemplo");
    // The sandbox keeps its key sign-in beside it.
    assert_eq!(
        browser
            .eval("document.querySelectorAll('input[name=api_key]').length")
            .await,
        1
    );
    browser.screenshot("oidc-sign-in").await;

    sign_in_at_the_provider(&mut browser, &app.base, "ana.souza").await;
    browser
        .until("location.pathname === '/console/reviews' && document.querySelector('#who')")
        .await;
    assert_eq!(browser.text("#who").await, "Ana Souza");
    let session = cookie_of(&mut browser, &app.url("/console"), "veredito_console")
        .await
        .expect("a session cookie");
    assert_eq!(session["httpOnly"], true);
    assert_eq!(session["sameSite"], "Strict");
    assert_eq!(
        cookie_of(
            &mut browser,
            &app.url("/console/oidc/callback"),
            "veredito_oidc"
        )
        .await,
        None,
        "the sign-in's own cookie is gone"
    );
    browser.screenshot("oidc-queue").await;

    // Her roles: reviewer and pii. She claims and resolves the case.
    browser
        .go(&app.url(&format!("/console/reviews/{case_id}")))
        .await;
    browser.click("#claim").await;
    assert_eq!(browser.text("#status").await, "claimed");
    assert_eq!(
        browser.text("#assignee").await,
        "oidc:ana.souza (Ana Souza)"
    );
    browser
        .eval("document.querySelector('#resolve select').value = 'approved'")
        .await;
    browser
        .eval("document.querySelector('#resolve textarea').value = 'Selfie e documento conferem.'")
        .await;
    browser.click("#resolve button[type=submit]").await;
    browser
        .go(&app.url(&format!("/console/reviews/{case_id}")))
        .await;
    assert_eq!(browser.text("#status").await, "resolved");
    assert!(
        browser
            .text("#resolution")
            .await
            .contains("by oidc:ana.souza (Ana Souza)")
    );
    browser.screenshot("oidc-resolved").await;

    // The API records the person as the reviewer, and the decision as the reviewer's.
    let (status, case) = app.get(&format!("/v1/reviews/{case_id}"), AUDITOR).await;
    assert_eq!(status, 200);
    assert_eq!(
        case["resolution"]["reviewer"], "oidc:ana.souza (Ana Souza)",
        "{case}"
    );
    assert_eq!(app.onboarding(&onboarding_id).await["outcome"], "approved");
    // Her reads of the case page are recorded under her name.
    let (_, searches) = app.get("/v1/audit-searches?limit=100", AUDITOR).await;
    let hers: Vec<&Value> = searches["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["caller"] == "oidc:ana.souza (Ana Souza)")
        .collect();
    assert!(
        hers.iter()
            .any(|s| s["endpoint"] == "console /console/reviews/{id}"
                && s["filters"]["case_id"] == case_id.as_str()),
        "{searches}"
    );

    // Signing out ends the session.
    browser.click("header form button[type=submit]").await;
    assert_eq!(browser.path().await, "/console/sign-in");
    browser.go(&app.url("/console/reviews")).await;
    assert_eq!(browser.path().await, "/console/sign-in");
}

#[tokio::test]
async fn a_person_without_the_reviewer_role_cannot_claim_and_one_without_any_role_cannot_enter() {
    if browser::no_chromium() || identity_provider::no_node() {
        return;
    }
    let (_provider, app) = provider_and_console().await;
    let (_, case_id) = review_case(&app, "900.000.019-02").await;
    let mut browser = Browser::start().await;

    // Carla's account holds no role veredito knows: a page saying so, and no session.
    sign_in_at_the_provider(&mut browser, &app.base, "carla.dias").await;
    browser
        .until("document.querySelector('#sign-in-failed')")
        .await;
    assert_eq!(browser.path().await, "/console/oidc/callback");
    let refusal = browser.text("#sign-in-failed").await;
    assert!(
        refusal.contains("Carla Dias") && refusal.contains("none of veredito's roles"),
        "{refusal}"
    );
    assert_eq!(
        browser
            .eval("document.querySelector('main a').getAttribute('href')")
            .await,
        "/console/sign-in"
    );
    browser.screenshot("oidc-no-role").await;
    browser.go(&app.url("/console/reviews")).await;
    assert_eq!(browser.path().await, "/console/sign-in");

    // Someone who cancels at the provider is told so.
    browser.call("Network.clearBrowserCookies", json!({})).await;
    browser.go(&app.url("/console/sign-in")).await;
    browser.click("#oidc").await;
    browser
        .until("document.querySelector('.login-help a')")
        .await;
    browser.click(".login-help a").await;
    browser
        .until("document.querySelector('#sign-in-failed')")
        .await;
    assert!(
        browser
            .text("#sign-in-failed")
            .await
            .contains("did not grant")
    );

    // Bruno is an auditor: he reads the case, but a claim gets a 403 page and changes nothing.
    browser.call("Network.clearBrowserCookies", json!({})).await;
    sign_in_at_the_provider(&mut browser, &app.base, "bruno.lima").await;
    browser
        .until("location.pathname === '/console/reviews' && document.querySelector('#who')")
        .await;
    assert_eq!(browser.text("#who").await, "Bruno Lima");
    browser
        .go(&app.url(&format!("/console/reviews/{case_id}")))
        .await;
    assert_eq!(browser.text("#status").await, "open");
    assert_eq!(
        browser.eval("document.querySelector('#claim')").await,
        Value::Null,
        "no Claim button for him"
    );
    // The claim the page does not offer, posted anyway with his session's form token.
    let answer = browser
        .eval(&format!(
            "fetch('/console/reviews/{case_id}/claim', {{method: 'POST', headers: \
             {{'content-type': 'application/x-www-form-urlencoded'}}, body: 'csrf=' + \
             document.querySelector('input[name=csrf]').value}}).then(async r => \
             [r.status, r.headers.get('content-type'), await r.text()])"
        ))
        .await;
    assert_eq!(answer[0], 403, "{answer}");
    assert!(
        answer[1].as_str().unwrap().starts_with("text/html"),
        "{answer}"
    );
    assert!(
        answer[2]
            .as_str()
            .unwrap()
            .contains("Your roles do not allow this: it needs reviews:write."),
        "{answer}"
    );
    let (_, case) = app.get(&format!("/v1/reviews/{case_id}"), AUDITOR).await;
    assert_eq!(case["status"], "open");
    assert_eq!(case["assignee"], Value::Null);
}

/// The callback's answers to what did not come from a sign-in of this browser.
#[tokio::test]
async fn a_tampered_state_a_replayed_sign_in_and_a_bad_code_get_pages_with_a_way_back() {
    if identity_provider::no_node() {
        return;
    }
    let (_provider, app) = provider_and_console().await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let start = || async {
        let response = http
            .get(app.url("/console/oidc/start"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 303);
        let cookie = set_cookie(&response, "veredito_oidc").expect("the sign-in's cookie");
        // Lax, so that the browser brings it back on the provider's redirect; HttpOnly.
        let attributes = response.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            attributes.contains("HttpOnly") && attributes.contains("SameSite=Lax"),
            "{attributes}"
        );
        let location = response.headers()["location"].to_str().unwrap().to_owned();
        let url = reqwest::Url::parse(&location).unwrap();
        let query: std::collections::HashMap<String, String> =
            url.query_pairs().into_owned().collect();
        assert_eq!(query["code_challenge_method"], "S256");
        assert_eq!(query["response_type"], "code");
        assert!(query["nonce"].len() >= 43);
        (cookie, query["state"].clone())
    };
    let callback = |cookie: Option<String>, query: String| {
        let mut request = http.get(app.url(&format!("/console/oidc/callback?{query}")));
        if let Some(cookie) = cookie {
            request = request.header("cookie", cookie);
        }
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let kind = response.headers()["content-type"]
                .to_str()
                .unwrap()
                .to_owned();
            let opened = set_cookie(&response, "veredito_console");
            (status, kind, opened, response.text().await.unwrap())
        }
    };
    let page_back = |answer: &(u16, String, Option<String>, String), status: u16, says: &str| {
        assert_eq!(answer.0, status, "{}", answer.3);
        assert!(answer.1.starts_with("text/html"), "{}", answer.1);
        assert!(answer.2.is_none(), "no session");
        assert!(answer.3.contains(says), "{says}: {}", answer.3);
        assert!(answer.3.contains("href=\"/console/sign-in\""));
    };

    // A state that is not the one sent.
    let (cookie, state) = start().await;
    // One character changed (to another one: a state ending in A would otherwise stay intact).
    let last = if state.ends_with('A') { 'B' } else { 'A' };
    let tampered = format!("{}{last}", &state[..state.len() - 1]);
    assert_ne!(tampered, state);
    let answer = callback(Some(cookie.clone()), format!("code=abc&state={tampered}")).await;
    page_back(&answer, 400, "does not belong to this sign-in");
    // The sign-in was taken by that answer: the right state later is refused too.
    let answer = callback(Some(cookie), format!("code=abc&state={state}")).await;
    page_back(&answer, 400, "used already");
    // An answer without the browser's sign-in.
    let answer = callback(None, format!("code=abc&state={state}")).await;
    page_back(&answer, 400, "not started in this browser");
    // The right state with a code the provider never gave.
    let (cookie, state) = start().await;
    let answer = callback(Some(cookie), format!("code=forged-code&state={state}")).await;
    page_back(&answer, 400, "did not accept this sign-in (invalid_grant)");
    // An answer naming another issuer (RFC 9207).
    let (cookie, state) = start().await;
    let answer = callback(
        Some(cookie),
        format!("code=abc&state={state}&iss=https%3A%2F%2Fother.example"),
    )
    .await;
    page_back(&answer, 400, "another identity provider");
}

#[tokio::test]
async fn a_provider_that_is_down_gets_a_page_and_production_takes_no_keys() {
    // Nothing listens at the issuer.
    let port = free_port();
    let down = IdentityProvider::settings_for(
        &format!("http://localhost:{}", free_port()),
        &format!("http://127.0.0.1:{port}/console/oidc/callback"),
    );
    let app = console_at(port, &down, &[("console.key_sign_in", "false")]).await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let response = http
        .get(app.url("/console/oidc/start"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 502);
    // The console's guard answers for these pages too.
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert_eq!(response.headers()["x-frame-options"], "DENY");
    assert!(response.headers().contains_key("content-security-policy"));
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let page = response.text().await.unwrap();
    assert!(page.contains("cannot be reached now"), "{page}");
    assert!(page.contains("href=\"/console/sign-in\""));
    assert!(!page.contains("error sending request"), "no cause shown");

    // With key sign-in turned off the page offers the provider only, and a key is refused.
    let sign_in = http.get(app.url("/console/sign-in")).send().await.unwrap();
    let pre_session = set_cookie(&sign_in, "veredito_sign_in").unwrap();
    let token = pre_session.split_once('=').unwrap().1.to_owned();
    let html = sign_in.text().await.unwrap();
    assert!(html.contains("id=\"oidc\""));
    assert!(!html.contains("name=\"api_key\""));
    let refused = http
        .post(app.url("/console/sign-in"))
        .header("cookie", pre_session)
        .header("Sec-Fetch-Site", "same-origin")
        .form(&[
            ("api_key", "vrd_sandbox_reviewer"),
            ("sign_in_token", token.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    assert!(set_cookie(&refused, "veredito_console").is_none());
    assert!(
        refused
            .text()
            .await
            .unwrap()
            .contains("signs people in through the identity provider")
    );
}

/// The binary as an operator runs it, the client configured from the environment (the secret
/// where the README says to put it): a person signs in, a forged answer is refused, and the
/// debug logs hold neither the client secret, nor a code, a token or a session.
#[tokio::test]
async fn the_binary_signs_a_person_in_and_logs_no_secret_code_token_or_session() {
    if browser::no_chromium() || identity_provider::no_node() {
        return;
    }
    let database = format!("veredito_test_{}", uuid::Uuid::new_v4().simple());
    let _dropped_at_the_end = TestDatabase::adopt(&database);
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let redirect = format!("{base}/console/oidc/callback");
    let provider = IdentityProvider::start(&redirect).await;
    let child = veredito_command()
        .arg("serve")
        .env("VEREDITO__SERVER__ADDR", format!("127.0.0.1:{port}"))
        .env(
            "VEREDITO__DATABASE__URL",
            format!("{}/{database}", server_url()),
        )
        .env("VEREDITO__TELEMETRY__LOG_FORMAT", "json")
        .env("VEREDITO__CONSOLE__OIDC__ISSUER", &provider.issuer)
        .env(
            "VEREDITO__CONSOLE__OIDC__CLIENT_ID",
            common::identity_provider::CLIENT_ID,
        )
        .env(
            "VEREDITO__CONSOLE__OIDC__CLIENT_SECRET",
            common::identity_provider::CLIENT_SECRET,
        )
        .env("VEREDITO__CONSOLE__OIDC__REDIRECT_URL", &redirect)
        .env("VEREDITO__CONSOLE__OIDC__SCOPES", "openid profile roles")
        .env(
            "VEREDITO__CONSOLE__OIDC__ROLES__REVIEWER",
            "veredito-reviewer",
        )
        .env("RUST_LOG", "debug")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("binary starts");
    wait_ready(&base).await;

    let mut browser = Browser::start().await;
    sign_in_at_the_provider(&mut browser, &base, "ana.souza").await;
    browser
        .until("location.pathname === '/console/reviews' && document.querySelector('#who')")
        .await;
    assert_eq!(browser.text("#who").await, "Ana Souza");
    let session = cookie_of(&mut browser, &format!("{base}/console"), "veredito_console")
        .await
        .expect("a session")["value"]
        .as_str()
        .unwrap()
        .to_owned();
    // A forged answer, to have the refusal logged.
    browser
        .go(&format!(
            "{base}/console/oidc/callback?code=forged-code&state=forged"
        ))
        .await;
    assert!(
        browser
            .text("#sign-in-failed")
            .await
            .contains("Sign in again")
    );
    drop(browser);

    let output = terminate(child).await;
    assert!(output.status.success(), "{:?}", output.status);
    let logs = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        logs.contains("\"level\":\"DEBUG\"") && logs.contains("console sign-in"),
        "the sign-in's lines were captured at debug level"
    );
    for (what, secret) in [
        (
            "the client secret",
            common::identity_provider::CLIENT_SECRET,
        ),
        ("the session", session.as_str()),
        ("a code", "forged-code"),
        ("a code parameter", "code="),
        ("a JWT", "eyJ"),
    ] {
        assert!(!logs.contains(secret), "{what} is in the logs");
    }
}
