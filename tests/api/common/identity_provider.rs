//! A real OpenID provider for the console's sign-in tests: `oidc-provider` from the npm registry
//! (OpenID Certified), pinned in `tests/oidc/package-lock.json` and configured by
//! `tests/oidc/provider.mjs`. The first test to need it runs `npm ci` when `node_modules` is
//! missing; each test starts its own provider on a free port and stops it when dropped.
//! `VEREDITO_NODE` and `VEREDITO_NPM` name other binaries than `node` and `npm`. Without Node.js
//! 20 or later and npm, a test that needs the provider says on stderr that it is skipped and
//! passes, unless `VEREDITO_REQUIRE_BROWSER=1` (set by `.ci/run`): then it fails.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use super::browser::{Browser, on_path, skipped_without};
use super::{TestApp, free_port, fresh_database};

pub const CLIENT_ID: &str = "veredito-console";
pub const CLIENT_SECRET: &str = "test-client-secret-7f3a";

pub struct IdentityProvider {
    child: Child,
    pub issuer: String,
}

fn node() -> String {
    std::env::var("VEREDITO_NODE").unwrap_or_else(|_| "node".into())
}

fn npm() -> String {
    std::env::var("VEREDITO_NPM").unwrap_or_else(|_| "npm".into())
}

/// What is missing to run the provider: Node.js 20 or later, npm.
fn missing() -> Option<String> {
    const HOW: &str = "install Node.js 20 or later and npm (https://nodejs.org, or the \
                       distribution's nodejs and npm where they are that recent), or name them \
                       in VEREDITO_NODE and VEREDITO_NPM";
    let found = |binary: &str| on_path(binary).is_some() || PathBuf::from(binary).is_file();
    let (node, npm) = (node(), npm());
    if !found(&node) || !found(&npm) {
        return Some(format!(
            "no {node} or no {npm} for the OpenID provider; {HOW}"
        ));
    }
    let version = Command::new(&node)
        .arg("--version")
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned())
        .unwrap_or_default();
    let major: u32 = version
        .trim_start_matches('v')
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    (major < 20)
        .then(|| format!("{node} is {version}, the OpenID provider needs 20 or later; {HOW}"))
}

/// Whether the running test is skipped for want of Node.js or npm (see
/// `browser::skipped_without`).
pub fn no_node() -> bool {
    skipped_without(missing())
}

fn folder() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/oidc")
}

/// `npm ci` once, when the package is not installed yet.
fn install() {
    static INSTALLED: Mutex<bool> = Mutex::new(false);
    let mut installed = INSTALLED.lock().unwrap_or_else(|e| e.into_inner());
    if *installed
        || folder()
            .join("node_modules/oidc-provider/package.json")
            .exists()
    {
        *installed = true;
        return;
    }
    let npm = npm();
    let output = Command::new(&npm)
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(folder())
        .output()
        .unwrap_or_else(|e| panic!("{npm} runs (Node.js 20 or later with npm): {e}"));
    assert!(
        output.status.success(),
        "npm ci in tests/oidc failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    *installed = true;
}

impl IdentityProvider {
    /// A provider whose one client, `CLIENT_ID`, may come back to `redirect_url` only.
    pub async fn start(redirect_url: &str) -> IdentityProvider {
        install();
        let port = super::free_port();
        // `localhost`, while veredito runs at 127.0.0.1: another site to the browser, as a
        // bank's provider is.
        let issuer = format!("http://localhost:{port}");
        let node = node();
        let child = Command::new(&node)
            .arg("provider.mjs")
            .current_dir(folder())
            .env("PORT", port.to_string())
            .env("ISSUER", &issuer)
            .env("CLIENT_ID", CLIENT_ID)
            .env("CLIENT_SECRET", CLIENT_SECRET)
            .env("REDIRECT_URI", redirect_url)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{node} starts: {e}"));
        let provider = IdentityProvider { child, issuer };
        let discovery = format!("{}/.well-known/openid-configuration", provider.issuer);
        let http = reqwest::Client::new();
        for _ in 0..200 {
            if let Ok(response) = http.get(&discovery).send().await {
                if response.status() == 200 {
                    return provider;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the identity provider did not answer at {discovery}");
    }

    /// veredito's `[console.oidc]` for the provider at `issuer` (the test people's role names).
    pub fn settings_for(issuer: &str, redirect_url: &str) -> String {
        format!(
            r#"[console.oidc]
issuer = "{issuer}"
name = "Banco Exemplo"
client_id = "{CLIENT_ID}"
client_secret = "{CLIENT_SECRET}"
redirect_url = "{redirect_url}"
scopes = ["openid", "profile", "roles"]
roles_claim = "roles"

[console.oidc.roles]
reviewer = ["veredito-reviewer"]
auditor = ["veredito-auditor"]
pii = ["veredito-pii"]
"#
        )
    }
}

impl Drop for IdentityProvider {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

/// veredito at `port` with the settings file `settings` and `extra` settings.
pub async fn console_at(port: u16, settings: &str, extra: &[(&str, &str)]) -> TestApp {
    let addr = format!("127.0.0.1:{port}");
    let mut all = vec![("server.addr", addr.as_str())];
    all.extend_from_slice(extra);
    TestApp::builder()
        .database(&fresh_database().await)
        .config(&all)
        .file(settings_file(settings))
        .spawn()
        .await
}

pub fn settings_file(text: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("veredito-oidc-{}.toml", uuid::Uuid::new_v4()));
    std::fs::write(&path, text).unwrap();
    path
}

/// A provider and veredito wired to each other.
pub async fn provider_and_console() -> (IdentityProvider, TestApp) {
    let port = free_port();
    let redirect = format!("http://127.0.0.1:{port}/console/oidc/callback");
    let provider = IdentityProvider::start(&redirect).await;
    let settings = IdentityProvider::settings_for(&provider.issuer, &redirect);
    let app = console_at(port, &settings, &[]).await;
    (provider, app)
}

/// From the console's sign-in page, through the provider's login and consent pages, as `login`.
pub async fn sign_in_at_the_provider(browser: &mut Browser, base: &str, login: &str) {
    browser.go(&format!("{base}/console/sign-in")).await;
    browser.click("#oidc").await;
    browser
        .until("document.querySelector('input[name=login]')")
        .await;
    browser.screenshot("provider-login").await;
    browser
        .eval(&format!(
            "document.querySelector('input[name=login]').value = {login:?}; \
             document.querySelector('input[name=password]').value = 'any password'"
        ))
        .await;
    browser.click("button[type=submit]").await;
    browser
        .until("document.querySelector('input[name=prompt][value=consent]')")
        .await;
    browser.click("button[type=submit]").await;
}
