//! The reviewers' console in a real browser: headless Chromium (Debian's `chromium`, installed by
//! `.ci/run` when missing), driven over the DevTools protocol by the small client below.
//! `VEREDITO_CHROMIUM` names another binary; `VEREDITO_SCREENSHOTS=dir` keeps a PNG of each page.

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine;
use common::*;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// One headless Chromium with one page, spoken to over its DevTools WebSocket.
struct Browser {
    child: Child,
    profile: PathBuf,
    socket: Socket,
    next_id: u64,
}

impl Browser {
    async fn start() -> Browser {
        let binary = std::env::var("VEREDITO_CHROMIUM").unwrap_or_else(|_| "chromium".into());
        let profile =
            std::env::temp_dir().join(format!("veredito-chromium-{}", uuid::Uuid::new_v4()));
        let child = Command::new(&binary)
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--remote-debugging-port=0",
                "--window-size=1280,900",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{binary} starts (apt-get install chromium): {e}"));
        // Chromium writes the port it chose into the profile.
        let port_file = profile.join("DevToolsActivePort");
        let started = tokio::time::Instant::now();
        let port = loop {
            if let Ok(text) = std::fs::read_to_string(&port_file) {
                if let Some(port) = text
                    .lines()
                    .next()
                    .and_then(|l| l.trim().parse::<u16>().ok())
                {
                    break port;
                }
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "chromium did not start"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let targets: Value = reqwest::get(format!("http://127.0.0.1:{port}/json/list"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let page = targets
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["type"] == "page")
            .expect("a page target");
        let url = page["webSocketDebuggerUrl"].as_str().unwrap();
        let (socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        Browser {
            child,
            profile,
            socket,
            next_id: 0,
        }
    }

    /// Sends one DevTools command and answers its result (events in between are skipped).
    async fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let message = json!({"id": id, "method": method, "params": params}).to_string();
        self.socket.send(Message::text(message)).await.unwrap();
        loop {
            let frame = tokio::time::timeout(Duration::from_secs(30), self.socket.next())
                .await
                .expect("chromium answers")
                .unwrap()
                .unwrap();
            let Message::Text(text) = frame else { continue };
            let answer: Value = serde_json::from_str(&text).unwrap();
            if answer["id"] == id {
                assert!(answer["error"].is_null(), "{method}: {answer}");
                return answer["result"].clone();
            }
        }
    }

    /// Evaluates `expression` in the page and answers its value.
    async fn eval(&mut self, expression: &str) -> Value {
        let result = self
            .call(
                "Runtime.evaluate",
                json!({"expression": expression, "returnByValue": true, "awaitPromise": true}),
            )
            .await;
        assert!(
            result["exceptionDetails"].is_null(),
            "{expression}: {result}"
        );
        result["result"]["value"].clone()
    }

    async fn go(&mut self, url: &str) {
        self.call("Page.navigate", json!({"url": url})).await;
        self.settle().await;
    }

    /// Waits until the page has loaded after a navigation or a form submit.
    async fn settle(&mut self) {
        tokio::time::sleep(Duration::from_millis(50)).await;
        self.until("document.readyState === 'complete'").await;
    }

    /// Waits until `condition` holds in the page.
    async fn until(&mut self, condition: &str) {
        let started = tokio::time::Instant::now();
        loop {
            if self.eval(&format!("Boolean({condition})")).await == true {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(15),
                "{condition} never held on {}: {}",
                self.eval("location.href").await,
                self.eval("document.body ? document.body.innerText : ''")
                    .await
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn path(&mut self) -> String {
        self.eval("location.pathname")
            .await
            .as_str()
            .unwrap()
            .to_owned()
    }

    async fn text(&mut self, selector: &str) -> String {
        self.eval(&format!(
            "(document.querySelector({selector:?}) || {{innerText: ''}}).innerText"
        ))
        .await
        .as_str()
        .unwrap_or_default()
        .to_owned()
    }

    /// Clicks `selector` and waits for the page it leads to.
    async fn click(&mut self, selector: &str) {
        let before = self.eval("performance.timeOrigin").await;
        self.eval(&format!("document.querySelector({selector:?}).click()"))
            .await;
        self.until(&format!("performance.timeOrigin !== {before}"))
            .await;
        self.settle().await;
    }

    async fn screenshot(&mut self, name: &str) {
        let Ok(dir) = std::env::var("VEREDITO_SCREENSHOTS") else {
            return;
        };
        let shot = self
            .call("Page.captureScreenshot", json!({"format": "png"}))
            .await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().unwrap())
            .unwrap();
        std::fs::write(PathBuf::from(dir).join(format!("{name}.png")), png).unwrap();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
        std::fs::remove_dir_all(&self.profile).ok();
    }
}

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
