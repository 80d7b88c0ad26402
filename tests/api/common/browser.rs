//! One headless Chromium, driven over the DevTools protocol: the console's browser tests and the
//! subject report's page use it. It is found on the `PATH` (Debian's `chromium`, installed by
//! `.ci/run` when missing, or `chromium-browser`, `google-chrome`); `VEREDITO_CHROMIUM` names
//! another binary. Without one, a browser test says on stderr that it is skipped and passes,
//! unless `VEREDITO_REQUIRE_BROWSER=1` (set by `.ci/run`): then it fails.
//! `VEREDITO_SCREENSHOTS=dir` keeps a PNG of each page.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// One headless Chromium with one page, spoken to over its DevTools WebSocket.
pub struct Browser {
    child: Child,
    profile: PathBuf,
    socket: Socket,
    next_id: u64,
}

/// The names Chromium goes by on the `PATH`, most likely first.
const CHROMIUM: [&str; 4] = [
    "chromium",
    "chromium-browser",
    "google-chrome",
    "google-chrome-stable",
];

/// The Chromium to run: `VEREDITO_CHROMIUM`, or the first of `CHROMIUM` on the `PATH`.
fn chromium() -> Option<PathBuf> {
    if let Ok(binary) = std::env::var("VEREDITO_CHROMIUM") {
        return Some(PathBuf::from(binary));
    }
    CHROMIUM.iter().find_map(|name| on_path(name))
}

/// Where `name` is on the `PATH`, if it is.
pub fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|file| file.is_file())
}

/// Whether the running test cannot have what it needs (`missing` says what, and how to get
/// it): then it is skipped, said on stderr, unless `VEREDITO_REQUIRE_BROWSER=1`, which makes the
/// test fail instead.
pub fn skipped_without(missing: Option<String>) -> bool {
    let Some(missing) = missing else {
        return false;
    };
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("a browser test");
    let required = std::env::var("VEREDITO_REQUIRE_BROWSER").is_ok_and(|v| v == "1");
    assert!(!required, "{test}: {missing} (VEREDITO_REQUIRE_BROWSER=1)");
    // Straight to stderr: the test runner keeps what `eprintln!` writes for failing tests only.
    let _ = writeln!(
        std::io::stderr(),
        "skipped {test}: {missing}; VEREDITO_REQUIRE_BROWSER=1 makes this a failure"
    );
    true
}

/// Whether the running test is skipped for want of Chromium (see `skipped_without`).
pub fn no_chromium() -> bool {
    skipped_without(chromium().is_none().then(|| {
        format!(
            "no Chromium (none of {} on the PATH, no VEREDITO_CHROMIUM); \
             install it with `apt-get install chromium` or name it in VEREDITO_CHROMIUM",
            CHROMIUM.join(", ")
        )
    }))
}

impl Browser {
    pub async fn start() -> Browser {
        let binary = chromium().expect("the test checked no_chromium() first");
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
            .unwrap_or_else(|e| panic!("{} starts: {e}", binary.display()));
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
    pub async fn call(&mut self, method: &str, params: Value) -> Value {
        let answer = self.try_call(method, &params).await;
        assert!(answer["error"].is_null(), "{method}: {answer}");
        answer["result"].clone()
    }

    /// One DevTools command's whole answer, its `error` included.
    async fn try_call(&mut self, method: &str, params: &Value) -> Value {
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
                return answer;
            }
        }
    }

    /// Evaluates `expression` in the page and answers its value.
    pub async fn eval(&mut self, expression: &str) -> Value {
        let params = json!({"expression": expression, "returnByValue": true, "awaitPromise": true});
        let mut answer = self.try_call("Runtime.evaluate", &params).await;
        // A page replaced while the expression ran (a form's redirect landing) has no context
        // to answer from: ask the page that took its place.
        for _ in 0..20 {
            let lost = answer["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("context"));
            if !lost {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            answer = self.try_call("Runtime.evaluate", &params).await;
        }
        assert!(answer["error"].is_null(), "Runtime.evaluate: {answer}");
        let result = answer["result"].clone();
        assert!(
            result["exceptionDetails"].is_null(),
            "{expression}: {result}"
        );
        result["result"]["value"].clone()
    }

    pub async fn go(&mut self, url: &str) {
        self.call("Page.navigate", json!({"url": url})).await;
        self.settle().await;
    }

    /// Waits until the page has loaded after a navigation or a form submit.
    pub async fn settle(&mut self) {
        tokio::time::sleep(Duration::from_millis(50)).await;
        self.until("document.readyState === 'complete'").await;
    }

    /// Waits until `condition` holds in the page.
    pub async fn until(&mut self, condition: &str) {
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

    pub async fn path(&mut self) -> String {
        self.eval("location.pathname")
            .await
            .as_str()
            .unwrap()
            .to_owned()
    }

    pub async fn text(&mut self, selector: &str) -> String {
        self.eval(&format!(
            "(document.querySelector({selector:?}) || {{innerText: ''}}).innerText"
        ))
        .await
        .as_str()
        .unwrap_or_default()
        .to_owned()
    }

    /// Clicks `selector` and waits for the page it leads to.
    pub async fn click(&mut self, selector: &str) {
        let before = self.eval("performance.timeOrigin").await;
        self.eval(&format!("document.querySelector({selector:?}).click()"))
            .await;
        self.until(&format!("performance.timeOrigin !== {before}"))
            .await;
        self.settle().await;
    }

    pub async fn screenshot(&mut self, name: &str) {
        let Ok(dir) = std::env::var("VEREDITO_SCREENSHOTS") else {
            return;
        };
        // The whole page, not the window: a page taller than it needs shows as such.
        let metrics = self.call("Page.getLayoutMetrics", json!({})).await;
        let size = &metrics["cssContentSize"];
        let shot = self
            .call(
                "Page.captureScreenshot",
                json!({"format": "png", "captureBeyondViewport": true,
                       "clip": {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}}),
            )
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
